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
use crate::data::{Dataset, Labels, Positional, Task, IGNORE};
use crate::error::Result;
use crate::model::{cross_entropy, Model, NamedWeights};

/// One evaluation record (a line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Optimizer steps done so far (0 = at initialization).
    pub step: usize,
    /// Mean cross-entropy over all training targets (evaluation pass).
    /// Non-finite values (a diverged run) are written as JSON `null` and
    /// read back as NaN.
    #[serde(deserialize_with = "null_as_nan")]
    pub loss: f64,
    /// Fraction of targets whose argmax is the label.
    pub acc: f64,
    /// Fraction of sequences with every target correct (== `acc` for
    /// next-token).
    pub seq_acc: f64,
    /// Loss of the last minibatch before this evaluation (NaN at step 0:
    /// no batch yet; JSON `null`, read back as NaN).
    #[serde(deserialize_with = "null_as_nan")]
    pub batch_loss: f64,
    /// Memorized bits (Morris et al. 2025): Σ over targets of
    /// max(0, log2 C + log2 p(y | x)); 0 for uniform predictions, targets·log2 C
    /// for one-hot-correct ones.
    #[serde(default, deserialize_with = "null_as_nan")]
    pub memorized_bits: f64,
    /// Seconds since the start of training.
    pub elapsed_s: f64,
}

/// What one exact evaluation pass over the training set measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy (nats) over all targets.
    pub loss: f64,
    /// Fraction of targets whose label has the strictly largest logit.
    pub acc: f64,
    /// Fraction of sequences with every target correct.
    pub seq_acc: f64,
    /// Σ max(0, log2 C + log2 p(y | x)) over targets, in bits.
    pub memorized_bits: f64,
}

/// Memorized bits of one target (Morris et al. 2025): `max(0, log2 C + log2 p)`,
/// where `log_p` is the natural log of the probability of the label.
pub fn memorized_bits_of(log_p: f64, num_classes: usize) -> f64 {
    ((num_classes as f64).log2() + log_p / std::f64::consts::LN_2).max(0.0)
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
    #[serde(deserialize_with = "null_as_nan")]
    pub final_loss: f64,
    /// Final training accuracy.
    pub final_acc: f64,
    /// Final sequence accuracy.
    pub final_seq_acc: f64,
    /// The final evaluation (exact argmax pass) reached `max_accuracy`: 100%
    /// for consistent data; with conflicting labels (contexts this model
    /// cannot tell apart) the majority label of every such context.
    pub memorized: bool,
    /// Best achievable training accuracy for this model kind
    /// ([`memcap_core::Dataset::consistency`]): 1 for consistent data.
    #[serde(default = "one")]
    pub max_accuracy: f64,
    /// First evaluated step with 100% accuracy.
    pub first_memorized_step: Option<usize>,
    /// The batch loss became non-finite or exceeded [`DIVERGENCE_FACTOR`] ×
    /// the initial loss; training stopped there (`stop_reason` says when).
    pub diverged: bool,
    /// Exact-threshold capacity: label bits / parameters, only for a run that
    /// memorized (`null` otherwise; `final_acc` says how far it got).
    pub bits_per_param: Option<f64>,
    /// Memorized bits at the final evaluation (see [`Metric::memorized_bits`]).
    #[serde(deserialize_with = "null_as_nan")]
    pub memorized_bits: f64,
    /// `memorized_bits / num_params`.
    #[serde(deserialize_with = "null_as_nan")]
    pub memorized_bits_per_param: f64,
    /// The run did not memorize and its loss was still falling when the step
    /// budget ran out (see `under_trained_reason`).
    pub under_trained: bool,
    /// Why the run counts as under-trained, or why not (plateau, memorized,
    /// diverged).
    pub stop_reason: String,
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
    let meta = std::collections::BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("memcap_format".to_string(), "memcap-train-weights".to_string()),
    ]);
    serialize_safetensors(views, &meta)
}

