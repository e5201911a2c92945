//! The two model families as candle computations over explicit variables.
//!
//! Why not `candle_nn` layers: candle's fused `softmax_last_dim`,
//! `layer_norm` and `rms_norm` kernels have no backward pass (candle issue
//! #3569), so softmax, LayerNorm and cross-entropy are written here from
//! differentiable primitives (`exp`, `sum_keepdim`, `broadcast_*`,
//! `gather`). We also want seeded ChaCha initialization and PyTorch-style
//! names/layouts, which is simplest with hand-made `Var`s.
//!
//! Shapes: `b` batch, `n` sequence length, `d` model width, `h` heads,
//! `dh` head width, `C` classes, `V` vocabulary.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::{DType, Device, Tensor, Var, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::{AttentionKind, MlpConfig, ModelConfig, TransformerConfig};
use crate::data::{Positional, Task};
use crate::error::{cfg_err, Result, TrainError};

/// Weights as `(PyTorch name, PyTorch shape, row-major f32 values)`.
pub type NamedWeights = Vec<(String, Vec<usize>, Vec<f32>)>;

/// A variable with its PyTorch name.
#[derive(Debug, Clone)]
pub struct NamedVar {
    /// PyTorch-style name, e.g. `blocks.0.attn.q_proj.weight`.
    pub name: String,
    /// The candle variable (shape as used internally).
    pub var: Var,
    /// The internal layout is the transpose of the PyTorch one (only the
    /// MLP's first layer, stored `[n·V, w]` so a one-hot matmul becomes a
    /// row gather).
    pub transposed: bool,
}

/// One block's attention projections, all heads stacked: `q, k, v
/// [h·d_h, d]`, `o [d, h·d_h]`.
struct Attention {
    q: Var,
    k: Var,
    v: Var,
    o: Var,
}

struct Block {
    /// `None`: a block without heads (identity through the residual).
    attn: Option<Attention>,
    fc1_w: Var,
    fc1_b: Var,
    fc2_w: Var,
    fc2_b: Var,
    ln1: Option<(Var, Var)>,
    ln2: Option<(Var, Var)>,
}

struct TransformerParams {
    cfg: TransformerConfig,
    embed: Var,
    embed_b: Option<Var>,
    pos: Option<Var>,
    blocks: Vec<Block>,
    ln_f: Option<(Var, Var)>,
    head_w: Var,
    head_b: Var,
}

struct MlpParams {
    cfg: MlpConfig,
    /// `(weight, bias)`; layer 0's weight is `[n·V, w]`, the rest `[out, in]`.
    layers: Vec<(Var, Var)>,
}

enum Params {
    Transformer(TransformerParams),
    Mlp(MlpParams),
}

/// A model: its config and its variables.
pub struct Model {
    cfg: ModelConfig,
    vars: Vec<NamedVar>,
    params: Params,
}

/// Where a variable's values come from: a seeded random init (training),
/// or given tensors in PyTorch layout (a constructed model, a stored run).
/// The same `build_*` code asks for every variable by name and shape either
/// way, as candle's `linear(in, out, vb)` does with a `VarBuilder`.
enum Source<'a> {
    Random(&'a mut ChaCha8Rng),
    Given { tensors: &'a BTreeMap<String, Tensor>, used: BTreeSet<String> },
}

/// Variable factory: registers names in creation order.
struct Init<'a> {
    src: Source<'a>,
    vars: Vec<NamedVar>,
}

