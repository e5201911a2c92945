//! The subcommands: parse flags, call memcap-core, print tables or JSON.

use crate::io::{read_dataset, read_model, write_atomic, InputError};
use crate::progress::{spinner, Bars};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use memcap_core::construct::{construct as build, ConstructConfig, Construction};
use memcap_core::gen::{self, GenConfig, GenKind, TextUnit};
use memcap_core::model::{loglog_slope, lower_bound_params, AttentionKind, Model};
use memcap_core::parse::{to_jsonl, ParseOptions};
use memcap_core::verify::{first_divergence, verify as run_verify, Arith, VerifyReport};
use memcap_core::{Dataset, Dedupe, MapChoice, Positional, Task};
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
pub enum TaskArg {
    NextToken,
    Seq2seq,
}
impl From<TaskArg> for Task {
    fn from(t: TaskArg) -> Task {
        match t {
            TaskArg::NextToken => Task::NextToken,
            TaskArg::Seq2seq => Task::Seq2seq,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Token ids (one-hot inputs; embedding = one column per token).
    Ids,
    /// Real-vector tokens of dimension --dim.
    Vectors,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum PosArg {
    /// No positional encoding (the paper's permutation-equivariant setting).
    None,
    /// Learned position embedding added to the token input.
    Learned,
}
impl From<PosArg> for Positional {
    fn from(p: PosArg) -> Positional {
        match p {
            PosArg::None => Positional::None,
            PosArg::Learned => Positional::Learned,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MapArg {
    /// M1 (plain code sums) when they are injective, else M2.
    Auto,
    /// Average the token codes; an error if two distinct multisets share a code sum.
    M1,
    /// Average random hashes of the codes (written by a first memorizer); always works, costs Õ(√ω).
    M2,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AttnArg {
    Softmax,
    Hardmax,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum DedupeArg {
    /// Inconsistent labels are an error naming both lines.
    Error,
    /// Keep the majority label of each conflict group; report the best accuracy.
    Majority,
}
impl From<DedupeArg> for Dedupe {
    fn from(d: DedupeArg) -> Dedupe {
        match d {
            DedupeArg::Error => Dedupe::Error,
            DedupeArg::Majority => Dedupe::Majority,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum UnitArg {
    Bytes,
    Words,
}

// ------------------------------------------------------------------------
// gen

#[derive(Args)]
pub struct GenArgs {
    /// Number of sequences N.
    #[arg(short = 'N', long = "n-seqs", default_value_t = 1000)]
    n_seqs: usize,
    /// Sequence length n (with --text: the window length).
    #[arg(short = 'n', long = "seq-len", default_value_t = 16)]
    seq_len: usize,
    /// Vocabulary size (ids), or size of the random vector pool (vectors).
    #[arg(long, default_value_t = 100)]
    vocab: usize,
    /// Number of classes C (labels 0..C-1).
    #[arg(long, default_value_t = 8)]
    classes: u32,
    #[arg(long, value_enum, default_value = "next-token")]
    task: TaskArg,
    #[arg(long, value_enum, default_value = "ids")]
    kind: KindArg,
    /// Dimension d of vector tokens.
    #[arg(long, default_value_t = 8)]
    dim: usize,
    /// Draw contexts distinct for this model kind (learned: ordered sequences).
    #[arg(long, value_enum, default_value = "none")]
    positional: PosArg,
    /// Random seed (the output is a pure function of the flags).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Make next-token windows of this text file instead of random data.
    #[arg(long)]
    text: Option<PathBuf>,
    /// Text tokens: bytes (vocabulary 256) or whitespace-separated words.
    #[arg(long, value_enum, default_value = "bytes")]
    unit: UnitArg,
    /// With --text: what to do with contexts that occur with different next tokens.
    #[arg(long, value_enum, default_value = "majority")]
    dedupe: DedupeArg,
    /// Output JSONL file.
    #[arg(short, long)]
    out: PathBuf,
}

pub fn gen(a: GenArgs) -> Result<Outcome> {
    let ds = match &a.text {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read text {}", path.display()))?;
            let unit = match a.unit {
                UnitArg::Bytes => TextUnit::Bytes,
                UnitArg::Words => TextUnit::Words,
            };
            let td = gen::text_windows(&bytes, a.seq_len, unit)
                .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
            // Conflicts in both model kinds: order-blind (no positions) and ordered.
            for (mode, pos) in [
                ("no positions (permutation-equivalent contexts)", Positional::None),
                ("learned positions (identical ordered contexts)", Positional::Learned),
            ] {
                let (_, rep) = td
                    .dataset
                    .resolve_conflicts(pos, Dedupe::Majority)
                    .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
                eprintln!(
                    "conflicts with {mode}: {} of {} windows, best achievable accuracy {:.2}%",
                    rep.labels_in_conflict,
                    rep.labels_total,
                    100.0 * rep.best_accuracy
                );
            }
            let (ds, rep) = td
                .dataset
                .resolve_conflicts(a.positional.into(), a.dedupe.into())
                .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
            eprintln!(
                "wrote windows for {} mode: kept {} of {} (--dedupe {})",
                if a.positional == PosArg::Learned { "learned-positions" } else { "no-positions" },
                ds.len(),
                rep.labels_total,
                if a.dedupe == DedupeArg::Majority { "majority" } else { "error" }
            );
            ds
        }
        None => gen::generate(&GenConfig {
            n_seqs: a.n_seqs,
            seq_len: a.seq_len,
            vocab: a.vocab,
            num_classes: a.classes,
            task: a.task.into(),
            kind: match a.kind {
                KindArg::Ids => GenKind::Ids,
                KindArg::Vectors => GenKind::Vectors { d: a.dim },
            },
            positional: a.positional.into(),
            seed: a.seed,
        })
        .map_err(|e| InputError(e.to_string()))?,
    };
    write_atomic(&a.out, to_jsonl(&ds).as_bytes())?;
    eprintln!("wrote {} ({} sequences of length {})", a.out.display(), ds.len(), ds.seq_len());
    Ok(Outcome::Ok)
}

// ------------------------------------------------------------------------
// construct

#[derive(Args)]
pub struct ConstructArgs {
    /// Dataset (.jsonl, or .csv of token ids).
    data: PathBuf,
    /// Output model (JSON with exact weights); MODEL.safetensors is written beside it.
    #[arg(short, long)]
    out: PathBuf,
    #[command(flatten)]
    opts: BuildOpts,
    /// Do not write the f64 safetensors file.
    #[arg(long)]
    no_safetensors: bool,
    /// Also verify the written model exactly on the dataset.
    #[arg(long)]
    verify: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Construction flags shared by construct, demo and scaling.
#[derive(Args, Clone)]
pub struct BuildOpts {
    /// Seed of every random choice (codes, projection, hashes).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Contextual map.
    #[arg(long, value_enum, default_value = "auto")]
    map: MapArg,
    /// Positional encoding of the built model.
    #[arg(long, value_enum, default_value = "none")]
    positional: PosArg,
    /// Attention normalization of the built model (identical results: scores are constant).
    #[arg(long, value_enum, default_value = "softmax")]
    attention: AttnArg,
    /// Inconsistent labels: error, or keep the majority label.
    #[arg(long, value_enum, default_value = "error")]
    dedupe: DedupeArg,
    /// Bits of the random token-id codes for M1 (default 2⌈log2 N⌉ + 2).
    #[arg(long)]
    code_bits: Option<u32>,
    /// Vocabulary size, if larger than the largest id + 1.
    #[arg(long)]
    vocab: Option<usize>,
    /// Number of classes, if larger than the largest label + 1.
    #[arg(long)]
    classes: Option<u32>,
}

impl BuildOpts {
    /// The defaults of `memcap construct`, with a seed.
    fn defaults(seed: u64) -> Self {
        BuildOpts {
            seed,
            map: MapArg::Auto,
            positional: PosArg::None,
            attention: AttnArg::Softmax,
            dedupe: DedupeArg::Error,
            code_bits: None,
            vocab: None,
            classes: None,
        }
    }

    fn config(&self) -> ConstructConfig {
        ConstructConfig {
            seed: self.seed,
            map: match self.map {
                MapArg::Auto => MapChoice::Auto,
                MapArg::M1 => MapChoice::M1,
                MapArg::M2 => MapChoice::M2,
            },
            positional: self.positional.into(),
            attention: match self.attention {
                AttnArg::Softmax => AttentionKind::Softmax,
                AttnArg::Hardmax => AttentionKind::Hardmax,
            },
            code_bits: self.code_bits,
            ..Default::default()
        }
    }
    fn parse_opts(&self) -> ParseOptions {
        ParseOptions { vocab: self.vocab, num_classes: self.classes }
    }
}

/// Applies the dedupe policy for the model kind; prints the conflict report.
fn resolve(ds: Dataset, positional: Positional, dedupe: DedupeArg, path: &Path, quiet: bool) -> Result<Dataset> {
    let (out, rep) =
        ds.resolve_conflicts(positional, dedupe.into()).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
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

fn build_model(ds: &Dataset, opts: &BuildOpts, path: &Path, quiet: bool) -> Result<(Construction, f64)> {
    let t0 = Instant::now();
    let sp = spinner(!quiet, "constructing");
    let built = build(ds, &opts.config()).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
    if let Some(s) = sp {
        s.finish_and_clear();
    }
    Ok((built, t0.elapsed().as_secs_f64()))
}

pub fn construct(a: ConstructArgs) -> Result<Outcome> {
    let ds = read_dataset(&a.data, a.opts.parse_opts())?;
    let ds = resolve(ds, a.opts.positional.into(), a.opts.dedupe, &a.data, a.json)?;
    let (built, secs) = build_model(&ds, &a.opts, &a.data, a.json)?;
    let model = &built.model;
    write_atomic(&a.out, model.to_json().as_bytes())?;
    let mut files = vec![a.out.display().to_string()];
    if !a.no_safetensors {
        let st = a.out.with_extension("safetensors");
        write_atomic(&st, &crate::export::to_safetensors(model)?)?;
        files.push(st.display().to_string());
    }
    let report = if a.verify { Some(verify_one(model, &ds, Arith::Exact, a.json)?) } else { None };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dataset": dataset_json(&ds),
                "construction": built.info,
                "accounting": accounting_json(model, &ds),
                "construct_seconds": secs,
                "verify": report,
                "files": files,
            }))?
        );
    } else {
        print_construction(&built, &ds, secs);
        if let Some(r) = &report {
            print_verify(r, None);
        }
        println!("wrote {}", files.join(", "));
    }
    Ok(match report {
        Some(r) if !r.all_memorized() => Outcome::NotMemorized,
        _ => Outcome::Ok,
    })
}

fn dataset_json(ds: &Dataset) -> serde_json::Value {
    json!({
        "examples": ds.len(),
        "seq_len": ds.seq_len(),
        "input_dim": ds.input_dim(),
        "task": ds.task(),
        "num_classes": ds.num_classes,
    })
}

fn accounting_json(model: &Model, ds: &Dataset) -> serde_json::Value {
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
        "lower_bound_params_order": lower_bound_params(ds.len()),
    })
}

fn print_construction(built: &Construction, ds: &Dataset, secs: f64) {
    let m = &built.model;
    let acc = m.accounting();
    let c = &m.config;
    let info = &built.info;
    println!(
        "dataset          N = {}, n = {}, d = {}, {:?}, C = {}",
        ds.len(),
        ds.seq_len(),
        ds.input_dim(),
        ds.task(),
        ds.num_classes
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
    println!(
        "total bits       {}  (information limit {:.0} bits = labels·log2 C; ratio {:.1})",
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

// ------------------------------------------------------------------------
// verify

#[derive(Args)]
pub struct VerifyArgs {
    /// Model JSON written by `memcap construct`.
    model: PathBuf,
    /// Dataset (.jsonl or .csv).
    data: PathBuf,
    /// Exact arithmetic (big integers and rationals): the only basis for a "memorized" claim.
    #[arg(long)]
    exact: bool,
    /// f64 forward pass of the same weights.
    #[arg(long)]
    f64: bool,
    /// f32 forward pass of the same weights.
    #[arg(long)]
    f32: bool,
    /// Apply the same dedupe policy as at construction.
    #[arg(long, value_enum, default_value = "error")]
    dedupe: DedupeArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn verify_one(model: &Model, ds: &Dataset, arith: Arith, quiet: bool) -> Result<VerifyReport> {
    let bars = Bars::new(!quiet);
    let r = run_verify(model, ds, arith, &bars).map_err(|e| InputError(e.to_string()))?;
    bars.finish();
    Ok(r)
}

fn print_verify(r: &VerifyReport, div: Option<&memcap_core::verify::Divergence>) {
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

pub fn verify(a: VerifyArgs) -> Result<Outcome> {
    let model = read_model(&a.model)?;
    let opts = ParseOptions {
        vocab: match model.config.input {
            memcap_core::model::InputSpec::Ids { vocab } => Some(vocab),
            _ => None,
        },
        num_classes: Some(model.config.num_classes),
    };
    let ds = read_dataset(&a.data, opts)?;
    let ds = resolve(ds, model.config.positional, a.dedupe, &a.data, a.json)?;
    let mut ariths = Vec::new();
    if a.exact || (!a.f64 && !a.f32) {
        ariths.push(Arith::Exact);
    }
    if a.f64 {
        ariths.push(Arith::F64);
    }
    if a.f32 {
        ariths.push(Arith::F32);
    }
    let mut results = Vec::new();
    let mut exact_ok = true;
    for ar in ariths {
        let r = verify_one(&model, &ds, ar, a.json)?;
        if ar == Arith::Exact && !r.all_memorized() {
            exact_ok = false;
        }
        // For float runs: trace the first example whose float state leaves the exact one.
        let div = if ar != Arith::Exact {
            let probe = r.failures.first().map_or(0, |f| f.example);
            first_divergence(&model, &ds, probe, ar).map_err(|e| InputError(e.to_string()))?
        } else {
            None
        };
        if !a.json {
            print_verify(&r, div.as_ref());
        }
        results.push(json!({"report": r, "first_divergence": div}));
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"results": results, "accounting": accounting_json(&model, &ds)}))?
        );
    }
    Ok(if exact_ok { Outcome::Ok } else { Outcome::NotMemorized })
}

// ------------------------------------------------------------------------
// inspect

#[derive(Args)]
pub struct InspectArgs {
    /// Model JSON.
    model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also list the first K blocks' nonzero counts.
    #[arg(long, default_value_t = 0)]
    blocks: usize,
}

pub fn inspect(a: InspectArgs) -> Result<Outcome> {
    let m = read_model(&a.model)?;
    let acc = m.accounting();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"config": m.config, "accounting": acc, "construction": m.construction})
            )?
        );
        return Ok(Outcome::Ok);
    }
    let c = &m.config;
    println!("model            {} (format {} v{})", a.model.display(), m.format, m.version);
    println!(
        "input            {:?}, seq_len {}, positional {:?}, task {:?}, C = {}",
        c.input, c.seq_len, c.positional, c.task, c.num_classes
    );
    println!(
        "architecture     L = {}, m = {}, q = {}, heads = {}, head dim = {}, {:?}",
        c.blocks, c.width, c.ffn_width, c.heads, c.head_dim, c.attention
    );
    println!("attention blocks {:?} (all others have zero attention)", c.attention_blocks);
    println!("registers        {}", c.registers.join(" "));
    println!("params dense     {} (formula {})", acc.params_dense, m.dense_param_formula());
    println!("params nonzero   {}", acc.params_nonzero);
    println!("max weight bits  {}", acc.max_weight_bits);
    println!("total bits       {}", acc.total_bits);
    println!("inexact weights  f64: {}, f32: {}", acc.weights_inexact_f64, acc.weights_inexact_f32);
    if let Some(map) = m.construction.get("map_reason") {
        println!("construction     {}", map.as_str().unwrap_or_default());
    }
    for (l, b) in m.weights.blocks.iter().take(a.blocks).enumerate() {
        let nnz = b.ffn.w1.entries.len() + b.ffn.b1.entries.len() + b.ffn.w2.entries.len() + b.ffn.b2.entries.len();
        println!("  block {l:>5}: heads {}, FFN nonzeros {nnz}", b.heads.len());
    }
    Ok(Outcome::Ok)
}

// ------------------------------------------------------------------------
// demo

/// The random token-id data of `demo` and `scaling` (besides N and n).
#[derive(Args)]
pub struct RandomIdsArgs {
    /// Vocabulary size.
    #[arg(long, default_value_t = 1000)]
    vocab: usize,
    /// Number of classes C.
    #[arg(long, default_value_t = 16)]
    classes: u32,
    #[arg(long, value_enum, default_value = "next-token")]
    task: TaskArg,
    /// Seed of the data and of the construction.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Random consistent token-id data (no positions), as `memcap gen` makes it.
fn random_ids(n_seqs: usize, seq_len: usize, d: &RandomIdsArgs) -> Result<Dataset> {
    let cfg = GenConfig {
        n_seqs,
        seq_len,
        vocab: d.vocab,
        num_classes: d.classes,
        task: d.task.into(),
        kind: GenKind::Ids,
        positional: Positional::None,
        seed: d.seed,
    };
    Ok(gen::generate(&cfg).map_err(|e| InputError(e.to_string()))?)
}

#[derive(Args)]
pub struct DemoArgs {
    /// Number of sequences N.
    #[arg(short = 'N', long = "n-seqs", default_value_t = 2000)]
    n_seqs: usize,
    /// Sequence length n.
    #[arg(short = 'n', long = "seq-len", default_value_t = 16)]
    seq_len: usize,
    #[command(flatten)]
    data: RandomIdsArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn demo(a: DemoArgs) -> Result<Outcome> {
    let ds = random_ids(a.n_seqs, a.seq_len, &a.data)?;
    let opts = BuildOpts::defaults(a.data.seed);
    let (built, secs) = build_model(&ds, &opts, Path::new("<generated>"), a.json)?;
    // Round-trip through the file format so the verifier runs what a user would load.
    let model = Model::from_json(&built.model.to_json()).context("model JSON round-trip")?;
    let reports: Vec<VerifyReport> = [Arith::Exact, Arith::F64, Arith::F32]
        .into_iter()
        .map(|ar| verify_one(&model, &ds, ar, a.json))
        .collect::<Result<_>>()?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dataset": dataset_json(&ds), "construction": built.info,
                "accounting": accounting_json(&model, &ds), "construct_seconds": secs, "verify": reports,
            }))?
        );
    } else {
        println!("memcap demo: random next-token data, built-in default (seed {})\n", a.data.seed);
        print_construction(&built, &ds, secs);
        println!();
        for r in &reports {
            let div = match (r.arithmetic, r.failures.first()) {
                (Arith::Exact, _) | (_, None) => None,
                (ar, Some(f)) => first_divergence(&model, &ds, f.example, ar).map_err(|e| InputError(e.to_string()))?,
            };
            print_verify(r, div.as_ref());
        }
        println!("\nOnly the exact run decides memorization; f64/f32 show what rounding the same weights does.");
    }
    Ok(if reports[0].all_memorized() { Outcome::Ok } else { Outcome::NotMemorized })
}

