//! Model and training configurations, with validation and closed-form
//! parameter counts.
//!
//! The parameter counts are the denominators of "bits per parameter", so
//! they are written out as formulas here and checked against the actual
//! candle variables in the tests (`param_count_matches_closed_form_*`).

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Positional, Task};
use crate::error::{cfg_err, Result};

pub use memcap_core::model::AttentionKind;

/// What the Transformer outputs per read position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readout {
    /// `C` logits (`head.weight [C, d]`, `head.bias [C]`); the prediction is
    /// their strict argmax. What training uses.
    #[default]
    Logits,
    /// One value (`head.weight [1, d]`, `head.bias [1]`), which must *equal*
    /// the integer label: the readout `w_oᵀ z + b_o` of a constructed model
    /// (README "Model format"). Not trainable with cross-entropy.
    Value,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A Transformer encoder as in the paper: token embedding, `blocks` ×
/// (softmax attention + ReLU FFN, both residual), a linear readout.
///
/// Parameter names follow PyTorch conventions (`blocks.0.attn.q_proj.weight`,
/// `[out, in]` weights like `torch.nn.Linear`).
///
/// The last five fields default to the trained architecture and are left
/// out of the JSON at their defaults. A *constructed* model
/// ([`crate::model::Model::from_construction`]) sets them: attention scale
/// 1, the construction's attention kind, attention only in
/// `attention_blocks`, an embedding bias and a value readout, so both kinds
/// of model run one forward pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// Token vocabulary size `V`.
    pub vocab: usize,
    /// Sequence length `n` (needed for the positional table and checks).
    pub seq_len: usize,
    /// Number of output classes `C`.
    pub num_classes: usize,
    /// Embedding width `d`.
    pub d_model: usize,
    /// Number of attention heads `h`.
    pub heads: usize,
    /// Width of each head `d_h` (query/key/value).
    pub head_dim: usize,
    /// Hidden width of the ReLU feed-forward network.
    pub d_ff: usize,
    /// Number of blocks.
    pub blocks: usize,
    /// Positional encoding: none (the paper's permutation-equivariant
    /// setting) or a learned absolute position embedding (`n × d`).
    #[serde(default)]
    pub positional: Positional,
    /// Pre-norm LayerNorm before attention/FFN and before the readout.
    #[serde(default)]
    pub layer_norm: bool,
    /// Read out at the last position or at every position.
    pub task: Task,
    /// Tokens are real vectors of dimension `vocab` (not ids): the
    /// embedding is a linear input projection, `x · embed.weight` with
    /// `embed.weight` of shape `[vocab, d_model]` (the same parameters as the
    /// id lookup table, which is that product with one-hot `x`).
    #[serde(default)]
    pub vector_input: bool,
    /// Attention normalization: softmax (default) or hardmax (uniform over
    /// the maximal scores, ties averaged; zero gradient through the scores).
    #[serde(default, skip_serializing_if = "is_default")]
    pub attention: AttentionKind,
    /// Factor on the attention scores; `None` is the usual `1/√head_dim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_scale: Option<f64>,
    /// The blocks that have attention heads (`None`: every block). A block
    /// without heads is the identity through its residual, then its FFN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_blocks: Option<Vec<usize>>,
    /// A learned bias added to every embedded token (`embed.bias [d]`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub embed_bias: bool,
    /// Logits (default) or one value per read position.
    #[serde(default, skip_serializing_if = "is_default")]
    pub readout: Readout,
}

/// MLP baseline on the flattened one-hot sequence (`n·V` inputs), or on the
/// flattened token vectors (`n·d` inputs) with `vector_input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Token vocabulary size `V`.
    pub vocab: usize,
    /// Sequence length `n`.
    pub seq_len: usize,
    /// Number of output classes `C`.
    pub num_classes: usize,
    /// Width of every hidden layer.
    pub width: usize,
    /// Number of hidden layers (≥ 1).
    pub depth: usize,
    /// One output per sequence, or `n` outputs (one per position).
    pub task: Task,
    /// Tokens are real vectors of dimension `vocab`: the first layer reads
    /// the flattened `n·vocab` values (with ids it reads the one-hot).
    #[serde(default)]
    pub vector_input: bool,
}

