//! Flags and helpers shared by several subcommands: construction options,
//! the dataset and accounting printouts, one exact/float verification run.
//! Flag value names come from memcap-core's enums (`Task`, `Positional`,
//! `Dedupe`, `MapChoice`, `AttentionKind`, `TextUnit`), so every command
//! spells them the same.

use crate::io::{read_dataset, InputError};
use crate::progress::{spinner, Bars};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use memcap_core::construct::{construct as build, ConstructConfig, Construction};
use memcap_core::gen::{self, CorpusFormat, GenConfig, GenKind, TextSpec, TextUnit};
use memcap_core::model::{lower_bound_params, AttentionKind, Model};
use memcap_core::parse::ParseOptions;
use memcap_core::verify::{verify as run_verify, Arith, VerifyReport};
use memcap_core::{Dataset, Dedupe, MapChoice, Positional, Precision, Task};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a command ended when it did not fail.
pub enum Outcome {
    Ok,
    /// Verification ran and found wrong outputs (exit code 1).
    NotMemorized,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Token ids (one-hot inputs; embedding = one column per token).
    Ids,
    /// Real-vector tokens of dimension --dim.
    Vectors,
}

/// Construction flags shared by construct, demo and scaling.
#[derive(Args, Clone)]
pub struct BuildOpts {
    /// Seed of every random choice (codes, projection, hashes).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Contextual map.
    #[arg(long, value_enum, default_value = "auto")]
    pub map: MapChoice,
    /// Positional encoding of the built model.
    #[arg(long, value_enum, default_value = "none")]
    pub positional: Positional,
    /// Attention normalization of the built model (identical results: scores are constant).
    #[arg(long, value_enum, default_value = "softmax")]
    pub attention: AttentionKind,
    /// Inconsistent labels: error, or keep the majority label.
    #[arg(long, value_enum, default_value = "error")]
    pub dedupe: Dedupe,
    /// Bits of the random token-id codes for M1 (default 2⌈log2 N⌉ + 2).
    #[arg(long)]
    pub code_bits: Option<u32>,
    /// Arithmetic the model must be exact in. `exact`: rational weights of
    /// Õ(√N) bits. `f64` / `f32`: every weight is a float of that type and the
    /// forward pass in that dtype returns every label exactly in any summation
    /// order (PyTorch, onnxruntime), proven by a certificate; more, smaller
    /// blocks (token ids without learned positions).
    #[arg(long, value_enum, default_value = "exact")]
    pub precision: Precision,
    /// Vocabulary size, if larger than the largest id + 1.
    #[arg(long)]
    pub vocab: Option<usize>,
    /// Refuse datasets whose vocabulary (declared, or largest id + 1) is larger
    /// (the dense embedding export allocates vocab × width f64 values).
    #[arg(long, default_value_t = memcap_core::Limits::default().max_vocab)]
    pub max_vocab: usize,
    /// Number of classes, if larger than the largest label + 1.
    #[arg(long = "num-classes", visible_alias = "classes")]
    pub classes: Option<u32>,
}

impl BuildOpts {
    /// The defaults of `memcap construct`, with a seed.
    pub fn defaults(seed: u64) -> Self {
        BuildOpts {
            seed,
            map: MapChoice::Auto,
            positional: Positional::None,
            attention: AttentionKind::Softmax,
            dedupe: Dedupe::Error,
            code_bits: None,
            precision: Precision::Exact,
            vocab: None,
            classes: None,
            max_vocab: memcap_core::Limits::default().max_vocab,
        }
    }

    pub fn config(&self) -> ConstructConfig {
        ConstructConfig {
            seed: self.seed,
            map: self.map,
            positional: self.positional,
            attention: self.attention,
            code_bits: self.code_bits,
            precision: self.precision,
            ..Default::default()
        }
    }
    pub fn parse_opts(&self) -> ParseOptions {
        ParseOptions { vocab: self.vocab, num_classes: self.classes, max_vocab: Some(self.max_vocab) }
    }
}

