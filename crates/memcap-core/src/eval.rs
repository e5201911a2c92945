//! Forward passes of a stored [`Model`]: exact (big integers / rationals) and
//! floating point (f64, f32), through one generic pipeline.
//!
//! # What is executed
//! Every input runs through the embedding, every block's attention and FFN,
//! and the readout, using the stored weights. Work is shared only where the
//! mathematics makes the results identical, never by re-running the
//! construction algorithm:
//!
//! 1. *Token-wise layers on identical columns.* FFN sublayers, the embedding
//!    and zero-attention blocks act on each column separately, so two columns
//!    with the same state produce the same result. Before the first attention
//!    block a column's state depends only on its token (and position), so that
//!    prefix runs once per distinct token; after the last attention block the
//!    needed columns are deduplicated by exact state equality.
//! 2. *Unread columns.* After the last block with non-zero attention nothing
//!    mixes columns again, so only the positions whose outputs are claimed
//!    (the last one for next-token) are carried on.
//! 3. *Uniform attention.* If every key vector of a sequence is the same,
//!    every score column is constant and softmax and hardmax both give exactly
//!    1/n per key; the weighted sum is then the plain mean.
//!
//! The exact engine keeps columns as integer vectors while every value and
//! weight is an integer and switches to rationals only where needed (the
//! attention average S/n). Floats never decide an exact claim: the f64/f32
//! engines are separate runs that report their own k/N.

use crate::data::{Dataset, Inputs, Positional, Task, TokenKey};
use crate::error::ModelError;
use crate::model::{AttentionKind, Ffn, Model, Sparse};
use dashu_int::{IBig, UBig};
use dashu_ratio::RBig;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::hash::Hash;

// ------------------------------------------------------------------------
// Scalars

/// The arithmetic a forward pass needs. Implemented exactly for [`IBig`] and
/// [`RBig`], and approximately for `f64` and `f32`.
pub trait Num: Clone + PartialEq + Send + Sync + std::fmt::Debug + 'static {
    fn zero() -> Self;
    fn is_zero(&self) -> bool;
    fn is_negative(&self) -> bool;
    fn add_ref(&mut self, o: &Self);
    fn sub_ref(&mut self, o: &Self);
    fn mul_ref(&self, o: &Self) -> Self;
    /// The value of an exact weight in this type, if representable (IBig:
    /// integers only; floats: nearest).
    fn from_exact(q: &RBig) -> Option<Self>;
}

impl Num for IBig {
    fn zero() -> Self {
        IBig::ZERO
    }
    fn is_zero(&self) -> bool {
        IBig::is_zero(self)
    }
    fn is_negative(&self) -> bool {
        self.sign() == dashu_int::Sign::Negative && !IBig::is_zero(self)
    }
    fn add_ref(&mut self, o: &Self) {
        *self += o;
    }
    fn sub_ref(&mut self, o: &Self) {
        *self -= o;
    }
    fn mul_ref(&self, o: &Self) -> Self {
        self * o
    }
    fn from_exact(q: &RBig) -> Option<Self> {
        (q.denominator() == &UBig::ONE).then(|| q.numerator().clone())
    }
}

impl Num for RBig {
    fn zero() -> Self {
        RBig::ZERO
    }
    fn is_zero(&self) -> bool {
        *self == RBig::ZERO
    }
    fn is_negative(&self) -> bool {
        self.numerator().sign() == dashu_int::Sign::Negative && !self.numerator().is_zero()
    }
    fn add_ref(&mut self, o: &Self) {
        *self = &*self + o;
    }
    fn sub_ref(&mut self, o: &Self) {
        *self = &*self - o;
    }
    fn mul_ref(&self, o: &Self) -> Self {
        self * o
    }
    fn from_exact(q: &RBig) -> Option<Self> {
        Some(q.clone())
    }
}