/// Either model family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelConfig {
    /// Transformer encoder.
    Transformer(TransformerConfig),
    /// MLP baseline.
    Mlp(MlpConfig),
}

impl TransformerConfig {
    /// A config sized for `data` with the given widths; heads share `d_model`.
    pub fn for_data(data: &Dataset, d_model: usize, heads: usize, d_ff: usize, blocks: usize) -> Self {
        TransformerConfig {
            vocab: data.input_dim(),
            seq_len: data.seq_len(),
            num_classes: data.num_classes as usize,
            d_model,
            heads,
            head_dim: d_model.checked_div(heads).map_or(0, |h| h.max(1)),
            d_ff,
            blocks,
            positional: Positional::None,
            layer_norm: false,
            task: data.task(),
            vector_input: matches!(data.inputs, crate::data::Inputs::Vectors { .. }),
            ..TransformerConfig::trained()
        }
    }

    /// The defaults of the trained architecture for the fields a
    /// constructed model changes (softmax, `1/√d_h`, heads in every block,
    /// no embedding bias, logits), on an otherwise empty config: spread it
    /// into a literal, `TransformerConfig { vocab, .., ..TransformerConfig::trained() }`.
    pub fn trained() -> Self {
        TransformerConfig {
            vocab: 0,
            seq_len: 0,
            num_classes: 0,
            d_model: 0,
            heads: 0,
            head_dim: 0,
            d_ff: 0,
            blocks: 0,
            positional: Positional::None,
            layer_norm: false,
            task: Task::NextToken,
            vector_input: false,
            attention: AttentionKind::Softmax,
            attention_scale: None,
            attention_blocks: None,
            embed_bias: false,
            readout: Readout::Logits,
        }
    }

    /// Whether block `i` has attention heads.
    pub fn has_attention(&self, i: usize) -> bool {
        self.attention_blocks.as_ref().is_none_or(|b| b.contains(&i))
    }

    /// Number of blocks with attention heads.
    pub fn attention_block_count(&self) -> usize {
        match &self.attention_blocks {
            None => self.blocks,
            Some(b) => {
                let mut v: Vec<usize> = b.iter().copied().filter(|&i| i < self.blocks).collect();
                v.sort_unstable();
                v.dedup();
                v.len()
            }
        }
    }

    /// Outputs per read position: `C` logits or one value.
    pub fn out_dim(&self) -> usize {
        match self.readout {
            Readout::Logits => self.num_classes,
            Readout::Value => 1,
        }
    }

    /// The attention-score factor: `attention_scale`, or `1/√head_dim`.
    pub fn score_scale(&self) -> f64 {
        self.attention_scale.unwrap_or(1.0 / (self.head_dim.max(1) as f64).sqrt())
    }

    /// Closed-form parameter count:
    /// `V·d + [d] + [n·d] + a·4·d·h·d_h + blocks·(2·d·d_ff + d_ff + d + [4d]) + [2d] + o·d + o`
    /// (brackets: only with an embedding bias / positional encoding /
    /// LayerNorm; `a` blocks with attention, all by default; `o = C` logits or
    /// 1 value). Attention projections have no bias, as in the paper's
    /// `W_Q, W_K, W_V, W_O`.
    pub fn num_params(&self) -> usize {
        // Saturating: a config read from a file may hold absurd sizes, and a
        // wrapped count would slip past the size guard in `validate`.
        let (v, n, d) = (self.vocab, self.seq_len, self.d_model);
        let hd = self.heads.saturating_mul(self.head_dim);
        let ln = usize::from(self.layer_norm);
        let attn = d.saturating_mul(hd).saturating_mul(4);
        let ffn = d.saturating_mul(self.d_ff).saturating_mul(2).saturating_add(self.d_ff).saturating_add(d);
        let o = self.out_dim();
        [
            v.saturating_mul(d),
            usize::from(self.embed_bias) * d,
            usize::from(self.positional == Positional::Learned).saturating_mul(n.saturating_mul(d)),
            self.attention_block_count().saturating_mul(attn),
            self.blocks.saturating_mul(ffn.saturating_add(ln * 4 * d.min(usize::MAX / 8))),
            ln * 2 * d.min(usize::MAX / 8),
            o.saturating_mul(d).saturating_add(o),
        ]
        .into_iter()
        .fold(0usize, usize::saturating_add)
    }