impl Init<'_> {
    /// The variable `name` with PyTorch shape `shape` (the internal layout is
    /// its transpose when `transposed`): the given tensor, or `random()`.
    fn var(
        &mut self,
        name: String,
        shape: &[usize],
        transposed: bool,
        random: impl FnOnce(&mut ChaCha8Rng) -> Vec<f32>,
    ) -> Result<Var> {
        let internal: Vec<usize> = if transposed { shape.iter().rev().copied().collect() } else { shape.to_vec() };
        let t = match &mut self.src {
            Source::Random(rng) => Tensor::from_vec(random(rng), internal.as_slice(), &Device::Cpu)?,
            Source::Given { tensors, used } => {
                let t = tensors
                    .get(&name)
                    .ok_or_else(|| TrainError::InvalidConfig(format!("missing tensor {name} (shape {shape:?})")))?;
                if t.dims() != shape {
                    return cfg_err(format!("tensor {name}: shape {:?}, the config needs {shape:?}", t.dims()));
                }
                used.insert(name.clone());
                if transposed {
                    t.t()?.contiguous()?
                } else {
                    t.clone()
                }
            }
        };
        let var = Var::from_tensor(&t)?;
        self.vars.push(NamedVar { name, var: var.clone(), transposed });
        Ok(var)
    }

    /// PyTorch's `nn.Linear` default: U(−1/√fan_in, 1/√fan_in).
    fn uniform(&mut self, name: String, shape: &[usize], fan_in: usize) -> Result<Var> {
        self.uniform_t(name, shape, fan_in, false)
    }

    /// [`Init::uniform`], stored transposed when `transposed` (`shape` is
    /// the PyTorch one either way).
    fn uniform_t(&mut self, name: String, shape: &[usize], fan_in: usize, transposed: bool) -> Result<Var> {
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        let count: usize = shape.iter().product();
        self.var(name, shape, transposed, |rng| (0..count).map(|_| rng.gen_range(-bound..=bound)).collect())
    }

    /// N(0, std²) by Box–Muller (rand 0.8 without rand_distr has no normal).
    fn normal(&mut self, name: String, shape: &[usize], std: f32) -> Result<Var> {
        let count: usize = shape.iter().product();
        self.var(name, shape, false, |rng| {
            let mut data = Vec::with_capacity(count);
            while data.len() < count {
                let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
                let u2: f32 = rng.gen();
                let r = (-2.0 * u1.ln()).sqrt();
                let t = 2.0 * std::f32::consts::PI * u2;
                data.push(std * r * t.cos());
                if data.len() < count {
                    data.push(std * r * t.sin());
                }
            }
            data
        })
    }

    fn constant(&mut self, name: String, shape: &[usize], value: f32) -> Result<Var> {
        let count: usize = shape.iter().product();
        self.var(name, shape, false, |_| vec![value; count])
    }

    fn layer_norm(&mut self, prefix: &str, d: usize) -> Result<(Var, Var)> {
        Ok((self.constant(format!("{prefix}.weight"), &[d], 1.0)?, self.constant(format!("{prefix}.bias"), &[d], 0.0)?))
    }

    /// Refuse given tensors that no variable took (a misspelt or foreign
    /// name is an error, not a weight silently dropped), and mixed dtypes.
    fn finish(self) -> Result<Vec<NamedVar>> {
        if let Source::Given { tensors, used } = &self.src {
            if let Some(extra) = tensors.keys().find(|k| !used.contains(*k)) {
                return cfg_err(format!("tensor {extra} is not a parameter of this config"));
            }
            let dtypes: BTreeSet<_> = tensors.values().map(|t| format!("{:?}", t.dtype())).collect();
            if dtypes.len() > 1 {
                return cfg_err(format!("tensors mix dtypes {dtypes:?}; give one of f32 or f64"));
            }
        }
        Ok(self.vars)
    }
}

impl Model {
    /// Build a model with seeded initialization (f32). The config must be valid.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for an invalid config; candle failures.
    pub fn new(cfg: &ModelConfig, rng: &mut ChaCha8Rng) -> Result<Model> {
        Self::build(cfg, Source::Random(rng))
    }

    /// Build a model from given weights: `tensors` maps every PyTorch name
    /// of `cfg`'s parameters ([`Model::vars`]) to a tensor of its PyTorch
    /// shape (`[out, in]` matrices), all f32 or all f64. The forward pass
    /// then runs in that dtype. This is candle's `Linear::new(weight, bias)`
    /// beside the random init of [`Model::new`]; a constructed model enters
    /// through it ([`Model::from_construction`]).
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for an invalid config, a missing tensor,
    /// a tensor of the wrong shape, a tensor that is no parameter of `cfg`,
    /// or mixed dtypes.
    pub fn from_tensors(cfg: &ModelConfig, tensors: &BTreeMap<String, Tensor>) -> Result<Model> {
        Self::build(cfg, Source::Given { tensors, used: BTreeSet::new() })
    }

    fn build(cfg: &ModelConfig, src: Source<'_>) -> Result<Model> {
        cfg.validate()?;
        let mut init = Init { src, vars: Vec::new() };
        let params = match cfg {
            ModelConfig::Transformer(c) => Params::Transformer(build_transformer(c, &mut init)?),
            ModelConfig::Mlp(c) => Params::Mlp(build_mlp(c, &mut init)?),
        };
        Ok(Model { cfg: cfg.clone(), vars: init.finish()?, params })
    }

    /// The float type the model computes in (f32 when trained; f32 or f64
    /// when built from given tensors).
    pub fn dtype(&self) -> DType {
        self.vars.first().map_or(DType::F32, |v| v.var.dtype())
    }

    /// The config this model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// All variables with their PyTorch names, in creation order.
    pub fn vars(&self) -> &[NamedVar] {
        &self.vars
    }