// ------------------------------------------------------------------------
// scaling

#[derive(Args)]
pub struct ScalingArgs {
    /// Dataset sizes N (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000,100000")]
    ns: Vec<usize>,
    /// Sequence length for the N sweep.
    #[arg(short = 'n', long = "seq-len", default_value_t = 64)]
    seq_len: usize,
    /// Sequence lengths compared at fixed N = --n-fixed (comma-separated; empty to skip).
    #[arg(long, value_delimiter = ',', default_value = "8,512")]
    seq_lens: Vec<usize>,
    /// N for the sequence-length comparison.
    #[arg(long, default_value_t = 10000)]
    n_fixed: usize,
    #[command(flatten)]
    data: RandomIdsArgs,
    /// Also verify every model exactly (slow for large N).
    #[arg(long)]
    verify: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn scaling(a: ScalingArgs) -> Result<Outcome> {
    let mut rows = Vec::new();
    let mut ok = true;
    let mut run = |n_seqs: usize, seq_len: usize| -> Result<serde_json::Value> {
        let ds = random_ids(n_seqs, seq_len, &a.data)?;
        let opts = BuildOpts::defaults(a.data.seed);
        let (built, secs) = build_model(&ds, &opts, Path::new("<generated>"), a.json)?;
        let acc = built.model.accounting();
        let ver = if a.verify { Some(verify_one(&built.model, &ds, Arith::Exact, a.json)?) } else { None };
        if let Some(v) = &ver {
            ok &= v.all_memorized();
        }
        let row = json!({
            "N": n_seqs, "n": seq_len, "map": built.info.map, "blocks": acc.blocks,
            "params_dense": acc.params_dense, "params_nonzero": acc.params_nonzero,
            "max_weight_bits": acc.max_weight_bits, "total_bits": acc.total_bits,
            "information_limit_bits": ds.label_bits(), "construct_seconds": secs,
            "memorized": ver.as_ref().map(|v| v.memorized), "verify_seconds": ver.as_ref().map(|v| v.seconds),
        });
        if !a.json {
            println!(
                "{:>8} {:>5} {:>4} {:>7} {:>11} {:>10} {:>9} {:>11} {:>11} {:>8.2} {:>10}",
                n_seqs,
                seq_len,
                built.info.map,
                acc.blocks,
                acc.params_dense,
                acc.params_nonzero,
                acc.max_weight_bits,
                acc.total_bits,
                format!("{:.0}", ds.label_bits()),
                secs,
                ver.as_ref().map_or("-".to_string(), |v| format!("{}/{} {:.1}s", v.memorized, v.examples, v.seconds))
            );
        }
        Ok(row)
    };
    if !a.json {
        println!(
            "{:>8} {:>5} {:>4} {:>7} {:>11} {:>10} {:>9} {:>11} {:>11} {:>8} {:>10}",
            "N", "n", "map", "blocks", "dense", "nonzero", "max bits", "total bits", "N·log2 C", "build s", "exact"
        );
    }
    for &n in &a.ns {
        rows.push(run(n, a.seq_len)?);
    }
    let pts = |key: &str, rows: &[serde_json::Value]| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r["N"].as_f64().unwrap_or(1.0), r[key].as_f64().unwrap_or(1.0))).collect()
    };
    let slope_nnz = loglog_slope(&pts("params_nonzero", &rows));
    let slope_dense = loglog_slope(&pts("params_dense", &rows));
    let slope_depth = loglog_slope(&pts("blocks", &rows));
    let mut n_rows = Vec::new();
    for &len in &a.seq_lens {
        n_rows.push(run(a.n_fixed, len)?);
    }
    let n_ratio = match (n_rows.first(), n_rows.last()) {
        (Some(f), Some(l)) if n_rows.len() > 1 => {
            Some(l["params_nonzero"].as_f64().unwrap_or(0.0) / f["params_nonzero"].as_f64().unwrap_or(1.0))
        }
        _ => None,
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "rows": rows, "length_rows": n_rows,
                "slope_nonzero_vs_N": slope_nnz, "slope_dense_vs_N": slope_dense, "slope_blocks_vs_N": slope_depth,
                "nonzero_ratio_longest_vs_shortest_n": n_ratio,
            }))?
        );
    } else {
        let f = |s: Option<f64>| s.map_or("-".into(), |v| format!("{v:.3}"));
        println!(
            "\nfitted log-log slope vs N: nonzero params {}, dense params {}, blocks {}  (√N = 0.5, N = 1.0)",
            f(slope_nnz),
            f(slope_dense),
            f(slope_depth)
        );
        if let Some(r) = n_ratio {
            println!(
                "nonzero params at n = {} vs n = {} (N = {}): ratio {r:.3}",
                a.seq_lens.last().unwrap_or(&0),
                a.seq_lens.first().unwrap_or(&0),
                a.n_fixed
            );
        }
    }
    Ok(if ok { Outcome::Ok } else { Outcome::NotMemorized })
}
