//! Capacity search: the smallest model of a family that training drives to
//! 100% training accuracy, with a budget that says when it was cut.
//!
//! Candidates are the product `blocks × widths` of a family, sorted by
//! parameter count (duplicates by count dropped); the size axis (width,
//! blocks or both) is recorded. Each size gets a seeded learning-rate search
//! (`lrs × seeds`, `threads` at a time); a size *memorizes* if any try does.
//! A try whose loss was still falling when its step budget ran out
//! (`under_trained`) is run again with twice the steps, up to `max_steps_cap`.
//!
//! The search never returns a silent null:
//!
//! 1. The largest size is tested first. If it fails, the grid grows (the
//!    largest width, or block count, doubles) until a size memorizes or the
//!    growth cap `max_grow` is reached; then the report says `not_found`,
//!    with the best accuracy and whether the budget was the limit.
//! 2. With a memorizing upper bound, `Bisect` searches only inside the
//!    bracket (largest known failure, smallest known success]; `Ascending`
//!    tests sizes smallest first. Gradient descent is not monotone in size,
//!    so the answer is "a memorizing size whose next-smaller tested neighbour
//!    failed".
//!
//! Two capacity metrics are reported: the exact-threshold bits per parameter
//! `label_bits / min_params` (null when nothing memorized) and the memorized
//! bits (Morris et al. 2025) of the best try of every size. Anchors: ≈2
//! (Allen-Zhu & Li 2024) and ≈3.6 (Morris et al. 2025) bits/param.

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

/// Which dimension of the model the search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SizeAxis {
    /// `d_model` (Transformer) or hidden width (MLP), blocks fixed.
    Width,
    /// Number of blocks (Transformer) or hidden layers (MLP), width fixed
    /// (the paper's Figure 2 axis).
    Blocks,
    /// Both at once (the product grid).
    Both,
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
    /// A try cut by its budget while the loss still fell is re-run with
    /// doubled steps up to this many steps (`train.max_steps` = no doubling).
    #[serde(default)]
    pub max_steps_cap: usize,
    /// When even the largest size fails, double it at most this many times.
    #[serde(default)]
    pub max_grow: usize,
    /// A doubled try is doubled again only if its final loss fell to at most
    /// `(1 − min_loss_drop)` × the previous budget's final loss (default 0.5:
    /// the loss must halve per doubling).
    #[serde(default = "default_loss_drop")]
    pub min_loss_drop: f64,
}

fn default_loss_drop() -> f64 {
    0.5
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
    /// Largest memorized bits (Morris et al. 2025) over the tries.
    #[serde(default)]
    pub memorized_bits: f64,
    /// The size failed and its best try was still improving when the step
    /// cap was reached: more steps might memorize.
    #[serde(default)]
    pub under_trained: bool,
    /// Largest step budget any try of this size used.
    #[serde(default)]
    pub max_steps_used: usize,
    /// Why this size stopped (memorized, plateau, step cap).
    #[serde(default)]
    pub reason: String,
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
    /// `found` (a memorizing size whose next-smaller tested size failed) or
    /// `not_found` (nothing memorized up to the growth cap).
    pub status: String,
    /// Why the search ended the way it did, in words.
    pub reason: String,
    /// The answer may be limited by the step budget: a size below the
    /// minimum (or, with `not_found`, the largest size) was still improving
    /// when its step cap was reached.
    pub under_trained: bool,
    /// The smallest size of the grid memorized, so `min_params` is only an
    /// upper bound on the minimum (nothing smaller was tried).
    #[serde(default)]
    pub at_grid_floor: bool,
    /// The size axis searched.
    pub axis: SizeAxis,
    /// Smallest memorizing parameter count found (None: none of the sizes).
    pub min_params: Option<usize>,
    /// Exact-threshold capacity: achievable label bits / `min_params`
    /// (`label_bits` × the best achievable accuracy; None with `not_found`).
    pub bits_per_param: Option<f64>,
    /// Memorized-bits capacity: the largest memorized bits per parameter of
    /// any tested size (Morris et al. 2025).
    pub memorized_bits_per_param: f64,
    /// Best training accuracy of any tested size.
    pub best_acc: f64,
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
            max_steps_cap: 3000,
            max_grow: 0,
            min_loss_drop: default_loss_drop(),
        }
    }
}

