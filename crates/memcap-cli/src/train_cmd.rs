//! `memcap train`, `memcap capacity`, `memcap repro …`: empirical capacity
//! with gradient descent (crate `memcap-train`). This module is glue only:
//! clap arguments, reading DATA, progress bars, writing outputs.
//!
//! Wiring (see crates/memcap-train/CLI_WIRING.md): in main.rs add
//! `mod train_cmd;`, the variants `Train(train_cmd::TrainArgs)`,
//! `Capacity(train_cmd::CapacityArgs)`, `Repro(train_cmd::ReproArgs)` and the
//! arms `Cmd::Train(a) => train_cmd::train(a)` etc.; add
//! `memcap-train = { path = "../memcap-train" }` to this crate's Cargo.toml.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use memcap_train::capacity::{capacity_search, CapacitySpec, Family, Strategy};
use memcap_train::repro;
use memcap_train::run::{write_atomic, write_report, write_run};
use memcap_train::{
    consistency_report, text_windows, Labels, MlpConfig, ModelConfig, TextSpec, Tokenization, TrainConfig, TrainData,
    TransformerConfig,
};

use crate::commands::Outcome;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelKind {
    Transformer,
    Mlp,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TextTokens {
    Bytes,
    Whitespace,
}

/// Where the training data comes from.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset (memcap JSONL/CSV with token ids), or a raw text file with --text.
    pub data: PathBuf,
    /// Treat DATA as raw text: windows of --seq-len tokens, next token as label.
    #[arg(long, value_enum)]
    pub text: Option<TextTokens>,
    /// Window length for --text.
    #[arg(long, default_value_t = 8)]
    pub seq_len: usize,
    /// Window stride for --text.
    #[arg(long, default_value_t = 1)]
    pub stride: usize,
    /// Keep at most this many windows (--text).
    #[arg(long)]
    pub max_examples: Option<usize>,
}

/// Optimizer and schedule.
#[derive(Args, Debug, Clone)]
pub struct ScheduleArgs {
    /// AdamW learning rate.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// AdamW decoupled weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Minibatch size (default: full batch).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Step budget.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Full evaluation (exact argmax accuracy) every this many steps.
    #[arg(long, default_value_t = 50)]
    pub eval_every: usize,
    /// Seed of initialization and data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep training after reaching 100% accuracy.
    #[arg(long)]
    pub no_stop: bool,
}

impl ScheduleArgs {
    fn config(&self) -> TrainConfig {
        TrainConfig {
            lr: self.lr,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            max_steps: self.steps,
            eval_every: self.eval_every,
            seed: self.seed,
            stop_when_memorized: !self.no_stop,
            ..TrainConfig::default()
        }
    }
}

/// `memcap train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Model family.
    #[arg(long, value_enum, default_value = "transformer")]
    pub model: ModelKind,
    /// Transformer: embedding width d.
    #[arg(long, default_value_t = 16)]
    pub d_model: usize,
    /// Transformer: attention heads.
    #[arg(long, default_value_t = 1)]
    pub heads: usize,
    /// Transformer: width per head (default d_model / heads).
    #[arg(long)]
    pub head_dim: Option<usize>,
    /// Transformer: FFN hidden width (default 2·d_model).
    #[arg(long)]
    pub d_ff: Option<usize>,
    /// Transformer: number of blocks.
    #[arg(long, default_value_t = 1)]
    pub blocks: usize,
    /// Transformer: learned positional encoding (the paper uses none).
    #[arg(long)]
    pub pos_encoding: bool,
    /// Transformer: pre-norm LayerNorm.
    #[arg(long)]
    pub layer_norm: bool,
    /// MLP: hidden width.
    #[arg(long, default_value_t = 16)]
    pub width: usize,
    /// MLP: hidden layers.
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// Output folder: config.json, metrics.jsonl, model.safetensors, summary.json.
    #[arg(short, long)]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `memcap capacity`.