    /// Reject configs that cannot be built.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab", self.vocab),
            ("seq_len", self.seq_len),
            ("num_classes", self.num_classes),
            ("d_model", self.d_model),
            ("heads", self.heads),
            ("head_dim", self.head_dim),
            ("d_ff", self.d_ff),
            ("blocks", self.blocks),
        ];
        for (name, v) in positive {
            if v == 0 {
                return cfg_err(format!("transformer: {name} must be positive"));
            }
        }
        if let Some(&b) = self.attention_blocks.as_ref().and_then(|a| a.iter().find(|&&b| b >= self.blocks)) {
            return cfg_err(format!("transformer: attention block {b} is out of range (blocks = {})", self.blocks));
        }
        // The forward runs in f32 (trained) or f64: a scale f32 turns into 0
        // or infinity would silently change or break the model.
        if let Some(s) =
            self.attention_scale.filter(|s| !s.is_finite() || s.abs() > 1e30 || (*s != 0.0 && s.abs() < 1e-30))
        {
            return cfg_err(format!(
                "transformer: attention_scale must be 0 or between 1e-30 and 1e30 in size, got {s:e}"
            ));
        }
        if self.num_params() > 500_000_000 {
            return cfg_err("transformer: more than 5e8 parameters is not a CPU experiment");
        }
        Ok(())
    }
}

impl MlpConfig {
    /// A config sized for `data`.
    pub fn for_data(data: &Dataset, width: usize, depth: usize) -> Self {
        MlpConfig {
            vocab: data.input_dim(),
            seq_len: data.seq_len(),
            num_classes: data.num_classes as usize,
            width,
            depth,
            task: data.task(),
            vector_input: matches!(data.inputs, crate::data::Inputs::Vectors { .. }),
        }
    }

    /// Number of outputs of the last layer: `C` or `n·C`.
    pub fn out_dim(&self) -> usize {
        match self.task {
            Task::NextToken => self.num_classes,
            Task::Seq2seq => self.seq_len.saturating_mul(self.num_classes),
        }
    }

    /// Closed-form parameter count:
    /// `(n·V)·w + w + (depth−1)·(w² + w) + w·out + out`, `out = C` or `n·C`.
    pub fn num_params(&self) -> usize {
        // Saturating, as for the Transformer.
        let w = self.width;
        let out = self.out_dim();
        [
            self.seq_len.saturating_mul(self.vocab).saturating_mul(w),
            w,
            self.depth.saturating_sub(1).saturating_mul(w.saturating_mul(w).saturating_add(w)),
            w.saturating_mul(out).saturating_add(out),
        ]
        .into_iter()
        .fold(0usize, usize::saturating_add)
    }

    /// Reject configs that cannot be built.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab", self.vocab),
            ("seq_len", self.seq_len),
            ("num_classes", self.num_classes),
            ("width", self.width),
            ("depth", self.depth),
        ];
        for (name, v) in positive {
            if v == 0 {
                return cfg_err(format!("mlp: {name} must be positive"));
            }
        }
        if self.num_params() > 500_000_000 {
            return cfg_err("mlp: more than 5e8 parameters is not a CPU experiment");
        }
        Ok(())
    }
}