macro_rules! float_num {
    ($t:ty, $conv:ident) => {
        impl Num for $t {
            fn zero() -> Self {
                0.0
            }
            fn is_zero(&self) -> bool {
                *self == 0.0
            }
            fn is_negative(&self) -> bool {
                *self < 0.0
            }
            fn add_ref(&mut self, o: &Self) {
                *self += *o;
            }
            fn sub_ref(&mut self, o: &Self) {
                *self -= *o;
            }
            fn mul_ref(&self, o: &Self) -> Self {
                *self * *o
            }
            fn from_exact(q: &RBig) -> Option<Self> {
                Some(q.$conv().value())
            }
        }
    };
}
float_num!(f64, to_f64);
float_num!(f32, to_f32);

// ------------------------------------------------------------------------
// Compiled layers

/// A weight specialised for the hot loop: ±1 needs no multiplication.
#[derive(Debug, Clone)]
enum Coef<T> {
    One,
    MinusOne,
    Other(T),
}

impl<T: Num> Coef<T> {
    fn new(v: T, is_one: bool, is_minus_one: bool) -> Self {
        if is_one {
            Coef::One
        } else if is_minus_one {
            Coef::MinusOne
        } else {
            Coef::Other(v)
        }
    }
    /// acc += self · x
    fn mul_add(&self, acc: &mut T, x: &T) {
        match self {
            Coef::One => acc.add_ref(x),
            Coef::MinusOne => acc.sub_ref(x),
            Coef::Other(c) => acc.add_ref(&c.mul_ref(x)),
        }
    }
}

fn coef_of<T: Num>(q: &RBig) -> Option<Coef<T>> {
    let one = RBig::ONE;
    Some(Coef::new(T::from_exact(q)?, *q == one, *q == -one))
}

/// A sparse matrix in `T`, as rows of (col, coef).
#[derive(Debug, Clone)]
struct Lin<T> {
    rows: Vec<Vec<(u32, Coef<T>)>>,
}

impl<T: Num> Lin<T> {
    fn compile(s: &Sparse) -> Option<Self> {
        let mut rows: Vec<Vec<(u32, Coef<T>)>> = (0..s.rows).map(|_| Vec::new()).collect();
        for (r, c, v) in &s.entries {
            rows[*r as usize].push((*c, coef_of(&v.0)?));
        }
        Some(Lin { rows })
    }
    /// y = A x
    fn apply(&self, x: &[T]) -> Vec<T> {
        self.rows
            .iter()
            .map(|row| {
                let mut acc = T::zero();
                for (c, w) in row {
                    w.mul_add(&mut acc, &x[*c as usize]);
                }
                acc
            })
            .collect()
    }
    fn is_zero(&self) -> bool {
        self.rows.iter().all(Vec::is_empty)
    }
}

/// Dense vector from an m×1 sparse matrix.
fn column<T: Num>(s: &Sparse, col: usize) -> Option<Vec<T>> {
    let mut v = vec![T::zero(); s.rows];
    for (r, c, x) in &s.entries {
        if *c as usize == col {
            v[*r as usize] = T::from_exact(&x.0)?;
        }
    }
    Some(v)
}

/// One FFN sublayer, compiled: z ← z + W_2 ReLU(W_1 z + b_1) + b_2.
#[derive(Debug, Clone)]
struct FfnPlan<T> {
    /// Hidden unit k: (terms of row k of W_1, b_1[k]).
    units: Vec<(Vec<(u32, Coef<T>)>, T)>,
    /// Output register r: groups of units sharing one |W_2| coefficient
    /// (exact engines) or one unit per group (float engines), and b_2[r].
    outs: Vec<(u32, Vec<(Coef<T>, Vec<(u32, bool)>)>, T)>,
}

