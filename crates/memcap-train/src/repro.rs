//! The paper's experiments (docs/experiments.md) as library functions
//! returning data; `memcap_report::repro` draws them (JSON, CSV, SVG, PNG).
//!
//! * [`fig2`]: training loss and accuracy curves for `#blocks ∈
//!   {1,10,20,30,40}` on N = 3000 random sequences (paper Fig. 2 setting;
//!   our widths are stated in [`Fig2Spec`] and every output).
//! * [`size_vs_examples`]: minimal memorizing model size vs N (n = 8,
//!   N = 600..1700 step 100), Transformer vs MLP.
//! * [`mlp_vs_transformer`]: Transformer vs MLP at (about) equal parameter
//!   count as the sequence length n grows (8, 32, 128).

use serde::{Deserialize, Serialize};

use crate::capacity::{capacity_search, CapacityReport, CapacitySpec, Family, Strategy};
use crate::config::{ModelConfig, TrainConfig};
use crate::data::{generate, Dataset, GenConfig, Positional, Task};
use crate::error::{cfg_err, Result};
use crate::train::{train_many, Job, Metric, RunSummary};

// ---------------------------------------------------------------- fig 2 --

/// Settings of [`fig2`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fig2Spec {
    /// Random dataset (next-token).
    pub data: GenConfig,
    /// Block counts, one training each.
    pub blocks: Vec<usize>,
    /// Transformer width, heads, FFN width.
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// FFN hidden width.
    pub d_ff: usize,
    /// Schedule (stop_when_memorized is forced off: we want full curves).
    pub train: TrainConfig,
    /// Parallel trainings.
    pub threads: usize,
}

impl Default for Fig2Spec {
    fn default() -> Self {
        Fig2Spec {
            data: GenConfig::random_ids(3000, 8, 64, 16, 0),
            blocks: vec![1, 10, 20, 30, 40],
            d_model: 16,
            heads: 2,
            d_ff: 32,
            train: TrainConfig {
                lr: 3e-3,
                batch_size: Some(256),
                max_steps: 1000,
                eval_every: 50,
                seed: 0,
                stop_when_memorized: false,
                ..TrainConfig::default()
            },
            threads: 2,
        }
    }
}

/// One curve of [`fig2`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fig2Curve {
    /// Number of blocks.
    pub blocks: usize,
    /// Model.
    pub model: ModelConfig,
    /// Outcome.
    pub summary: RunSummary,
    /// Curve.
    pub metrics: Vec<Metric>,
}

/// Result of [`fig2`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fig2Result {
    /// Settings.
    pub spec: Fig2Spec,
    /// One curve per block count.
    pub curves: Vec<Fig2Curve>,
}

/// Train one Transformer per block count on the same random data.
pub fn fig2(spec: &Fig2Spec) -> Result<Fig2Result> {
    if spec.blocks.is_empty() {
        return cfg_err("fig2: no block counts");
    }
    if spec.data.task != Task::NextToken {
        return cfg_err("fig2: the figure is for next-token data");
    }
    let data = generate(&spec.data)?;
    let train = TrainConfig { stop_when_memorized: false, ..spec.train.clone() };
    let jobs: Vec<Job> = spec
        .blocks
        .iter()
        .map(|&b| Job {
            model: ModelConfig::Transformer(crate::TransformerConfig::for_data(
                &data,
                spec.d_model,
                spec.heads,
                spec.d_ff,
                b,
            )),
            train: train.clone(),
        })
        .collect();
    let mut curves = Vec::new();
    for (job, r) in jobs.iter().zip(train_many(&jobs, &data, spec.threads)?) {
        let r = r?;
        let blocks = match &job.model {
            ModelConfig::Transformer(t) => t.blocks,
            ModelConfig::Mlp(m) => m.depth,
        };
        curves.push(Fig2Curve { blocks, model: job.model.clone(), summary: r.summary, metrics: r.metrics });
    }
    Ok(Fig2Result { spec: spec.clone(), curves })
}

// ------------------------------------------------------- size vs N -------

