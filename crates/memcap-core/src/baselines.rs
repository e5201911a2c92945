//! Baseline memorizers for the comparison the paper makes (issue #4 part 3):
//! networks that see the whole sequence as one flattened input of n·d
//! numbers, without attention.
//!
//! * [`lookup_memorizer`]: project the flattened input to one integer u
//!   (random integer weights per (position, token), sums checked distinct),
//!   then interpolate the N points (u_i, y_i) piecewise-linearly with one
//!   hidden ReLU unit per point: f(u) = y_1 + Σ_i (s_i − s_{i−1}) ReLU(u − u_i).
//!   O(nd + N) parameters, weights of O(log N) bits.
//! * [`flat_ffn_memorizer`]: the same projection, then the paper's 1-D
//!   memorizer ([`crate::construct::memorizer`], Vardi-style bit
//!   extraction): Õ(nd + √N) parameters. This is the FFN-only answer to
//!   "why a Transformer": it pays n·d for the input layer, where the
//!   Transformer's token-wise embedding pays d.
//! * [`bounds`]: the orders of the published bounds as plain numbers (no
//!   constants, no log factors): Kim et al. 2023 d + n + √(nN); this paper
//!   d + √N (next-token) and d + √(nN) (seq2seq).
//!
//! Both networks are real weight constructions in the residual-FFN form of
//! the memcap model (registers, Z ← Z + W₂ReLU(W₁Z + b₁) + b₂) after a
//! one-unit input projection, and [`BaselineNet::eval_exact`] runs them in
//! exact rational arithmetic so their memorization is checked, not assumed.
//! Dense parameter convention: (n·d + 1) for the projection unit,
//! L·(2mq + q + m) for the L residual layers of width m and hidden width q,
//! (m + 1) for the readout. Only token-id next-token datasets are built
//! (vectors and seq2seq: formulas only).

use crate::construct::{memorizer, MemRegs, MemorizerInfo};
use crate::data::{Dataset, Inputs, Labels};
use crate::error::ConstructError;
use crate::eval::FfnStack;
use crate::model::{weight_bits, Ffn, Sparse};
use dashu_int::ops::UnsignedAbs;
use dashu_int::IBig;
use dashu_ratio::RBig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::HashMap;

/// A baseline network on the flattened sequence.
#[derive(Debug, Clone)]
pub struct BaselineNet {
    /// Human-readable name, e.g. "lookup (1 ReLU unit per example)".
    pub name: String,
    /// Sequence length n.
    pub seq_len: usize,
    /// Per-token input dimension d (the vocabulary size V for token ids); the
    /// flattened input has n·d entries.
    pub input_dim: usize,
    /// Projection weight of (position k, token id t), stored sparsely: the
    /// flattened one-hot input has a single 1 per position.
    pub projection: Projection,
    /// Registers m (the residual width).
    pub width: usize,
    /// Hidden width q of every FFN layer.
    pub ffn_width: usize,
    /// Register the projection u is written to.
    pub input_reg: usize,
    /// Register read out as the network's output.
    pub output_reg: usize,
    /// The L residual FFN layers Z ← Z + W₂ReLU(W₁Z + b₁) + b₂ (W₁: q × m, W₂: m × q).
    pub layers: Vec<Ffn>,
    /// Sizes of the 1-D memorizer inside (flattened-input FFN only).
    pub memorizer: Option<MemorizerInfo>,
}

/// Sizes of a baseline (what the comparison table prints).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineSize {
    /// The network's [`BaselineNet::name`].
    pub name: String,
    /// Dense parameters, zeros included ([`BaselineNet::params_dense`]).
    pub params_dense: u64,
    /// Nonzero weights: projection entries, layer entries and the readout's single 1.
    pub params_nonzero: u64,
    /// Number of residual FFN layers L.
    pub depth: usize,
    /// Largest weight, in bits: max over weights of max(bitlen |numerator|,
    /// bitlen denominator) (docs/construction.md §7.7).
    pub max_weight_bits: usize,
}

impl BaselineNet {
    /// Dense count: (n·d + 1) + L(2mq + q + m) + (m + 1).
    pub fn params_dense(&self) -> u64 {
        let (m, q, l) = (self.width as u64, self.ffn_width as u64, self.layers.len() as u64);
        (self.seq_len * self.input_dim) as u64 + 1 + l * (2 * m * q + q + m) + m + 1
    }

    /// Sizes: nonzero weights (projection entries, layer entries, the
    /// readout's single 1) and bits.
    pub fn size(&self) -> BaselineSize {
        let layer_entries =
            self.layers.iter().flat_map(|f| [&f.w1, &f.b1, &f.w2, &f.b2]).flat_map(|s| s.entries.iter());
        let mut nnz = 1u64;
        let mut bits = 1usize;
        for (_, _, v) in layer_entries {
            nnz += 1;
            bits = bits.max(weight_bits(&v.0));
        }
        for v in self.projection.values().filter(|v| **v != IBig::ZERO) {
            nnz += 1;
            bits = bits.max(weight_bits(&RBig::from(v.clone())));
        }
        BaselineSize {
            name: self.name.clone(),
            params_dense: self.params_dense(),
            params_nonzero: nnz,
            depth: self.layers.len(),
            max_weight_bits: bits,
        }
    }