/// safetensors bytes with `meta` as `__metadata__`, **byte-deterministic**:
/// the safetensors crate takes metadata as a `HashMap`, whose iteration
/// order changes from process to process, so the metadata object of its
/// header is rewritten with sorted keys (same entries, same length, so every
/// offset stays valid). Put `"format": "pt"` in `meta` for Hugging Face
/// loaders, which refuse other formats.
///
/// # Errors
/// [`TrainError`](crate::TrainError) when safetensors refuses the tensors.
pub fn serialize_safetensors<'a>(
    views: Vec<(String, safetensors::tensor::TensorView<'a>)>,
    meta: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let hash: std::collections::HashMap<String, String> = meta.clone().into_iter().collect();
    let mut bytes = safetensors::serialize(views, &Some(hash))?;
    let canonical = serde_json::to_string(meta)?;
    const PREFIX: &[u8] = b"{\"__metadata__\":";
    let (start, end) = (8 + PREFIX.len(), 8 + PREFIX.len() + canonical.len());
    let header_len = bytes.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize);
    let fits = bytes.get(8..8 + PREFIX.len()) == Some(PREFIX) && end <= 8 + header_len && end <= bytes.len();
    if !fits {
        return Err(crate::error::TrainError::InvalidConfig(
            "safetensors header does not start with its metadata; cannot make it deterministic".into(),
        ));
    }
    // Same entries serialized compactly: the original object is exactly as long.
    debug_assert_eq!(bytes[start] as char, '{');
    bytes[start..end].copy_from_slice(canonical.as_bytes());
    Ok(bytes)
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

/// The dataset as candle tensors: tokens `[N, n]` u32 (or vectors
/// `[N, n, d]` f32), labels `[N]` or `[N, n]` u32.
struct DataTensors {
    tokens: Tensor,
    labels: Tensor,
    n: usize,
    task: Task,
    /// Some seq2seq position is labelled [`IGNORE`].
    has_ignore: bool,
}

impl DataTensors {
    fn new(data: &Dataset) -> Result<Self> {
        let n = data.seq_len();
        let tokens = crate::data::input_tensor(data)?;
        let labels = match &data.labels {
            Labels::NextToken(l) => Tensor::from_vec(l.clone(), l.len(), &Device::Cpu)?,
            Labels::Seq2seq(l) => {
                let flat: Vec<u32> = l.iter().flatten().copied().collect();
                Tensor::from_vec(flat, (l.len(), n), &Device::Cpu)?
            }
        };
        let has_ignore = matches!(&data.labels, Labels::Seq2seq(l) if l.iter().flatten().any(|&y| y == IGNORE));
        Ok(DataTensors { tokens, labels, n, task: data.task(), has_ignore })
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

    /// One update with learning rate `lr`, after clipping the global
    /// gradient norm to `cfg.grad_clip`.
    /// `gs[k]`: the gradient of `model.vars()[k]`, flattened (`None`: the
    /// variable got no gradient).
    fn step(
        &mut self,
        model: &Model,
        gs: &[Option<Vec<f32>>],
        lr: f64,
        pool: Option<&rayon::ThreadPool>,
    ) -> Result<()> {
        self.t += 1;
        let c = &self.cfg;
        let norm = gs.iter().flatten().flat_map(|g| g.iter()).map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt();
        let scale = match c.grad_clip {
            Some(max) if norm > max => (max / (norm + 1e-6)) as f32,
            _ => 1.0,
        };
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let bc1 = 1.0 - c.beta1.powi(self.t);
        let bc2 = 1.0 - c.beta2.powi(self.t);
        let decay = 1.0 - (lr * c.weight_decay) as f32;
        // Fold the bias corrections into the step size (same as PyTorch).
        let step_size = (lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let eps = c.eps as f32;
        for ((nv, (theta, m, v)), g) in model.vars().iter().zip(self.state.iter_mut()).zip(gs) {
            let Some(g) = g else { continue };
            // Elementwise, so bit-identical however it is split: iterators
            // (no bounds checks) let it vectorize, and big tensors are cut
            // into chunks for the data-parallel pool.
            let update = |theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]| {
                for (((t, m), v), &g) in theta.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                    let gi = g * scale;
                    *m = b1 * *m + (1.0 - b1) * gi;
                    *v = b2 * *v + (1.0 - b2) * gi * gi;
                    *t = *t * decay - step_size * *m / (v.sqrt() / bc2_sqrt + eps);
                }
            };
            const CHUNK: usize = 1 << 14;
            match pool {
                Some(pool) if theta.len() > CHUNK => {
                    use rayon::prelude::*;
                    pool.install(|| {
                        theta
                            .par_chunks_mut(CHUNK)
                            .zip(m.par_chunks_mut(CHUNK))
                            .zip(v.par_chunks_mut(CHUNK))
                            .zip(g.par_chunks(CHUNK))
                            .for_each(|(((t, m), v), g)| update(t, m, v, g))
                    });
                }
                _ => update(theta, m, v, g),
            }
            nv.var.set(&Tensor::from_slice(theta, nv.var.shape(), &Device::Cpu)?)?;
        }
        Ok(())
    }
}