impl ModelConfig {
    /// Closed-form parameter count of either family.
    pub fn num_params(&self) -> usize {
        match self {
            ModelConfig::Transformer(c) => c.num_params(),
            ModelConfig::Mlp(c) => c.num_params(),
        }
    }

    /// Validate the config on its own.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelConfig::Transformer(c) => c.validate(),
            ModelConfig::Mlp(c) => c.validate(),
        }
    }

    /// Refuse what cross-entropy training cannot use: a value readout (one
    /// output that must equal the label; constructed models only).
    ///
    /// # Errors
    /// [`crate::TrainError::InvalidConfig`] naming the field.
    pub fn validate_trainable(&self) -> Result<()> {
        if let ModelConfig::Transformer(c) = self {
            if c.readout == Readout::Value {
                return cfg_err("readout \"value\" is the readout of constructed models; training needs \"logits\"");
            }
        }
        Ok(())
    }

    /// `"transformer"` or `"mlp"`.
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Transformer(_) => "transformer",
            ModelConfig::Mlp(_) => "mlp",
        }
    }

    /// The data shape the model takes: `(vocab or input dimension, seq_len,
    /// num_classes, task, vector_input)`.
    pub fn dims(&self) -> (usize, usize, usize, Task, bool) {
        match self {
            ModelConfig::Transformer(c) => (c.vocab, c.seq_len, c.num_classes, c.task, c.vector_input),
            ModelConfig::Mlp(c) => (c.vocab, c.seq_len, c.num_classes, c.task, c.vector_input),
        }
    }

    /// Validate the config and check that it fits `data` (vocab, length,
    /// classes and readout).
    pub fn validate_for(&self, data: &Dataset) -> Result<()> {
        self.validate()?;
        data.validate()?;
        let vocab = data.input_dim();
        let vectors = matches!(data.inputs, crate::data::Inputs::Vectors { .. });
        let (v, n, c, task, vector_input) = self.dims();
        if vector_input != vectors {
            let kind = |v: bool| if v { "vector tokens" } else { "token ids" };
            return cfg_err(format!("model takes {}, data has {}", kind(vector_input), kind(vectors)));
        }
        if v != vocab {
            return cfg_err(format!("model input dimension (vocab) {v} != data's {vocab}"));
        }
        if n != data.seq_len() {
            return cfg_err(format!("model seq_len {n} != data seq_len {}", data.seq_len()));
        }
        if c != data.num_classes as usize {
            return cfg_err(format!("model num_classes {c} != data num_classes {}", data.num_classes));
        }
        if task != data.task() {
            return cfg_err(format!("model task {task:?} != data task {:?}", data.task()));
        }
        Ok(())
    }
}

/// Optimizer and schedule of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// AdamW peak learning rate (the constant rate with `Schedule::Constant`).
    pub lr: f64,
    /// Learning-rate schedule: linear warmup then cosine decay to 0
    /// (default), or constant.
    #[serde(default)]
    pub schedule: Schedule,
    /// Fraction of `max_steps` spent in linear warmup (warmup-cosine only), in [0, 1).
    #[serde(default = "default_warmup")]
    pub warmup_frac: f64,
    /// Clip the global gradient L2 norm to this value before every update
    /// (`None`: no clipping).
    #[serde(default = "default_clip")]
    pub grad_clip: Option<f64>,
    /// Decoupled weight decay (0 by default: decay fights memorization).
    #[serde(default)]
    pub weight_decay: f64,
    /// Adam β1.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Adam β2.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Adam ε.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Minibatch size; `None` = full batch.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Number of optimizer steps at most.
    pub max_steps: usize,
    /// Evaluate (full pass, exact argmax accuracy) every this many steps.
    pub eval_every: usize,
    /// Seed of the initialization and of the data order.
    pub seed: u64,
    /// Stop at the first evaluation with 100% training accuracy.
    #[serde(default = "default_true")]
    pub stop_when_memorized: bool,
    /// Data-parallel threads per step (≥ 1): each step's batch is split
    /// into this many contiguous shards whose forward and backward passes
    /// run concurrently, and the gradients are summed in shard order before
    /// the update. Deterministic for a fixed value; different values change
    /// the float summation order, so results agree only to rounding.
    /// candle's own ops stay single-threaded (see the crate docs,
    /// "Threading").
    #[serde(default = "default_threads")]
    pub threads: usize,
}

