//! The paper's experiments (docs/experiments.md) as library functions
//! returning data; `memcap_report::repro` draws them (JSON, CSV, SVG, PNG).
//!
//! * [`fig2`]: training loss and accuracy curves for `#blocks ∈
//!   {1,10,20,30,40}` on N = 3000 random sequences (paper Fig. 2 setting;
//!   our widths are stated in [`Fig2Spec`] and every output).
//! * [`size_sweep`]: minimal memorizing model size vs N (n = 8,
//!   N = 600..1700 step 100) or vs n at fixed N, Transformer and MLP, over
//!   seeds, with medians, bootstrap intervals and fitted slopes.
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
    /// Pre-norm LayerNorm in every block (deep stacks do not train without it).
    #[serde(default)]
    pub layer_norm: bool,
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
            layer_norm: true,
            train: TrainConfig {
                lr: 1e-2,
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
            model: ModelConfig::Transformer(crate::TransformerConfig {
                layer_norm: spec.layer_norm,
                ..crate::TransformerConfig::for_data(&data, spec.d_model, spec.heads, spec.d_ff, b)
            }),
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

// ------------------------------------------------- size vs N and n -------

/// Which data-shape variable a [`size_sweep`] varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SweepVar {
    /// The number of sequences N (the paper: n = 8, N = 600..1700 step 100).
    #[serde(rename = "N")]
    NSeqs,
    /// The sequence length n at fixed N.
    #[serde(rename = "n")]
    SeqLen,
}

impl SweepVar {
    /// `N` or `n`, as in the paper.
    pub fn name(self) -> &'static str {
        match self {
            SweepVar::NSeqs => "N",
            SweepVar::SeqLen => "n",
        }
    }
}

/// Where the sequences of a sweep come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSource {
    /// Uniform random token ids with uniform labels (memcap-core's generator).
    Random,
    /// Next-byte windows of a text (its bytes are passed to [`size_sweep`]):
    /// conflicting contexts are resolved to their majority label (for a model
    /// without positions), then N distinct windows are drawn per seed.
    Text {
        /// Where the text came from (a path or a name), for the record.
        name: String,
    },
}

/// Settings of [`size_sweep`]: for every value of the swept variable and
/// every seed, one capacity search per family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeSweepSpec {
    /// The swept variable.
    pub sweep: SweepVar,
    /// Its values (N values or n values).
    pub values: Vec<usize>,
    /// N when n is swept.
    #[serde(rename = "N")]
    pub n_seqs: usize,
    /// n when N is swept.
    #[serde(rename = "n")]
    pub seq_len: usize,
    /// Vocabulary V (random data; text: 256 bytes).
    pub vocab: usize,
    /// Classes C (random data; text: 256 bytes).
    pub num_classes: u32,
    /// Replicates: seed s draws the data with seed s and trains with seed s.
    pub seeds: Vec<u64>,
    /// Random data or text windows.
    pub source: DataSource,
    /// Transformer search (its `seeds` are replaced by the replicate's seed).
    pub transformer: CapacitySpec,
    /// MLP search, if the feed-forward baseline is wanted.
    pub mlp: Option<CapacitySpec>,
    /// Capacity searches run at the same time (each uses its spec's threads).
    pub jobs: usize,
}