/// Flattened gradients in `Model::vars` order (`None`: no gradient reached it).
type Grads = Vec<Option<Vec<f32>>>;

/// A pool of `threads` workers for data-parallel steps (`None` for one).
fn data_parallel_pool(threads: usize) -> Result<Option<rayon::ThreadPool>> {
    if threads <= 1 {
        return Ok(None);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| crate::error::TrainError::InvalidConfig(format!("thread pool: {e}")))?;
    Ok(Some(pool))
}

/// Mean cross-entropy of one batch (tokens `[b, n]`, flat labels) and its
/// gradient per variable of `model` (flattened, in `model.vars()` order).
///
/// With a pool of `k` workers the batch is cut into `k` contiguous shards;
/// shard `i` backpropagates `loss_i · b_i / b`, so the summed gradients
/// (added in shard order: deterministic) are those of the batch mean.
fn loss_and_grads(
    model: &Model,
    tokens: &Tensor,
    labels: &Tensor,
    has_ignore: bool,
    pool: Option<&rayon::ThreadPool>,
) -> Result<(f64, Grads)> {
    let b = tokens.dim(0)?;
    let per_row = labels.dim(0)? / b.max(1);
    // Positions labelled IGNORE (seq2seq padding) are left out: each shard
    // averages over its valid targets and is weighted by their share.
    let ignored: Option<Vec<u32>> = if has_ignore {
        let l = labels.to_vec1::<u32>()?;
        l.contains(&IGNORE).then_some(l)
    } else {
        None
    };
    let total_valid = ignored.as_ref().map_or(labels.dim(0)?, |l| l.iter().filter(|&&y| y != IGNORE).count());
    let shard = |start: usize, len: usize| -> Result<(f64, Grads)> {
        let (t, l) = if len == b {
            (tokens.clone(), labels.clone())
        } else {
            (tokens.narrow(0, start, len)?, labels.narrow(0, start * per_row, len * per_row)?)
        };
        let mut logits = model.logits(&t, false)?;
        let mut l = l;
        let mut valid = len * per_row;
        if let Some(all) = &ignored {
            let keep: Vec<u32> =
                (0..len * per_row).filter(|&r| all[start * per_row + r] != IGNORE).map(|r| r as u32).collect();
            valid = keep.len();
            if valid == 0 {
                return Ok((0.0, vec![None; model.vars().len()]));
            }
            let idx = Tensor::from_vec(keep, valid, &Device::Cpu)?;
            logits = logits.index_select(&idx, 0)?;
            l = l.index_select(&idx, 0)?;
        }
        let loss = cross_entropy(&logits, &l)?;
        let loss = if valid == total_valid { loss } else { (loss * (valid as f64 / total_valid.max(1) as f64))? };
        let value = loss.to_scalar::<f32>()? as f64;
        let grads = loss.backward()?;
        let gs = model
            .vars()
            .iter()
            .map(|nv| grads.get(nv.var.as_tensor()).map(|g| g.flatten_all()?.to_vec1::<f32>()).transpose())
            .collect::<std::result::Result<_, _>>()?;
        Ok((value, gs))
    };
    let Some(pool) = pool else { return shard(0, b) };
    let k = pool.current_num_threads().min(b).max(1);
    let bounds: Vec<(usize, usize)> = (0..k).map(|i| (i * b / k, (i + 1) * b / k - i * b / k)).collect();
    use rayon::prelude::*;
    let parts: Vec<Result<(f64, Grads)>> = pool.install(|| bounds.par_iter().map(|&(s, len)| shard(s, len)).collect());
    let mut total = 0.0;
    let mut sum: Grads = Vec::new();
    for part in parts {
        let (value, gs) = part?;
        total += value;
        if sum.is_empty() {
            sum = gs;
            continue;
        }
        for (acc, g) in sum.iter_mut().zip(gs) {
            match (acc.as_mut(), g) {
                (Some(a), Some(g)) => a.iter_mut().zip(&g).for_each(|(x, y)| *x += y),
                (None, Some(g)) => *acc = Some(g),
                (_, None) => {}
            }
        }
    }
    Ok((total, sum))
}