/// Merges exact duplicates (same tokens, same labels), saying how many: a
/// copy carries no information, and training on it only costs time.
pub fn merge_duplicates(ds: Dataset, path: &Path, quiet: bool) -> Dataset {
    let (out, merged) = ds.merge_duplicates();
    if merged > 0 && !quiet {
        eprintln!(
            "{}: merged {merged} duplicate examples (same tokens and labels); {} distinct examples remain, and every count below uses them",
            path.display(),
            out.len()
        );
    }
    out
}

/// Merges duplicates, applies the dedupe policy for the model kind; prints both reports.
pub fn resolve(ds: Dataset, positional: Positional, dedupe: Dedupe, path: &Path, quiet: bool) -> Result<Dataset> {
    let ds = merge_duplicates(ds, path, quiet);
    let (out, rep) =
        ds.resolve_conflicts(positional, dedupe).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
    if rep.labels_in_conflict > 0 && !quiet {
        eprintln!(
            "dedupe majority: {} of {} labels in conflict, {} dropped/relabelled; best achievable accuracy {:.2}%",
            rep.labels_in_conflict,
            rep.labels_total,
            rep.labels_removed,
            100.0 * rep.best_accuracy
        );
    }
    Ok(out)
}

pub fn build_model(ds: &Dataset, opts: &BuildOpts, path: &Path, quiet: bool) -> Result<(Construction, f64)> {
    let t0 = Instant::now();
    let sp = spinner(!quiet, "constructing");
    let built = build(ds, &opts.config()).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
    if let Some(s) = sp {
        s.finish_and_clear();
    }
    Ok((built, t0.elapsed().as_secs_f64()))
}

pub fn dataset_json(ds: &Dataset) -> serde_json::Value {
    json!({
        "examples": ds.len(),
        "seq_len": ds.seq_len(),
        "input_dim": ds.input_dim(),
        "task": ds.task(),
        "num_classes": ds.num_classes,
        "labels_used": ds.labels_used(),
        "declared_label_alphabets": ds.label_classes.is_some(),
    })
}

pub fn accounting_json(model: &Model, ds: &Dataset) -> serde_json::Value {
    let acc = model.accounting();
    json!({
        "blocks": acc.blocks,
        "width": acc.width,
        "ffn_width": acc.ffn_width,
        "heads": acc.heads,
        "head_dim": acc.head_dim,
        "params_dense": acc.params_dense,
        "params_nonzero": acc.params_nonzero,
        "max_weight_bits": acc.max_weight_bits,
        "total_bits": acc.total_bits,
        "weights_inexact_f64": acc.weights_inexact_f64,
        "weights_inexact_f32": acc.weights_inexact_f32,
        "information_limit_bits": ds.label_bits(),
        "information_upper_bound_bits": ds.label_bits_upper(),
        "lower_bound_params_order": lower_bound_params(ds.len()),
    })
}

/// The float-exactness certificate, per stage, and the counting bound at
/// that precision (P ≥ N·log2 C / B for B-bit weights).
pub fn print_certificate(c: &memcap_core::certificate::FloatCertificate, model: &Model, ds: &Dataset, secs: f64) {
    let b = c.dtype.mantissa_bits() as f64;
    let bound = ds.label_bits() / b;
    let nnz = model.accounting().params_nonzero as f64;
    println!(
        "certificate      {} {}: {} ({:.2} s)",
        c.dtype.name(),
        if c.certified { "exact" } else { "NOT exact" },
        c.reason,
        secs
    );
    for s in &c.stages {
        println!(
            "  {:<28} max |x| 2^{:<6.1} error bound {}",
            s.stage,
            s.max_abs_log2,
            if s.max_error == 0.0 { "0 (exact)".to_string() } else { format!("{:.3e}", s.max_error) }
        );
    }
    println!(
        "counting bound   N·log2 C / B = {:.0} params at B = {b} bits; this model has {nnz:.0} nonzero ({:.1}×)",
        bound,
        nnz / bound.max(1.0)
    );
}