    /// Number of scalar parameters actually allocated.
    pub fn allocated_params(&self) -> usize {
        self.vars.iter().map(|v| v.var.elem_count()).sum()
    }

    /// The variables as a `candle_nn::VarMap` (names → vars), e.g. for
    /// candle tooling; shares storage with the model.
    pub fn varmap(&self) -> candle_nn::VarMap {
        let vm = candle_nn::VarMap::new();
        {
            // A poisoned lock can only come from a panic in another thread
            // holding this brand-new map, which cannot happen.
            let mut data = vm.data().lock().unwrap_or_else(|e| e.into_inner());
            for v in &self.vars {
                data.insert(v.name.clone(), v.var.clone());
            }
        }
        vm
    }

    /// Logits for a batch of token ids `[b, n]` (u32), or of token vectors
    /// `[b, n, d]` (f32) with `vector_input`: `[b, C]` for
    /// next-token, `[b·n, C]` (row `i·n + pos`) for seq2seq. With
    /// `detached`, no autograd graph is recorded (evaluation).
    pub fn logits(&self, tokens: &Tensor, detached: bool) -> Result<Tensor> {
        let p = |v: &Var| if detached { v.as_tensor().detach() } else { v.as_tensor().clone() };
        match &self.params {
            Params::Transformer(t) => transformer_forward(t, tokens, &p, !detached),
            Params::Mlp(m) => mlp_forward(m, tokens, &p),
        }
    }

    /// Weights in PyTorch layout, as f32: `(name, shape, values)`, sorted by name.
    ///
    /// # Errors
    /// Candle failures.
    pub fn export(&self) -> Result<NamedWeights> {
        let mut out = Vec::with_capacity(self.vars.len());
        for (name, t) in self.tensors()? {
            out.push((name, t.dims().to_vec(), t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?));
        }
        Ok(out)
    }

