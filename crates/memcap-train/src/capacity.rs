//! Capacity search: the smallest model of a family that training drives to
//! 100% training accuracy within a step budget.
//!
//! Candidates are the product `blocks × widths` of a family, sorted by
//! parameter count (duplicates by count dropped). Each candidate size gets a
//! few tries (learning rates × seeds), run `threads` at a time in parallel;
//! a size *memorizes* if any try does, and the remaining tries of that size
//! are skipped. Two strategies:
//!
//! * `Ascending`: test sizes smallest first and stop at the first that
//!   memorizes — exact for the grid, but may use many runs.
//! * `Bisect`: binary search over the sorted sizes, assuming memorization is
//!   monotone in size (it is not guaranteed for gradient descent — a larger
//!   model can fail where a smaller one succeeded — so the answer is "a
//!   memorizing size whose next-smaller *tested* neighbour failed").
//!
//! The report gives the minimum parameters and bits per parameter
//! `label_bits / params`, with the anchors ≈2 (Allen-Zhu & Li 2024) and
//! ≈3.6 (Morris et al. 2025) bits/param for comparison.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::{MlpConfig, ModelConfig, TrainConfig, TransformerConfig};
use crate::data::{Dataset, Positional};
use crate::error::{cfg_err, Result};
use crate::train::{train_many, DataSummary, Job};

/// Bits per parameter stored by trained language models, Allen-Zhu & Li (2024).
pub const ANCHOR_ALLEN_ZHU_LI: f64 = 2.0;
/// Bits per parameter of GPT-style models, Morris et al. (2025).
pub const ANCHOR_MORRIS: f64 = 3.6;

/// A model family; `blocks` and `width` of [`CapacitySpec`] fill in the size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Family {
    /// Transformer; width = `d_model`, `head_dim = max(1, d_model / heads)`,
    /// `d_ff = max(1, round(ff_mult · d_model))`; blocks = number of blocks.
    Transformer {
        /// Attention heads.
        heads: usize,
        /// FFN width as a multiple of `d_model`.
        ff_mult: f64,
        /// Positional encoding (none: the paper's setting).
        #[serde(default)]
        positional: Positional,
        /// Pre-norm LayerNorm.
        layer_norm: bool,
    },
    /// MLP; width = hidden width, blocks = number of hidden layers.
    Mlp,
}

impl Family {
    /// The concrete config of this family for `data` at (`blocks`, `width`).
    pub fn config(&self, data: &Dataset, blocks: usize, width: usize) -> ModelConfig {
        match *self {
            Family::Transformer { heads, ff_mult, positional, layer_norm } => {
                let d_ff = ((ff_mult * width as f64).round() as usize).max(1);
                ModelConfig::Transformer(TransformerConfig {
                    positional,
                    layer_norm,
                    ..TransformerConfig::for_data(data, width, heads, d_ff, blocks)
                })
            }
            Family::Mlp => ModelConfig::Mlp(MlpConfig::for_data(data, width, blocks)),
        }
    }
}

/// Search strategy over the sorted candidate sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Smallest first, stop at the first memorizing size.
    Ascending,
    /// Binary search assuming monotonicity.
    Bisect,
}

/// What to search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacitySpec {
    /// Model family.
    pub family: Family,
    /// Block counts (Transformer) or hidden-layer counts (MLP) to try.
    pub blocks: Vec<usize>,
    /// Widths to try (`d_model` or hidden width).
    pub widths: Vec<usize>,
    /// Learning rates tried per size.
    pub lrs: Vec<f64>,
    /// Seeds tried per size (and per learning rate).
    pub seeds: Vec<u64>,
    /// Base schedule (its `lr` and `seed` are replaced by the grid).
    pub train: TrainConfig,
    /// Search strategy.
    pub strategy: Strategy,
    /// Parallel trainings (one thread each).
    pub threads: usize,
}

/// Result of testing one size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeOutcome {
    /// The model.
    pub model: ModelConfig,
    /// Its parameter count.
    pub num_params: usize,
    /// Some try reached 100% training accuracy.
    pub memorized: bool,
    /// Best final training accuracy over the tries.
    pub best_acc: f64,
    /// Tries run for this size.
    pub runs: usize,
    /// `(lr, seed, steps)` of the first memorizing try.
    pub winner: Option<(f64, u64, usize)>,
    /// Wall-clock seconds spent on this size.
    pub elapsed_s: f64,
}

/// Outcome of a capacity search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// The dataset.
    pub data: DataSummary,
    /// The search.
    pub spec: CapacitySpec,
    /// Smallest memorizing parameter count found (None: none of the sizes).
    pub min_params: Option<usize>,
    /// `label_bits / min_params`.
    pub bits_per_param: Option<f64>,
    /// The smallest memorizing size.
    pub best: Option<SizeOutcome>,
    /// Every tested size, in test order.
    pub tested: Vec<SizeOutcome>,
    /// Number of candidate sizes in the grid.
    pub candidates: usize,
    /// Total training runs.
    pub runs_used: usize,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Reference points (bits/param).
    pub anchors: Vec<(String, f64)>,
}