pub fn print_construction(built: &Construction, ds: &Dataset, secs: f64) {
    let m = &built.model;
    let acc = m.accounting();
    let c = &m.config;
    let info = &built.info;
    println!(
        "dataset          N = {}, n = {}, d = {}, {:?}, C = {} ({} label values used)",
        ds.len(),
        ds.seq_len(),
        ds.input_dim(),
        ds.task(),
        ds.num_classes,
        ds.labels_used()
    );
    println!("contextual map   {}", info.map_reason);
    println!(
        "architecture     L = {} blocks (attention in {:?}), m = {}, q = {}, heads = {}, head dim = {}, positional = {:?}",
        c.blocks, c.attention_blocks, c.width, c.ffn_width, c.heads, c.head_dim, c.positional
    );
    for mem in &info.memorizers {
        println!(
            "memorizer        {:<24} P = {}, ρ = {}, G = {}, B_u = {}, B_y = {}, depth = {}, params {} nonzero / {} dense",
            mem.role, mem.points, mem.rho, mem.groups, mem.b_u, mem.b_y, mem.depth, mem.params_nonzero, mem.params_dense
        );
    }
    println!("params dense     {}", acc.params_dense);
    println!("params nonzero   {}", acc.params_nonzero);
    if info.memorizers.len() > 1 {
        let (h, l) = (&info.memorizers[0], &info.memorizers[1]);
        println!(
            "params terms     hashing ω = {} units: {} nonzero (Õ(√ω)) + labels, {} keys: {} nonzero (Õ(√N)) + embedding/attention {}",
            info.distinct_units,
            h.params_nonzero,
            l.points,
            l.params_nonzero,
            acc.params_nonzero as usize - h.params_nonzero - l.params_nonzero
        );
    }
    println!("lower bound      ~{:.0}  (order √(N/log2 N), §9.1; constants unknown)", lower_bound_params(ds.len()));
    println!("max weight bits  {}", acc.max_weight_bits);
    let basis = if ds.label_classes.is_some() {
        format!("Σ log2 C_i over the declared alphabets; counting bound labels·log2 C = {:.0}", ds.label_bits_upper())
    } else {
        "labels·log2 C, the counting bound".to_string()
    };
    println!(
        "total bits       {}  (information limit {:.0} bits = {basis}; ratio {:.1})",
        acc.total_bits,
        ds.label_bits(),
        acc.total_bits as f64 / ds.label_bits().max(1.0)
    );
    println!(
        "float exactness  {} weights not exact in f64, {} not exact in f32",
        acc.weights_inexact_f64, acc.weights_inexact_f32
    );
    println!("construct time   {secs:.2} s");
}

pub fn verify_one(model: &Model, ds: &Dataset, arith: Arith, quiet: bool) -> Result<VerifyReport> {
    let bars = Bars::new(!quiet);
    let r = run_verify(model, ds, arith, &bars).map_err(|e| InputError(e.to_string()))?;
    bars.finish();
    Ok(r)
}