    /// The variables in PyTorch layout (`[out, in]`), in their own dtype,
    /// sorted by name: exactly what the forward pass runs, and what
    /// [`Model::from_tensors`] takes back.
    ///
    /// # Errors
    /// Candle failures.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(self.vars.len());
        for v in &self.vars {
            let t = if v.transposed { v.var.as_tensor().t()?.contiguous()? } else { v.var.as_tensor().clone() };
            out.push((v.name.clone(), t));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// The candle dtype a float type computes in.
pub fn candle_dtype(t: memcap_core::certificate::FloatType) -> DType {
    match t {
        memcap_core::certificate::FloatType::F64 => DType::F64,
        memcap_core::certificate::FloatType::F32 => DType::F32,
    }
}

/// The Transformer config of a constructed model (README "Model format"):
/// its widths, attention scale 1, its attention kind, heads only in the
/// blocks that have them, an embedding bias and a value readout.
///
/// # Errors
/// [`TrainError::InvalidConfig`] when a block has some heads but not the
/// architecture's `H`, or the model's shapes are invalid.
pub fn construction_config(m: &memcap_core::Model) -> Result<TransformerConfig> {
    let c = &m.config;
    let (vocab, vector_input) = match c.input {
        memcap_core::model::InputSpec::Ids { vocab } => (vocab, false),
        memcap_core::model::InputSpec::Vectors { d } => (d, true),
    };
    let mut attention_blocks = Vec::new();
    for (l, b) in m.weights.blocks.iter().enumerate() {
        if b.heads.is_empty() {
            continue;
        }
        if b.heads.len() != c.heads {
            return cfg_err(format!("block {l} has {} heads, the architecture {}", b.heads.len(), c.heads));
        }
        attention_blocks.push(l);
    }
    Ok(TransformerConfig {
        vocab,
        seq_len: c.seq_len,
        num_classes: c.num_classes as usize,
        d_model: c.width,
        // A model without any attention still names one head of width 1; no
        // block allocates it.
        heads: c.heads.max(1),
        head_dim: c.head_dim.max(1),
        d_ff: c.ffn_width,
        blocks: c.blocks,
        positional: c.positional,
        layer_norm: false,
        task: c.task,
        vector_input,
        attention: c.attention,
        attention_scale: Some(1.0),
        attention_blocks: Some(attention_blocks),
        embed_bias: true,
        readout: crate::config::Readout::Value,
    })
}

/// The weights of a constructed model in the PyTorch names and layouts of
/// [`Model::tensors`], rounded to `dtype` (f64 or f32; a weight is exact
/// when the model was constructed for that precision, `memcap construct
/// --precision`): `embed.weight [V, m] = W_Eᵀ`, `embed.bias [m]`,
/// `pos_embed.weight [n, m] = Pᵀ`, per block with heads the heads' `W_Q`
/// (`s × m` each) stacked into `q_proj [H·s, m]` (likewise `k`, `v`) and
/// their `W_O` (`m × s`) side by side in `o_proj [m, H·s]`, `fc1 = W_1`,
/// `fc2 = W_2`, and `head.weight [1, m] = w_oᵀ`, `head.bias [1]`.
///
/// # Errors
/// [`TrainError::InvalidConfig`] for a dtype other than f32/f64 or
/// inconsistent shapes; candle failures.
pub fn construction_tensors(m: &memcap_core::Model, dtype: DType) -> Result<BTreeMap<String, Tensor>> {
    use memcap_core::model::Sparse;
    if !matches!(dtype, DType::F32 | DType::F64) {
        return cfg_err(format!("a constructed model runs in f32 or f64, not {dtype:?}"));
    }
    // Each exact matrix as a dense tensor in its own [rows, cols] layout; the
    // PyTorch layouts below are transposes and concatenations of these.
    let dense =
        |s: &Sparse| -> Result<Tensor> { Ok(Tensor::from_vec(s.to_dense_f64(), (s.rows, s.cols), &Device::Cpu)?) };
    let vector = |s: &Sparse| -> Result<Tensor> { Ok(dense(s)?.flatten_all()?) };
    let mut out = BTreeMap::new();
    let mut put = |name: String, t: Tensor| -> Result<()> {
        out.insert(name, t.contiguous()?.to_dtype(dtype)?);
        Ok(())
    };
    let w = &m.weights;
    put("embed.weight".into(), dense(&w.embed)?.t()?)?;
    put("embed.bias".into(), vector(&w.embed_bias)?)?;
    if let Some(p) = &w.pos {
        put("pos_embed.weight".into(), dense(p)?.t()?)?;
    }
    for (l, b) in w.blocks.iter().enumerate() {
        let pre = format!("blocks.{l}");
        if !b.heads.is_empty() {
            // q, k, v: the heads' rows one after the other; o: their columns side by side.
            let cat = |pick: &dyn Fn(&memcap_core::model::Head) -> &Sparse, dim: usize| -> Result<Tensor> {
                let parts = b.heads.iter().map(|h| dense(pick(h))).collect::<Result<Vec<_>>>()?;
                Ok(Tensor::cat(&parts, dim)?)
            };
            put(format!("{pre}.attn.q_proj.weight"), cat(&|h| &h.wq, 0)?)?;
            put(format!("{pre}.attn.k_proj.weight"), cat(&|h| &h.wk, 0)?)?;
            put(format!("{pre}.attn.v_proj.weight"), cat(&|h| &h.wv, 0)?)?;
            put(format!("{pre}.attn.o_proj.weight"), cat(&|h| &h.wo, 1)?)?;
        }
        let f = &b.ffn;
        put(format!("{pre}.ffn.fc1.weight"), dense(&f.w1)?)?;
        put(format!("{pre}.ffn.fc1.bias"), vector(&f.b1)?)?;
        put(format!("{pre}.ffn.fc2.weight"), dense(&f.w2)?)?;
        put(format!("{pre}.ffn.fc2.bias"), vector(&f.b2)?)?;
    }
    put("head.weight".into(), dense(&w.readout)?)?;
    put("head.bias".into(), vector(&w.readout_bias)?)?;
    Ok(out)
}

impl Model {
    /// A constructed model (memcap-core's exact `Model`) as this crate's
    /// Transformer, computing in `dtype` (f64 or f32): the config of
    /// [`construction_config`] and the weights of [`construction_tensors`].
    /// Its forward pass is the one trained models run; its output per read
    /// position is one value, which for a memorizing model in a precision it
    /// was constructed for equals the label (the exact engine is the oracle:
    /// `tests/one_forward.rs`).
    ///
    /// # Errors
    /// As [`construction_config`], [`construction_tensors`] and
    /// [`Model::from_tensors`].
    pub fn from_construction(m: &memcap_core::Model, dtype: DType) -> Result<Model> {
        let cfg = ModelConfig::Transformer(construction_config(m)?);
        Model::from_tensors(&cfg, &construction_tensors(m, dtype)?)
    }
}

/// A constructed model run through the Transformer forward pass in `dtype`
/// ([`Model::from_construction`]) on every example of `ds`: the values at
/// the read positions, `[N][1]` (next-token) or `[N][n]` (seq2seq), widened
/// to f64 without change. Runs `batch` examples at a time and calls
/// `progress(done)` after each batch. A float run: whether it equals the
/// exact one is the certificate's question (`memcap_core::certificate`).
///
/// # Errors
/// As [`Model::from_construction`]; [`TrainError::Data`] for data the model
/// cannot read; candle failures.
pub fn construction_outputs(
    m: &memcap_core::Model,
    ds: &crate::data::Dataset,
    dtype: DType,
    batch: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f64>>> {
    let model = Model::from_construction(m, dtype)?;
    model.config().validate_for(ds)?;
    let tokens = crate::data::input_tensor(ds)?;
    let (n_ex, n) = (ds.len(), ds.seq_len());
    let per = if ds.task() == Task::NextToken { 1 } else { n };
    let mut out = Vec::with_capacity(n_ex);
    let mut start = 0;
    while start < n_ex {
        let len = batch.max(1).min(n_ex - start);
        let vals = model
            .logits(&tokens.narrow(0, start, len)?, true)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        out.extend(vals.chunks(per).map(<[f64]>::to_vec));
        start += len;
        progress(start);
    }
    Ok(out)
}

fn build_transformer(c: &TransformerConfig, init: &mut Init<'_>) -> Result<TransformerParams> {
    let (d, hd) = (c.d_model, c.heads * c.head_dim);
    // Id rows are N(0, 1); a projection of d_in-dimensional vectors is
    // N(0, 1/d_in), so projected tokens also have unit scale.
    let std = if c.vector_input { 1.0 / (c.vocab.max(1) as f32).sqrt() } else { 1.0 };
    let embed = init.normal("embed.weight".into(), &[c.vocab, d], std)?;
    let embed_b = if c.embed_bias { Some(init.constant("embed.bias".into(), &[d], 0.0)?) } else { None };
    let pos = if c.positional == Positional::Learned {
        Some(init.normal("pos_embed.weight".into(), &[c.seq_len, d], 1.0)?)
    } else {
        None
    };
    let mut blocks = Vec::with_capacity(c.blocks);
    for i in 0..c.blocks {
        let p = format!("blocks.{i}");
        let ln1 = if c.layer_norm { Some(init.layer_norm(&format!("{p}.ln1"), d)?) } else { None };
        let attn = if c.has_attention(i) {
            Some(Attention {
                q: init.uniform(format!("{p}.attn.q_proj.weight"), &[hd, d], d)?,
                k: init.uniform(format!("{p}.attn.k_proj.weight"), &[hd, d], d)?,
                v: init.uniform(format!("{p}.attn.v_proj.weight"), &[hd, d], d)?,
                o: init.uniform(format!("{p}.attn.o_proj.weight"), &[d, hd], hd)?,
            })
        } else {
            None
        };
        let ln2 = if c.layer_norm { Some(init.layer_norm(&format!("{p}.ln2"), d)?) } else { None };
        let fc1_w = init.uniform(format!("{p}.ffn.fc1.weight"), &[c.d_ff, d], d)?;
        let fc1_b = init.uniform(format!("{p}.ffn.fc1.bias"), &[c.d_ff], d)?;
        let fc2_w = init.uniform(format!("{p}.ffn.fc2.weight"), &[d, c.d_ff], c.d_ff)?;
        let fc2_b = init.uniform(format!("{p}.ffn.fc2.bias"), &[d], c.d_ff)?;
        blocks.push(Block { attn, fc1_w, fc1_b, fc2_w, fc2_b, ln1, ln2 });
    }
    let ln_f = if c.layer_norm { Some(init.layer_norm("ln_f", d)?) } else { None };
    let head_w = init.uniform("head.weight".into(), &[c.out_dim(), d], d)?;
    let head_b = init.uniform("head.bias".into(), &[c.out_dim()], d)?;
    Ok(TransformerParams { cfg: c.clone(), embed, embed_b, pos, blocks, ln_f, head_w, head_b })
}

fn build_mlp(c: &MlpConfig, init: &mut Init<'_>) -> Result<MlpParams> {
    let fan_in0 = c.seq_len * c.vocab;
    let mut layers = Vec::with_capacity(c.depth + 1);
    // Fan-in of a one-hot input is n·V in PyTorch's formula even though only
    // n entries are non-zero; we keep PyTorch's init so the baselines match.
    let w0 = init.uniform_t("layers.0.weight".into(), &[c.width, fan_in0], fan_in0, true)?;
    let b0 = init.uniform("layers.0.bias".into(), &[c.width], fan_in0)?;
    layers.push((w0, b0));
    for i in 1..c.depth {
        let w = init.uniform(format!("layers.{i}.weight"), &[c.width, c.width], c.width)?;
        let b = init.uniform(format!("layers.{i}.bias"), &[c.width], c.width)?;
        layers.push((w, b));
    }
    let out = c.out_dim();
    let wl = init.uniform(format!("layers.{}.weight", c.depth), &[out, c.width], c.width)?;
    let bl = init.uniform(format!("layers.{}.bias", c.depth), &[out], c.width)?;
    layers.push((wl, bl));
    Ok(MlpParams { cfg: c.clone(), layers })
}

/// `x [.., in] · wᵀ (+ b)` for a PyTorch-layout weight `w [out, in]`.
fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (inner, rows) = match dims.split_last() {
        Some((&inner, lead)) => (inner, lead.iter().product::<usize>()),
        None => (1, 1),
    };
    // [rows, in] · [in, out] -> [rows, out]; `t()` is a strided view, which
    // gemm consumes without a copy.
    let y = x.reshape((rows, inner))?.matmul(&w.t()?)?;
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut out_dims = dims;
    if let Some(last) = out_dims.last_mut() {
        *last = w.dim(0)?;
    }
    Ok(y.reshape(out_dims)?)
}

/// Softmax over the last dim from differentiable ops. The max is detached:
/// softmax is shift-invariant, so its gradient is not needed.
pub(crate) fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// LayerNorm over the last dim (ε = 1e-5 like PyTorch), differentiable.
fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
    Ok(xn.broadcast_mul(w)?.broadcast_add(b)?)
}

/// Mean cross-entropy of `logits [M, C]` against `labels [M]` (u32), from
/// differentiable ops (log-sum-exp with a detached max, then `gather`).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let m = logits.max_keepdim(D::Minus1)?.detach();
    let z = logits.broadcast_sub(&m)?;
    let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let logp = z.broadcast_sub(&lse)?; // [M, C]
    let picked = logp.gather(&labels.unsqueeze(1)?, 1)?; // [M, 1]
    Ok(picked.mean_all()?.neg()?)
}