    /// The input column: the projection u = Σ_k proj(k, t_k) in the input
    /// register, zeros elsewhere.
    fn input_column(&self, tokens: &[u32]) -> Vec<RBig> {
        let mut z = vec![RBig::ZERO; self.width];
        let u: IBig =
            tokens.iter().enumerate().map(|(k, t)| self.projection.get(&(k, *t)).cloned().unwrap_or(IBig::ZERO)).sum();
        z[self.input_reg] = RBig::from(u);
        z
    }

    /// The output for one token-id sequence, in exact arithmetic: the plain
    /// dense pass over the stored entries (the reference).
    pub fn eval_exact(&self, tokens: &[u32]) -> RBig {
        let mut z = self.input_column(tokens);
        for f in &self.layers {
            let mut h = vec![RBig::ZERO; f.w1.rows];
            for (r, c, v) in &f.w1.entries {
                h[*r as usize] += &v.0 * &z[*c as usize];
            }
            for (r, _, v) in &f.b1.entries {
                h[*r as usize] += &v.0;
            }
            for x in &mut h {
                if *x < RBig::ZERO {
                    *x = RBig::ZERO;
                }
            }
            for (r, c, v) in &f.w2.entries {
                z[*r as usize] += &v.0 * &h[*c as usize];
            }
            for (r, _, v) in &f.b2.entries {
                z[*r as usize] += &v.0;
            }
        }
        z[self.output_reg].clone()
    }

    /// The layers compiled for [`BaselineNet::eval_fast`].
    pub fn compile(&self) -> FfnStack {
        FfnStack::new(&self.layers)
    }

    /// The same output through the exact engine's compiled FFN plans
    /// (`stack` from [`BaselineNet::compile`]); [`BaselineNet::eval_exact`]
    /// is the plain reference it is tested against.
    pub fn eval_fast(&self, stack: &FfnStack, tokens: &[u32]) -> RBig {
        stack.run(&self.input_column(tokens)).swap_remove(self.output_reg)
    }

    /// Examples whose exact output equals their label (next-token data),
    /// by [`BaselineNet::eval_fast`] (the layers compiled once).
    pub fn count_memorized(&self, ds: &Dataset) -> usize {
        let stack = self.compile();
        match (&ds.inputs, &ds.labels) {
            (Inputs::Ids { seqs, .. }, Labels::NextToken(y)) => {
                seqs.iter().zip(y).filter(|(s, y)| self.eval_fast(&stack, s) == RBig::from(**y)).count()
            }
            _ => 0,
        }
    }
}

/// Closed-form dense count of [`lookup_memorizer`] for P distinct inputs:
/// n·d + 5P + 1 (m = 2, q = P − 1, one layer).
pub fn lookup_params_dense(seq_len: usize, input_dim: usize, points: usize) -> u64 {
    (seq_len * input_dim) as u64 + 5 * points as u64 + 1
}

/// Depth of the 1-D memorizer (docs/construction.md §7.4):
/// max(1, ⌈(G−1)/p_A⌉) + ρ(B_max + 1) + 1 with G = ⌈P/ρ⌉.
pub fn memorizer_depth(points: usize, rho: usize, p_a: usize, b_max: usize) -> usize {
    let g = points.div_ceil(rho);
    (g - 1).div_ceil(p_a).max(1) + rho * (b_max + 1) + 1
}

/// Closed-form dense count of [`flat_ffn_memorizer`]: n·d + 9 + 142·L_mem
/// (m = 7 registers, q = 9: 2·7·9 + 9 + 7 = 142 per layer).
pub fn flat_ffn_params_dense(seq_len: usize, input_dim: usize, depth: usize) -> u64 {
    (seq_len * input_dim) as u64 + 9 + 142 * depth as u64
}

/// Projection weight per (position, token id).
pub type Projection = HashMap<(usize, u32), IBig>;

/// Random integer projection of the flattened one-hot input: u = Σ_k v[k, x_k],
/// every v even so distinct sums are ≥ 2 apart. Redraws until distinct
/// sequences get distinct sums. Returns (v, u per example).
fn project(seqs: &[Vec<u32>], seed: u64) -> Result<(Projection, Vec<IBig>), ConstructError> {
    let n_seqs = seqs.len().max(2);
    let bits = 2 * (usize::BITS - (n_seqs - 1).leading_zeros()) + 2;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..16 {
        let mut v: HashMap<(usize, u32), IBig> = HashMap::new();
        for s in seqs {
            for (k, t) in s.iter().enumerate() {
                v.entry((k, *t)).or_insert_with(|| IBig::from(2u128 * rng.gen_range(0u128..(1u128 << bits.min(120)))));
            }
        }
        let u: Vec<IBig> = seqs.iter().map(|s| s.iter().enumerate().map(|(k, t)| v[&(k, *t)].clone()).sum()).collect();
        let mut by_u: HashMap<&IBig, &Vec<u32>> = HashMap::new();
        if u.iter().zip(seqs).all(|(ui, s)| by_u.insert(ui, s).is_none_or(|prev| prev == s)) {
            return Ok((v, u));
        }
    }
    Err(ConstructError::Retries { attempts: 16, what: "distinct projections of the flattened sequences".into() })
}

