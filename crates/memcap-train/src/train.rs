//! The training loop, the exact evaluation pass and the run records.
//!
//! * Optimizer: AdamW (decoupled weight decay, bias-corrected moments),
//!   fused in plain Rust over `Vec<f32>` per variable. candle_nn's AdamW
//!   issues ~14 tensor ops per variable per step; for the tiny models of
//!   capacity experiments that per-op overhead dominates the step time.
//! * Determinism: one ChaCha8 stream (seeded by `TrainConfig::seed`) for
//!   the initialization, an independent stream (same seed, stream 1) for
//!   the minibatch order. With candle single-threaded (see
//!   [`crate::ensure_single_threaded_ops`]) the same seed gives bit-identical
//!   metrics.
//! * Memorization criterion: a *separate* evaluation pass over all N
//!   examples computing exact argmax accuracy (not the running minibatch
//!   accuracy); memorized means every target is predicted correctly.

use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{ModelConfig, TrainConfig};
use crate::data::{token_ids, Dataset, Labels, Task};
use crate::error::Result;
use crate::model::{argmax, cross_entropy, Model, NamedWeights};

/// One evaluation record (a line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Optimizer steps done so far (0 = at initialization).
    pub step: usize,
    /// Mean cross-entropy over all training targets (evaluation pass).
    pub loss: f64,
    /// Fraction of targets whose argmax is the label.
    pub acc: f64,
    /// Fraction of sequences with every target correct (== `acc` for
    /// next-token).
    pub seq_acc: f64,
    /// Loss of the last minibatch before this evaluation (NaN at step 0).
    pub batch_loss: f64,
    /// Seconds since the start of training.
    pub elapsed_s: f64,
}

/// Size and kind of the dataset a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Number of sequences `N`.
    #[serde(rename = "N")]
    pub n_seqs: usize,
    /// Sequence length `n`.
    pub seq_len: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Number of classes `C`.
    pub num_classes: usize,
    /// Readout.
    pub task: Task,
    /// `targets · log2(C)`.
    pub label_bits: f64,
}

impl DataSummary {
    /// Summary of `data`.
    pub fn of(data: &Dataset) -> Self {
        DataSummary {
            n_seqs: data.len(),
            seq_len: data.seq_len(),
            vocab: data.input_dim(),
            num_classes: data.num_classes as usize,
            task: data.task(),
            label_bits: data.label_bits(),
        }
    }
}

/// Outcome of one run (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Model family.
    pub family: String,
    /// Parameter count (closed form, equal to the allocated count).
    pub num_params: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Final full-data loss.
    pub final_loss: f64,
    /// Final training accuracy.
    pub final_acc: f64,
    /// Final sequence accuracy.
    pub final_seq_acc: f64,
    /// 100% training accuracy at the final evaluation.
    pub memorized: bool,
    /// First evaluated step with 100% accuracy.
    pub first_memorized_step: Option<usize>,
    /// Loss became NaN/inf; training stopped.
    pub diverged: bool,
    /// Label bits / parameters (meaningful when memorized).
    pub bits_per_param: f64,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
}

/// Resolved configuration of a run (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Model.
    pub model: ModelConfig,
    /// Optimizer/schedule.
    pub train: TrainConfig,
    /// Data the run saw.
    pub data: DataSummary,
}

/// Everything a run produces; the `run` module writes it to a folder.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Resolved configuration.
    pub config: RunConfig,
    /// One record per evaluation.
    pub metrics: Vec<Metric>,
    /// Final outcome.
    pub summary: RunSummary,
    /// Final weights, PyTorch layout, sorted by name.
    pub weights: NamedWeights,
}

impl RunResult {
    /// The final weights as a safetensors file (F32, PyTorch names and
    /// `[out, in]` layouts, loadable with `safetensors.torch.load_file`).
    pub fn safetensors_bytes(&self) -> Result<Vec<u8>> {
        weights_to_safetensors(&self.weights)
    }