/// Hardmax over the last dim: uniform weight on the maximal entries (ties
/// averaged), as the exact engine defines it. No gradient reaches `x`.
fn hardmax_last(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(D::Minus1)?;
    let ties = x.broadcast_eq(&m)?.to_dtype(x.dtype())?.detach();
    Ok(ties.broadcast_div(&ties.sum_keepdim(D::Minus1)?)?)
}

/// Single-query softmax attention in the absorbed form, for the last block
/// of a next-token model (one query per sequence).
///
/// The standard form projects every position, `K = X·W_Kᵀ`, `V = X·W_Vᵀ`,
/// then attends: `2·n·d·h·d_h + 2·h·n·d_h` multiply-adds per sequence
/// besides the query. With a single query the projections can be moved onto
/// the query side instead: `score_h,j = (q_h·W_K,h)·x_j` and
/// `o_h = W_V,h·(Σ_j a_h,j·x_j)`, which costs `2·h·d_h·d + 2·h·n·d`: the
/// term that grows with `n` is `d_h` times smaller. It also gives the
/// autograd graph two big `[b, n, d]` nodes instead of about a dozen (each
/// big node costs a zero-fill and an add in candle's backward). The
/// function is the same; float rounding differs from the standard form in
/// the last bits, so it is used only for gradient passes: every detached
/// pass (evaluation, export, constructions) runs the standard form that
/// PyTorch and ONNX run (invariant "one float forward" in ARCHITECTURE.md).
///
/// Shapes: `hx [b, n, d]` (the block's input), `hq [b, d]` (its last row),
/// `wq, wk, wv [h·d_h, d]` (PyTorch layout); returns `[b, 1, h·d_h]`, the
/// heads' outputs side by side, as the standard form does.
fn absorbed_last_query_attention(
    hx: &Tensor,
    hq: &Tensor,
    (wq, wk, wv): (&Tensor, &Tensor, &Tensor),
    (h, dh): (usize, usize),
    scale: f64,
) -> Result<Tensor> {
    let (b, _n, d) = hx.dims3()?;
    let q = hq.matmul(&wq.t()?)?.reshape((b, h, dh))?.transpose(0, 1)?; // [h, b, dh]
    let u = q.matmul(&wk.reshape((h, dh, d))?)?; // [h, b, d]: q_h·W_K,h
    let mut scores = u.transpose(0, 1)?.matmul(&hx.t()?)?; // [b, h, d]·[b, d, n] -> [b, h, n]
    if scale != 1.0 {
        scores = (scores * scale)?;
    }
    let z = softmax_last(&scores)?.matmul(hx)?; // [b, h, n]·[b, n, d] -> [b, h, d]
    let o = z.transpose(0, 1)?.matmul(&wv.reshape((h, dh, d))?.t()?)?; // [h, b, d]·[h, d, dh] -> [h, b, dh]
    Ok(o.transpose(0, 1)?.contiguous()?.reshape((b, 1, h * dh))?)
}