pub fn print_verify(r: &VerifyReport, div: Option<&memcap_core::verify::Divergence>) {
    let name = match r.arithmetic {
        Arith::Exact => "exact",
        Arith::F64 => "f64",
        Arith::F32 => "f32",
    };
    println!(
        "{name:<6} memorized {}/{} (labels {}/{}) in {:.2} s  [distinct sequences {}, tokens {}, post-attention states {}]",
        r.memorized, r.examples, r.labels_correct, r.labels_total, r.seconds, r.distinct_sequences, r.distinct_tokens, r.distinct_tail_states
    );
    if let Some(note) = &r.sharing {
        println!("       shared work: {note}");
    }
    if !r.stages.is_empty() {
        let stages: Vec<String> = r.stages.iter().map(|(s, t)| format!("{s} {t:.2} s")).collect();
        println!("       stages: {}", stages.join(" · "));
    }
    for f in r.failures.iter().take(3) {
        let at = f.line.map_or(format!("example {}", f.example), |l| format!("line {l}"));
        let got = if f.got.len() > 40 { format!("{}…", &f.got[..40]) } else { f.got.clone() };
        println!("       {at}, position {}: expected {}, got {got}", f.position, f.expected);
    }
    if let Some(d) = div {
        let ex = if d.exact.len() > 40 { format!("{}…", &d.exact[..40]) } else { d.exact.clone() };
        println!(
            "       first divergence from exact: example {} {}, register {}, position {}: exact {ex} vs {}",
            d.example, d.stage, d.register, d.position, d.float
        );
    }
}

/// The random token-id data of `demo` and `scaling` (besides N and n).
#[derive(Args)]
pub struct RandomIdsArgs {
    /// Vocabulary size.
    #[arg(long, default_value_t = 1000)]
    pub vocab: usize,
    /// Number of classes C.
    #[arg(long = "num-classes", visible_alias = "classes", default_value_t = 16)]
    pub classes: u32,
    #[arg(long, value_enum, default_value = "next-token")]
    pub task: Task,
    /// Seed of the data and of the construction.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Random consistent token-id data (no positions), as `memcap gen` makes it.
pub fn random_ids(n_seqs: usize, seq_len: usize, d: &RandomIdsArgs) -> Result<Dataset> {
    let cfg = GenConfig {
        n_seqs,
        seq_len,
        vocab: d.vocab,
        num_classes: d.classes,
        task: d.task,
        kind: GenKind::Ids,
        positional: Positional::None,
        seed: d.seed,
    };
    Ok(gen::generate(&cfg).map_err(|e| InputError(e.to_string()))?)
}

/// Next-token windows of a text file (bytes or words), shared by `gen`,
/// `train` and `capacity`; the window length is `-n/--seq-len`.
#[derive(Args, Clone, Debug)]
pub struct TextOpts {
    /// Make next-token windows of this text file (gen: instead of random data;
    /// train, capacity: instead of DATA).
    #[arg(long, value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// Text tokens: bytes (V = 256) or whitespace-separated words.
    #[arg(long, value_enum, default_value = "bytes")]
    pub unit: TextUnit,
    /// Distance between window starts, in tokens (1 = every window).
    #[arg(long, default_value_t = 1)]
    pub stride: usize,
    /// Keep at most this many windows (the first ones).
    #[arg(long)]
    pub max_examples: Option<usize>,
    /// What --text is: plain text, MultiNLI JSON Lines, or IMDb (CSV with a
    /// `review` column, or an aclImdb folder of one-review files).
    #[arg(long, value_enum, default_value = "raw")]
    pub corpus: CorpusFormat,
}

impl TextOpts {
    /// The bytes of `path` as text of `self.corpus` (an IMDb folder: every
    /// `.txt` file below it, in sorted path order).
    pub fn read(&self, path: &Path) -> Result<Vec<u8>> {
        let content = if path.is_dir() {
            if self.corpus != CorpusFormat::Imdb {
                return Err(InputError(format!("{}: a folder is read only with --corpus imdb", path.display())).into());
            }
            let mut files = Vec::new();
            let mut stack = vec![path.to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).with_context(|| format!("cannot read folder {}", d.display()))? {
                    let p = e?.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "txt") {
                        files.push(p);
                    }
                }
            }
            files.sort();
            let mut text = String::new();
            for f in files {
                let review = std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
                text.push_str(&review.replace("<br />", " "));
                text.push('\n');
            }
            return Ok(text.into_bytes());
        } else {
            std::fs::read(path).with_context(|| format!("cannot read text {}", path.display()))?
        };
        if self.corpus == CorpusFormat::Raw {
            return Ok(content);
        }
        let s = String::from_utf8(content).map_err(|e| InputError(format!("{}: not UTF-8: {e}", path.display())))?;
        let text = gen::corpus_text(self.corpus, &s).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
        Ok(text.into_bytes())
    }

    /// The window spec for windows of `seq_len` tokens.
    pub fn spec(&self, seq_len: usize) -> TextSpec {
        TextSpec { unit: self.unit, seq_len, stride: self.stride, max_examples: self.max_examples }
    }
}

