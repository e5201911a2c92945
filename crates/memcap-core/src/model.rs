//! The model: a fixed-width encoder Transformer (docs/construction.md §3) with
//! **exact** rational weights, and its versioned JSON file format.
//!
//! Columns are tokens; Z ∈ Q^{m×n}.
//! ```text
//! Z_0 = W_E X + b_E 1ᵀ (+ P, when positional = learned; P ∈ Q^{m×n})
//! block ℓ = 1..L:
//!   Z ← Z + Σ_h W_O^h (W_V^h Z) σ[(W_K^h Z)ᵀ (W_Q^h Z)]      σ = column-wise softmax or hardmax
//!   Z ← Z + W_2 ReLU(W_1 Z + b_1 1ᵀ) + b_2 1ᵀ
//! out = w_oᵀ Z_L + b_o ∈ R^{1×n}
//! ```
//! Weights are stored sparsely (`[row, col, "value"]`, values as decimal
//! integers `"-12"` or fractions `"7/3"`), so nothing is rounded. A block
//! whose `heads` list is empty has W_Q = W_K = W_V = W_O = 0: its attention
//! adds exactly zero (the residual makes it the identity).

use crate::data::{Positional, Task};
use crate::error::ModelError;
use dashu_int::{IBig, UBig};
use dashu_ratio::RBig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The file format tag and version this build reads and writes.
pub const FORMAT: &str = "memcap-model";
/// Bumped on any incompatible change of the JSON layout.
pub const FORMAT_VERSION: u32 = 1;

/// An exact rational weight, serialized as a decimal string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Exact(pub RBig);

impl Serialize for Exact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_exact(&self.0))
    }
}

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_exact(&s).map(Exact).map_err(serde::de::Error::custom)
    }
}

/// "p" for integers, "p/q" otherwise.
pub fn fmt_exact(q: &RBig) -> String {
    if q.denominator() == &UBig::ONE {
        q.numerator().to_string()
    } else {
        format!("{}/{}", q.numerator(), q.denominator())
    }
}

/// Parses "p" or "p/q" (decimal; q > 0).
pub fn parse_exact(s: &str) -> Result<RBig, String> {
    let (p, q) = match s.split_once('/') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    };
    let num = IBig::from_str_radix(p.trim(), 10).map_err(|e| format!("bad numerator {p:?}: {e}"))?;
    let den = match q {
        Some(q) => UBig::from_str_radix(q.trim(), 10).map_err(|e| format!("bad denominator {q:?}: {e}"))?,
        None => UBig::ONE,
    };
    if den == UBig::ZERO {
        return Err(format!("zero denominator in {s:?}"));
    }
    Ok(RBig::from_parts(num, den))
}

/// Bits needed for one weight: max(bitlen |numerator|, bitlen denominator),
/// the convention of docs/construction.md §7.7.
pub fn weight_bits(q: &RBig) -> usize {
    use dashu_int::ops::{BitTest, UnsignedAbs};
    q.numerator().unsigned_abs().bit_len().max(q.denominator().bit_len())
}

/// A sparse matrix: `entries` are (row, col, value), zeros never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sparse {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Nonzero entries (row, col, value), 0-based, each position at most once.
    pub entries: Vec<(u32, u32, Exact)>,
}

impl Sparse {
    /// An all-zero rows×cols matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Sparse { rows, cols, entries: Vec::new() }
    }
    /// Adds `v` at (r, c); zero values are not stored.
    pub fn push(&mut self, r: usize, c: usize, v: RBig) {
        if v != RBig::ZERO {
            self.entries.push((r as u32, c as u32, Exact(v)));
        }
    }
    fn check(&self, what: &str, rows: usize, cols: usize) -> Result<(), ModelError> {
        if self.rows != rows || self.cols != cols {
            return Err(ModelError::Invalid(format!("{what} is {}×{}, expected {rows}×{cols}", self.rows, self.cols)));
        }
        if let Some((r, c, _)) = self.entries.iter().find(|(r, c, _)| *r as usize >= rows || *c as usize >= cols) {
            return Err(ModelError::Invalid(format!("{what} has entry ({r},{c}) outside {rows}×{cols}")));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some((r, c, _)) = self.entries.iter().find(|(r, c, _)| !seen.insert((*r, *c))) {
            return Err(ModelError::Invalid(format!("{what} has entry ({r},{c}) twice")));
        }
        Ok(())
    }
    /// The entries as a dense row-major f64 matrix (rounded to nearest).
    pub fn to_dense_f64(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.rows * self.cols];
        for (r, c, v) in &self.entries {
            out[*r as usize * self.cols + *c as usize] = v.0.to_f64().value();
        }
        out
    }
}