    /// Metrics as JSON Lines.
    pub fn metrics_jsonl(&self) -> Result<String> {
        let mut s = String::new();
        for m in &self.metrics {
            s.push_str(&serde_json::to_string(m)?);
            s.push('\n');
        }
        Ok(s)
    }
}

/// Serialize `(name, shape, f32 values)` triples as safetensors.
pub fn weights_to_safetensors(weights: &[(String, Vec<usize>, Vec<f32>)]) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (n, s, b) in &bytes {
        views.push((n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?));
    }
    Ok(safetensors::serialize(views, &None)?)
}

/// What the progress callback sees after every step.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Steps done.
    pub step: usize,
    /// Step budget.
    pub max_steps: usize,
    /// Loss of the minibatch just used.
    pub batch_loss: f64,
    /// The evaluation done at this step, if any.
    pub eval: Option<&'a Metric>,
}

/// The dataset as candle tensors: tokens `[N, n]` u32, labels `[N]` or
/// `[N, n]` u32.
struct DataTensors {
    tokens: Tensor,
    labels: Tensor,
    n: usize,
    task: Task,
}

impl DataTensors {
    fn new(data: &Dataset) -> Result<Self> {
        let (_, seqs) = token_ids(data)?;
        let n = data.seq_len();
        let flat: Vec<u32> = seqs.iter().flatten().copied().collect();
        let tokens = Tensor::from_vec(flat, (data.len(), n), &Device::Cpu)?;
        let labels = match &data.labels {
            Labels::NextToken(l) => Tensor::from_vec(l.clone(), l.len(), &Device::Cpu)?,
            Labels::Seq2seq(l) => {
                let flat: Vec<u32> = l.iter().flatten().copied().collect();
                Tensor::from_vec(flat, (l.len(), n), &Device::Cpu)?
            }
        };
        Ok(DataTensors { tokens, labels, n, task: data.task() })
    }

    /// Rows `idx` (or everything): tokens `[b, n]`, flat labels `[b]`/`[b·n]`.
    fn batch(&self, idx: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let (t, l) = match idx {
            Some(i) => (self.tokens.index_select(i, 0)?, self.labels.index_select(i, 0)?),
            None => (self.tokens.clone(), self.labels.clone()),
        };
        Ok((t, l.flatten_all()?))
    }
}

/// Fused AdamW over a mirror of the parameters in plain `Vec<f32>`.
struct AdamW {
    cfg: TrainConfig,
    t: i32,
    state: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)>, // (θ, m, v) per var
}

impl AdamW {
    fn new(model: &Model, cfg: &TrainConfig) -> Result<Self> {
        let mut state = Vec::new();
        for v in model.vars() {
            let theta = v.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let len = theta.len();
            state.push((theta, vec![0.0; len], vec![0.0; len]));
        }
        Ok(AdamW { cfg: cfg.clone(), t: 0, state })
    }