/// Settings of [`size_vs_examples`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeVsNSpec {
    /// Dataset sizes N.
    #[serde(rename = "N")]
    pub n_seqs: Vec<usize>,
    /// Sequence length n.
    pub seq_len: usize,
    /// Vocabulary.
    pub vocab: usize,
    /// Classes.
    pub num_classes: u32,
    /// Data seed.
    pub data_seed: u64,
    /// Transformer search (family, grid, tries, schedule).
    pub transformer: CapacitySpec,
    /// MLP search.
    pub mlp: CapacitySpec,
}

impl Default for SizeVsNSpec {
    fn default() -> Self {
        let train = TrainConfig { lr: 1e-2, max_steps: 1500, eval_every: 50, ..TrainConfig::default() };
        SizeVsNSpec {
            n_seqs: (600..=1700).step_by(100).collect(),
            seq_len: 8,
            vocab: 64,
            num_classes: 16,
            data_seed: 0,
            transformer: CapacitySpec {
                family: Family::Transformer { heads: 1, ff_mult: 2.0, positional: Positional::None, layer_norm: false },
                blocks: vec![1],
                widths: vec![4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24],
                lrs: vec![1e-2, 3e-2],
                seeds: vec![0],
                train: train.clone(),
                strategy: Strategy::Bisect,
                threads: 2,
                max_steps_cap: 4 * 1500,
                max_grow: 3,
            },
            mlp: CapacitySpec {
                family: Family::Mlp,
                blocks: vec![1],
                widths: vec![1, 2, 3, 4, 5, 6, 8, 10, 12, 16],
                lrs: vec![1e-2, 3e-2],
                seeds: vec![0],
                train,
                strategy: Strategy::Bisect,
                threads: 2,
                max_steps_cap: 4 * 1500,
                max_grow: 3,
            },
        }
    }
}

/// One row of [`size_vs_examples`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeVsNRow {
    /// N.
    #[serde(rename = "N")]
    pub n_seqs: usize,
    /// `"transformer"` or `"mlp"`.
    pub family: String,
    /// The search result.
    pub report: CapacityReport,
}

/// Result of [`size_vs_examples`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeVsNResult {
    /// Settings.
    pub spec: SizeVsNSpec,
    /// Two rows (Transformer, MLP) per N.
    pub rows: Vec<SizeVsNRow>,
}

/// Capacity search for both families at every N (fresh random data per N).
/// `on_row` is called as each search finishes (progress).
pub fn size_vs_examples(spec: &SizeVsNSpec, on_row: &mut dyn FnMut(&SizeVsNRow)) -> Result<SizeVsNResult> {
    let mut rows = Vec::new();
    for &n_seqs in &spec.n_seqs {
        let data =
            generate(&GenConfig::random_ids(n_seqs, spec.seq_len, spec.vocab, spec.num_classes, spec.data_seed))?;
        for (family, cs) in [("transformer", &spec.transformer), ("mlp", &spec.mlp)] {
            let report = capacity_search(cs, &data, &mut |_| {})?;
            let row = SizeVsNRow { n_seqs, family: family.into(), report };
            on_row(&row);
            rows.push(row);
        }
    }
    Ok(SizeVsNResult { spec: spec.clone(), rows })
}

// ------------------------------------------------ MLP vs Transformer -----

/// Settings of [`mlp_vs_transformer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpVsTransformerSpec {
    /// Sequence lengths n.
    pub seq_lens: Vec<usize>,
    /// N.
    #[serde(rename = "N")]
    pub n_seqs: usize,
    /// Vocabulary.
    pub vocab: usize,
    /// Classes.
    pub num_classes: u32,
    /// Data seed.
    pub data_seed: u64,
    /// Target parameter count; each family takes the largest width whose
    /// count does not exceed it (the MLP's first layer grows as n·V·w, so
    /// its width shrinks as n grows).
    pub param_budget: usize,
    /// Transformer family (blocks fixed to `transformer_blocks`).
    pub transformer: Family,
    /// Transformer blocks.
    pub transformer_blocks: usize,
    /// MLP hidden layers.
    pub mlp_depth: usize,
    /// Learning rates tried (best final accuracy kept).
    pub lrs: Vec<f64>,
    /// Seeds tried.
    pub seeds: Vec<u64>,
    /// Schedule.
    pub train: TrainConfig,
    /// Parallel trainings.
    pub threads: usize,
}