impl SizeSweepSpec {
    /// Reject a sweep that cannot run (no values or seeds, zero jobs, an
    /// invalid search spec), before any file or training: the CLI calls it
    /// before it opens the checkpoint.
    ///
    /// # Errors
    /// [`crate::TrainError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.values.is_empty() || self.seeds.is_empty() {
            return cfg_err("size sweep: need at least one value and one seed");
        }
        if self.jobs == 0 {
            return cfg_err("size sweep: jobs must be at least 1");
        }
        self.transformer.validate()?;
        if let Some(m) = &self.mlp {
            m.validate()?;
        }
        Ok(())
    }

    /// The paper's sweep: n = 8, N = 600..1700 step 100, V = 64, C = 16,
    /// seeds 0, 1, 2, one-block Transformers without positions (warmup +
    /// cosine, lr 0.03 then 0.1, 2000 steps doubled while the loss halves, up to 8000)
    /// and one-hidden-layer MLPs.
    pub fn paper_size_vs_n_seqs() -> Self {
        let train = TrainConfig { lr: 0.1, max_steps: 2000, eval_every: 100, ..TrainConfig::default() };
        SizeSweepSpec {
            sweep: SweepVar::NSeqs,
            values: (600..=1700).step_by(100).collect(),
            n_seqs: 1000,
            seq_len: 8,
            vocab: 64,
            num_classes: 16,
            seeds: vec![0, 1, 2],
            source: DataSource::Random,
            transformer: CapacitySpec {
                family: Family::Transformer { heads: 1, ff_mult: 2.0, positional: Positional::None, layer_norm: false },
                blocks: vec![1],
                widths: vec![8, 10, 12, 14, 16, 20, 24],
                // In this order: 0.03 memorizes small N at once, 0.1 is needed at large N
                // (lr 0.1 alone failed at N = 600: accuracy fell from 0.90 to 0.77).
                lrs: vec![0.03, 0.1],
                seeds: vec![0],
                train: train.clone(),
                strategy: Strategy::Bisect,
                threads: 1,
                max_steps_cap: 8000,
                max_grow: 2,
                min_loss_drop: 0.5,
            },
            mlp: Some(CapacitySpec {
                family: Family::Mlp,
                blocks: vec![1],
                widths: vec![1, 2, 3, 4, 5, 6, 8, 10, 12, 16],
                lrs: vec![0.03],
                seeds: vec![0],
                train,
                strategy: Strategy::Bisect,
                threads: 1,
                max_steps_cap: 8000,
                max_grow: 2,
                min_loss_drop: 0.5,
            }),
            jobs: 2,
        }
    }

    /// n ∈ {4, 8, 16, 32, 64, 128} at N = 1000 (otherwise as
    /// [`SizeSweepSpec::paper_size_vs_n_seqs`]).
    pub fn paper_size_vs_seq_len() -> Self {
        SizeSweepSpec { sweep: SweepVar::SeqLen, values: vec![4, 8, 16, 32, 64, 128], ..Self::paper_size_vs_n_seqs() }
    }

    fn shape(&self, value: usize) -> (usize, usize) {
        match self.sweep {
            SweepVar::NSeqs => (value, self.seq_len),
            SweepVar::SeqLen => (self.n_seqs, value),
        }
    }
}

/// One capacity search of a [`size_sweep`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeSweepRow {
    /// Value of the swept variable.
    pub value: usize,
    /// `transformer` or `mlp`.
    pub family: String,
    /// Replicate seed (data and training).
    pub seed: u64,
    /// The search result.
    pub report: CapacityReport,
}

/// Seeds pooled at one value of the swept variable, for one family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeSummary {
    /// Value of the swept variable.
    pub value: usize,
    /// `transformer` or `mlp`.
    pub family: String,
    /// Replicates run.
    pub seeds: usize,
    /// Replicates whose search found a memorizing size.
    pub found: usize,
    /// Replicates whose answer the step budget may have limited.
    pub under_trained: usize,
    /// Median minimum parameter count over the replicates that found one.
    pub median_min_params: Option<f64>,
    /// 95% percentile-bootstrap interval of that median.
    pub ci_min_params: Option<(f64, f64)>,
    /// Median exact-threshold bits per parameter.
    pub median_bits_per_param: Option<f64>,
    /// Median memorized-bits capacity (bits per parameter).
    pub median_memorized_bits_per_param: Option<f64>,
}

/// A family's fitted log-log slope of minimum size against the swept variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilySlope {
    /// `transformer` or `mlp`.
    pub family: String,
    /// The fit (None with fewer than two values that found a size).
    pub fit: Option<memcap_core::stats::SlopeFit>,
}

/// Result of [`size_sweep`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeSweepResult {
    /// Settings.
    pub spec: SizeSweepSpec,
    /// Every search, in (value, family, seed) order.
    pub rows: Vec<SizeSweepRow>,
    /// Medians and intervals per (value, family).
    pub summary: Vec<SizeSummary>,
    /// Slopes with intervals per family.
    pub slopes: Vec<FamilySlope>,
    /// memcap's explicit construction on the first seed's dataset at every value
    /// (the same examples the searches trained on).
    pub construction: Vec<ConstructionSize>,
}

/// Size of the explicit construction (memcap-core) on one sweep dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstructionSize {
    /// Value of the swept variable.
    pub value: usize,
    /// Seed of the dataset.
    pub seed: u64,
    /// Nonzero parameters.
    pub params_nonzero: usize,
    /// Dense parameters.
    pub params_dense: usize,
    /// Bits of the largest weight.
    pub max_weight_bits: u64,
}

