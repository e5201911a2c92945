//! `memcap train`: one training run (candle, CPU) to a run folder.

use crate::args::{Outcome, TrainDataArgs};
use crate::io::write_run;
use anyhow::Result;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use memcap_core::Positional;
use memcap_train::{MlpConfig, ModelConfig, TrainConfig, TransformerConfig};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelKind {
    Transformer,
    Mlp,
}

/// Optimizer and schedule.
#[derive(Args, Debug, Clone)]
pub struct ScheduleArgs {
    /// AdamW peak learning rate.
    #[arg(long, default_value_t = 1e-2, allow_negative_numbers = true)]
    pub lr: f64,
    /// Learning-rate schedule: linear warmup then cosine decay to 0, or constant.
    #[arg(long, value_enum, default_value = "warmup-cosine")]
    pub schedule: ScheduleKind,
    /// Fraction of the step budget spent in linear warmup (warmup-cosine).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub warmup: f64,
    /// Clip the global gradient norm to this value (0: no clipping).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub grad_clip: f64,
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
    /// Data-parallel threads per step: the batch is split into this many
    /// shards whose forward/backward passes run at once, gradients summed in
    /// order. Deterministic for a fixed value; other values agree to float
    /// rounding. Pays off from ~30k parameters × 512 sequences per batch.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// `--schedule` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleKind {
    /// Linear warmup over --warmup of the budget, then cosine decay to 0.
    WarmupCosine,
    /// The same learning rate at every step.
    Constant,
}

impl ScheduleArgs {
    pub fn config(&self) -> TrainConfig {
        TrainConfig {
            lr: self.lr,
            schedule: match self.schedule {
                ScheduleKind::WarmupCosine => memcap_train::Schedule::WarmupCosine,
                ScheduleKind::Constant => memcap_train::Schedule::Constant,
            },
            warmup_frac: self.warmup,
            grad_clip: (self.grad_clip != 0.0).then_some(self.grad_clip),
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            max_steps: self.steps,
            eval_every: self.eval_every,
            seed: self.seed,
            stop_when_memorized: !self.no_stop,
            threads: self.threads,
            ..TrainConfig::default()
        }
    }
}

/// `memcap train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: TrainDataArgs,
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
    /// Transformer positional encoding (none: the paper's setting).
    #[arg(long, value_enum, default_value = "none")]
    pub positional: Positional,
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

pub fn bar(enabled: bool, len: usize) -> Option<ProgressBar> {
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
    crate::io::check_output_dir(&a.out, "-o")?;
    memcap_train::ensure_single_threaded_ops();
    let data = a.data.load(a.positional)?;
    let model = match a.model {
        ModelKind::Transformer => ModelConfig::Transformer(TransformerConfig {
            head_dim: a.head_dim.unwrap_or((a.d_model / a.heads.max(1)).max(1)),
            positional: a.positional,
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
    let capacity = match s.bits_per_param {
        Some(b) if s.max_accuracy < 1.0 => format!(
            "memorized up to the ceiling {:.4} set by conflicting labels: {b:.3} bits/param (exact threshold, achievable labels)",
            s.max_accuracy
        ),
        Some(b) => format!("memorized: {b:.3} bits/param (exact threshold)"),
        None => format!("not memorized ({})", s.stop_reason),
    };
    println!(
        "{}: {} params, {} steps, loss {:.4}, acc {:.4}, {capacity}; memorized bits {:.0} ({:.3}/param) -> {}",
        s.family,
        s.num_params,
        s.steps,
        s.final_loss,
        s.final_acc,
        s.memorized_bits,
        s.memorized_bits_per_param,
        a.out.display()
    );
    Ok(if s.memorized { Outcome::Ok } else { Outcome::NotMemorized })
}