/// One attention head: W_Q, W_K, W_V ∈ Q^{s×m}, W_O ∈ Q^{m×s}.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// Query weights W_Q, s × m.
    pub wq: Sparse,
    /// Key weights W_K, s × m.
    pub wk: Sparse,
    /// Value weights W_V, s × m.
    pub wv: Sparse,
    /// Output weights W_O, m × s.
    pub wo: Sparse,
}

/// The token-wise FFN sublayer: W_1 ∈ Q^{q×m}, b_1 ∈ Q^q, W_2 ∈ Q^{m×q}, b_2 ∈ Q^m.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ffn {
    /// First layer W_1, q × m.
    pub w1: Sparse,
    /// Hidden bias b_1, q × 1.
    pub b1: Sparse,
    /// Second layer W_2, m × q.
    pub w2: Sparse,
    /// Output bias b_2, m × 1.
    pub b2: Sparse,
}

/// One block: attention heads (empty = zero attention) and the FFN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// The H heads, or none for a zero-attention (identity) sublayer.
    pub heads: Vec<Head>,
    /// The FFN sublayer.
    pub ffn: Ffn,
}

/// Attention normalization (softmax by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AttentionKind {
    /// Column-wise softmax; exact evaluation needs equal scores in every column
    /// (else [`ModelError::InexactSoftmax`]).
    #[default]
    Softmax,
    /// Uniform weight over the maximizing keys (ties averaged).
    Hardmax,
}

/// How inputs reach the embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum InputSpec {
    /// One-hot token ids: W_E has `vocab` columns.
    Ids {
        /// Vocabulary size V (= d).
        vocab: usize,
    },
    /// Real vectors of dimension d.
    Vectors {
        /// Token dimension d.
        d: usize,
    },
}

impl InputSpec {
    /// Embedding input dimension d.
    pub fn dim(&self) -> usize {
        match self {
            InputSpec::Ids { vocab } => *vocab,
            InputSpec::Vectors { d } => *d,
        }
    }
}

/// Architecture hyper-parameters (the fixed-width architecture that the dense
/// parameter count refers to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Input kind and embedding input dimension d.
    pub input: InputSpec,
    /// Sequence length n the model was built for (the position table size).
    pub seq_len: usize,
    /// Positional encoding; `Learned` requires [`Weights::pos`].
    pub positional: Positional,
    /// Which outputs are read: the last position (next-token) or every position.
    pub task: Task,
    /// Number of classes C of the dataset it was built for.
    pub num_classes: u32,
    /// Model width m.
    pub width: usize,
    /// FFN hidden width q.
    pub ffn_width: usize,
    /// Number of blocks L.
    pub blocks: usize,
    /// Heads H per block (the architecture's, even where a block's are zero).
    pub heads: usize,
    /// Head size s.
    pub head_dim: usize,
    /// Attention normalization σ of every block.
    pub attention: AttentionKind,
    /// Blocks whose attention is not identically zero (all others are the
    /// identity through the residual).
    pub attention_blocks: Vec<usize>,
    /// A name per register (row of Z), for reading traces.
    pub registers: Vec<String>,
}

/// All weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// W_E ∈ Q^{m×d}.
    pub embed: Sparse,
    /// b_E ∈ Q^m (an m×1 matrix).
    pub embed_bias: Sparse,
    /// P ∈ Q^{m×n}; present iff positional = learned.
    pub pos: Option<Sparse>,
    /// The L blocks, in order.
    pub blocks: Vec<Block>,
    /// w_oᵀ ∈ Q^{1×m}.
    pub readout: Sparse,
    /// b_o (a 1×1 matrix).
    pub readout_bias: Sparse,
}