/// The dataset of one replicate: random, or N distinct majority-labelled
/// windows of the text drawn with `seed`.
fn sweep_data(spec: &SizeSweepSpec, value: usize, seed: u64, text: Option<&[u8]>) -> Result<Dataset> {
    let (n_seqs, seq_len) = spec.shape(value);
    match (&spec.source, text) {
        (DataSource::Random, _) => {
            Ok(generate(&GenConfig::random_ids(n_seqs, seq_len, spec.vocab, spec.num_classes, seed))?)
        }
        (DataSource::Text { name }, Some(bytes)) => {
            use rand::seq::SliceRandom;
            use rand::SeedableRng;
            let all =
                crate::data::text_windows(bytes, &crate::data::TextSpec::new(seq_len, crate::data::TextUnit::Bytes))?;
            let (kept, _) = all.dataset.resolve_conflicts(Positional::None, memcap_core::Dedupe::Majority)?;
            // Distinct contexts only (duplicates carry no information).
            let (_, seqs) = crate::data::token_ids(&kept)?;
            let mut seen = std::collections::HashSet::new();
            let mut idx: Vec<usize> = (0..kept.len()).filter(|&i| seen.insert(seqs[i].clone())).collect();
            if idx.len() < n_seqs {
                return cfg_err(format!(
                    "text {name}: only {} distinct consistent windows of length {seq_len}, {n_seqs} asked",
                    idx.len()
                ));
            }
            idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            let mut keep = vec![false; kept.len()];
            for &i in &idx[..n_seqs] {
                keep[i] = true;
            }
            Ok(kept.select(&keep))
        }
        (DataSource::Text { name }, None) => cfg_err(format!("text source {name}: no text bytes were given")),
    }
}

/// Capacity searches for every (value, seed) and family, `jobs` at a time;
/// `on_row` is called as each finishes. Summaries pool the seeds: median
/// minimum size with a 95% bootstrap interval, and the log-log slope of the
/// median against the swept variable with its interval.
///
/// # Errors
/// Empty values or seeds, data that cannot be drawn, invalid searches.
pub fn size_sweep(
    spec: &SizeSweepSpec,
    text: Option<&[u8]>,
    on_row: &(dyn Fn(&SizeSweepRow) + Sync),
) -> Result<SizeSweepResult> {
    size_sweep_resume(spec, text, &[], on_row)
}

