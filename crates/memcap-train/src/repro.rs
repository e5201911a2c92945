//! The three reproductions of issue #3, as library functions returning data
//! plus JSON, CSV and SVG renderings (the caller writes them, e.g. with
//! [`crate::run::write_report`]).
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
use crate::data::{random_dataset, RandomSpec, Task, TrainData};
use crate::error::{cfg_err, Result};
use crate::plot::{svg, Panel, Series};
use crate::train::{train_many, Job, Metric, RunSummary};

/// The three renderings of a reproduction.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Full result as pretty JSON.
    pub json: String,
    /// Flat table.
    pub csv: String,
    /// Figure.
    pub svg: String,
}

// ---------------------------------------------------------------- fig 2 --

/// Settings of [`fig2`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fig2Spec {
    /// Random dataset (next-token).
    pub data: RandomSpec,
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
            data: RandomSpec {
                n_examples: 3000,
                seq_len: 8,
                vocab: 64,
                num_classes: 16,
                task: Task::NextToken,
                seed: 0,
            },
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
    let data = random_dataset(&spec.data)?;
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

impl Fig2Result {
    /// JSON, CSV (`blocks,params,step,loss,acc`) and a two-panel SVG.
    pub fn render(&self) -> Result<Rendered> {
        let mut csv = String::from("blocks,params,step,loss,acc,elapsed_s\n");
        for c in &self.curves {
            for m in &c.metrics {
                csv.push_str(&format!(
                    "{},{},{},{},{},{:.3}\n",
                    c.blocks, c.summary.num_params, m.step, m.loss, m.acc, m.elapsed_s
                ));
            }
        }
        let d = &self.spec.data;
        let name = |c: &Fig2Curve| format!("{} blocks ({} params)", c.blocks, c.summary.num_params);
        let setting =
            format!("N={} n={} V={} C={} d={}", d.n_examples, d.seq_len, d.vocab, d.num_classes, self.spec.d_model);
        let panels = [
            Panel {
                title: format!("training loss, {setting}"),
                x_label: "step".into(),
                y_label: "cross-entropy".into(),
                log_y: true,
                series: self
                    .curves
                    .iter()
                    .map(|c| Series {
                        name: name(c),
                        points: c.metrics.iter().map(|m| (m.step as f64, m.loss)).collect(),
                    })
                    .collect(),
            },
            Panel {
                title: "training accuracy (exact argmax)".into(),
                x_label: "step".into(),
                y_label: "accuracy".into(),
                log_y: false,
                series: self
                    .curves
                    .iter()
                    .map(|c| Series {
                        name: name(c),
                        points: c.metrics.iter().map(|m| (m.step as f64, m.acc)).collect(),
                    })
                    .collect(),
            },
        ];
        Ok(Rendered { json: serde_json::to_string_pretty(self)?, csv, svg: svg(&panels, 640, 440)? })
    }
}

// ------------------------------------------------------- size vs N -------

/// Settings of [`size_vs_examples`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeVsNSpec {
    /// Dataset sizes N.
    pub n_examples: Vec<usize>,
    /// Sequence length n.
    pub seq_len: usize,
    /// Vocabulary.
    pub vocab: usize,
    /// Classes.
    pub num_classes: usize,
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
            n_examples: (600..=1700).step_by(100).collect(),
            seq_len: 8,
            vocab: 64,
            num_classes: 16,
            data_seed: 0,
            transformer: CapacitySpec {
                family: Family::Transformer { heads: 1, ff_mult: 2.0, pos_encoding: false, layer_norm: false },
                blocks: vec![1],
                widths: vec![4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24],
                lrs: vec![1e-2, 3e-2],
                seeds: vec![0],
                train: train.clone(),
                strategy: Strategy::Bisect,
                threads: 2,
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
            },
        }
    }
}

/// One row of [`size_vs_examples`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeVsNRow {
    /// N.
    pub n_examples: usize,
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
    for &n_examples in &spec.n_examples {
        let data = random_dataset(&RandomSpec {
            n_examples,
            seq_len: spec.seq_len,
            vocab: spec.vocab,
            num_classes: spec.num_classes,
            task: Task::NextToken,
            seed: spec.data_seed,
        })?;
        for (family, cs) in [("transformer", &spec.transformer), ("mlp", &spec.mlp)] {
            let report = capacity_search(cs, &data, &mut |_| {})?;
            let row = SizeVsNRow { n_examples, family: family.into(), report };
            on_row(&row);
            rows.push(row);
        }
    }
    Ok(SizeVsNResult { spec: spec.clone(), rows })
}

