//! `memcap capacity`: the smallest model that gradient descent drives to 100% training accuracy.

use crate::args::{Outcome, TrainDataArgs};
use crate::cmd_train::ModelKind;
use crate::io::write_atomic;
use anyhow::Result;
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use memcap_core::Positional;
use memcap_train::capacity::{capacity_search, CapacitySpec, Family, Strategy};
use memcap_train::TrainConfig;
use std::path::PathBuf;

/// `memcap capacity`.
#[derive(Args, Debug)]
pub struct CapacityArgs {
    #[command(flatten)]
    pub data: TrainDataArgs,
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
    /// Transformer positional encoding (none: the paper's setting).
    #[arg(long, value_enum, default_value = "none")]
    pub positional: Positional,
    /// Transformer: LayerNorm.
    #[arg(long)]
    pub layer_norm: bool,
    /// Peak learning rates tried per size (warmup + cosine decay, gradient clipping 1.0).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.03", allow_negative_numbers = true)]
    pub lrs: Vec<f64>,
    /// Seeds tried per size.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub seeds: Vec<u64>,
    /// Step budget of a first try.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// A try whose loss still fell when its budget ran out is re-run with
    /// doubled steps, up to this many (default 4 × --steps).
    #[arg(long)]
    pub steps_cap: Option<usize>,
    /// When even the largest width fails, double it at most this many times.
    #[arg(long, default_value_t = 3)]
    pub max_grow: usize,
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
    /// Capacity metric: `exact` (smallest model at 100% accuracy) or `bits`
    /// (memorized bits of one model, --widths/--blocks first values, over
    /// growing dataset prefixes --sizes, until a plateau).
    #[arg(long, value_enum, default_value = "exact")]
    pub metric: MetricArg,
    /// Dataset sizes for --metric bits (ascending prefixes of DATA).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Output folder: capacity.json, capacity.csv (bits: bits.json, bits.csv).
    #[arg(short, long)]
    pub out: PathBuf,
    /// No per-size progress lines (the result is still printed).
    #[arg(long)]
    pub quiet: bool,
}

/// `--metric` values.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum MetricArg {
    /// Exact threshold: the smallest model with 100% training accuracy.
    Exact,
    /// Memorized bits (Morris et al. 2025) of one model over growing datasets.
    Bits,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StrategyArg {
    Bisect,
    Ascending,
}

/// `memcap capacity`.
pub fn capacity(a: CapacityArgs) -> Result<Outcome> {
    crate::io::check_output_dir(&a.out, "-o")?;
    memcap_train::ensure_single_threaded_ops();
    let data = a.data.load(a.positional)?;
    let spec = CapacitySpec {
        family: match a.model {
            ModelKind::Transformer => Family::Transformer {
                heads: a.heads,
                ff_mult: a.ff_mult,
                positional: a.positional,
                layer_norm: a.layer_norm,
            },
            ModelKind::Mlp => Family::Mlp,
        },
        blocks: a.blocks.clone(),
        widths: a.widths.clone(),
        lrs: a.lrs.clone(),
        seeds: a.seeds.clone(),
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
        max_steps_cap: a.steps_cap.unwrap_or(a.steps.saturating_mul(4)),
        max_grow: a.max_grow,
        min_loss_drop: 0.5,
    };
    if a.metric == MetricArg::Bits {
        return bits(&a, &spec, &data);
    }
    let pb = if a.quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    let report = capacity_search(&spec, &data, &mut |o| {
        if a.quiet {
            return;
        }
        let line = format!(
            "  {:>8} params: memorized {:5}  best acc {:.4}  memorized bits/param {:.3}  runs {}  steps ≤ {}  {:.1}s  ({})",
            o.num_params,
            o.memorized,
            o.best_acc,
            o.memorized_bits / o.num_params.max(1) as f64,
            o.runs,
            o.max_steps_used,
            o.elapsed_s,
            o.reason
        );
        crate::progress::log_line(&pb, line);
    })?;
    pb.finish_and_clear();
    let mut csv =
        String::from("params,memorized,best_acc,memorized_bits,under_trained,max_steps_used,runs,elapsed_s\n");
    for o in &report.tested {
        csv.push_str(&format!(
            "{},{},{},{:.2},{},{},{},{:.2}\n",
            o.num_params,
            o.memorized,
            o.best_acc,
            o.memorized_bits,
            o.under_trained,
            o.max_steps_used,
            o.runs,
            o.elapsed_s
        ));
    }
    std::fs::create_dir_all(&a.out)?;
    write_atomic(&a.out.join("capacity.csv"), csv.as_bytes())?;
    write_atomic(&a.out.join("capacity.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    match (report.min_params, report.bits_per_param) {
        (Some(p), Some(b)) => println!(
            "smallest memorizing: {p} params, {b:.3} bits/param (exact threshold); memorized-bits capacity {:.3} bits/param; anchors 2.0 Allen-Zhu & Li, 3.6 Morris et al.; {} runs, {:.1}s",
            report.memorized_bits_per_param, report.runs_used, report.elapsed_s
        ),
        _ => println!(
            "not found: {}; memorized-bits capacity {:.3} bits/param ({} runs, {:.1}s)",
            report.reason, report.memorized_bits_per_param, report.runs_used, report.elapsed_s
        ),
    }
    println!("{}", report.reason);
    if report.under_trained {
        println!("under_trained: the step budget limited this answer (raise --steps or --steps-cap)");
    }
    Ok(if report.min_params.is_some() { Outcome::Ok } else { Outcome::NotMemorized })
}

/// `--metric bits`: one model (first width and block count) over growing prefixes.
fn bits(a: &CapacityArgs, spec: &CapacitySpec, data: &memcap_core::Dataset) -> Result<Outcome> {
    spec.validate()?;
    let sizes = if a.sizes.is_empty() {
        let n = data.len();
        [n / 8, n / 4, n / 2, n].into_iter().filter(|&s| s > 0).collect::<Vec<_>>()
    } else {
        a.sizes.clone()
    };
    let model = spec.family.config(data, spec.blocks[0], spec.widths[0]);
    let bspec = memcap_train::capacity::BitsSpec {
        model,
        train: spec.train.clone(),
        lrs: spec.lrs.clone(),
        sizes,
        plateau_gain: 0.02,
        threads: spec.threads,
    };
    let r = memcap_train::capacity::bits_capacity(&bspec, data, &mut |p| {
        if a.quiet {
            return;
        }
        eprintln!(
            "  N = {:6}: memorized bits {:.0} of {:.0} label bits, best accuracy {:.4}",
            p.n_seqs, p.memorized_bits, p.label_bits, p.best_acc
        )
    })?;
    let mut csv = String::from("N,label_bits,memorized_bits,best_acc\n");
    for p in &r.points {
        csv.push_str(&format!("{},{:.2},{:.2},{}\n", p.n_seqs, p.label_bits, p.memorized_bits, p.best_acc));
    }
    write_atomic(&a.out.join("bits.csv"), csv.as_bytes())?;
    write_atomic(&a.out.join("bits.json"), serde_json::to_string_pretty(&r)?.as_bytes())?;
    println!(
        "memorized-bits capacity: {:.0} bits, {:.3} bits/param ({} params); {}",
        r.capacity_bits, r.bits_per_param, r.num_params, r.reason
    );
    Ok(Outcome::Ok)
}