/// Exact full-data evaluation: loss, accuracy (strict argmax), sequence
/// accuracy and memorized bits.
pub fn evaluate(model: &Model, data: &Dataset) -> Result<Evaluation> {
    model.config().validate_for(data)?;
    evaluate_tensors(model, &DataTensors::new(data)?)
}

fn evaluate_tensors(model: &Model, dt: &DataTensors) -> Result<Evaluation> {
    let total = dt.tokens.dim(0)?;
    let per_seq = if dt.task == Task::Seq2seq { dt.n } else { 1 };
    let chunk = 1024usize;
    let (mut nll, mut correct, mut seq_correct, mut bits, mut valid) = (0.0f64, 0usize, 0usize, 0.0f64, 0usize);
    let mut start = 0;
    while start < total {
        let len = chunk.min(total - start);
        let tokens = dt.tokens.narrow(0, start, len)?;
        let gold = dt.labels.narrow(0, start, len)?.flatten_all()?.to_vec1::<u32>()?;
        let logits: Vec<Vec<f32>> = model.logits(&tokens, true)?.to_vec2()?;
        let c = logits.first().map_or(1, Vec::len);
        let mut ok_in_seq = 0;
        for (k, (row, &y)) in logits.iter().zip(&gold).enumerate() {
            if y == IGNORE {
                // Left out of memorization; counts as right for its sequence.
                ok_in_seq += 1;
                if (k + 1) % per_seq == 0 {
                    seq_correct += usize::from(ok_in_seq == per_seq);
                    ok_in_seq = 0;
                }
                continue;
            }
            valid += 1;
            let y = y as usize;
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v as f64));
            let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
            let log_p = row[y] as f64 - lse;
            nll -= log_p;
            bits += memorized_bits_of(log_p, c);
            // Correct only if the label's logit is strictly the largest (ties are not memorized).
            let ok = row.iter().enumerate().all(|(j, &v)| j == y || v < row[y]);
            correct += usize::from(ok);
            ok_in_seq += usize::from(ok);
            if (k + 1) % per_seq == 0 {
                seq_correct += usize::from(ok_in_seq == per_seq);
                ok_in_seq = 0;
            }
        }
        start += len;
    }
    let targets = valid.max(1) as f64;
    Ok(Evaluation {
        loss: nll / targets,
        acc: correct as f64 / targets,
        seq_acc: seq_correct as f64 / total as f64,
        memorized_bits: bits,
    })
}

fn one() -> f64 {
    1.0
}

/// serde_json writes NaN and ±∞ as `null`; this reads `null` back as NaN,
/// so results of diverged runs (and step 0's batch loss) round-trip.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Best training accuracy any model like `model` can reach on `data`: a
/// Transformer without positions cannot tell apart contexts with the same
/// multiset and last token, any model cannot tell apart equal sequences;
/// each such group can at best all get its majority label. 1 for
/// consistent data.
pub fn max_accuracy(model: &ModelConfig, data: &Dataset) -> f64 {
    let r = data.consistency();
    let order_blind = matches!(model, ModelConfig::Transformer(t) if t.positional == Positional::None);
    if order_blind {
        r.max_accuracy_no_pos
    } else {
        r.max_accuracy
    }
}