/// [`size_sweep`], reusing searches already done (say, read back from the
/// checkpoint of a run that was preempted).
///
/// # Errors
/// As [`SizeSweepSpec::validate`]; data and training failures.
///
/// Each search is a pure function of (spec, value, family, seed), so a row of
/// `done` whose key is in the sweep replaces that search; `on_row` is called
/// only for the searches run now. Rows whose key is not in the sweep are
/// ignored; a key given twice is an error (`InvalidConfig`).
pub fn size_sweep_resume(
    spec: &SizeSweepSpec,
    text: Option<&[u8]>,
    done: &[SizeSweepRow],
    on_row: &(dyn Fn(&SizeSweepRow) + Sync),
) -> Result<SizeSweepResult> {
    spec.validate()?;
    let mut work = Vec::new();
    for &value in &spec.values {
        for (family, cs) in
            std::iter::once(("transformer", &spec.transformer)).chain(spec.mlp.iter().map(|m| ("mlp", m)))
        {
            for &seed in &spec.seeds {
                work.push((value, family, cs, seed));
            }
        }
    }
    // Data first (cheap, and errors surface before any training).
    let data: Vec<Dataset> =
        work.iter().map(|&(v, _, _, seed)| sweep_data(spec, v, seed, text)).collect::<Result<_>>()?;
    crate::ensure_single_threaded_ops();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.jobs)
        .build()
        .map_err(|e| crate::error::TrainError::InvalidConfig(format!("thread pool: {e}")))?;
    use rayon::prelude::*;
    let mut reused = std::collections::HashMap::new();
    for r in done {
        if reused.insert((r.value, r.family.as_str(), r.seed), r).is_some() {
            return cfg_err(format!(
                "size sweep: the search {} = {}, {}, seed {} was given twice",
                spec.sweep.name(),
                r.value,
                r.family,
                r.seed
            ));
        }
    }
    let rows: Vec<SizeSweepRow> = pool.install(|| {
        work.par_iter()
            .zip(data.par_iter())
            .map(|(&(value, family, cs, seed), ds)| {
                if let Some(&r) = reused.get(&(value, family, seed)) {
                    return Ok(r.clone());
                }
                let cs = CapacitySpec { seeds: vec![seed], ..cs.clone() };
                let report = capacity_search(&cs, ds, &mut |_| {})?;
                let row = SizeSweepRow { value, family: family.into(), seed, report };
                on_row(&row);
                Ok(row)
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let (summary, slopes) = summarize(&rows);
    let first = spec.seeds[0];
    let mut construction = Vec::new();
    for (&(value, family, _, seed), ds) in work.iter().zip(&data) {
        if family == "transformer" && seed == first {
            let built = memcap_core::construct(ds, &memcap_core::ConstructConfig { seed, ..Default::default() })?;
            let acc = built.model.accounting();
            construction.push(ConstructionSize {
                value,
                seed,
                params_nonzero: acc.params_nonzero as usize,
                params_dense: acc.params_dense as usize,
                max_weight_bits: acc.max_weight_bits as u64,
            });
        }
    }
    Ok(SizeSweepResult { spec: spec.clone(), rows, summary, slopes, construction })
}

/// Pools the seeds of `rows` (see [`size_sweep`]).
pub fn summarize(rows: &[SizeSweepRow]) -> (Vec<SizeSummary>, Vec<FamilySlope>) {
    use memcap_core::stats::{bootstrap_ci, loglog_slope_ci, median};
    let mut keys: Vec<(String, usize)> = rows.iter().map(|r| (r.family.clone(), r.value)).collect();
    keys.sort();
    keys.dedup();
    let mut summary = Vec::new();
    for (family, value) in &keys {
        let rs: Vec<&SizeSweepRow> = rows.iter().filter(|r| &r.family == family && r.value == *value).collect();
        let mins: Vec<f64> = rs.iter().filter_map(|r| r.report.min_params.map(|p| p as f64)).collect();
        let bpp: Vec<f64> = rs.iter().filter_map(|r| r.report.bits_per_param).collect();
        let mbpp: Vec<f64> = rs.iter().map(|r| r.report.memorized_bits_per_param).collect();
        summary.push(SizeSummary {
            value: *value,
            family: family.clone(),
            seeds: rs.len(),
            found: mins.len(),
            under_trained: rs.iter().filter(|r| r.report.under_trained).count(),
            median_min_params: median(&mins),
            ci_min_params: bootstrap_ci(&mins, &|x| median(x), 2000, 0.95, *value as u64),
            median_bits_per_param: median(&bpp),
            median_memorized_bits_per_param: median(&mbpp),
        });
    }
    let mut families: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
    families.dedup();
    let slopes = families
        .into_iter()
        .map(|family| {
            let groups: Vec<(f64, Vec<f64>)> = keys
                .iter()
                .filter(|k| k.0 == family)
                .map(|(_, v)| {
                    let ys = rows
                        .iter()
                        .filter(|r| r.family == family && r.value == *v)
                        .filter_map(|r| r.report.min_params.map(|p| p as f64))
                        .collect();
                    (*v as f64, ys)
                })
                .collect();
            FamilySlope { fit: loglog_slope_ci(&groups, 2000, 0), family }
        })
        .collect();
    (summary, slopes)
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
    /// Peak learning rates tried per (n, family, seed); the best final accuracy is kept.
    pub lrs: Vec<f64>,
    /// Replicate seeds (data and initialization).
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
            param_budget: 12_000,
            transformer: Family::Transformer {
                heads: 1,
                ff_mult: 2.0,
                positional: Positional::None,
                layer_norm: false,
            },
            transformer_blocks: 1,
            mlp_depth: 1,
            lrs: vec![0.1, 0.03, 0.01],
            seeds: vec![0, 1, 2],
            train: TrainConfig { lr: 0.03, max_steps: 1500, eval_every: 100, ..TrainConfig::default() },
            threads: 2,
        }
    }
}

/// One (n, family, seed) cell of [`mlp_vs_transformer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpVsTransformerRow {
    /// Sequence length.
    pub seq_len: usize,
    /// Family.
    pub family: String,
    /// Replicate seed (data and initialization).
    pub seed: u64,
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
    /// Largest memorized bits over the tries (Morris et al. 2025).
    pub memorized_bits: f64,
    /// Tries.
    pub runs: usize,
}

/// Both families at one n, seeds pooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracySummary {
    /// Sequence length n.
    pub seq_len: usize,
    /// Transformer parameters (at the budget).
    pub transformer_params: usize,
    /// MLP parameters (at the budget).
    pub mlp_params: usize,
    /// Median over seeds of the Transformer's best training accuracy.
    pub transformer_median_acc: Option<f64>,
    /// Its 95% bootstrap interval.
    pub transformer_ci: Option<(f64, f64)>,
    /// Seeds where the Transformer memorized.
    pub transformer_memorized: usize,
    /// Median over seeds of the MLP's best training accuracy.
    pub mlp_median_acc: Option<f64>,
    /// Its 95% bootstrap interval.
    pub mlp_ci: Option<(f64, f64)>,
    /// Seeds where the MLP memorized.
    pub mlp_memorized: usize,
    /// Seeds per family.
    pub seeds: usize,
    /// `transformer` or `mlp` when its interval lies above the other's, else `tie`.
    pub ahead: String,
}