/// Where `train` and `capacity` get their data: a dataset file (JSONL/CSV of
/// token ids, read exactly as `construct` reads it) or windows of a text.
#[derive(Args, Clone, Debug)]
pub struct TrainDataArgs {
    /// Dataset (.jsonl, or .csv of token ids); omit with --text.
    #[arg(required_unless_present = "text")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub text: TextOpts,
    /// Window length n for --text.
    #[arg(short = 'n', long = "seq-len", default_value_t = 8)]
    pub seq_len: usize,
    /// Inconsistent labels (contexts the model cannot tell apart). Without
    /// this flag all are kept and the accuracy ceiling is reported; `majority`
    /// keeps each group's majority label; `error` refuses such data.
    #[arg(long, value_enum)]
    pub dedupe: Option<Dedupe>,
    /// Refuse datasets whose vocabulary (declared, or largest id + 1) is larger
    /// (the embedding holds vocab × d_model weights).
    #[arg(long, default_value_t = memcap_core::Limits::default().max_vocab)]
    pub max_vocab: usize,
}

impl TrainDataArgs {
    /// Reads the data, prints its consistency report (both model kinds) and
    /// applies `--dedupe` for a model with the given positional encoding.
    pub fn load(&self, positional: Positional) -> Result<Dataset> {
        let (ds, what) = match (&self.text.text, &self.data) {
            (Some(path), _) => {
                let bytes = self.text.read(path)?;
                let td = gen::text_windows(&bytes, &self.text.spec(self.seq_len))
                    .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
                (td.dataset, path.clone())
            }
            (None, Some(path)) => {
                let opts = ParseOptions { max_vocab: Some(self.max_vocab), ..ParseOptions::default() };
                (read_dataset(path, opts)?, path.clone())
            }
            (None, None) => return Err(InputError("give DATA or --text FILE".into()).into()),
        };
        ds.validate().map_err(|e| InputError(format!("{}: {e}", what.display())))?;
        let ds = merge_duplicates(ds, &what, false);
        let r = ds.consistency();
        eprintln!(
            "{}: {} targets, {} distinct contexts, {} conflicting ({} targets); best achievable accuracy {:.4} ({:.4} without positional encoding)",
            what.display(), r.targets, r.distinct_contexts, r.conflicting_contexts, r.targets_in_conflicts, r.max_accuracy, r.max_accuracy_no_pos
        );
        match self.dedupe {
            None => Ok(ds),
            Some(policy) => resolve(ds, positional, policy, &what, false),
        }
    }
}

/// Size limits on a model file (`memcap_core::limits`).
#[derive(clap::Args, Debug, Clone)]
pub struct ModelLimitArgs {
    /// Refuse model files whose architecture declares more dense parameters
    /// (dense exports and float evaluation allocate by it).
    #[arg(long, default_value_t = memcap_core::Limits::default().max_dense_params)]
    pub max_dense_params: u64,
    /// Refuse model files holding a number with more decimal digits (weights are
    /// exact decimal strings; constructions stay far below the default).
    #[arg(long, default_value_t = memcap_core::Limits::default().max_weight_digits)]
    pub max_weight_digits: usize,
}

impl ModelLimitArgs {
    /// These limits, the rest default.
    pub fn limits(&self) -> memcap_core::Limits {
        memcap_core::Limits {
            max_dense_params: self.max_dense_params,
            max_weight_digits: self.max_weight_digits,
            ..Default::default()
        }
    }
}