/// The largest step budget a run accepts (10^8 steps: weeks of CPU even for
/// tiny models); larger budgets are input errors, not hangs.
pub const MAX_STEPS: usize = 100_000_000;

/// The most data-parallel threads one run accepts ([`TrainConfig::threads`]).
pub const MAX_THREADS: usize = 256;

/// Learning-rate schedule of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Linear warmup from 0 over `warmup_frac · max_steps` steps, then cosine
    /// decay from `lr` to 0 at `max_steps` (the standard recipe; constant
    /// rates oscillate near memorization).
    #[default]
    WarmupCosine,
    /// `lr` at every step.
    Constant,
}

fn default_threads() -> usize {
    1
}
fn default_warmup() -> f64 {
    0.05
}
fn default_clip() -> Option<f64> {
    Some(1.0)
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_true() -> bool {
    true
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lr: 1e-2,
            schedule: Schedule::WarmupCosine,
            warmup_frac: default_warmup(),
            grad_clip: default_clip(),
            weight_decay: 0.0,
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            batch_size: None,
            max_steps: 2000,
            eval_every: 50,
            seed: 0,
            stop_when_memorized: true,
            threads: 1,
        }
    }
}

impl TrainConfig {
    /// The learning rate of update `step` (1-based, `1..=max_steps`).
    ///
    /// Warmup-cosine: `lr · step / W` for `step ≤ W = ⌈warmup_frac · max_steps⌉`,
    /// then `lr · ½ (1 + cos(π (step − W) / (max_steps − W)))`, which is 0 at
    /// `max_steps`.
    pub fn lr_at(&self, step: usize) -> f64 {
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::WarmupCosine => {
                let total = self.max_steps.max(1);
                let warm = ((self.warmup_frac * total as f64).ceil() as usize).min(total);
                if step <= warm {
                    self.lr * step as f64 / warm.max(1) as f64
                } else {
                    let span = (total - warm).max(1) as f64;
                    let progress = ((step - warm) as f64 / span).min(1.0);
                    self.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
                }
            }
        }
    }

    /// Reject schedules that cannot run.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return cfg_err(format!("train: learning rate (--lr) must be positive and finite, got {}", self.lr));
        }
        if !(self.warmup_frac.is_finite() && (0.0..1.0).contains(&self.warmup_frac)) {
            return cfg_err(format!("train: warmup fraction (--warmup) must be in [0, 1), got {}", self.warmup_frac));
        }
        if let Some(c) = self.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return cfg_err(format!("train: gradient clipping (--grad-clip) must be positive and finite, got {c}"));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return cfg_err(format!(
                "train: weight decay (--weight-decay) must be finite and >= 0, got {}",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return cfg_err(format!("train: betas must be in [0, 1), got {} and {}", self.beta1, self.beta2));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return cfg_err(format!("train: eps must be positive and finite, got {}", self.eps));
        }
        if self.batch_size == Some(0) {
            return cfg_err("train: batch_size must be positive");
        }
        if self.max_steps == 0 {
            return cfg_err("train: the step budget (--steps) must be at least 1");
        }
        if self.max_steps > MAX_STEPS {
            return cfg_err(format!(
                "train: the step budget (--steps) {} exceeds the limit {MAX_STEPS}",
                self.max_steps
            ));
        }
        if self.eval_every == 0 {
            return cfg_err("train: --eval-every must be at least 1");
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return cfg_err(format!(
                "train: data-parallel threads (--threads) must be in 1..={MAX_THREADS}, got {}",
                self.threads
            ));
        }
        Ok(())
    }
}