impl Default for CapacitySpec {
    /// The defaults of `memcap capacity`: one-block Transformers without
    /// positions, widths 8..48, learning rates 0.01 and 0.003, seed 0,
    /// 3000 full-batch steps, bisection, two parallel trainings.
    fn default() -> Self {
        CapacitySpec {
            family: Family::Transformer { heads: 1, ff_mult: 2.0, positional: Positional::None, layer_norm: false },
            blocks: vec![1],
            widths: vec![8, 12, 16, 20, 24, 28, 32, 40, 48],
            lrs: vec![1e-2, 3e-3],
            seeds: vec![0],
            train: TrainConfig { max_steps: 3000, eval_every: 100, ..TrainConfig::default() },
            strategy: Strategy::Bisect,
            threads: 2,
        }
    }
}

impl CapacitySpec {
    /// Reject empty grids and invalid schedules.
    pub fn validate(&self) -> Result<()> {
        if self.blocks.is_empty() || self.widths.is_empty() {
            return cfg_err("capacity: need at least one block count and one width");
        }
        if self.lrs.is_empty() || self.seeds.is_empty() {
            return cfg_err("capacity: need at least one learning rate and one seed");
        }
        if self.threads == 0 {
            return cfg_err("capacity: threads must be positive");
        }
        for &lr in &self.lrs {
            TrainConfig { lr, ..self.train.clone() }.validate()?;
        }
        Ok(())
    }

    /// Candidate configs sorted by parameter count, one per count.
    pub fn candidates(&self, data: &Dataset) -> Result<Vec<ModelConfig>> {
        let mut all = Vec::new();
        for &b in &self.blocks {
            for &w in &self.widths {
                let cfg = self.family.config(data, b, w);
                cfg.validate_for(data)?;
                all.push(cfg);
            }
        }
        all.sort_by_key(ModelConfig::num_params);
        all.dedup_by_key(|c| c.num_params());
        Ok(all)
    }
}

/// Test one size: tries `lrs × seeds`, `threads` at a time, stopping after
/// the first batch of tries that contains a memorizing run.
pub fn test_size(model: &ModelConfig, spec: &CapacitySpec, data: &Dataset) -> Result<SizeOutcome> {
    let start = Instant::now();
    let mut tries = Vec::new();
    for &seed in &spec.seeds {
        for &lr in &spec.lrs {
            tries.push(Job { model: model.clone(), train: TrainConfig { lr, seed, ..spec.train.clone() } });
        }
    }
    let (mut runs, mut best_acc, mut winner) = (0, 0.0f64, None);
    for chunk in tries.chunks(spec.threads) {
        let results = train_many(chunk, data, spec.threads)?;
        for (job, r) in chunk.iter().zip(results) {
            let r = r?;
            runs += 1;
            best_acc = best_acc.max(r.summary.final_acc);
            if r.summary.memorized && winner.is_none() {
                winner = Some((job.train.lr, job.train.seed, r.summary.steps));
            }
        }
        if winner.is_some() {
            break;
        }
    }
    Ok(SizeOutcome {
        model: model.clone(),
        num_params: model.num_params(),
        memorized: winner.is_some(),
        best_acc,
        runs,
        winner,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

/// Find the smallest memorizing size; `on_size` is told about every tested
/// size as soon as it is done (for progress output).
pub fn capacity_search(
    spec: &CapacitySpec,
    data: &Dataset,
    on_size: &mut dyn FnMut(&SizeOutcome),
) -> Result<CapacityReport> {
    spec.validate()?;
    data.validate()?;
    let start = Instant::now();
    let cands = spec.candidates(data)?;
    let mut tested: Vec<SizeOutcome> = Vec::new();
    let mut run = |i: usize, tested: &mut Vec<SizeOutcome>| -> Result<bool> {
        let o = test_size(&cands[i], spec, data)?;
        on_size(&o);
        let m = o.memorized;
        tested.push(o);
        Ok(m)
    };
    let mut best_idx = None;
    match spec.strategy {
        Strategy::Ascending => {
            for i in 0..cands.len() {
                if run(i, &mut tested)? {
                    best_idx = Some(i);
                    break;
                }
            }
        }
        Strategy::Bisect => {
            // Invariant: every index < lo is believed to fail; best_idx (if
            // any) memorizes. Start by checking the largest size so that a
            // hopeless grid costs one size, not log K.
            let (mut lo, mut hi) = (0usize, cands.len());
            while lo < hi {
                let mid = if best_idx.is_none() && tested.is_empty() { hi - 1 } else { lo + (hi - lo) / 2 };
                if run(mid, &mut tested)? {
                    best_idx = Some(mid);
                    hi = mid;
                } else {
                    if best_idx.is_none() && mid == cands.len() - 1 {
                        break; // even the largest size fails
                    }
                    lo = mid + 1;
                }
            }
        }
    }
    let best = best_idx.and_then(|i| tested.iter().find(|o| o.num_params == cands[i].num_params()).cloned());
    let min_params = best.as_ref().map(|b| b.num_params);
    Ok(CapacityReport {
        data: DataSummary::of(data),
        spec: spec.clone(),
        min_params,
        bits_per_param: min_params.map(|p| crate::bits_per_param(data.label_bits(), p)),
        best,
        runs_used: tested.iter().map(|o| o.runs).sum(),
        tested,
        candidates: cands.len(),
        elapsed_s: start.elapsed().as_secs_f64(),
        anchors: vec![
            ("Allen-Zhu & Li 2024".into(), ANCHOR_ALLEN_ZHU_LI),
            ("Morris et al. 2025".into(), ANCHOR_MORRIS),
        ],
    })
}