/// The Transformer's forward. `gradient_pass` selects the absorbed
/// single-query attention for the last block of a softmax next-token model
/// ([`absorbed_last_query_attention`]); detached passes never use it.
fn transformer_forward(
    t: &TransformerParams,
    tokens: &Tensor,
    p: &dyn Fn(&Var) -> Tensor,
    gradient_pass: bool,
) -> Result<Tensor> {
    let c = &t.cfg;
    let (b, n) = (tokens.dim(0)?, tokens.dim(1)?);
    let (d, h, dh) = (c.d_model, c.heads, c.head_dim);
    let embed = p(&t.embed);
    let mut x = if c.vector_input {
        // [b, n, d_in] -> [b·n, d_in] · [d_in, d] -> [b, n, d], in the model's dtype.
        tokens.to_dtype(embed.dtype())?.reshape((b * n, c.vocab))?.matmul(&embed)?.reshape((b, n, d))?
    } else {
        // [b·n] -> [b·n, d] -> [b, n, d]
        embed.index_select(&tokens.flatten_all()?, 0)?.reshape((b, n, d))?
    };
    if let Some(eb) = &t.embed_b {
        x = x.broadcast_add(&p(eb))?; // + [d]
    }
    if let Some(pos) = &t.pos {
        x = x.broadcast_add(&p(pos))?; // + [n, d]
    }
    let last_only = c.task == Task::NextToken;
    let scale = c.score_scale();
    for (i, blk) in t.blocks.iter().enumerate() {
        // With a last-position readout, the final block only needs the last
        // query: the result at the readout is identical and the block's
        // attention/FFN cost drops by a factor n.
        let q_last = last_only && i + 1 == t.blocks.len();
        let nq = if q_last { 1 } else { n };
        if let Some(at) = &blk.attn {
            let hx = match &blk.ln1 {
                Some((w, bb)) => layer_norm(&x, &p(w), &p(bb))?,
                None => x.clone(),
            };
            // Projections run on 2-D views ([rows, d] · wᵀ); every reshape
            // is a node whose backward zero-fills and adds a gradient of
            // its size, so the big [b·n, ·] tensors get as few as possible.
            let hq = if q_last { hx.narrow(1, n - 1, 1)?.reshape((b, d))? } else { hx.reshape((b * n, d))? };
            // [b·m, h·dh] -> [b, m, h, dh] -> [b, h, m, dh]
            let split = |y: Tensor, m: usize| -> Result<Tensor> {
                Ok(y.reshape((b, m, h, dh))?.transpose(1, 2)?.contiguous()?)
            };
            let o = if q_last && gradient_pass && c.attention == AttentionKind::Softmax {
                absorbed_last_query_attention(&hx, &hq, (&p(&at.q), &p(&at.k), &p(&at.v)), (h, dh), scale)?
            } else {
                let hx2 = if q_last { hx.reshape((b * n, d))? } else { hq.clone() };
                let q = split(hq.matmul(&p(&at.q).t()?)?, nq)?;
                let k = split(hx2.matmul(&p(&at.k).t()?)?, n)?;
                let v = split(hx2.matmul(&p(&at.v).t()?)?, n)?;
                let mut scores = q.matmul(&k.t()?)?; // [b, h, nq, n]
                if scale != 1.0 {
                    scores = (scores * scale)?;
                }
                let attn = match c.attention {
                    AttentionKind::Softmax => softmax_last(&scores)?,
                    AttentionKind::Hardmax => hardmax_last(&scores)?,
                };
                let o = attn.matmul(&v)?; // [b, h, nq, dh]
                o.transpose(1, 2)?.contiguous()?.reshape((b, nq, h * dh))?
            };
            let a = linear(&o, &p(&at.o), None)?; // [b, nq, d]
            let res = if q_last { x.narrow(1, n - 1, 1)? } else { x };
            x = (res + a)?;
        } else if q_last {
            x = x.narrow(1, n - 1, 1)?;
        }
        let hf = match &blk.ln2 {
            Some((w, bb)) => layer_norm(&x, &p(w), &p(bb))?,
            None => x.clone(),
        };
        let f =
            linear(&linear(&hf, &p(&blk.fc1_w), Some(&p(&blk.fc1_b)))?.relu()?, &p(&blk.fc2_w), Some(&p(&blk.fc2_b)))?;
        x = (x + f)?; // [b, nq, d]
    }
    if let Some((w, bb)) = &t.ln_f {
        x = layer_norm(&x, &p(w), &p(bb))?;
    }
    let rows = x.dim(0)? * x.dim(1)?;
    // [b·nq, d] -> [b·nq, C] (or [b·nq, 1] for a value readout)
    linear(&x.reshape((rows, d))?, &p(&t.head_w), Some(&p(&t.head_b)))
}