    fn step(&mut self, model: &Model, grads: &candle_core::backprop::GradStore) -> Result<()> {
        self.t += 1;
        let c = &self.cfg;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let bc1 = 1.0 - c.beta1.powi(self.t);
        let bc2 = 1.0 - c.beta2.powi(self.t);
        let decay = 1.0 - (c.lr * c.weight_decay) as f32;
        // Fold the bias corrections into the step size (same as PyTorch).
        let step_size = (c.lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let eps = c.eps as f32;
        for (nv, (theta, m, v)) in model.vars().iter().zip(self.state.iter_mut()) {
            let Some(g) = grads.get(nv.var.as_tensor()) else { continue };
            let g = g.flatten_all()?.to_vec1::<f32>()?;
            for i in 0..theta.len() {
                let gi = g[i];
                m[i] = b1 * m[i] + (1.0 - b1) * gi;
                v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
                theta[i] = theta[i] * decay - step_size * m[i] / (v[i].sqrt() / bc2_sqrt + eps);
            }
            nv.var.set(&Tensor::from_slice(theta, nv.var.shape(), &Device::Cpu)?)?;
        }
        Ok(())
    }
}

/// Exact full-data evaluation: `(mean loss, target accuracy, sequence accuracy)`.
pub fn evaluate(model: &Model, data: &Dataset) -> Result<(f64, f64, f64)> {
    model.config().validate_for(data)?;
    evaluate_tensors(model, &DataTensors::new(data)?)
}

fn evaluate_tensors(model: &Model, dt: &DataTensors) -> Result<(f64, f64, f64)> {
    let total = dt.tokens.dim(0)?;
    let per_seq = if dt.task == Task::Seq2seq { dt.n } else { 1 };
    let chunk = 1024usize;
    let (mut loss_sum, mut correct, mut seq_correct) = (0.0f64, 0usize, 0usize);
    let mut start = 0;
    while start < total {
        let len = chunk.min(total - start);
        let tokens = dt.tokens.narrow(0, start, len)?;
        let labels = dt.labels.narrow(0, start, len)?.flatten_all()?;
        let logits = model.logits(&tokens, true)?;
        loss_sum += cross_entropy(&logits, &labels)?.to_scalar::<f32>()? as f64 * (len * per_seq) as f64;
        let pred = argmax(&logits)?;
        let gold = labels.to_vec1::<u32>()?;
        for (ps, gs) in pred.chunks(per_seq).zip(gold.chunks(per_seq)) {
            let ok = ps.iter().zip(gs).filter(|(a, b)| a == b).count();
            correct += ok;
            seq_correct += usize::from(ok == per_seq);
        }
        start += len;
    }
    let targets = (total * per_seq) as f64;
    Ok((loss_sum / targets, correct as f64 / targets, seq_correct as f64 / total as f64))
}

/// Train one model on `data`; `progress` is called after every step.
///
/// Errors only on invalid configs/data (checked before any work) or candle
/// failures; a diverging run is a result with `diverged = true`.
pub fn train(
    model_cfg: &ModelConfig,
    train_cfg: &TrainConfig,
    data: &Dataset,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunResult> {
    crate::ensure_single_threaded_ops();
    model_cfg.validate_for(data)?;
    train_cfg.validate()?;
    let start = Instant::now();
    let mut init_rng = ChaCha8Rng::seed_from_u64(train_cfg.seed);
    let mut order_rng = ChaCha8Rng::seed_from_u64(train_cfg.seed);
    order_rng.set_stream(1);
    let model = Model::new(model_cfg, &mut init_rng)?;
    let dt = DataTensors::new(data)?;
    let n_ex = data.len();
    let batch = train_cfg.batch_size.map_or(n_ex, |b| b.min(n_ex));
    let full_batch = batch == n_ex;
    let mut opt = AdamW::new(&model, train_cfg)?;
    let mut order: Vec<u32> = (0..n_ex as u32).collect();
    let mut cursor = n_ex; // forces a shuffle before the first minibatch

    let mut metrics = Vec::new();
    let eval = |step: usize, batch_loss: f64| -> Result<Metric> {
        let (loss, acc, seq_acc) = evaluate_tensors(&model, &dt)?;
        Ok(Metric { step, loss, acc, seq_acc, batch_loss, elapsed_s: start.elapsed().as_secs_f64() })
    };
    metrics.push(eval(0, f64::NAN)?);
    let mut first_memorized = (metrics[0].acc >= 1.0).then_some(0);
    let mut diverged = false;
    let mut steps = 0;
    if !(first_memorized.is_some() && train_cfg.stop_when_memorized) {
        for step in 1..=train_cfg.max_steps {
            let (tokens, labels) = if full_batch {
                dt.batch(None)?
            } else {
                if cursor + batch > n_ex {
                    order.shuffle(&mut order_rng);
                    cursor = 0;
                }
                let idx = Tensor::from_slice(&order[cursor..cursor + batch], batch, &Device::Cpu)?;
                cursor += batch;
                dt.batch(Some(&idx))?
            };
            let logits = model.logits(&tokens, false)?;
            let loss = cross_entropy(&logits, &labels)?;
            let batch_loss = loss.to_scalar::<f32>()? as f64;
            steps = step;
            if !batch_loss.is_finite() {
                diverged = true;
                metrics.push(eval(step, batch_loss)?);
                progress(Progress { step, max_steps: train_cfg.max_steps, batch_loss, eval: metrics.last() });
                break;
            }
            let grads = loss.backward()?;
            opt.step(&model, &grads)?;
            if step % train_cfg.eval_every == 0 || step == train_cfg.max_steps {
                let m = eval(step, batch_loss)?;
                let done = m.acc >= 1.0;
                if done && first_memorized.is_none() {
                    first_memorized = Some(step);
                }
                metrics.push(m);
                progress(Progress { step, max_steps: train_cfg.max_steps, batch_loss, eval: metrics.last() });
                if done && train_cfg.stop_when_memorized {
                    break;
                }
            } else {
                progress(Progress { step, max_steps: train_cfg.max_steps, batch_loss, eval: None });
            }
        }
    }
    let last = metrics.last().cloned().unwrap_or(Metric {
        step: 0,
        loss: f64::NAN,
        acc: 0.0,
        seq_acc: 0.0,
        batch_loss: f64::NAN,
        elapsed_s: 0.0,
    });
    let num_params = model.allocated_params();
    let summary = RunSummary {
        family: model_cfg.family().to_string(),
        num_params,
        steps,
        final_loss: last.loss,
        final_acc: last.acc,
        final_seq_acc: last.seq_acc,
        memorized: last.acc >= 1.0,
        first_memorized_step: first_memorized,
        diverged,
        bits_per_param: data.label_bits() / num_params as f64,
        elapsed_s: start.elapsed().as_secs_f64(),
    };
    Ok(RunResult {
        config: RunConfig { model: model_cfg.clone(), train: train_cfg.clone(), data: DataSummary::of(data) },
        metrics,
        summary,
        weights: model.export()?,
    })
}

/// One job of [`train_many`].
#[derive(Debug, Clone)]
pub struct Job {
    /// Model to train.
    pub model: ModelConfig,
    /// Schedule and seed.
    pub train: TrainConfig,
}

/// Train independent jobs in parallel on `threads` worker threads (one
/// training per thread, candle ops single-threaded), results in job order.
pub fn train_many(jobs: &[Job], data: &Dataset, threads: usize) -> Result<Vec<Result<RunResult>>> {
    crate::ensure_single_threaded_ops();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| crate::error::TrainError::InvalidConfig(format!("thread pool: {e}")))?;
    use rayon::prelude::*;
    Ok(pool.install(|| jobs.par_iter().map(|j| train(&j.model, &j.train, data, &mut |_| {})).collect()))
}

/// Per-parameter gradient norms after one backward pass on `data` (used to
/// check that every parameter is reached by the gradient).
pub fn gradient_norms(model_cfg: &ModelConfig, seed: u64, data: &Dataset) -> Result<Vec<(String, f64)>> {
    crate::ensure_single_threaded_ops();
    model_cfg.validate_for(data)?;
    let model = Model::new(model_cfg, &mut ChaCha8Rng::seed_from_u64(seed))?;
    let dt = DataTensors::new(data)?;
    let (tokens, labels) = dt.batch(None)?;
    let loss = cross_entropy(&model.logits(&tokens, false)?, &labels)?;
    let grads = loss.backward()?;
    let mut out = Vec::new();
    for v in model.vars() {
        let norm = match grads.get(v.var.as_tensor()) {
            Some(g) => g.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt() as f64,
            None => 0.0,
        };
        out.push((v.name.clone(), norm));
    }
    Ok(out)
}