impl SizeVsNResult {
    /// JSON, CSV (`N,family,min_params,bits_per_param,runs,...`) and SVG.
    pub fn render(&self) -> Result<Rendered> {
        let mut csv = String::from("N,family,min_params,bits_per_param,runs_used,sizes_tested,elapsed_s\n");
        for r in &self.rows {
            let rep = &r.report;
            csv.push_str(&format!(
                "{},{},{},{},{},{},{:.1}\n",
                r.n_examples,
                r.family,
                rep.min_params.map_or(String::new(), |p| p.to_string()),
                rep.bits_per_param.map_or(String::new(), |b| format!("{b:.4}")),
                rep.runs_used,
                rep.tested.len(),
                rep.elapsed_s
            ));
        }
        let series = |f: &str, y: &dyn Fn(&CapacityReport) -> Option<f64>| Series {
            name: f.into(),
            points: self
                .rows
                .iter()
                .filter(|r| r.family == f)
                .filter_map(|r| y(&r.report).map(|v| (r.n_examples as f64, v)))
                .collect(),
        };
        let s = &self.spec;
        let panels = [
            Panel {
                title: format!("smallest memorizing model, n={} V={} C={}", s.seq_len, s.vocab, s.num_classes),
                x_label: "N (examples)".into(),
                y_label: "parameters".into(),
                log_y: false,
                series: vec![
                    series("transformer", &|r| r.min_params.map(|p| p as f64)),
                    series("mlp", &|r| r.min_params.map(|p| p as f64)),
                ],
            },
            Panel {
                title: "bits per parameter at the smallest size".into(),
                x_label: "N (examples)".into(),
                y_label: "N log2(C) / params".into(),
                log_y: false,
                series: vec![series("transformer", &|r| r.bits_per_param), series("mlp", &|r| r.bits_per_param)],
            },
        ];
        Ok(Rendered { json: serde_json::to_string_pretty(self)?, csv, svg: svg(&panels, 640, 440)? })
    }
}

// ------------------------------------------------ MLP vs Transformer -----

/// Settings of [`mlp_vs_transformer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpVsTransformerSpec {
    /// Sequence lengths n.
    pub seq_lens: Vec<usize>,
    /// N.
    pub n_examples: usize,
    /// Vocabulary.
    pub vocab: usize,
    /// Classes.
    pub num_classes: usize,
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
            n_examples: 2000,
            vocab: 32,
            num_classes: 16,
            data_seed: 0,
            param_budget: 12_000,
            transformer: Family::Transformer { heads: 1, ff_mult: 2.0, pos_encoding: false, layer_norm: false },
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
fn width_for_budget(family: &Family, data: &TrainData, blocks: usize, budget: usize) -> Option<(usize, ModelConfig)> {
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
        let data = random_dataset(&RandomSpec {
            n_examples: spec.n_examples,
            seq_len: n,
            vocab: spec.vocab,
            num_classes: spec.num_classes,
            task: Task::NextToken,
            seed: spec.data_seed,
        })?;
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

impl MlpVsTransformerResult {
    /// JSON, CSV and SVG (accuracy vs n per family).
    pub fn render(&self) -> Result<Rendered> {
        let mut csv = String::from("n,family,width,params,best_acc,memorized,runs\n");
        for r in &self.rows {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                r.seq_len, r.family, r.width, r.num_params, r.best_acc, r.memorized, r.runs
            ));
        }
        let series = |f: &str, y: &dyn Fn(&MlpVsTransformerRow) -> f64| Series {
            name: f.into(),
            points: self.rows.iter().filter(|r| r.family == f).map(|r| ((r.seq_len as f64).log2(), y(r))).collect(),
        };
        let s = &self.spec;
        let panels = [
            Panel {
                title: format!(
                    "train accuracy at <= {} params, N={} C={}",
                    s.param_budget, s.n_examples, s.num_classes
                ),
                x_label: "log2 n".into(),
                y_label: "best training accuracy".into(),
                log_y: false,
                series: vec![series("transformer", &|r| r.best_acc), series("mlp", &|r| r.best_acc)],
            },
            Panel {
                title: "parameters used".into(),
                x_label: "log2 n".into(),
                y_label: "parameters".into(),
                log_y: false,
                series: vec![series("transformer", &|r| r.num_params as f64), series("mlp", &|r| r.num_params as f64)],
            },
        ];
        Ok(Rendered { json: serde_json::to_string_pretty(self)?, csv, svg: svg(&panels, 640, 440)? })
    }
}