impl<T: Num> FfnPlan<T> {
    /// `group`: factor equal |W_2| entries, Σ c·h_a − c·h_b = c·(h_a − h_b).
    /// Exact by distributivity; it keeps products small when huge units
    /// cancel (the bit-extraction step). Float engines keep plain order.
    fn compile(f: &Ffn, group: bool) -> Option<Self> {
        let q = f.w1.rows;
        let w1: Lin<T> = Lin::compile(&f.w1)?;
        let b1 = column::<T>(&f.b1, 0)?;
        let units = w1.rows.into_iter().zip(b1).collect::<Vec<_>>();
        let b2 = column::<T>(&f.b2, 0)?;
        let mut per_reg: Vec<Vec<(u32, &RBig)>> = vec![Vec::new(); f.w2.rows];
        for (r, k, v) in &f.w2.entries {
            per_reg[*r as usize].push((*k, &v.0));
        }
        let mut outs = Vec::new();
        for (r, entries) in per_reg.into_iter().enumerate() {
            let bias = b2[r].clone();
            if entries.is_empty() && bias.is_zero() {
                continue;
            }
            let mut groups: Vec<(Coef<T>, Vec<(u32, bool)>)> = Vec::new();
            if group {
                let mut by_abs: Vec<(RBig, Vec<(u32, bool)>)> = Vec::new();
                for (k, v) in entries {
                    let neg = *v < RBig::ZERO;
                    let a = if neg { -v.clone() } else { v.clone() };
                    match by_abs.iter_mut().find(|(x, _)| *x == a) {
                        Some((_, m)) => m.push((k, neg)),
                        None => by_abs.push((a, vec![(k, neg)])),
                    }
                }
                for (a, members) in by_abs {
                    groups.push((coef_of(&a)?, members));
                }
            } else {
                for (k, v) in entries {
                    groups.push((coef_of(v)?, vec![(k, false)]));
                }
            }
            outs.push((r as u32, groups, bias));
        }
        debug_assert!(outs.iter().all(|(_, g, _)| g.iter().all(|(_, m)| m.iter().all(|(k, _)| (*k as usize) < q))));
        Some(FfnPlan { units, outs })
    }

    fn apply(&self, z: &mut [T], h: &mut Vec<T>) {
        h.clear();
        for (terms, bias) in &self.units {
            let mut pre = bias.clone();
            for (r, w) in terms {
                w.mul_add(&mut pre, &z[*r as usize]);
            }
            h.push(if pre.is_negative() { T::zero() } else { pre });
        }
        for (r, groups, bias) in &self.outs {
            let mut delta = T::zero();
            for (w, members) in groups {
                let mut acc = T::zero();
                for (k, neg) in members {
                    if *neg {
                        acc.sub_ref(&h[*k as usize]);
                    } else {
                        acc.add_ref(&h[*k as usize]);
                    }
                }
                if !acc.is_zero() {
                    w.mul_add(&mut delta, &acc);
                }
            }
            delta.add_ref(bias);
            z[*r as usize].add_ref(&delta);
        }
    }
}

/// One attention head, compiled.
#[derive(Debug, Clone)]
struct HeadPlan<T> {
    wq: Lin<T>,
    wk: Lin<T>,
    wv: Lin<T>,
    wo: Lin<T>,
}

// ------------------------------------------------------------------------
// Engines

/// What a forward pass decided at one position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pred {
    /// The output as text (exact: "p" or "p/q"; float: its decimal value).
    pub value: String,
    /// The class it denotes: exact engines, the value when it is an integer;
    /// float engines, the nearest integer.
    pub class: Option<i64>,
}

/// A token value as the embedding sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenValue {
    Id(u32),
    Vector(Vec<f64>),
}

/// One arithmetic for the whole pipeline.
pub trait Engine: Sync {
    /// A column of Z (m registers).
    type Col: Clone + Send + Sync;
    /// Hashable identity of a column state, for deduplication.
    type Key: Hash + Eq + Send + Sync;
    /// Per-thread scratch space.
    type Scratch: Default + Send;
    fn embed(&self, tok: &TokenValue, pos: usize) -> Self::Col;
    fn ffn(&self, block: usize, col: &mut Self::Col, scratch: &mut Self::Scratch);
    fn attention(&self, block: usize, cols: &mut [Self::Col]) -> Result<(), ModelError>;
    fn readout(&self, col: &Self::Col) -> Pred;
    fn key(&self, col: &Self::Col) -> Self::Key;
    /// The column rounded to f64, for divergence traces.
    fn to_f64(&self, col: &Self::Col) -> Vec<f64>;
}

/// Shared compiled parts of a model in scalar type `T`.
struct Compiled<T> {
    embed: Lin<T>,
    embed_bias: Vec<T>,
    /// P columns, when positional.
    pos: Option<Vec<Vec<T>>>,
    heads: Vec<Vec<HeadPlan<T>>>,
    readout: Lin<T>,
    readout_bias: T,
    kind: AttentionKind,
}