impl CapacitySpec {
    /// Reject empty grids and invalid schedules.
    pub fn validate(&self) -> Result<()> {
        if self.widths.is_empty() || self.widths.contains(&0) {
            return cfg_err(format!(
                "capacity: --widths must be a non-empty list of positive widths, got {:?}",
                self.widths
            ));
        }
        if self.blocks.is_empty() || self.blocks.contains(&0) {
            return cfg_err(format!(
                "capacity: --blocks must be a non-empty list of positive counts, got {:?}",
                self.blocks
            ));
        }
        if self.lrs.is_empty() {
            return cfg_err("capacity: --lrs must list at least one learning rate");
        }
        if self.seeds.is_empty() {
            return cfg_err("capacity: --seeds must list at least one seed");
        }
        if self.threads == 0 {
            return cfg_err("capacity: --threads must be at least 1");
        }
        if let Family::Transformer { heads: 0, .. } = self.family {
            return cfg_err("capacity: --heads must be at least 1");
        }
        if let Family::Transformer { ff_mult, .. } = self.family {
            if !(ff_mult.is_finite() && ff_mult > 0.0) {
                return cfg_err(format!("capacity: --ff-mult must be positive and finite, got {ff_mult}"));
            }
        }
        if !(0.0..1.0).contains(&self.min_loss_drop) {
            return cfg_err(format!("capacity: min_loss_drop must be in [0, 1), got {}", self.min_loss_drop));
        }
        // Growth doubles the largest width or block count: it must not overflow.
        let top = self.widths.iter().chain(&self.blocks).copied().max().unwrap_or(1);
        if self.max_grow >= 32 || top.checked_shl(self.max_grow as u32).is_none_or(|t| t > 1 << 20) {
            return cfg_err(format!(
                "capacity: --max-grow {} doubles the largest size {top} beyond 2^20",
                self.max_grow
            ));
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

impl CapacitySpec {
    /// The axis the grid varies: blocks, width or both.
    pub fn axis(&self) -> SizeAxis {
        match (self.blocks.len() > 1, self.widths.len() > 1) {
            (true, true) => SizeAxis::Both,
            (true, false) => SizeAxis::Blocks,
            _ => SizeAxis::Width,
        }
    }

    /// The grid after doubling its largest size along the axis (widths for
    /// `Width` and `Both`, blocks for `Blocks`).
    fn grown(&self) -> CapacitySpec {
        let mut g = self.clone();
        match self.axis() {
            SizeAxis::Blocks => g.blocks.push(2 * self.blocks.iter().copied().max().unwrap_or(1)),
            _ => g.widths.push(2 * self.widths.iter().copied().max().unwrap_or(1)),
        }
        g
    }
}

/// Test one size: the learning-rate × seed tries, `threads` at a time, until
/// one memorizes. Tries cut by their budget while the loss still fell are
/// re-run with doubled steps up to `spec.max_steps_cap`.
pub fn test_size(model: &ModelConfig, spec: &CapacitySpec, data: &Dataset) -> Result<SizeOutcome> {
    let start = Instant::now();
    // Each pending try carries the final loss of its previous (halved) budget.
    let mut pending: Vec<(Job, Option<f64>)> = Vec::new();
    for &seed in &spec.seeds {
        for &lr in &spec.lrs {
            pending.push((Job { model: model.clone(), train: TrainConfig { lr, seed, ..spec.train.clone() } }, None));
        }
    }
    let cap = spec.max_steps_cap.max(spec.train.max_steps);
    let (mut runs, mut best_acc, mut winner, mut bits) = (0, 0.0f64, None, 0.0f64);
    let (mut max_steps_used, mut still_falling, mut last_reason) = (0, false, String::new());
    while !pending.is_empty() && winner.is_none() {
        let mut retry = Vec::new();
        still_falling = false;
        for chunk in pending.chunks(spec.threads.max(1)) {
            let jobs: Vec<Job> = chunk.iter().map(|(j, _)| j.clone()).collect();
            let results = train_many(&jobs, data, spec.threads)?;
            for ((job, prev_loss), r) in chunk.iter().zip(results) {
                let r = r?;
                runs += 1;
                max_steps_used = max_steps_used.max(job.train.max_steps);
                best_acc = best_acc.max(r.summary.final_acc);
                bits = bits.max(r.summary.memorized_bits);
                if r.summary.memorized && winner.is_none() {
                    winner = Some((job.train.lr, job.train.seed, r.summary.steps));
                }
                // Still improving: within this run, and (after a doubling) across budgets.
                let loss = r.summary.final_loss;
                let improving = r.summary.under_trained
                    && prev_loss.is_none_or(|p| loss.is_finite() && loss <= (1.0 - spec.min_loss_drop) * p);
                if improving {
                    still_falling = true;
                    if let Some(doubled) = job.train.max_steps.checked_mul(2).filter(|&d| d <= cap) {
                        let train = TrainConfig { max_steps: doubled, ..job.train.clone() };
                        retry.push((Job { model: job.model.clone(), train }, Some(loss)));
                    }
                }
                last_reason = r.summary.stop_reason.clone();
            }
            if winner.is_some() {
                break;
            }
        }
        pending = retry;
    }
    let under_trained = winner.is_none() && still_falling;
    let reason = match winner {
        Some((lr, seed, steps)) => format!("memorized (lr {lr}, seed {seed}, step {steps})"),
        None if under_trained => format!("step cap {cap} reached while the loss still fell ({last_reason})"),
        None => format!(
            "every try plateaued below 100%: doubling the step budget no longer cut the final loss by {:.0}% \
             (the last try's own trace: {last_reason})",
            100.0 * spec.min_loss_drop
        ),
    };
    Ok(SizeOutcome {
        model: model.clone(),
        num_params: model.num_params(),
        memorized: winner.is_some(),
        best_acc,
        runs,
        winner,
        memorized_bits: bits,
        under_trained,
        max_steps_used,
        reason,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

/// Find the smallest memorizing size; `on_size` is told about every tested
/// size as soon as it is done (for progress output). See the module docs for
/// the growth and bracketing rules.
///
/// # Errors
/// Invalid specs (empty grids, bad schedules), data that does not fit the
/// family, candle failures.
pub fn capacity_search(
    spec: &CapacitySpec,
    data: &Dataset,
    on_size: &mut dyn FnMut(&SizeOutcome),
) -> Result<CapacityReport> {
    spec.validate()?;
    data.validate()?;
    let start = Instant::now();
    let mut grid = spec.clone();
    let mut cands = grid.candidates(data)?;
    let mut tested: Vec<SizeOutcome> = Vec::new();
    let mut test = |m: &ModelConfig, tested: &mut Vec<SizeOutcome>| -> Result<bool> {
        if let Some(o) = tested.iter().find(|o| o.num_params == m.num_params()) {
            return Ok(o.memorized);
        }
        let o = test_size(m, spec, data)?;
        on_size(&o);
        let ok = o.memorized;
        tested.push(o);
        Ok(ok)
    };
    // 1. An upper bound: the largest size, grown while it fails.
    let mut grows = 0;
    let mut upper = loop {
        let top = cands.len() - 1;
        if test(&cands[top], &mut tested)? {
            break Some(top);
        }
        if grows >= spec.max_grow {
            break None;
        }
        grid = grid.grown();
        cands = grid.candidates(data)?;
        grows += 1;
    };
    // 2. Search inside the bracket.
    if let Some(u) = upper {
        match spec.strategy {
            Strategy::Ascending => {
                for (i, c) in cands.iter().enumerate().take(u) {
                    if test(c, &mut tested)? {
                        upper = Some(i);
                        break;
                    }
                }
            }
            Strategy::Bisect => {
                // Invariant: cands[hi] memorizes; every index < lo is believed to fail.
                let (mut lo, mut hi) = (0usize, u);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if test(&cands[mid], &mut tested)? {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                upper = Some(hi);
            }
        }
    }
    let best = upper.and_then(|i| tested.iter().find(|o| o.num_params == cands[i].num_params()).cloned());
    let min_params = best.as_ref().map(|b| b.num_params);
    let below_cut = tested.iter().filter(|o| min_params.is_none_or(|p| o.num_params < p)).any(|o| o.under_trained);
    let top = cands.last().map_or(0, ModelConfig::num_params);
    let best_acc = tested.iter().map(|o| o.best_acc).fold(0.0, f64::max);
    // The smallest size of the grid memorized: nothing below it was tried, so
    // the minimum is only bounded from above.
    let at_grid_floor = min_params.is_some() && min_params == cands.first().map(ModelConfig::num_params);
    let (status, reason) = match min_params {
        Some(p) => (
            "found",
            format!(
                "{p} params memorize{}; {}",
                if grows > 0 { format!(" (grid grown {grows}×)") } else { String::new() },
                if at_grid_floor {
                    "it is the smallest size in the grid, so the minimum is at most this (extend the grid downward)"
                } else if below_cut {
                    "a smaller size was still improving at its step cap: the minimum may be lower with more steps"
                } else {
                    "every smaller tested size plateaued"
                }
            ),
        ),
        None => (
            "not_found",
            format!(
                "no size up to {top} params memorized (grid grown {grows}× of at most {}); best accuracy {best_acc:.4}{}",
                spec.max_grow,
                if below_cut { "; the step cap cut runs that were still improving" } else { "" }
            ),
        ),
    };
    let bits_pp = tested.iter().map(|o| o.memorized_bits / o.num_params.max(1) as f64).fold(0.0, f64::max);
    Ok(CapacityReport {
        data: DataSummary::of(data),
        spec: spec.clone(),
        status: status.into(),
        reason,
        under_trained: below_cut,
        at_grid_floor,
        axis: spec.axis(),
        min_params,
        // Achievable label bits: with conflicting labels only the majority ones count.
        bits_per_param: min_params.map(|p| {
            crate::bits_per_param(
                crate::train::max_accuracy(&spec.family.config(data, 1, 1), data) * data.label_bits(),
                p,
            )
        }),
        memorized_bits_per_param: bits_pp,
        best_acc,
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

/// One dataset size of a [`bits_capacity`] curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BitsPoint {
    /// Examples trained on (the first N of the dataset).
    #[serde(rename = "N")]
    pub n_seqs: usize,
    /// Label bits of those examples (N·log2 C for next-token).
    pub label_bits: f64,
    /// Largest memorized bits over the learning-rate tries.
    pub memorized_bits: f64,
    /// Best training accuracy over the tries.
    pub best_acc: f64,
}

/// Memorized-bits capacity of one fixed model (Morris et al. 2025).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BitsCapacity {
    /// The model (sized for the dataset).
    pub model: ModelConfig,
    /// Its parameter count.
    pub num_params: usize,
    /// One point per dataset size, in order.
    pub points: Vec<BitsPoint>,
    /// The capacity: the largest memorized bits over the sizes.
    pub capacity_bits: f64,
    /// `capacity_bits / num_params`.
    pub bits_per_param: f64,
    /// Memorized bits stopped growing: the last size added less than
    /// `plateau_gain` (relative) over the best so far.
    pub plateaued: bool,
    /// Why the curve ended (plateau, or the largest size reached while still growing).
    pub reason: String,
}

/// What [`bits_capacity`] measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BitsSpec {
    /// The fixed model.
    pub model: ModelConfig,
    /// Its schedule (`lr` replaced by each of `lrs`; trained to the full budget).
    pub train: TrainConfig,
    /// Learning rates tried per size.
    pub lrs: Vec<f64>,
    /// Dataset sizes (prefixes of the data), ascending.
    pub sizes: Vec<usize>,
    /// Relative gain below which the curve counts as a plateau (e.g. 0.02).
    pub plateau_gain: f64,
    /// Parallel trainings.
    pub threads: usize,
}

/// The memorized-bits capacity of a fixed model trained on growing prefixes
/// of `data`: for each size, the best memorized bits over the learning
/// rates; the capacity is the maximum over sizes. The curve stops at a
/// plateau: when a size adds less than `plateau_gain` to the best so far.
///
/// # Errors
/// Empty or unsorted sizes, sizes above N, invalid configs.
pub fn bits_capacity(spec: &BitsSpec, data: &Dataset, on_point: &mut dyn FnMut(&BitsPoint)) -> Result<BitsCapacity> {
    let BitsSpec { model, train, lrs, sizes, plateau_gain, threads } = spec;
    let (plateau_gain, threads) = (*plateau_gain, *threads);
    if sizes.is_empty() || sizes.windows(2).any(|w| w[0] >= w[1]) || sizes[0] == 0 {
        return cfg_err("capacity --metric bits: --sizes must be ascending positive dataset sizes");
    }
    if *sizes.last().unwrap_or(&0) > data.len() {
        return cfg_err(format!("capacity --metric bits: largest size exceeds the dataset's {} examples", data.len()));
    }
    if lrs.is_empty() {
        return cfg_err("capacity --metric bits: --lrs must list at least one learning rate");
    }
    let mut points = Vec::new();
    let (mut best, mut plateaued) = (0.0f64, false);
    for &n in sizes {
        let keep: Vec<bool> = (0..data.len()).map(|i| i < n).collect();
        let sub = data.select(&keep);
        let train = TrainConfig { stop_when_memorized: false, ..train.clone() };
        let jobs: Vec<Job> =
            lrs.iter().map(|&lr| Job { model: model.clone(), train: TrainConfig { lr, ..train.clone() } }).collect();
        let (mut bits, mut acc) = (0.0f64, 0.0f64);
        for r in train_many(&jobs, &sub, threads)? {
            let r = r?;
            bits = bits.max(r.summary.memorized_bits);
            acc = acc.max(r.summary.final_acc);
        }
        let p = BitsPoint { n_seqs: n, label_bits: sub.label_bits(), memorized_bits: bits, best_acc: acc };
        on_point(&p);
        points.push(p);
        plateaued = best > 0.0 && bits < best * (1.0 + plateau_gain);
        best = best.max(bits);
        if plateaued {
            break;
        }
    }
    let num_params = model.num_params();
    let reason = if plateaued {
        format!("plateau: the last size added less than {:.0}% memorized bits", 100.0 * plateau_gain)
    } else {
        "still growing at the largest size: the capacity may be higher (add larger --sizes)".to_string()
    };
    Ok(BitsCapacity {
        model: model.clone(),
        num_params,
        points,
        capacity_bits: best,
        bits_per_param: best / num_params.max(1) as f64,
        plateaued,
        reason,
    })
}