fn mlp_forward(m: &MlpParams, tokens: &Tensor, p: &dyn Fn(&Var) -> Tensor) -> Result<Tensor> {
    let c = &m.cfg;
    let (b, n) = (tokens.dim(0)?, tokens.dim(1)?);
    let (w0, b0) = &m.layers[0];
    let mut x = if c.vector_input {
        // Flattened vectors [b, n·d] · W0ᵀ [n·d, w].
        tokens.to_dtype(p(w0).dtype())?.reshape((b, n * c.vocab))?.matmul(&p(w0))?.broadcast_add(&p(b0))?
    } else {
        // One-hot index of (pos, token) in the flattened n·V input: pos·V + tok.
        let offsets: Vec<u32> = (0..n).map(|i| (i * c.vocab) as u32).collect();
        let offsets = Tensor::from_vec(offsets, n, &Device::Cpu)?; // [n]
        let idx = tokens.broadcast_add(&offsets)?.flatten_all()?; // [b·n]
                                                                  // one_hot [b, n·V] · W0ᵀ == Σ_pos rows of W0ᵀ [n·V, w]: gather + sum.
        p(w0).index_select(&idx, 0)?.reshape((b, n, c.width))?.sum(1)?.broadcast_add(&p(b0))?
    };
    for (w, bb) in &m.layers[1..] {
        x = linear(&x.relu()?, &p(w), Some(&p(bb)))?;
    }
    // x: [b, C] or [b, n·C] -> [b·n, C]
    match c.task {
        Task::NextToken => Ok(x),
        Task::Seq2seq => Ok(x.reshape((b * n, c.num_classes))?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{generate, GenConfig, Labels};
    use rand::SeedableRng;

    /// Largest |a − b| / (1 + |b|) over two tensors of one shape.
    fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default();
        let b = b.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default();
        assert_eq!(a.len(), b.len());
        a.iter().zip(&b).map(|(x, y)| f64::from((x - y).abs()) / (1.0 + f64::from(y.abs()))).fold(0.0, f64::max)
    }

    /// The absorbed single-query attention is the standard attention
    /// re-associated: the same logits and the same gradient for every
    /// parameter, up to float rounding, with 1 or 3 blocks, 1 or 3 heads,
    /// LayerNorm and learned positions, and a non-default score scale.
    #[test]
    fn absorbed_last_query_attention_has_the_standard_forms_logits_and_gradients() -> Result<()> {
        let data = generate(&GenConfig::random_ids(40, 6, 11, 7, 3))?;
        let tokens = crate::data::input_tensor(&data)?;
        let Labels::NextToken(l) = &data.labels else { unreachable!("next-token data") };
        let labels = Tensor::from_vec(l.clone(), l.len(), &Device::Cpu)?;
        for (blocks, heads, d, ln, scale) in
            [(1, 1, 8, false, None), (1, 3, 12, false, None), (3, 3, 12, true, Some(0.7))]
        {
            let mut cfg = TransformerConfig::for_data(&data, d, heads, 2 * d, blocks);
            cfg.layer_norm = ln;
            cfg.attention_scale = scale;
            if ln {
                cfg.positional = Positional::Learned;
            }
            let model = Model::new(&ModelConfig::Transformer(cfg), &mut ChaCha8Rng::seed_from_u64(5))?;
            let Params::Transformer(t) = &model.params else { unreachable!("built a Transformer") };
            let p = |v: &Var| v.as_tensor().clone();
            let absorbed = transformer_forward(t, &tokens, &p, true)?;
            let standard = transformer_forward(t, &tokens, &p, false)?;
            assert!(rel_diff(&absorbed, &standard) < 1e-5, "logits differ ({blocks} blocks, {heads} heads)");
            // Evaluation (detached) runs the standard form, bit for bit.
            assert_eq!(
                model.logits(&tokens, true)?.flatten_all()?.to_vec1::<f32>()?,
                standard.flatten_all()?.to_vec1::<f32>()?
            );
            let ga = cross_entropy(&absorbed, &labels)?.backward()?;
            let gs = cross_entropy(&standard, &labels)?.backward()?;
            for v in model.vars() {
                let (a, s) = (ga.get(v.var.as_tensor()), gs.get(v.var.as_tensor()));
                let (Some(a), Some(s)) = (a, s) else { panic!("{} has no gradient", v.name) };
                let scale = s.abs()?.max_keepdim(0)?.flatten_all()?.max(0)?.to_scalar::<f32>()?.max(1e-3);
                let diff = (a - s)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                assert!(diff / scale < 1e-4, "{}: gradient differs by {diff} (scale {scale})", v.name);
            }
        }
        Ok(())
    }
}