impl<T: Num> Compiled<T> {
    fn compile(model: &Model) -> Option<Self> {
        let w = &model.weights;
        let pos = match &w.pos {
            Some(p) => Some((0..p.cols).map(|k| column(p, k)).collect::<Option<Vec<_>>>()?),
            None => None,
        };
        let heads = w
            .blocks
            .iter()
            .map(|b| {
                b.heads
                    .iter()
                    .map(|h| {
                        Some(HeadPlan {
                            wq: Lin::compile(&h.wq)?,
                            wk: Lin::compile(&h.wk)?,
                            wv: Lin::compile(&h.wv)?,
                            wo: Lin::compile(&h.wo)?,
                        })
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Compiled {
            embed: Lin::compile(&w.embed)?,
            embed_bias: column(&w.embed_bias, 0)?,
            pos,
            heads,
            readout: Lin::compile(&w.readout)?,
            readout_bias: column(&w.readout_bias, 0)?.pop()?,
            kind: model.config.attention,
        })
    }

    /// W_E x + b_E (+ p_pos): for ids, column `id` of W_E.
    fn embed_with(&self, tok: &TokenValue, pos: usize, conv: impl Fn(f64) -> T) -> Vec<T> {
        let mut z = self.embed_bias.clone();
        match tok {
            TokenValue::Id(id) => {
                for (r, row) in self.embed.rows.iter().enumerate() {
                    if let Some((_, w)) = row.iter().find(|(c, _)| *c == *id) {
                        w.mul_add(&mut z[r], &conv(1.0));
                    }
                }
            }
            TokenValue::Vector(x) => {
                let xs: Vec<T> = x.iter().map(|v| conv(*v)).collect();
                for (zr, v) in z.iter_mut().zip(self.embed.apply(&xs)) {
                    zr.add_ref(&v);
                }
            }
        }
        if let Some(p) = &self.pos {
            for (zr, v) in z.iter_mut().zip(&p[pos]) {
                zr.add_ref(v);
            }
        }
        z
    }
}

/// Σ_h W_O^h (Σ_l w_lj v_l) over heads, in a field `T`, for all columns.
/// `weights(scores) -> Option<weights>` turns one score column into
/// attention weights (None: not representable in `T`).
fn attention_field<T: Num>(
    heads: &[HeadPlan<T>],
    cols: &mut [Vec<T>],
    div: impl Fn(&T, usize) -> T,
    weights: impl Fn(&[T]) -> Option<Vec<T>>,
) -> Option<()> {
    let n = cols.len();
    let mut deltas: Vec<Vec<T>> = vec![vec![T::zero(); cols.first().map_or(0, Vec::len)]; n];
    for h in heads {
        if h.wo.is_zero() || h.wv.is_zero() {
            continue; // W_O W_V Z = 0 exactly.
        }
        let vals: Vec<Vec<T>> = cols.iter().map(|z| h.wv.apply(z)).collect(); // [n][s]
        let keys: Vec<Vec<T>> = cols.iter().map(|z| h.wk.apply(z)).collect(); // [n][s]
        let s = vals.first().map_or(0, Vec::len);
        let mixed: Vec<Vec<T>> = if keys.iter().all(|k| *k == keys[0]) {
            // Constant scores in every column: weights exactly 1/n, output = mean.
            let mut mean = vec![T::zero(); s];
            for v in &vals {
                for (a, b) in mean.iter_mut().zip(v) {
                    a.add_ref(b);
                }
            }
            let mean: Vec<T> = mean.iter().map(|a| div(a, n)).collect();
            vec![mean; n]
        } else {
            let queries: Vec<Vec<T>> = cols.iter().map(|z| h.wq.apply(z)).collect();
            let mut out = Vec::with_capacity(n);
            for q in &queries {
                let scores: Vec<T> = keys
                    .iter()
                    .map(|k| {
                        let mut acc = T::zero();
                        for (a, b) in k.iter().zip(q) {
                            acc.add_ref(&a.mul_ref(b));
                        }
                        acc
                    })
                    .collect();
                let w = weights(&scores)?;
                let mut o = vec![T::zero(); s];
                for (wl, v) in w.iter().zip(&vals) {
                    for (a, b) in o.iter_mut().zip(v) {
                        a.add_ref(&wl.mul_ref(b));
                    }
                }
                out.push(o);
            }
            out
        };
        for (d, mx) in deltas.iter_mut().zip(&mixed) {
            for (a, b) in d.iter_mut().zip(h.wo.apply(mx)) {
                a.add_ref(&b);
            }
        }
    }
    for (z, d) in cols.iter_mut().zip(deltas) {
        for (a, b) in z.iter_mut().zip(&d) {
            a.add_ref(b);
        }
    }
    Some(())
}

/// A column of the exact engine: integers while everything is integral.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExactCol {
    Int(Vec<IBig>),
    Rat(Vec<RBig>),
}

impl ExactCol {
    fn to_rat(&self) -> Vec<RBig> {
        match self {
            ExactCol::Int(z) => z.iter().map(|v| RBig::from(v.clone())).collect(),
            ExactCol::Rat(z) => z.clone(),
        }
    }
    fn from_rat(z: Vec<RBig>) -> ExactCol {
        if z.iter().all(|v| v.denominator() == &UBig::ONE) {
            ExactCol::Int(z.into_iter().map(|v| v.into_parts().0).collect())
        } else {
            ExactCol::Rat(z)
        }
    }
}

/// Exact evaluation in integers and rationals.
pub struct ExactEngine {
    rat: Compiled<RBig>,
    /// Integer FFN plans where all weights of the block are integers.
    ffn_int: Vec<Option<FfnPlan<IBig>>>,
    ffn_rat: Vec<FfnPlan<RBig>>,
}

impl ExactEngine {
    pub fn new(model: &Model) -> Self {
        let rat = Compiled::compile(model).expect("rationals represent every weight");
        let ffn_int = model.weights.blocks.iter().map(|b| FfnPlan::compile(&b.ffn, true)).collect();
        let ffn_rat = model.weights.blocks.iter().map(|b| FfnPlan::compile(&b.ffn, true).expect("rational plan")).collect();
        ExactEngine { rat, ffn_int, ffn_rat }
    }
}

impl Engine for ExactEngine {
    type Col = ExactCol;
    type Key = ExactCol;
    type Scratch = (Vec<IBig>, Vec<RBig>);

    fn embed(&self, tok: &TokenValue, pos: usize) -> ExactCol {
        // f64 → RBig is exact (every finite double is a dyadic rational).
        let z = self.rat.embed_with(tok, pos, |v| RBig::try_from(v).expect("finite input"));
        ExactCol::from_rat(z)
    }

    fn ffn(&self, block: usize, col: &mut ExactCol, scratch: &mut Self::Scratch) {
        match (col, &self.ffn_int[block]) {
            (ExactCol::Int(z), Some(plan)) => plan.apply(z, &mut scratch.0),
            (col, _) => {
                let mut z = col.to_rat();
                self.ffn_rat[block].apply(&mut z, &mut scratch.1);
                *col = ExactCol::from_rat(z);
            }
        }
    }

    fn attention(&self, block: usize, cols: &mut [ExactCol]) -> Result<(), ModelError> {
        let heads = &self.rat.heads[block];
        if heads.is_empty() {
            return Ok(());
        }
        let mut z: Vec<Vec<RBig>> = cols.iter().map(ExactCol::to_rat).collect();
        let kind = self.rat.kind;
        attention_field(
            heads,
            &mut z,
            |a, n| a / RBig::from(n),
            |scores| {
                let max = scores.iter().max()?;
                let all_equal = scores.iter().all(|s| s == max);
                match (kind, all_equal) {
                    (_, true) => Some(vec![RBig::ONE / RBig::from(scores.len()); scores.len()]),
                    (AttentionKind::Hardmax, false) => {
                        let k = scores.iter().filter(|s| *s == max).count();
                        Some(scores.iter().map(|s| if s == max { RBig::ONE / RBig::from(k) } else { RBig::ZERO }).collect())
                    }
                    (AttentionKind::Softmax, false) => None,
                }
            },
        )
        .ok_or(ModelError::InexactSoftmax { block })?;
        for (c, zz) in cols.iter_mut().zip(z) {
            *c = ExactCol::from_rat(zz);
        }
        Ok(())
    }

    fn readout(&self, col: &ExactCol) -> Pred {
        let z = col.to_rat();
        let mut out = self.rat.readout.apply(&z).pop().unwrap_or(RBig::ZERO);
        out.add_ref(&self.rat.readout_bias);
        let class = (out.denominator() == &UBig::ONE).then(|| i64::try_from(out.numerator().clone()).ok()).flatten();
        Pred { value: crate::model::fmt_exact(&out), class }
    }

    fn key(&self, col: &ExactCol) -> ExactCol {
        col.clone()
    }

    fn to_f64(&self, col: &ExactCol) -> Vec<f64> {
        col.to_rat().iter().map(|v| v.to_f64().value()).collect()
    }
}

/// Floating-point evaluation (what PyTorch or onnxruntime would compute,
/// up to summation order).
pub struct FloatEngine<F> {
    c: Compiled<F>,
    ffn: Vec<FfnPlan<F>>,
}

/// Float types the float engine supports.
pub trait Float: Num + Copy + PartialOrd + Into<f64> + std::ops::Sub<Output = Self> + std::ops::Div<Output = Self> + std::ops::Mul<Output = Self> {
    fn of_f64(v: f64) -> Self;
    fn exp(self) -> Self;
    fn to_bits64(self) -> u64;
}
impl Float for f64 {
    fn of_f64(v: f64) -> Self {
        v
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn to_bits64(self) -> u64 {
        self.to_bits()
    }
}
impl Float for f32 {
    fn of_f64(v: f64) -> Self {
        v as f32
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn to_bits64(self) -> u64 {
        self.to_bits() as u64
    }
}

impl<F: Float> FloatEngine<F> {
    pub fn new(model: &Model) -> Self {
        FloatEngine {
            c: Compiled::compile(model).expect("floats round every weight"),
            ffn: model.weights.blocks.iter().map(|b| FfnPlan::compile(&b.ffn, false).expect("float plan")).collect(),
        }
    }
}

impl<F: Float> Engine for FloatEngine<F> {
    type Col = Vec<F>;
    type Key = Vec<u64>;
    type Scratch = Vec<F>;

    fn embed(&self, tok: &TokenValue, pos: usize) -> Vec<F> {
        self.c.embed_with(tok, pos, F::of_f64)
    }
    fn ffn(&self, block: usize, col: &mut Vec<F>, scratch: &mut Vec<F>) {
        self.ffn[block].apply(col, scratch);
    }
    fn attention(&self, block: usize, cols: &mut [Vec<F>]) -> Result<(), ModelError> {
        let kind = self.c.kind;
        attention_field(
            &self.c.heads[block],
            cols,
            |a, n| *a * (F::of_f64(1.0) / F::of_f64(n as f64)),
            |scores| {
                let max = scores.iter().copied().fold(scores[0], |a, b| if b > a { b } else { a });
                let w: Vec<F> = match kind {
                    AttentionKind::Softmax => scores.iter().map(|s| (*s - max).exp()).collect(),
                    AttentionKind::Hardmax => scores.iter().map(|s| F::of_f64(if *s == max { 1.0 } else { 0.0 })).collect(),
                };
                let mut sum = F::zero();
                for x in &w {
                    sum.add_ref(x);
                }
                Some(w.iter().map(|x| *x / sum).collect())
            },
        );
        Ok(())
    }
    fn readout(&self, col: &Vec<F>) -> Pred {
        let mut out = self.c.readout.apply(col).pop().unwrap_or(F::zero());
        out.add_ref(&self.c.readout_bias);
        let v: f64 = out.into();
        let class = (v.is_finite() && v.abs() < 9.0e15).then(|| v.round() as i64);
        Pred { value: format!("{v}"), class }
    }
    fn key(&self, col: &Vec<F>) -> Vec<u64> {
        col.iter().map(|v| v.to_bits64()).collect()
    }
    fn to_f64(&self, col: &Vec<F>) -> Vec<f64> {
        col.iter().map(|v| (*v).into()).collect()
    }
}

// ------------------------------------------------------------------------
// Pipeline

/// Progress reporting for long evaluations (the core does no IO; the CLI
/// draws bars).
pub trait Progress: Sync {
    fn start(&self, _stage: &str, _total: u64) {}
    fn inc(&self, _n: u64) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// A dataset prepared for a model: distinct tokens and sequences as indices.
pub struct Prepared {
    pub tokens: Vec<TokenValue>,
    pub seqs: Vec<Vec<u32>>,
    /// Positions whose outputs are claimed (next-token: the last).
    pub needed: Vec<usize>,
    pub positional: bool,
}

impl Prepared {
    /// Checks that `ds` fits `model` and indexes its tokens.
    pub fn new(model: &Model, ds: &Dataset) -> Result<Prepared, ModelError> {
        let c = &model.config;
        let n = ds.seq_len();
        match (&ds.inputs, c.input) {
            (Inputs::Ids { vocab, .. }, crate::model::InputSpec::Ids { vocab: mv }) if *vocab <= mv => {}
            (Inputs::Vectors { d, .. }, crate::model::InputSpec::Vectors { d: md }) if *d == md => {}
            _ => return Err(ModelError::Mismatch(format!("dataset inputs ({} dims) do not match the model's {:?}", ds.input_dim(), c.input))),
        }
        if n != c.seq_len {
            return Err(ModelError::Mismatch(format!("dataset sequences have length {n}, the model was built for {}", c.seq_len)));
        }
        if ds.task() != c.task {
            return Err(ModelError::Mismatch(format!("dataset task {:?}, model task {:?}", ds.task(), c.task)));
        }
        let (keys, seqs) = ds.token_table();
        let tokens = keys
            .into_iter()
            .map(|k| match k {
                TokenKey::Id(i) => TokenValue::Id(i),
                TokenKey::Vector(bits) => TokenValue::Vector(bits.into_iter().map(f64::from_bits).collect()),
            })
            .collect();
        let needed = match c.task {
            Task::NextToken => vec![n - 1],
            Task::Seq2seq => (0..n).collect(),
        };
        Ok(Prepared { tokens, seqs, needed, positional: c.positional == Positional::Learned })
    }
}

/// Outputs of a pipeline run: `preds[i][j]` is example i's output at
/// `needed[j]`.
pub struct RunOutput {
    pub preds: Vec<Vec<Pred>>,
    /// Distinct input sequences evaluated through the attention block(s).
    pub distinct_sequences: usize,
    /// Distinct (token, position) columns run through the pre-attention part.
    pub distinct_tokens: usize,
    /// Distinct column states run through the post-attention part.
    pub distinct_tail_states: usize,
}

/// Runs every example through `engine` (see the module docs for what is
/// shared and why that is exact).
pub fn run<E: Engine>(engine: &E, model: &Model, prep: &Prepared, progress: &dyn Progress) -> Result<RunOutput, ModelError> {
    let nblocks = model.config.blocks;
    let mix = &model.config.attention_blocks;
    let first = mix.first().copied().unwrap_or(nblocks);
    let last = mix.last().copied();

    // 1. Token-wise prefix, once per distinct (token, position).
    let n = prep.seqs.first().map_or(0, Vec::len);
    let mut col_ids: HashMap<(u32, usize), usize> = HashMap::new();
    let mut col_list: Vec<(u32, usize)> = Vec::new();
    for s in &prep.seqs {
        for (k, &t) in s.iter().enumerate() {
            let key = (t, if prep.positional { k } else { 0 });
            col_ids.entry(key).or_insert_with(|| {
                col_list.push(key);
                col_list.len() - 1
            });
        }
    }
    progress.start("token-wise prefix", col_list.len() as u64);
    let prefix: Vec<E::Col> = col_list
        .par_iter()
        .map_init(E::Scratch::default, |scratch, &(t, k)| {
            let mut z = engine.embed(&prep.tokens[t as usize], k);
            for b in 0..first {
                engine.ffn(b, &mut z, scratch);
            }
            progress.inc(1);
            z
        })
        .collect();
    let col_of = |s: &[u32], k: usize| col_ids[&(s[k], if prep.positional { k } else { 0 })];

    // 2. Mixing blocks, once per distinct sequence; keep the needed columns.
    let mut seq_ids: HashMap<&[u32], usize> = HashMap::new();
    let mut uniq: Vec<&[u32]> = Vec::new();
    let seq_of: Vec<usize> = prep
        .seqs
        .iter()
        .map(|s| {
            *seq_ids.entry(s.as_slice()).or_insert_with(|| {
                uniq.push(s.as_slice());
                uniq.len() - 1
            })
        })
        .collect();
    let needed_states: Vec<Vec<E::Col>> = match last {
        None => uniq.iter().map(|s| prep.needed.iter().map(|&k| prefix[col_of(s, k)].clone()).collect()).collect(),
        Some(last) => {
            progress.start("attention", uniq.len() as u64);
            uniq.par_iter()
                .map_init(E::Scratch::default, |scratch, s| {
                    let mut cols: Vec<E::Col> = (0..n).map(|k| prefix[col_of(s, k)].clone()).collect();
                    for b in first..=last {
                        engine.attention(b, &mut cols)?;
                        if b == last {
                            let mut kept: Vec<E::Col> = prep.needed.iter().map(|&k| cols[k].clone()).collect();
                            for z in &mut kept {
                                engine.ffn(b, z, scratch);
                            }
                            cols = kept;
                        } else {
                            for z in &mut cols {
                                engine.ffn(b, z, scratch);
                            }
                        }
                    }
                    progress.inc(1);
                    Ok(cols)
                })
                .collect::<Result<_, ModelError>>()?
        }
    };

    // 3. Token-wise tail, once per distinct column state.
    let tail_start = last.map_or(nblocks, |l| l + 1);
    let mut state_ids: HashMap<E::Key, usize> = HashMap::new();
    let mut states: Vec<&E::Col> = Vec::new();
    let state_of: Vec<Vec<usize>> = needed_states
        .iter()
        .map(|cols| {
            cols.iter()
                .map(|c| {
                    *state_ids.entry(engine.key(c)).or_insert_with(|| {
                        states.push(c);
                        states.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    drop(state_ids);
    progress.start("token-wise tail", states.len() as u64);
    let outs: Vec<Pred> = states
        .par_iter()
        .map_init(E::Scratch::default, |scratch, c| {
            let mut z = (*c).clone();
            for b in tail_start..nblocks {
                engine.ffn(b, &mut z, scratch);
            }
            progress.inc(1);
            engine.readout(&z)
        })
        .collect();
    let preds = seq_of.iter().map(|&u| state_of[u].iter().map(|&s| outs[s].clone()).collect()).collect();
    Ok(RunOutput { preds, distinct_sequences: uniq.len(), distinct_tokens: col_list.len(), distinct_tail_states: states.len() })
}

/// The state of the needed columns after the embedding (entry 0) and after
/// every block (entry b+1), for one sequence, without any sharing: the plain
/// reference forward pass, used for divergence traces and tests.
pub fn trace<E: Engine>(engine: &E, model: &Model, tokens: &[TokenValue], needed: &[usize]) -> Result<Vec<Vec<E::Col>>, ModelError> {
    let mut scratch = E::Scratch::default();
    let mut cols: Vec<E::Col> = tokens.iter().enumerate().map(|(k, t)| engine.embed(t, k)).collect();
    let mut out = vec![needed.iter().map(|&k| cols[k].clone()).collect()];
    for b in 0..model.config.blocks {
        engine.attention(b, &mut cols)?;
        for z in &mut cols {
            engine.ffn(b, z, &mut scratch);
        }
        out.push(needed.iter().map(|&k| cols[k].clone()).collect());
    }
    Ok(out)
}

/// Readout of the last trace entry.
pub fn trace_outputs<E: Engine>(engine: &E, states: &[Vec<E::Col>]) -> Vec<Pred> {
    states.last().map(|cols| cols.iter().map(|c| engine.readout(c)).collect()).unwrap_or_default()
}