impl Default for MlpVsTransformerSpec {
    fn default() -> Self {
        MlpVsTransformerSpec {
            seq_lens: vec![8, 32, 128],
            n_seqs: 2000,
            vocab: 32,
            num_classes: 16,
            data_seed: 0,
            param_budget: 12_000,
            transformer: Family::Transformer {
                heads: 1,
                ff_mult: 2.0,
                positional: Positional::None,
                layer_norm: false,
            },
            transformer_blocks: 1,
            mlp_depth: 1,
            lrs: vec![3e-3, 1e-2],
            seeds: vec![0],
            train: TrainConfig {
                lr: 1e-2,
                batch_size: Some(500),
                max_steps: 1500,
                eval_every: 100,
                ..TrainConfig::default()
            },
            threads: 2,
        }
    }
}

/// One (n, family) cell of [`mlp_vs_transformer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpVsTransformerRow {
    /// Sequence length.
    pub seq_len: usize,
    /// Family.
    pub family: String,
    /// Chosen width.
    pub width: usize,
    /// Model.
    pub model: ModelConfig,
    /// Parameters.
    pub num_params: usize,
    /// Best final accuracy over the tries.
    pub best_acc: f64,
    /// Some try memorized.
    pub memorized: bool,
    /// Tries.
    pub runs: usize,
}

/// Result of [`mlp_vs_transformer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpVsTransformerResult {
    /// Settings.
    pub spec: MlpVsTransformerSpec,
    /// Two rows per n.
    pub rows: Vec<MlpVsTransformerRow>,
}

/// Largest width in `1..=4096` whose config stays within `budget` params.
fn width_for_budget(family: &Family, data: &Dataset, blocks: usize, budget: usize) -> Option<(usize, ModelConfig)> {
    let mut best = None;
    for w in 1..=4096usize {
        let cfg = family.config(data, blocks, w);
        if cfg.num_params() > budget {
            break;
        }
        if cfg.validate_for(data).is_ok() {
            best = Some((w, cfg));
        }
    }
    best
}

/// Train both families at the same parameter budget for every n.
pub fn mlp_vs_transformer(
    spec: &MlpVsTransformerSpec,
    on_row: &mut dyn FnMut(&MlpVsTransformerRow),
) -> Result<MlpVsTransformerResult> {
    let mut rows = Vec::new();
    for &n in &spec.seq_lens {
        let data = generate(&GenConfig::random_ids(spec.n_seqs, n, spec.vocab, spec.num_classes, spec.data_seed))?;
        for (name, family, blocks) in
            [("transformer", &spec.transformer, spec.transformer_blocks), ("mlp", &Family::Mlp, spec.mlp_depth)]
        {
            let Some((width, model)) = width_for_budget(family, &data, blocks, spec.param_budget) else {
                return cfg_err(format!(
                    "mlp-vs-transformer: no {name} of width >= 1 fits {} params at n = {n}",
                    spec.param_budget
                ));
            };
            let jobs: Vec<Job> = spec
                .seeds
                .iter()
                .flat_map(|&seed| spec.lrs.iter().map(move |&lr| (lr, seed)))
                .map(|(lr, seed)| Job { model: model.clone(), train: TrainConfig { lr, seed, ..spec.train.clone() } })
                .collect();
            let mut best_acc = 0.0f64;
            let mut memorized = false;
            for r in train_many(&jobs, &data, spec.threads)? {
                let r = r?;
                best_acc = best_acc.max(r.summary.final_acc);
                memorized |= r.summary.memorized;
            }
            let row = MlpVsTransformerRow {
                seq_len: n,
                family: name.into(),
                width,
                num_params: model.num_params(),
                model,
                best_acc,
                memorized,
                runs: jobs.len(),
            };
            on_row(&row);
            rows.push(row);
        }
    }
    Ok(MlpVsTransformerResult { spec: spec.clone(), rows })
}