/// A run is diverged when a batch loss exceeds this multiple of its initial
/// full-data loss (at least 1), or is not finite; training stops there.
pub const DIVERGENCE_FACTOR: f64 = 100.0;

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
    model_cfg.validate_trainable()?;
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
    let pool = data_parallel_pool(train_cfg.threads.min(batch))?;
    let mut order: Vec<u32> = (0..n_ex as u32).collect();
    let mut cursor = n_ex; // forces a shuffle before the first minibatch

    let mut metrics = Vec::new();
    let eval = |step: usize, batch_loss: f64| -> Result<Metric> {
        let e = evaluate_tensors(&model, &dt)?;
        Ok(Metric {
            step,
            loss: e.loss,
            acc: e.acc,
            seq_acc: e.seq_acc,
            batch_loss,
            memorized_bits: e.memorized_bits,
            elapsed_s: start.elapsed().as_secs_f64(),
        })
    };
    metrics.push(eval(0, f64::NAN)?);
    // Memorized = the best accuracy any model of this kind can reach: contexts
    // it cannot tell apart (same tokens; same multiset and last token without
    // positions) can only all get their majority label.
    let max_accuracy = max_accuracy(model_cfg, data);
    let reached = |acc: f64| acc + 1e-12 >= max_accuracy;
    let mut first_memorized = reached(metrics[0].acc).then_some(0);
    let mut diverged = false;
    let mut divergence = String::new();
    let initial_loss = metrics[0].loss;
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
            let (batch_loss, grads) = loss_and_grads(&model, &tokens, &labels, dt.has_ignore, pool.as_ref())?;
            steps = step;
            if !batch_loss.is_finite() || batch_loss > DIVERGENCE_FACTOR * initial_loss.max(1.0) {
                diverged = true;
                divergence = format!(
                    "diverged at step {step}: batch loss {batch_loss:.4e} (initial loss {initial_loss:.4}; the limit is {DIVERGENCE_FACTOR}× it, or non-finite)"
                );
                metrics.push(eval(step, batch_loss)?);
                progress(Progress { step, max_steps: train_cfg.max_steps, batch_loss, eval: metrics.last() });
                break;
            }
            opt.step(&model, &grads, train_cfg.lr_at(step), pool.as_ref())?;
            if step % train_cfg.eval_every == 0 || step == train_cfg.max_steps {
                let m = eval(step, batch_loss)?;
                let done = reached(m.acc);
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
        memorized_bits: 0.0,
        elapsed_s: 0.0,
    });
    let num_params = model.allocated_params();
    let memorized = reached(last.acc);
    let (under_trained, stop_reason) =
        if diverged { (false, divergence) } else { stop_reason(&metrics, memorized, steps, train_cfg.max_steps) };
    let summary = RunSummary {
        family: model_cfg.family().to_string(),
        num_params,
        steps,
        final_loss: last.loss,
        final_acc: last.acc,
        final_seq_acc: last.seq_acc,
        memorized,
        first_memorized_step: first_memorized,
        diverged,
        // The labels it can hold: the achievable fraction of the (distinct) label bits.
        bits_per_param: memorized.then(|| crate::bits_per_param(max_accuracy * data.label_bits(), num_params)),
        max_accuracy,
        memorized_bits: last.memorized_bits,
        memorized_bits_per_param: last.memorized_bits / num_params as f64,
        under_trained,
        stop_reason,
        elapsed_s: start.elapsed().as_secs_f64(),
    };
    Ok(RunResult {
        config: RunConfig { model: model_cfg.clone(), train: train_cfg.clone(), data: DataSummary::of(data) },
        metrics,
        summary,
        weights: model.export()?,
    })
}

/// Whether a run that ended was cut by its budget: `(under_trained, reason)`.
/// A run that did not memorize is under-trained when its full-data loss fell
/// by more than 10% over the second half of its evaluations.
fn stop_reason(metrics: &[Metric], memorized: bool, steps: usize, max_steps: usize) -> (bool, String) {
    if memorized {
        return (false, format!("memorized at step {steps}"));
    }
    let last = metrics.last().map_or(f64::NAN, |m| m.loss);
    let mid = metrics.get(metrics.len() / 2).map_or(f64::NAN, |m| m.loss);
    let fall = if mid > 0.0 { (mid - last) / mid } else { 0.0 };
    if fall > 0.10 {
        (
            true,
            format!(
                "step budget {max_steps} used up while the loss still fell {:.0}% over the second half ({mid:.4} → {last:.4})",
                100.0 * fall
            ),
        )
    } else {
        (false, format!("plateau: loss changed {:.1}% over the second half of {max_steps} steps", 100.0 * fall))
    }
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