/// A model file: format tag, version, config, weights, and free-form
/// provenance of the construction that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Format tag; must be [`FORMAT`].
    pub format: String,
    /// Format version; must be [`FORMAT_VERSION`].
    pub version: u32,
    /// Architecture hyper-parameters.
    pub config: ModelConfig,
    /// The exact weights.
    pub weights: Weights,
    /// Provenance (a serialized [`ConstructionInfo`](crate::construct::ConstructionInfo) for
    /// built models); `null`, and omitted from the JSON, when absent.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub construction: serde_json::Value,
}

/// Parameter and bit accounting of a model (docs/construction.md §7.7).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accounting {
    /// Number of blocks L (the depth).
    pub blocks: usize,
    /// Model width m.
    pub width: usize,
    /// FFN hidden width q.
    pub ffn_width: usize,
    /// Heads H per block.
    pub heads: usize,
    /// Head size s.
    pub head_dim: usize,
    /// Every entry of the fixed-width architecture, zeros included.
    pub params_dense: u64,
    /// Stored nonzero entries.
    pub params_nonzero: u64,
    /// Max over weights of max(bitlen numerator, bitlen denominator).
    pub max_weight_bits: usize,
    /// Σ over nonzero weights of (bitlen |num| + bitlen den if den > 1 + 1 sign bit).
    pub total_bits: u64,
    /// Nonzero weights that f64 cannot hold exactly.
    pub weights_inexact_f64: u64,
    /// Nonzero weights that f32 cannot hold exactly.
    pub weights_inexact_f32: u64,
}

impl Model {
    /// Parses and validates a model from JSON text, under the default
    /// [`Limits`](crate::Limits).
    ///
    /// # Errors
    /// See [`Model::from_json_with`].
    pub fn from_json(text: &str) -> Result<Model, ModelError> {
        Self::from_json_with(text, &crate::Limits::default())
    }