#[derive(Args, Debug)]
pub struct CapacityArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Model family.
    #[arg(long, value_enum, default_value = "transformer")]
    pub model: ModelKind,
    /// Blocks (Transformer) or hidden layers (MLP) to try, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub blocks: Vec<usize>,
    /// Widths (d_model or hidden width) to try, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "8,12,16,20,24,28,32,40,48")]
    pub widths: Vec<usize>,
    /// Transformer heads.
    #[arg(long, default_value_t = 1)]
    pub heads: usize,
    /// Transformer FFN width as a multiple of d_model.
    #[arg(long, default_value_t = 2.0)]
    pub ff_mult: f64,
    /// Transformer: learned positional encoding.
    #[arg(long)]
    pub pos_encoding: bool,
    /// Transformer: LayerNorm.
    #[arg(long)]
    pub layer_norm: bool,
    /// Learning rates tried per size.
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.003")]
    pub lrs: Vec<f64>,
    /// Seeds tried per size.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub seeds: Vec<u64>,
    /// Step budget per run.
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Evaluate every this many steps.
    #[arg(long, default_value_t = 100)]
    pub eval_every: usize,
    /// Minibatch size (default: full batch).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Size search.
    #[arg(long, value_enum, default_value = "bisect")]
    pub strategy: StrategyArg,
    /// Parallel trainings (one thread each).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Output folder: capacity.json, capacity.csv.
    #[arg(short, long)]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StrategyArg {
    Bisect,
    Ascending,
}

/// `memcap repro`.
#[derive(Args, Debug)]
pub struct ReproArgs {
    #[command(subcommand)]
    pub which: ReproKind,
    /// Output folder (NAME.json, NAME.csv, NAME.svg).
    #[arg(short, long, global = true, default_value = "runs/repro")]
    pub out: PathBuf,
    /// Parallel trainings.
    #[arg(long, global = true, default_value_t = 2)]
    pub threads: usize,
}

#[derive(Subcommand, Debug)]
pub enum ReproKind {
    /// Loss/accuracy curves for #blocks ∈ {1,10,20,30,40}, N = 3000 (paper Fig. 2).
    Fig2 {
        /// Step budget per curve.
        #[arg(long, default_value_t = 1000)]
        steps: usize,
    },
    /// Smallest memorizing size vs N = 600..1700 (n = 8), Transformer vs MLP.
    SizeVsN {
        /// Step budget per run.
        #[arg(long, default_value_t = 1500)]
        steps: usize,
        /// Dataset sizes N (comma-separated); default 600..1700 step 100 as in the paper.
        #[arg(long, value_delimiter = ',')]
        ns: Vec<usize>,
    },
    /// Transformer vs MLP at equal parameters for n = 8, 32, 128.
    MlpVsTransformer {
        /// Step budget per run.
        #[arg(long, default_value_t = 1500)]
        steps: usize,
        /// Parameter budget of both families.
        #[arg(long, default_value_t = 12_000)]
        params: usize,
    },
}

fn load(args: &DataArgs) -> Result<TrainData> {
    if let Some(tok) = args.text {
        let bytes = std::fs::read(&args.data).with_context(|| format!("cannot read {}", args.data.display()))?;
        let spec = TextSpec {
            tokenization: match tok {
                TextTokens::Bytes => Tokenization::Bytes,
                TextTokens::Whitespace => Tokenization::Whitespace,
            },
            seq_len: args.seq_len,
            stride: args.stride,
            max_examples: args.max_examples,
        };
        let t = text_windows(&bytes, &spec).with_context(|| format!("{}", args.data.display()))?;
        let r = consistency_report(&t.data);
        eprintln!(
            "text: {} windows, vocab {}, {} distinct contexts, {} conflicting ({} targets); best achievable accuracy {:.4} ({:.4} without positional encoding)",
            r.targets, t.data.vocab, r.distinct_contexts, r.conflicting_contexts, r.targets_in_conflicts, r.max_accuracy, r.max_accuracy_no_pos
        );
        return Ok(t.data);
    }
    let ds = crate::io::read_dataset(&args.data, memcap_core::parse::ParseOptions::default())?;
    let (vocab, seqs) = match ds.inputs {
        memcap_core::data::Inputs::Ids { vocab, seqs } => (vocab, seqs),
        memcap_core::data::Inputs::Vectors { .. } => {
            bail!("{}: training needs token ids, not vectors", args.data.display())
        }
    };
    let labels = match ds.labels {
        memcap_core::data::Labels::NextToken(l) => Labels::NextToken(l),
        memcap_core::data::Labels::Seq2seq(l) => Labels::Seq2Seq(l),
    };
    let data = TrainData { vocab, num_classes: ds.num_classes as usize, seqs, labels };
    data.validate()?;
    Ok(data)
}