/// Result of [`mlp_vs_transformer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpVsTransformerResult {
    /// Settings.
    pub spec: MlpVsTransformerSpec,
    /// Two rows per (n, seed).
    pub rows: Vec<MlpVsTransformerRow>,
    /// Seeds pooled per n.
    pub summary: Vec<AccuracySummary>,
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

/// Train both families at the same parameter budget for every n and seed
/// (seed s draws the data and initializes the models); each (n, family,
/// seed) keeps its best learning rate. Summaries give the median accuracy
/// with a 95% bootstrap interval per (n, family).
///
/// # Errors
/// A budget no model of width ≥ 1 fits, invalid schedules, candle failures.
pub fn mlp_vs_transformer(
    spec: &MlpVsTransformerSpec,
    on_row: &mut dyn FnMut(&MlpVsTransformerRow),
) -> Result<MlpVsTransformerResult> {
    if spec.seeds.is_empty() || spec.lrs.is_empty() || spec.seq_lens.is_empty() {
        return cfg_err("mlp-vs-transformer: need at least one n, one seed and one learning rate");
    }
    let mut rows = Vec::new();
    for &n in &spec.seq_lens {
        for &seed in &spec.seeds {
            let data = generate(&GenConfig::random_ids(spec.n_seqs, n, spec.vocab, spec.num_classes, seed))?;
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
                    .lrs
                    .iter()
                    .map(|&lr| Job { model: model.clone(), train: TrainConfig { lr, seed, ..spec.train.clone() } })
                    .collect();
                let (mut best_acc, mut memorized, mut bits) = (0.0f64, false, 0.0f64);
                for r in train_many(&jobs, &data, spec.threads)? {
                    let r = r?;
                    best_acc = best_acc.max(r.summary.final_acc);
                    memorized |= r.summary.memorized;
                    bits = bits.max(r.summary.memorized_bits);
                }
                let row = MlpVsTransformerRow {
                    seq_len: n,
                    family: name.into(),
                    seed,
                    width,
                    num_params: model.num_params(),
                    model,
                    best_acc,
                    memorized,
                    memorized_bits: bits,
                    runs: jobs.len(),
                };
                on_row(&row);
                rows.push(row);
            }
        }
    }
    let summary = mlp_vs_transformer_summary(&rows);
    Ok(MlpVsTransformerResult { spec: spec.clone(), rows, summary })
}

/// Median best accuracy (95% bootstrap interval) per (n, family), and which
/// family is ahead at each n: the one whose interval lies above the other's,
/// else `tie`.
pub fn mlp_vs_transformer_summary(rows: &[MlpVsTransformerRow]) -> Vec<AccuracySummary> {
    use memcap_core::stats::{bootstrap_ci, median};
    let mut ns: Vec<usize> = rows.iter().map(|r| r.seq_len).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut out = Vec::new();
    for n in ns {
        let cell = |f: &str| -> (Vec<f64>, usize, usize) {
            let rs: Vec<&MlpVsTransformerRow> = rows.iter().filter(|r| r.seq_len == n && r.family == f).collect();
            (
                rs.iter().map(|r| r.best_acc).collect(),
                rs.iter().filter(|r| r.memorized).count(),
                rs.first().map_or(0, |r| r.num_params),
            )
        };
        let (t, tm, tp) = cell("transformer");
        let (m, mm, mp) = cell("mlp");
        let ci = |x: &[f64]| bootstrap_ci(x, &|v| median(v), 2000, 0.95, n as u64);
        let (tci, mci) = (ci(&t), ci(&m));
        let ahead = match (tci, mci) {
            (Some(a), Some(b)) if a.0 > b.1 => "transformer",
            (Some(a), Some(b)) if b.0 > a.1 => "mlp",
            _ => "tie",
        };
        out.push(AccuracySummary {
            seq_len: n,
            transformer_params: tp,
            mlp_params: mp,
            transformer_median_acc: median(&t),
            transformer_ci: tci,
            transformer_memorized: tm,
            mlp_median_acc: median(&m),
            mlp_ci: mci,
            mlp_memorized: mm,
            seeds: t.len().max(m.len()),
            ahead: ahead.into(),
        });
    }
    out
}