    /// Parses and validates a model from JSON text. Before any weight is
    /// parsed, the longest number in the text is held to
    /// `limits.max_weight_digits` (a linear scan); after validation, the
    /// declared architecture to `limits.max_dense_params`, so nothing sized
    /// by the config is allocated beyond it.
    ///
    /// # Errors
    /// [`ModelError::Invalid`] (not JSON, a repeated key, missing fields,
    /// shapes that disagree with the config), [`ModelError::Version`],
    /// [`ModelError::Limit`].
    pub fn from_json_with(text: &str, limits: &crate::Limits) -> Result<Model, ModelError> {
        let (digits, line) = crate::limits::longest_digit_run(text);
        if digits > limits.max_weight_digits {
            return Err(crate::LimitError {
                field: format!("digits of one number (line {line})"),
                value: digits.to_string(),
                limit: limits.max_weight_digits as u64,
                flag: Some("--max-weight-digits"),
            }
            .into());
        }
        #[derive(Deserialize)]
        struct Head {
            format: Option<serde_json::Value>,
            version: Option<serde_json::Value>,
        }
        let head: Head = serde_json::from_str(text).map_err(|e| ModelError::Invalid(format!("not valid JSON: {e}")))?;
        if head.format.as_ref().and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(ModelError::Invalid(format!("missing \"format\": \"{FORMAT}\"")));
        }
        let v = head.version.as_ref().and_then(|v| v.as_u64()).unwrap_or(0);
        if v != u64::from(FORMAT_VERSION) {
            return Err(ModelError::Version { got: u32::try_from(v).unwrap_or(u32::MAX), supported: FORMAT_VERSION });
        }
        let m: Model = serde_json::from_str(text).map_err(|e| ModelError::Invalid(e.to_string()))?;
        m.validate()?;
        m.check_limits(limits)?;
        Ok(m)
    }

    /// The dense parameter count of the declared architecture
    /// ([`Model::dense_param_formula`]) without overflow: `None` when it
    /// exceeds `u128`.
    pub fn dense_params_checked(&self) -> Option<u128> {
        let c = &self.config;
        let [m, q, s, h, d, l, n] =
            [c.width, c.ffn_width, c.head_dim, c.heads, c.input.dim(), c.blocks, c.seq_len].map(|x| x as u128);
        let pos = if c.positional == Positional::Learned { m.checked_mul(n)? } else { 0 };
        let attn = m.checked_mul(s)?.checked_mul(h)?.checked_mul(4)?;
        let ffn = m.checked_mul(q)?.checked_mul(2)?.checked_add(q)?.checked_add(m)?;
        let per_block = attn.checked_add(ffn)?;
        m.checked_mul(d)?.checked_add(m)?.checked_add(pos)?.checked_add(l.checked_mul(per_block)?)?.checked_add(m + 1)
    }

    /// Holds the declared architecture to `limits.max_dense_params`.
    ///
    /// # Errors
    /// [`ModelError::Limit`] naming every size of the config.
    pub fn check_limits(&self, limits: &crate::Limits) -> Result<(), ModelError> {
        let dense = self.dense_params_checked();
        if dense.is_some_and(|d| d <= u128::from(limits.max_dense_params)) {
            return Ok(());
        }
        let c = &self.config;
        Err(crate::LimitError {
            field: format!(
                "dense parameters of the config (width {}, ffn_width {}, heads {} × head_dim {}, input dim {}, blocks {}, seq_len {})",
                c.width, c.ffn_width, c.heads, c.head_dim, c.input.dim(), c.blocks, c.seq_len
            ),
            value: dense.map_or("more than 2^128".into(), |d| d.to_string()),
            limit: limits.max_dense_params,
            flag: Some("--max-dense-params"),
        }
        .into())
    }

    /// Serializes to JSON text (compact: models can have thousands of blocks).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("model serializes")
    }

    /// Checks every shape against the config.
    pub fn validate(&self) -> Result<(), ModelError> {
        let c = &self.config;
        let w = &self.weights;
        let (m, q, s, d) = (c.width, c.ffn_width, c.head_dim, c.input.dim());
        if m == 0 || c.seq_len == 0 {
            return Err(ModelError::Invalid("width and seq_len must be positive".into()));
        }
        if c.num_classes == 0 {
            return Err(ModelError::Invalid("config.num_classes must be at least 1".into()));
        }
        if d == 0 {
            return Err(ModelError::Invalid(
                "config.input: the vocabulary (or vector dimension) must be at least 1".into(),
            ));
        }
        if c.registers.len() != m {
            return Err(ModelError::Invalid(format!("{} register names for width {m}", c.registers.len())));
        }
        if w.blocks.len() != c.blocks {
            return Err(ModelError::Invalid(format!("{} blocks stored, config says {}", w.blocks.len(), c.blocks)));
        }
        w.embed.check("embed", m, d)?;
        w.embed_bias.check("embed_bias", m, 1)?;
        match (&w.pos, c.positional) {
            (Some(p), Positional::Learned) => p.check("pos", m, c.seq_len)?,
            (None, Positional::None) => {}
            _ => return Err(ModelError::Invalid("position table present iff positional = learned".into())),
        }
        let mut attn = Vec::new();
        for (l, b) in w.blocks.iter().enumerate() {
            if !b.heads.is_empty() {
                if b.heads.len() != c.heads {
                    return Err(ModelError::Invalid(format!(
                        "block {l} has {} heads, config says {}",
                        b.heads.len(),
                        c.heads
                    )));
                }
                attn.push(l);
            }
            for (h, hd) in b.heads.iter().enumerate() {
                hd.wq.check(&format!("block {l} head {h} wq"), s, m)?;
                hd.wk.check(&format!("block {l} head {h} wk"), s, m)?;
                hd.wv.check(&format!("block {l} head {h} wv"), s, m)?;
                hd.wo.check(&format!("block {l} head {h} wo"), m, s)?;
            }
            b.ffn.w1.check(&format!("block {l} w1"), q, m)?;
            b.ffn.b1.check(&format!("block {l} b1"), q, 1)?;
            b.ffn.w2.check(&format!("block {l} w2"), m, q)?;
            b.ffn.b2.check(&format!("block {l} b2"), m, 1)?;
        }
        if attn != c.attention_blocks {
            return Err(ModelError::Invalid(format!(
                "config.attention_blocks {:?} does not list the blocks with heads {:?}",
                c.attention_blocks, attn
            )));
        }
        w.readout.check("readout", 1, m)?;
        w.readout_bias.check("readout_bias", 1, 1)?;
        Ok(())
    }

    /// Every stored matrix, in a fixed order, with a PyTorch-style name.
    pub fn tensors(&self) -> Vec<(String, &Sparse)> {
        let w = &self.weights;
        let mut out = vec![("embed.weight".to_string(), &w.embed), ("embed.bias".to_string(), &w.embed_bias)];
        if let Some(p) = &w.pos {
            out.push(("pos.weight".to_string(), p));
        }
        for (l, b) in w.blocks.iter().enumerate() {
            for (h, hd) in b.heads.iter().enumerate() {
                for (n, t) in [("q", &hd.wq), ("k", &hd.wk), ("v", &hd.wv), ("o", &hd.wo)] {
                    out.push((format!("blocks.{l}.attn.{h}.{n}.weight"), t));
                }
            }
            out.push((format!("blocks.{l}.ffn.w1.weight"), &b.ffn.w1));
            out.push((format!("blocks.{l}.ffn.w1.bias"), &b.ffn.b1));
            out.push((format!("blocks.{l}.ffn.w2.weight"), &b.ffn.w2));
            out.push((format!("blocks.{l}.ffn.w2.bias"), &b.ffn.b2));
        }
        out.push(("readout.weight".to_string(), &w.readout));
        out.push(("readout.bias".to_string(), &w.readout_bias));
        out
    }

    /// The dense parameter count of the fixed-width architecture:
    /// (m d + m) [+ m n] + L (4 m s H + 2 m q + q + m) + (m + 1).
    /// Saturates at `u64::MAX` (models read from files are held to
    /// [`Limits::max_dense_params`](crate::Limits) far below it).
    pub fn dense_param_formula(&self) -> u64 {
        self.dense_params_checked().map_or(u64::MAX, |d| u64::try_from(d).unwrap_or(u64::MAX))
    }

    /// Parameters and bits (docs/construction.md §7.7).
    pub fn accounting(&self) -> Accounting {
        let c = &self.config;
        let mut nnz = 0u64;
        let mut max_bits = 0usize;
        let mut total = 0u64;
        let mut bad64 = 0u64;
        let mut bad32 = 0u64;
        for (_, t) in self.tensors() {
            for (_, _, v) in &t.entries {
                use dashu_int::ops::{BitTest, UnsignedAbs};
                nnz += 1;
                max_bits = max_bits.max(weight_bits(&v.0));
                let den = v.0.denominator();
                total += v.0.numerator().unsigned_abs().bit_len() as u64
                    + if *den > UBig::ONE { den.bit_len() as u64 } else { 0 }
                    + 1;
                if !v.0.to_f64().value().is_finite() || RBig::try_from(v.0.to_f64().value()).ok().as_ref() != Some(&v.0)
                {
                    bad64 += 1;
                }
                if !v.0.to_f32().value().is_finite()
                    || RBig::try_from(v.0.to_f32().value() as f64).ok().as_ref() != Some(&v.0)
                {
                    bad32 += 1;
                }
            }
        }
        Accounting {
            blocks: c.blocks,
            width: c.width,
            ffn_width: c.ffn_width,
            heads: c.heads,
            head_dim: c.head_dim,
            params_dense: self.dense_param_formula(),
            params_nonzero: nnz,
            max_weight_bits: max_bits,
            total_bits: total,
            weights_inexact_f64: bad64,
            weights_inexact_f32: bad32,
        }
    }
}

/// Order-of-magnitude lower bound on parameters for memorizing N next-token
/// labels, √(N / log2 N) (docs/construction.md §9.1; constants unknown, so this is a
/// scale to compare against, not a sharp bound).
pub fn lower_bound_params(n_examples: usize) -> f64 {
    let n = n_examples.max(2) as f64;
    (n / n.log2()).sqrt()
}

/// Least-squares slope of log y against log x over the points with x, y > 0;
/// None with fewer than two such points or no spread in x. The scaling claims
/// (parameters ~ N^slope) are read off this.
pub fn loglog_slope(pts: &[(f64, f64)]) -> Option<f64> {
    let l: Vec<(f64, f64)> = pts.iter().filter(|(x, y)| *x > 0.0 && *y > 0.0).map(|(x, y)| (x.ln(), y.ln())).collect();
    if l.len() < 2 {
        return None;
    }
    let n = l.len() as f64;
    let (mx, my) = (l.iter().map(|p| p.0).sum::<f64>() / n, l.iter().map(|p| p.1).sum::<f64>() / n);
    let sxy: f64 = l.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = l.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}