fn bar(enabled: bool, len: usize) -> Option<ProgressBar> {
    enabled.then(|| {
        let pb = ProgressBar::new(len as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed_precise} {msg}") {
            pb.set_style(style);
        }
        pb
    })
}

/// `memcap train`.
pub fn train(a: TrainArgs) -> Result<Outcome> {
    memcap_train::ensure_single_threaded_ops();
    let data = load(&a.data)?;
    let model = match a.model {
        ModelKind::Transformer => ModelConfig::Transformer(TransformerConfig {
            head_dim: a.head_dim.unwrap_or((a.d_model / a.heads.max(1)).max(1)),
            pos_encoding: a.pos_encoding,
            layer_norm: a.layer_norm,
            ..TransformerConfig::for_data(&data, a.d_model, a.heads, a.d_ff.unwrap_or(2 * a.d_model), a.blocks)
        }),
        ModelKind::Mlp => ModelConfig::Mlp(MlpConfig::for_data(&data, a.width, a.depth)),
    };
    let cfg = a.schedule.config();
    model.validate_for(&data)?;
    cfg.validate()?;
    eprintln!(
        "{} with {} parameters on N = {}, n = {}",
        model.family(),
        model.num_params(),
        data.len(),
        data.seq_len()
    );
    let pb = bar(!a.quiet, cfg.max_steps);
    let mut last_eval = String::new();
    let run = memcap_train::train(&model, &cfg, &data, &mut |p| {
        if let Some(pb) = &pb {
            pb.set_position(p.step as u64);
            if let Some(m) = p.eval {
                last_eval = format!("eval loss {:.4} acc {:.4}", m.loss, m.acc);
            }
            if p.step % 10 == 0 || p.eval.is_some() {
                pb.set_message(format!("batch loss {:.4} | {last_eval}", p.batch_loss));
            }
        }
    })?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    write_run(&a.out, &run)?;
    let s = &run.summary;
    println!(
        "{}: {} params, {} steps, loss {:.4}, acc {:.4}, memorized {}, {:.3} bits/param -> {}",
        s.family,
        s.num_params,
        s.steps,
        s.final_loss,
        s.final_acc,
        s.memorized,
        s.bits_per_param,
        a.out.display()
    );
    Ok(if s.memorized { Outcome::Ok } else { Outcome::NotMemorized })
}