/// (u, label) points, deduplicated; an error if one u carries two labels
/// (identical ordered sequences with different labels).
fn points(ds: &Dataset, seed: u64) -> Result<(Projection, Vec<(IBig, u64)>), ConstructError> {
    let (seqs, labels) = match (&ds.inputs, &ds.labels) {
        (Inputs::Ids { seqs, .. }, Labels::NextToken(y)) => (seqs, y),
        _ => return Err(ConstructError::Config("baselines are built for token-id next-token datasets only".into())),
    };
    if seqs.is_empty() {
        return Err(ConstructError::Config("empty dataset".into()));
    }
    let (v, u) = project(seqs, seed)?;
    let mut seen: HashMap<IBig, u64> = HashMap::new();
    for (i, (ui, y)) in u.iter().zip(labels).enumerate() {
        if let Some(prev) = seen.insert(ui.clone(), *y as u64) {
            if prev != *y as u64 {
                return Err(ConstructError::Config(format!(
                    "example {i} repeats an earlier sequence with a different label"
                )));
            }
        }
    }
    let mut pts: Vec<(IBig, u64)> = seen.into_iter().collect();
    pts.sort();
    Ok((v, pts))
}

/// The lookup memorizer: one hidden ReLU unit per distinct input (minus one).
pub fn lookup_memorizer(ds: &Dataset, seed: u64) -> Result<BaselineNet, ConstructError> {
    let (projection, pts) = points(ds, seed)?;
    let p = pts.len();
    let q = (p - 1).max(1);
    let (reg_u, reg_out) = (0, 1);
    let mut f =
        Ffn { w1: Sparse::zeros(q, 2), b1: Sparse::zeros(q, 1), w2: Sparse::zeros(2, q), b2: Sparse::zeros(2, 1) };
    f.b2.push(reg_out, 0, RBig::from(pts[0].1));
    let mut prev_slope = RBig::ZERO;
    for i in 0..p.saturating_sub(1) {
        let slope = RBig::from_parts(
            IBig::from(pts[i + 1].1) - IBig::from(pts[i].1),
            (&pts[i + 1].0 - &pts[i].0).unsigned_abs(),
        );
        f.w1.push(i, reg_u, RBig::ONE);
        f.b1.push(i, 0, RBig::from(-pts[i].0.clone()));
        f.w2.push(reg_out, i, &slope - &prev_slope);
        prev_slope = slope;
    }
    Ok(BaselineNet {
        name: "lookup (1 ReLU unit per example)".into(),
        seq_len: ds.seq_len(),
        input_dim: ds.input_dim(),
        projection,
        width: 2,
        ffn_width: q,
        input_reg: reg_u,
        output_reg: reg_out,
        layers: vec![f],
        memorizer: None,
    })
}

/// The flattened-input FFN: projection, then the Vardi-style 1-D memorizer.
pub fn flat_ffn_memorizer(ds: &Dataset, seed: u64) -> Result<BaselineNet, ConstructError> {
    let (projection, pts) = points(ds, seed)?;
    let regs = MemRegs { u: 0, w: 1, y: 2, c: 3, lab: 4, mat: 5, out: 6 };
    let (layers, info) = memorizer(pts, None, 4, 7, 9, regs, "flattened input -> label")?;
    Ok(BaselineNet {
        name: "FFN on flattened input (projection + 1-D memorizer)".into(),
        seq_len: ds.seq_len(),
        input_dim: ds.input_dim(),
        projection,
        width: 7,
        ffn_width: 9,
        input_reg: regs.u,
        output_reg: regs.out,
        layers,
        memorizer: Some(info),
    })
}

/// Orders of the published upper bounds (no constants, no log factors).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounds {
    /// Kim, Kim, Mozafari 2023: d + n + √(nN).
    pub kim2023: f64,
    /// Kajitsuka & Sato 2025, next-token: d + √N.
    pub ks_next_token: f64,
    /// Kajitsuka & Sato 2025, seq2seq: d + √(nN).
    pub ks_seq2seq: f64,
}

/// The bound formulas at (N, n, d).
pub fn bounds(n_examples: usize, seq_len: usize, d: usize) -> Bounds {
    let (big_n, n, d) = (n_examples as f64, seq_len as f64, d as f64);
    Bounds { kim2023: d + n + (n * big_n).sqrt(), ks_next_token: d + big_n.sqrt(), ks_seq2seq: d + (n * big_n).sqrt() }
}
