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

use candle_core::{Device, Tensor, Var, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::{MlpConfig, ModelConfig, TransformerConfig};
use crate::data::{Positional, Task};
use crate::error::Result;

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

struct Block {
    q: Var,
    k: Var,
    v: Var,
    o: Var,
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

/// Variable factory: seeded init, registers names in creation order.
struct Init<'a> {
    rng: &'a mut ChaCha8Rng,
    vars: Vec<NamedVar>,
}

impl Init<'_> {
    fn push(&mut self, name: String, data: Vec<f32>, shape: &[usize], transposed: bool) -> Result<Var> {
        let var = Var::from_tensor(&Tensor::from_vec(data, shape, &Device::Cpu)?)?;
        self.vars.push(NamedVar { name, var: var.clone(), transposed });
        Ok(var)
    }

    /// PyTorch's `nn.Linear` default: U(−1/√fan_in, 1/√fan_in).
    fn uniform(&mut self, name: String, shape: &[usize], fan_in: usize) -> Result<Var> {
        self.uniform_t(name, shape, fan_in, false)
    }

    fn uniform_t(&mut self, name: String, shape: &[usize], fan_in: usize, transposed: bool) -> Result<Var> {
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        let count: usize = shape.iter().product();
        let data = (0..count).map(|_| self.rng.gen_range(-bound..=bound)).collect();
        self.push(name, data, shape, transposed)
    }

    /// N(0, std²) by Box–Muller (rand 0.8 without rand_distr has no normal).
    fn normal(&mut self, name: String, shape: &[usize], std: f32) -> Result<Var> {
        let count: usize = shape.iter().product();
        let mut data = Vec::with_capacity(count);
        while data.len() < count {
            let u1: f32 = self.rng.gen_range(f32::EPSILON..1.0);
            let u2: f32 = self.rng.gen();
            let r = (-2.0 * u1.ln()).sqrt();
            let t = 2.0 * std::f32::consts::PI * u2;
            data.push(std * r * t.cos());
            if data.len() < count {
                data.push(std * r * t.sin());
            }
        }
        self.push(name, data, shape, false)
    }

    fn constant(&mut self, name: String, shape: &[usize], value: f32) -> Result<Var> {
        let count: usize = shape.iter().product();
        self.push(name, vec![value; count], shape, false)
    }

    fn layer_norm(&mut self, prefix: &str, d: usize) -> Result<(Var, Var)> {
        Ok((self.constant(format!("{prefix}.weight"), &[d], 1.0)?, self.constant(format!("{prefix}.bias"), &[d], 0.0)?))
    }
}