/// `memcap capacity`.
pub fn capacity(a: CapacityArgs) -> Result<Outcome> {
    memcap_train::ensure_single_threaded_ops();
    let data = load(&a.data)?;
    let spec = CapacitySpec {
        family: match a.model {
            ModelKind::Transformer => Family::Transformer {
                heads: a.heads,
                ff_mult: a.ff_mult,
                pos_encoding: a.pos_encoding,
                layer_norm: a.layer_norm,
            },
            ModelKind::Mlp => Family::Mlp,
        },
        blocks: a.blocks,
        widths: a.widths,
        lrs: a.lrs,
        seeds: a.seeds,
        train: TrainConfig {
            max_steps: a.steps,
            eval_every: a.eval_every,
            batch_size: a.batch_size,
            ..TrainConfig::default()
        },
        strategy: match a.strategy {
            StrategyArg::Bisect => Strategy::Bisect,
            StrategyArg::Ascending => Strategy::Ascending,
        },
        threads: a.threads,
    };
    let pb = ProgressBar::new_spinner();
    let report = capacity_search(&spec, &data, &mut |o| {
        pb.println(format!(
            "  {:>8} params: memorized {:5}  best acc {:.4}  runs {}  {:.1}s",
            o.num_params, o.memorized, o.best_acc, o.runs, o.elapsed_s
        ));
    })?;
    pb.finish_and_clear();
    let mut csv = String::from("params,memorized,best_acc,runs,elapsed_s\n");
    for o in &report.tested {
        csv.push_str(&format!("{},{},{},{},{:.2}\n", o.num_params, o.memorized, o.best_acc, o.runs, o.elapsed_s));
    }
    std::fs::create_dir_all(&a.out)?;
    write_atomic(&a.out.join("capacity.csv"), csv.as_bytes())?;
    write_atomic(&a.out.join("capacity.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    match (report.min_params, report.bits_per_param) {
        (Some(p), Some(b)) => println!(
            "smallest memorizing: {p} params ({b:.3} bits/param; anchors 2.0 Allen-Zhu & Li, 3.6 Morris et al.), {} runs, {:.1}s",
            report.runs_used, report.elapsed_s
        ),
        _ => println!("no size in the grid memorized ({} runs, {:.1}s)", report.runs_used, report.elapsed_s),
    }
    Ok(if report.min_params.is_some() { Outcome::Ok } else { Outcome::NotMemorized })
}

fn write(out: &Path, name: &str, r: repro::Rendered) -> Result<()> {
    write_report(out, name, &r.json, &r.csv, &r.svg)?;
    println!("wrote {0}/{name}.json, {0}/{name}.csv, {0}/{name}.svg", out.display());
    Ok(())
}

/// `memcap repro …`.
pub fn repro(a: ReproArgs) -> Result<Outcome> {
    memcap_train::ensure_single_threaded_ops();
    match a.which {
        ReproKind::Fig2 { steps } => {
            let mut spec = repro::Fig2Spec { threads: a.threads, ..Default::default() };
            spec.train.max_steps = steps;
            let sp = ProgressBar::new_spinner();
            sp.set_message(format!("training {} Transformers for {steps} steps", spec.blocks.len()));
            sp.enable_steady_tick(std::time::Duration::from_millis(200));
            let r = repro::fig2(&spec)?;
            sp.finish_and_clear();
            write(&a.out, "fig2", r.render()?)?;
        }
        ReproKind::SizeVsN { steps, ns } => {
            let mut spec = repro::SizeVsNSpec::default();
            if !ns.is_empty() {
                spec.n_examples = ns;
            }
            spec.transformer.train.max_steps = steps;
            spec.mlp.train.max_steps = steps;
            spec.transformer.threads = a.threads;
            spec.mlp.threads = a.threads;
            let r = repro::size_vs_examples(&spec, &mut |row| {
                eprintln!("N = {:5} {:12} min params {:?}", row.n_examples, row.family, row.report.min_params)
            })?;
            write(&a.out, "size_vs_n", r.render()?)?;
        }
        ReproKind::MlpVsTransformer { steps, params } => {
            let mut spec =
                repro::MlpVsTransformerSpec { param_budget: params, threads: a.threads, ..Default::default() };
            spec.train.max_steps = steps;
            let r = repro::mlp_vs_transformer(&spec, &mut |row| {
                eprintln!("n = {:4} {:12} {} params acc {:.4}", row.seq_len, row.family, row.num_params, row.best_acc)
            })?;
            write(&a.out, "mlp_vs_transformer", r.render()?)?;
        }
    }
    Ok(Outcome::Ok)
}