impl Model {
    /// Build a model with seeded initialization. The config must be valid.
    pub fn new(cfg: &ModelConfig, rng: &mut ChaCha8Rng) -> Result<Model> {
        cfg.validate()?;
        let mut init = Init { rng, vars: Vec::new() };
        let params = match cfg {
            ModelConfig::Transformer(c) => Params::Transformer(build_transformer(c, &mut init)?),
            ModelConfig::Mlp(c) => Params::Mlp(build_mlp(c, &mut init)?),
        };
        Ok(Model { cfg: cfg.clone(), vars: init.vars, params })
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
            Params::Transformer(t) => transformer_forward(t, tokens, &p),
            Params::Mlp(m) => mlp_forward(m, tokens, &p),
        }
    }

    /// Weights in PyTorch layout: `(name, shape, values)`, sorted by name.
    pub fn export(&self) -> Result<NamedWeights> {
        let mut out = Vec::with_capacity(self.vars.len());
        for v in &self.vars {
            let t = if v.transposed { v.var.as_tensor().t()?.contiguous()? } else { v.var.as_tensor().clone() };
            out.push((v.name.clone(), t.dims().to_vec(), t.flatten_all()?.to_vec1::<f32>()?));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

fn build_transformer(c: &TransformerConfig, init: &mut Init<'_>) -> Result<TransformerParams> {
    let (d, hd) = (c.d_model, c.heads * c.head_dim);
    // Id rows are N(0, 1); a projection of d_in-dimensional vectors is
    // N(0, 1/d_in), so projected tokens also have unit scale.
    let std = if c.vector_input { 1.0 / (c.vocab.max(1) as f32).sqrt() } else { 1.0 };
    let embed = init.normal("embed.weight".into(), &[c.vocab, d], std)?;
    let pos = if c.positional == Positional::Learned {
        Some(init.normal("pos_embed.weight".into(), &[c.seq_len, d], 1.0)?)
    } else {
        None
    };
    let mut blocks = Vec::with_capacity(c.blocks);
    for i in 0..c.blocks {
        let p = format!("blocks.{i}");
        let ln1 = if c.layer_norm { Some(init.layer_norm(&format!("{p}.ln1"), d)?) } else { None };
        let q = init.uniform(format!("{p}.attn.q_proj.weight"), &[hd, d], d)?;
        let k = init.uniform(format!("{p}.attn.k_proj.weight"), &[hd, d], d)?;
        let v = init.uniform(format!("{p}.attn.v_proj.weight"), &[hd, d], d)?;
        let o = init.uniform(format!("{p}.attn.o_proj.weight"), &[d, hd], hd)?;
        let ln2 = if c.layer_norm { Some(init.layer_norm(&format!("{p}.ln2"), d)?) } else { None };
        let fc1_w = init.uniform(format!("{p}.ffn.fc1.weight"), &[c.d_ff, d], d)?;
        let fc1_b = init.uniform(format!("{p}.ffn.fc1.bias"), &[c.d_ff], d)?;
        let fc2_w = init.uniform(format!("{p}.ffn.fc2.weight"), &[d, c.d_ff], c.d_ff)?;
        let fc2_b = init.uniform(format!("{p}.ffn.fc2.bias"), &[d], c.d_ff)?;
        blocks.push(Block { q, k, v, o, fc1_w, fc1_b, fc2_w, fc2_b, ln1, ln2 });
    }
    let ln_f = if c.layer_norm { Some(init.layer_norm("ln_f", d)?) } else { None };
    let head_w = init.uniform("head.weight".into(), &[c.num_classes, d], d)?;
    let head_b = init.uniform("head.bias".into(), &[c.num_classes], d)?;
    Ok(TransformerParams { cfg: c.clone(), embed, pos, blocks, ln_f, head_w, head_b })
}

fn build_mlp(c: &MlpConfig, init: &mut Init<'_>) -> Result<MlpParams> {
    let fan_in0 = c.seq_len * c.vocab;
    let mut layers = Vec::with_capacity(c.depth + 1);
    // Fan-in of a one-hot input is n·V in PyTorch's formula even though only
    // n entries are non-zero; we keep PyTorch's init so the baselines match.
    let w0 = init.uniform_t("layers.0.weight".into(), &[fan_in0, c.width], fan_in0, true)?;
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

fn transformer_forward(t: &TransformerParams, tokens: &Tensor, p: &dyn Fn(&Var) -> Tensor) -> Result<Tensor> {
    let c = &t.cfg;
    let (b, n) = (tokens.dim(0)?, tokens.dim(1)?);
    let (d, h, dh) = (c.d_model, c.heads, c.head_dim);
    let mut x = if c.vector_input {
        // [b, n, d_in] -> [b·n, d_in] · [d_in, d] -> [b, n, d]
        tokens.reshape((b * n, c.vocab))?.matmul(&p(&t.embed))?.reshape((b, n, d))?
    } else {
        // [b·n] -> [b·n, d] -> [b, n, d]
        p(&t.embed).index_select(&tokens.flatten_all()?, 0)?.reshape((b, n, d))?
    };
    if let Some(pos) = &t.pos {
        x = x.broadcast_add(&p(pos))?; // + [n, d]
    }
    let last_only = c.task == Task::NextToken;
    let scale = 1.0 / (dh as f64).sqrt();
    for (i, blk) in t.blocks.iter().enumerate() {
        // With a last-position readout, the final block only needs the last
        // query: the result at the readout is identical and the block's
        // attention/FFN cost drops by a factor n.
        let q_last = last_only && i + 1 == t.blocks.len();
        let nq = if q_last { 1 } else { n };
        let hx = match &blk.ln1 {
            Some((w, bb)) => layer_norm(&x, &p(w), &p(bb))?,
            None => x.clone(),
        };
        let hq = if q_last { hx.narrow(1, n - 1, 1)? } else { hx.clone() };
        // [b, m, h·dh] -> [b, m, h, dh] -> [b, h, m, dh]
        let split =
            |y: Tensor, m: usize| -> Result<Tensor> { Ok(y.reshape((b, m, h, dh))?.transpose(1, 2)?.contiguous()?) };
        let q = split(linear(&hq, &p(&blk.q), None)?, nq)?;
        let k = split(linear(&hx, &p(&blk.k), None)?, n)?;
        let v = split(linear(&hx, &p(&blk.v), None)?, n)?;
        let scores = (q.matmul(&k.t()?)? * scale)?; // [b, h, nq, n]
        let attn = softmax_last(&scores)?;
        let o = attn.matmul(&v)?; // [b, h, nq, dh]
        let o = o.transpose(1, 2)?.contiguous()?.reshape((b, nq, h * dh))?;
        let a = linear(&o, &p(&blk.o), None)?; // [b, nq, d]
        let res = if q_last { x.narrow(1, n - 1, 1)? } else { x };
        x = (res + a)?;
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
    // [b·nq, d] -> [b·nq, C]
    linear(&x.reshape((rows, d))?, &p(&t.head_w), Some(&p(&t.head_b)))
}

fn mlp_forward(m: &MlpParams, tokens: &Tensor, p: &dyn Fn(&Var) -> Tensor) -> Result<Tensor> {
    let c = &m.cfg;
    let (b, n) = (tokens.dim(0)?, tokens.dim(1)?);
    let (w0, b0) = &m.layers[0];
    let mut x = if c.vector_input {
        // Flattened vectors [b, n·d] · W0ᵀ [n·d, w].
        tokens.reshape((b, n * c.vocab))?.matmul(&p(w0))?.broadcast_add(&p(b0))?
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
