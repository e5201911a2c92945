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
//! 4. *Sorted sweep.* A run of FFN layers whose units all read one register
//!    the run never writes is a sum of ReLUs of that register, so over
//!    columns sorted by it the sum is a running sum (module `sweep`).
//! 5. *Register closure.* Registers updated only from registers that agree
//!    across a group of columns run once per group (`ExactEngine::shared_tail`).
//!
//! `crate::reference` keeps the plain dense forward pass beside all of this,
//! and the tests compare every engine with it.
//!
//! The exact engine keeps columns as integer vectors while every value and
//! weight is an integer and switches to rationals only where needed (the
//! attention average S/n). Floats never decide an exact claim: the f64/f32
//! engines are separate runs that report their own k/N.

use crate::data::{Dataset, Inputs, Positional, Task, TokenKey};
use crate::error::ModelError;
use crate::int::Int;
use crate::model::{AttentionKind, Ffn, Model, Sparse};
use dashu_int::UBig;
use dashu_ratio::RBig;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::hash::Hash;

mod sweep;

/// Columns per chunk of the exact tail (see `ExactEngine::shared_tail`): a
/// chunk holds its columns' block registers (~√N bits each) at once.
const TAIL_CHUNK: usize = 1 << 16;

// ------------------------------------------------------------------------
// Scalars

/// The arithmetic a forward pass needs. Implemented exactly for [`Int`] and
/// [`RBig`], and approximately for `f64` and `f32`.
pub trait Num: Clone + PartialEq + Send + Sync + std::fmt::Debug + 'static {
    /// The value 0.
    fn zero() -> Self;
    /// True when the value is exactly 0.
    fn is_zero(&self) -> bool;
    /// True when the value is below 0 (the ReLU test).
    fn is_negative(&self) -> bool;
    /// self += o (rounded for floats).
    fn add_ref(&mut self, o: &Self);
    /// self −= o (rounded for floats).
    fn sub_ref(&mut self, o: &Self);
    /// self · o (rounded for floats).
    fn mul_ref(&self, o: &Self) -> Self;
    /// The value of an exact weight in this type, if representable (Int:
    /// integers only; floats: nearest).
    fn from_exact(q: &RBig) -> Option<Self>;
    /// Exact types may add FFN outputs into the register term by term
    /// (associativity); floats keep PyTorch's order z + (W_2 h + b_2).
    const EXACT: bool;
    /// +1 or −1 when the value is exactly that (exact types only), else 0.
    fn unit_sign(&self) -> i8 {
        0
    }
    /// ReLU(x − t + 1) − ReLU(x − t) = clamp(x − t + 1, 0, 1) when a cheap
    /// comparison decides it (integers: 1 iff x ≥ t, else 0); None to
    /// compute it the general way.
    fn step_at(_x: &Self, _t: &Self) -> Option<Self> {
        None
    }
}

impl Num for Int {
    fn zero() -> Self {
        Int::ZERO
    }
    fn is_zero(&self) -> bool {
        Int::is_zero(self)
    }
    fn is_negative(&self) -> bool {
        Int::is_negative(self)
    }
    fn add_ref(&mut self, o: &Self) {
        self.add_assign(o);
    }
    fn sub_ref(&mut self, o: &Self) {
        self.sub_assign(o);
    }
    fn mul_ref(&self, o: &Self) -> Self {
        self.mul(o)
    }
    fn from_exact(q: &RBig) -> Option<Self> {
        (q.denominator() == &UBig::ONE).then(|| Int::from_ibig(q.numerator().clone()))
    }
    const EXACT: bool = true;
    fn unit_sign(&self) -> i8 {
        match self {
            Int::Small(1) => 1,
            Int::Small(-1) => -1,
            _ => 0,
        }
    }
    fn step_at(x: &Self, t: &Self) -> Option<Self> {
        // Integers: x < t means x − t + 1 ≤ 0.
        Some(Int::Small(i128::from(x >= t)))
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
    const EXACT: bool = true;
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
            const EXACT: bool = false;
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
            Coef::Other(c) => match x.unit_sign() {
                1 => acc.add_ref(c),
                -1 => acc.sub_ref(c),
                _ => acc.add_ref(&c.mul_ref(x)),
            },
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

/// A hidden unit: the (register, weight) terms of its W_1 row, and b_1[k].
type Unit<T> = (Vec<(u32, Coef<T>)>, T);
/// Units sharing one |W_2| coefficient, each with its sign (true = negative).
type Group<T> = (Coef<T>, Vec<(u32, bool)>);
/// An output register: its index, its groups of units, and b_2[r].
type OutReg<T> = (u32, Vec<Group<T>>, T);

/// One FFN sublayer, compiled: z ← z + W_2 ReLU(W_1 z + b_1) + b_2.
#[derive(Debug, Clone)]
struct FfnPlan<T> {
    units: Vec<Unit<T>>,
    /// Exact engines group units by |W_2| coefficient; float engines keep one
    /// unit per group (plain summation order).
    outs: Vec<OutReg<T>>,
    /// How each hidden unit is evaluated (see [`Role`]); all `Plain` for floats.
    roles: Vec<Role<T>>,
}

/// How an exact plan evaluates one hidden unit.
///
/// A *step pair* is two units a = ReLU(p + 1) and b = ReLU(p) on the same
/// pre-activation p (same W_1 row, b_1[a] = b_1[b] + 1) whose W_2 columns are
/// negatives of each other, so they only ever enter the output as a − b =
/// clamp(p + 1, 0, 1): the bit-extraction and block-selection gadgets of the
/// memorizer (docs/construction.md §7.4). The plan stores a − b in a's slot
/// and 0 in b's; every output sum is unchanged (c·a − c·b = c·(a − b)), and for
/// a single-register p = x − t on integers the step is one comparison x ≥ t
/// instead of two additions on integers of ρ·B bits.
#[derive(Debug, Clone)]
enum Role<T> {
    /// ReLU(W_1[k]·z + b_1[k]).
    Plain,
    /// The upper unit of a step pair: a − b, from the lower unit's row.
    Step {
        /// The lower unit b.
        lower: usize,
        /// (x, t) when p = x − t for one register x with weight 1.
        threshold: Option<(u32, T)>,
    },
    /// The lower unit of a step pair: its value lives in the upper unit's slot.
    Zero,
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
            let mut groups: Vec<Group<T>> = Vec::new();
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
        let roles = if group { Self::step_pairs(f)? } else { vec![Role::Plain; q] };
        Some(FfnPlan { units, outs, roles })
    }

    /// Finds the step pairs of `f` (see [`Role`]) from its stored weights.
    fn step_pairs(f: &Ffn) -> Option<Vec<Role<T>>> {
        let q = f.w1.rows;
        let mut rows: Vec<Vec<(u32, RBig)>> = vec![Vec::new(); q];
        for (r, c, v) in &f.w1.entries {
            rows[*r as usize].push((*c, v.0.clone()));
        }
        for row in &mut rows {
            row.sort_by_key(|(c, _)| *c);
        }
        let mut b1 = vec![RBig::ZERO; q];
        for (r, _, v) in &f.b1.entries {
            b1[*r as usize] = v.0.clone();
        }
        let mut cols: Vec<Vec<(u32, RBig)>> = vec![Vec::new(); q];
        for (r, k, v) in &f.w2.entries {
            cols[*k as usize].push((*r, v.0.clone()));
        }
        for col in &mut cols {
            col.sort_by_key(|(r, _)| *r);
        }
        // (W_1 row, b_1 entry) → unit: pre-activations identical up to the bias.
        type Pre<'a> = (&'a [(u32, RBig)], &'a RBig);
        let by_pre: HashMap<Pre, usize> = (0..q).map(|k| ((rows[k].as_slice(), &b1[k]), k)).collect();
        let mut roles: Vec<Role<T>> = vec![Role::Plain; q];
        for lower in 0..q {
            let up_bias = &b1[lower] + RBig::ONE;
            let Some(&upper) = by_pre.get(&(rows[lower].as_slice(), &up_bias)) else { continue };
            let negated = cols[upper].len() == cols[lower].len()
                && cols[upper].iter().zip(&cols[lower]).all(|((ra, va), (rb, vb))| ra == rb && *va == -vb.clone());
            if upper == lower
                || cols[upper].is_empty()
                || !negated
                || !matches!(roles[upper], Role::Plain)
                || !matches!(roles[lower], Role::Plain)
            {
                continue;
            }
            let threshold = match rows[lower].as_slice() {
                [(x, w)] if *w == RBig::ONE => Some((*x, T::from_exact(&-b1[lower].clone())?)),
                _ => None,
            };
            roles[upper] = Role::Step { lower, threshold };
            roles[lower] = Role::Zero;
        }
        Some(roles)
    }

    /// The value stored for hidden unit k (see [`Role`]): ReLU of its
    /// pre-activation, a − b for the upper unit of a step pair, 0 for the lower.
    fn hidden(&self, k: usize, g: &[T], z: &[T], from_g: u64) -> T {
        match &self.roles[k] {
            Role::Plain => self.unit_value(k, g, z, from_g),
            Role::Zero => T::zero(),
            Role::Step { lower, threshold } => {
                if let Some((x, t)) = threshold {
                    let r = *x as usize;
                    let xv = if r < 64 && from_g >> r & 1 == 1 { &g[r] } else { &z[r] };
                    if let Some(d) = T::step_at(xv, t) {
                        return d;
                    }
                }
                // General: a − b = ReLU(p + 1) − ReLU(p).
                let b = self.unit_value(*lower, g, z, from_g);
                let mut a = self.unit_value(k, g, z, from_g);
                a.sub_ref(&b);
                a
            }
        }
    }

    /// Hidden unit k: ReLU(W_1[k]·z + b_1[k]), reading register r from `g`
    /// when bit r of `from_g` is set and from `z` otherwise.
    fn unit_value(&self, k: usize, g: &[T], z: &[T], from_g: u64) -> T {
        let (terms, bias) = &self.units[k];
        let mut pre = bias.clone();
        for (r, w) in terms {
            let r = *r as usize;
            let x = if r < 64 && from_g >> r & 1 == 1 { &g[r] } else { &z[r] };
            w.mul_add(&mut pre, x);
        }
        if pre.is_negative() {
            T::zero()
        } else {
            pre
        }
    }

    /// z[r] += (W_2 h + b_2)[r] for output entry `oi`, unit values from `hv`.
    /// Exact types add term by term into `target`; floats sum the delta
    /// first, as a dense layer followed by the residual add would.
    fn out_into<'h>(&self, oi: usize, target: &mut T, hv: impl Fn(usize) -> &'h T)
    where
        T: 'h,
    {
        let (_, groups, bias) = &self.outs[oi];
        let mut delta_store = T::zero();
        let delta: &mut T = if T::EXACT { &mut *target } else { &mut delta_store };
        for (w, members) in groups {
            if let [(k, neg)] = members.as_slice() {
                let h = hv(*k as usize);
                if h.is_zero() {
                    continue;
                }
                match (w, neg) {
                    (Coef::One, false) | (Coef::MinusOne, true) => delta.add_ref(h),
                    (Coef::One, true) | (Coef::MinusOne, false) => delta.sub_ref(h),
                    (w, false) => w.mul_add(delta, h),
                    (w, true) => {
                        let mut m = T::zero();
                        m.sub_ref(h);
                        w.mul_add(delta, &m);
                    }
                }
                continue;
            }
            let mut acc = T::zero();
            for (k, neg) in members {
                if *neg {
                    acc.sub_ref(hv(*k as usize));
                } else {
                    acc.add_ref(hv(*k as usize));
                }
            }
            if !acc.is_zero() {
                w.mul_add(delta, &acc);
            }
        }
        if !bias.is_zero() {
            delta.add_ref(bias);
        }
        if !T::EXACT {
            target.add_ref(&delta_store);
        }
        // (for exact types delta_store stayed zero)
    }

    /// z ← z + W_2 ReLU(W_1 z + b_1) + b_2
    fn apply(&self, z: &mut [T], h: &mut Vec<T>) {
        h.clear();
        for k in 0..self.units.len() {
            h.push(self.hidden(k, z, z, 0));
        }
        for oi in 0..self.outs.len() {
            let r = self.outs[oi].0 as usize;
            self.out_into(oi, &mut z[r], |k| &h[k]);
        }
    }

    /// Registers read by the update of each register (its own old value,
    /// and the inputs of every unit feeding it), as bit masks; None if the
    /// width exceeds 64.
    fn read_masks(&self, m: usize) -> Option<Vec<u64>> {
        if m > 64 {
            return None;
        }
        let unit_mask: Vec<u64> = self.units.iter().map(|(t, _)| t.iter().fold(0u64, |a, (r, _)| a | 1 << r)).collect();
        let mut out = vec![0u64; m];
        for (r, groups, _) in &self.outs {
            let mut mask = 1u64 << r;
            for (_, members) in groups {
                for (k, _) in members {
                    mask |= unit_mask[*k as usize];
                }
            }
            out[*r as usize] |= mask;
        }
        Some(out)
    }

    /// One layer of split evaluation (see [`SharedTail`]): units that read
    /// only shared registers are computed once on `g`; the rest per column.
    fn split(&self, shared: u64) -> SplitLayer {
        let unit_shared: Vec<bool> =
            self.units.iter().map(|(t, _)| t.iter().all(|(r, _)| *r < 64 && shared >> r & 1 == 1)).collect();
        let is_shared_reg = |oi: &usize| shared >> self.outs[*oi].0 & 1 == 1;
        SplitLayer {
            shared_units: (0..self.units.len()).filter(|&k| unit_shared[k]).collect(),
            private_units: (0..self.units.len()).filter(|&k| !unit_shared[k]).collect(),
            shared_outs: (0..self.outs.len()).filter(is_shared_reg).collect(),
            private_outs: (0..self.outs.len()).filter(|oi| !is_shared_reg(oi)).collect(),
            unit_shared,
        }
    }

    /// One layer of split evaluation (see [`ExactEngine::shared_tail`]):
    /// units that read only shared registers are computed once on `g`, the
    /// rest once per column; shared registers are then updated on `g`.
    fn apply_split(
        &self,
        shared: u64,
        sl: &SplitLayer,
        g: &mut [T],
        cols: &mut [Vec<T>],
        hs: &mut Vec<T>,
        hp: &mut Vec<T>,
    ) {
        hs.clear();
        hs.resize(self.units.len(), T::zero());
        for &k in &sl.shared_units {
            hs[k] = self.hidden(k, g, g, u64::MAX);
        }
        if !sl.private_outs.is_empty() {
            hp.clear();
            hp.resize(self.units.len(), T::zero());
            for z in cols.iter_mut() {
                for &k in &sl.private_units {
                    hp[k] = self.hidden(k, g, z, shared);
                }
                for &oi in &sl.private_outs {
                    let r = self.outs[oi].0 as usize;
                    self.out_into(oi, &mut z[r], |k| if sl.unit_shared[k] { &hs[k] } else { &hp[k] });
                }
            }
        }
        for &oi in &sl.shared_outs {
            // Closure guarantees every unit feeding r is a shared unit.
            let r = self.outs[oi].0 as usize;
            self.out_into(oi, &mut g[r], |k| &hs[k]);
        }
    }
}

/// Unit and output indices of one layer under a shared-register split.
#[derive(Debug, Clone)]
struct SplitLayer {
    unit_shared: Vec<bool>,
    shared_units: Vec<usize>,
    private_units: Vec<usize>,
    shared_outs: Vec<usize>,
    private_outs: Vec<usize>,
}

/// One attention head, compiled.
#[derive(Debug, Clone)]
struct HeadPlan<T> {
    wq: Lin<T>,
    wk: Lin<T>,
    wv: Lin<T>,
    wo: Lin<T>,
}

impl<T: Num> HeadPlan<T> {
    /// The heads of one block in `T`; None if a weight is not representable.
    fn compile_block(b: &crate::model::Block) -> Option<Vec<Self>> {
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
            .collect()
    }
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

impl Pred {
    /// The prediction of an exact output: its value as "p" or "p/q", and the
    /// class when it is an integer that fits in i64.
    pub fn exact(out: &RBig) -> Pred {
        let class = (out.denominator() == &UBig::ONE).then(|| i64::try_from(out.numerator().clone()).ok()).flatten();
        Pred { value: crate::model::fmt_exact(out), class }
    }
}

/// A token value as the embedding sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenValue {
    /// A token id below the vocabulary size: selects column `id` of W_E.
    Id(u32),
    /// A vector token of d finite coordinates, multiplied by W_E.
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
    /// The embedded column W_E x + b_E, plus column `pos` (0-based) of P when
    /// the model has learned positions.
    fn embed(&self, tok: &TokenValue, pos: usize) -> Self::Col;
    /// Applies the FFN sublayer of `block` (with its residual) to one column in place.
    fn ffn(&self, block: usize, col: &mut Self::Col, scratch: &mut Self::Scratch);
    /// Attention of `block` over all columns of one sequence; returns the
    /// updated `targets` columns (the others are not needed by the caller).
    fn attention(&self, block: usize, cols: &[Self::Col], targets: &[usize]) -> Result<Vec<Self::Col>, ModelError>;
    /// The output w_oᵀ z + b_o of one final column.
    fn readout(&self, col: &Self::Col) -> Pred;
    /// The deduplication identity of a column: equal keys mean equal states.
    fn key(&self, col: &Self::Col) -> Self::Key;
    /// The column rounded to f64, for divergence traces.
    fn to_f64(&self, col: &Self::Col) -> Vec<f64>;
    /// Runs blocks `tail_start..` and the readout on `states` with work
    /// shared between columns where that is exact ([`ExactEngine`] only);
    /// `Err(states)` to use the plain per-column loop.
    /// Also returns a one-line description of what was shared.
    ///
    /// Takes the states by value (a verifier at N = 10⁷ cannot afford a
    /// second copy) and gives them back, unchanged, when it does not apply.
    fn shared_tail(
        &self,
        _tail_start: usize,
        states: Vec<Self::Col>,
        _progress: &dyn Progress,
    ) -> Result<(Vec<Pred>, String), Vec<Self::Col>> {
        Err(states)
    }
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
        let heads = w.blocks.iter().map(HeadPlan::compile_block).collect::<Option<Vec<_>>>()?;
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
    cols: &[Vec<T>],
    targets: &[usize],
    div: impl Fn(&T, usize) -> T,
    weights: impl Fn(&[T]) -> Option<Vec<T>>,
) -> Option<Vec<Vec<T>>> {
    let n = cols.len();
    let mut deltas: Vec<Vec<T>> = vec![vec![T::zero(); cols.first().map_or(0, Vec::len)]; targets.len()];
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
            vec![mean; targets.len()]
        } else {
            let queries: Vec<Vec<T>> = targets.iter().map(|&j| h.wq.apply(&cols[j])).collect();
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
    Some(
        targets
            .iter()
            .zip(deltas)
            .map(|(&j, d)| {
                let mut z = cols[j].clone();
                for (a, b) in z.iter_mut().zip(&d) {
                    a.add_ref(b);
                }
                z
            })
            .collect(),
    )
}

/// A column of the exact engine: integers while everything is integral.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExactCol {
    /// All m registers are integers.
    Int(Vec<Int>),
    /// The m registers as rationals, at least one of them not an integer.
    Rat(Vec<RBig>),
}

impl ExactCol {
    fn to_rat(&self) -> Vec<RBig> {
        match self {
            ExactCol::Int(z) => z.iter().map(|v| RBig::from(v.to_ibig())).collect(),
            ExactCol::Rat(z) => z.clone(),
        }
    }
    fn from_rat(z: Vec<RBig>) -> ExactCol {
        if z.iter().all(|v| v.denominator() == &UBig::ONE) {
            ExactCol::Int(z.into_iter().map(|v| Int::from_ibig(v.into_parts().0)).collect())
        } else {
            ExactCol::Rat(z)
        }
    }
}

/// Exact evaluation in integers and rationals.
pub struct ExactEngine {
    width: usize,
    /// Register names, for describing what was shared.
    names: Vec<String>,
    /// Integer head plans for blocks whose attention weights are integral.
    int_heads: Vec<Option<Vec<HeadPlan<Int>>>>,
    /// Use register-closure sharing in the tail (see [`ExactEngine::shared_tail`]).
    sharing: bool,
    rat: Compiled<RBig>,
    /// Integer FFN plans where all weights of the block are integers.
    ffn_int: Vec<Option<FfnPlan<Int>>>,
    ffn_rat: Vec<FfnPlan<RBig>>,
}

impl ExactEngine {
    /// Compiles `model` for exact evaluation (integer plans where a block's
    /// weights are all integers, rational plans otherwise), with tail sharing on.
    pub fn new(model: &Model) -> Self {
        let rat = Compiled::compile(model).expect("rationals represent every weight");
        let ffn_int = model.weights.blocks.iter().map(|b| FfnPlan::compile(&b.ffn, true)).collect();
        let ffn_rat =
            model.weights.blocks.iter().map(|b| FfnPlan::compile(&b.ffn, true).expect("rational plan")).collect();
        let int_heads = model.weights.blocks.iter().map(HeadPlan::compile_block).collect();
        ExactEngine {
            width: model.config.width,
            names: model.config.registers.clone(),
            int_heads,
            sharing: true,
            rat,
            ffn_int,
            ffn_rat,
        }
    }

    /// Fast exact path for integer columns whose keys are all equal (constant
    /// scores, weights exactly 1/n): values are summed as integers and divided
    /// once. None when it does not apply (the general rational path is used).
    fn uniform_int_attention(&self, block: usize, cols: &[ExactCol], targets: &[usize]) -> Option<Vec<ExactCol>> {
        let heads = self.int_heads[block].as_ref()?;
        let z: Vec<&Vec<Int>> = cols
            .iter()
            .map(|c| match c {
                ExactCol::Int(z) => Some(z),
                ExactCol::Rat(_) => None,
            })
            .collect::<Option<_>>()?;
        let n = z.len();
        let mut delta: Vec<RBig> = vec![RBig::ZERO; self.width];
        for (h, rh) in heads.iter().zip(&self.rat.heads[block]) {
            if h.wo.is_zero() || h.wv.is_zero() {
                continue;
            }
            let k0 = h.wk.apply(z[0]);
            if !z.iter().all(|c| h.wk.apply(c) == k0) {
                return None;
            }
            let mut sum = h.wv.apply(z[0]);
            for c in &z[1..] {
                for (a, b) in sum.iter_mut().zip(h.wv.apply(c)) {
                    a.add_assign(&b);
                }
            }
            let mean: Vec<RBig> = sum.iter().map(|v| RBig::from(v.to_ibig()) / RBig::from(n)).collect();
            for (d, v) in delta.iter_mut().zip(rh.wo.apply(&mean)) {
                *d = &*d + &v;
            }
        }
        Some(
            targets
                .iter()
                .map(|&j| {
                    let zr: Vec<RBig> = z[j]
                        .iter()
                        .zip(&delta)
                        .map(|(a, d)| if d.is_zero() { RBig::from(a.to_ibig()) } else { RBig::from(a.to_ibig()) + d })
                        .collect();
                    ExactCol::from_rat(zr)
                })
                .collect(),
        )
    }

    /// The same engine with tail sharing switched off: every column runs every
    /// layer on its own. Used to test that sharing changes nothing.
    pub fn without_sharing(model: &Model) -> Self {
        ExactEngine { sharing: false, ..ExactEngine::new(model) }
    }

    /// Chooses the split layer `a` and the shared register set S for blocks
    /// `tail_start..`: P = forward closure of the registers that vary across
    /// `cols` under "is updated from" in blocks a.., S = the rest, so S is
    /// closed (an S register never reads a P register). Picks the `a` where S
    /// covers the most registers that are still written. Returns (a, S mask).
    fn choose_split(&self, plans: &[&FfnPlan<Int>], cols: &[Vec<Int>]) -> Option<(usize, u64)> {
        let m = self.width;
        let masks: Vec<Vec<u64>> = plans.iter().map(|p| p.read_masks(m)).collect::<Option<_>>()?;
        let first = cols.first()?;
        let seed = (0..m).filter(|&r| cols.iter().any(|z| z[r] != first[r])).fold(0u64, |a, r| a | 1 << r);
        let full = if m == 64 { u64::MAX } else { (1u64 << m) - 1 };
        let mut suffix = vec![0u64; m];
        let mut written = 0u64;
        let mut best: Option<(u32, usize, u64)> = None;
        for a in (0..plans.len()).rev() {
            for r in 0..m {
                suffix[r] |= masks[a][r];
                if masks[a][r] != 0 {
                    written |= 1 << r;
                }
            }
            let mut p = seed;
            loop {
                let before = p;
                for (r, sfx) in suffix.iter().enumerate() {
                    if sfx & p != 0 {
                        p |= 1 << r;
                    }
                }
                if p == before {
                    break;
                }
            }
            let shared = full & !p;
            let score = (shared & written).count_ones();
            if score > 0 && best.is_none_or(|(s, _, _)| score >= s) {
                best = Some((score, a, shared));
            }
        }
        best.map(|(_, a, s)| (a, s))
    }
}

impl Engine for ExactEngine {
    type Col = ExactCol;
    type Key = ExactCol;
    type Scratch = (Vec<Int>, Vec<RBig>);

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

    fn attention(&self, block: usize, cols: &[ExactCol], targets: &[usize]) -> Result<Vec<ExactCol>, ModelError> {
        let heads = &self.rat.heads[block];
        if heads.is_empty() {
            return Ok(targets.iter().map(|&j| cols[j].clone()).collect());
        }
        if let Some(out) = self.uniform_int_attention(block, cols, targets) {
            return Ok(out);
        }
        let z: Vec<Vec<RBig>> = cols.iter().map(ExactCol::to_rat).collect();
        let kind = self.rat.kind;
        let out = attention_field(
            heads,
            &z,
            targets,
            |a, n| a / RBig::from(n),
            |scores| {
                let max = scores.iter().max()?;
                let all_equal = scores.iter().all(|s| s == max);
                match (kind, all_equal) {
                    (_, true) => Some(vec![RBig::ONE / RBig::from(scores.len()); scores.len()]),
                    (AttentionKind::Hardmax, false) => {
                        let k = scores.iter().filter(|s| *s == max).count();
                        Some(
                            scores
                                .iter()
                                .map(|s| if s == max { RBig::ONE / RBig::from(k) } else { RBig::ZERO })
                                .collect(),
                        )
                    }
                    (AttentionKind::Softmax, false) => None,
                }
            },
        )
        .ok_or(ModelError::InexactSoftmax { block })?;
        Ok(out.into_iter().map(ExactCol::from_rat).collect())
    }

    fn readout(&self, col: &ExactCol) -> Pred {
        let z = col.to_rat();
        let mut out = self.rat.readout.apply(&z).pop().unwrap_or(RBig::ZERO);
        out.add_ref(&self.rat.readout_bias);
        Pred::exact(&out)
    }

    fn key(&self, col: &ExactCol) -> ExactCol {
        col.clone()
    }

    /// Two exact ways of sharing work between columns of the integer tail.
    ///
    /// 1. The sorted sweep (module `sweep`): a leading run of layers whose
    ///    units read one register that the run never writes (the memorizer's
    ///    phase A) is evaluated for all columns at once, in key order.
    /// 2. Register-closure sharing. From the split layer `a` on, the shared
    ///    registers S are updated only from S registers (checked on the stored
    ///    weights by `ExactEngine::choose_split`), so columns whose S values
    ///    agree at `a` have identical S trajectories: S runs once per group of
    ///    such columns, the other registers once per column, reading their
    ///    group's S values. The result is exactly the per-column computation.
    fn shared_tail(
        &self,
        tail_start: usize,
        states: Vec<ExactCol>,
        progress: &dyn Progress,
    ) -> Result<(Vec<Pred>, String), Vec<ExactCol>> {
        let plans: Option<Vec<&FfnPlan<Int>>> = self.ffn_int[tail_start..].iter().map(Option::as_ref).collect();
        let (true, Some(plans)) = (self.sharing && !states.is_empty(), plans) else { return Err(states) };
        if states.iter().any(|c| matches!(c, ExactCol::Rat(_))) {
            return Err(states);
        }
        let mut cols: Vec<Vec<Int>> = states
            .into_iter()
            .map(|c| match c {
                ExactCol::Int(z) => z,
                ExactCol::Rat(_) => unreachable!("checked above"),
            })
            .collect();
        let n = cols.len();
        let split = self.choose_split(&plans, &cols);
        let a = split.map_or(plans.len(), |(a, _)| a);
        // Blocks ..s: the sorted sweep over register x (module `sweep`).
        let (s, x) = sweep::leading_span(&plans[..a]);
        if s == 0 && split.is_none() {
            return Err(cols.into_iter().map(ExactCol::Int).collect()); // nothing to share
        }
        let x = x.unwrap_or(0);
        let order: Vec<usize> = if s > 0 { sweep::sorted_order(&cols, x) } else { (0..n).collect() };
        let mut sweeper = (s > 0).then(|| {
            let xs: Vec<Int> = order.iter().map(|&i| cols[i][x as usize].clone()).collect();
            sweep::Sweeper::new(&plans[..s], x, &xs)
        });
        let split_layers: Vec<SplitLayer> =
            split.map(|(a, shared)| plans[a..].iter().map(|p| p.split(shared)).collect()).unwrap_or_default();
        let mut out: Vec<Option<Pred>> = vec![None; n];
        let mut n_groups = 0usize;
        progress.start("tail (sorted chunks)", n as u64);
        // Columns stream through in chunks of sorted order: only one chunk at
        // a time holds the memorizer's ~√N-bit block registers.
        for chunk in order.chunks(TAIL_CHUNK) {
            let mut zs: Vec<Vec<Int>> = chunk.iter().map(|&i| std::mem::take(&mut cols[i])).collect();
            if let Some(sw) = sweeper.as_mut() {
                for z in &mut zs {
                    sw.apply_next(z);
                }
            }
            if s < a {
                zs.par_iter_mut().for_each_init(Vec::new, |h, z| {
                    for p in &plans[s..a] {
                        p.apply(z, h);
                    }
                });
            }
            let preds: Vec<(usize, Pred)> = match split {
                None => zs.into_par_iter().enumerate().map(|(j, z)| (j, self.readout(&ExactCol::Int(z)))).collect(),
                Some((a, shared)) => {
                    let is_shared = |r: usize| r < 64 && shared >> r & 1 == 1;
                    // Group by the shared registers' values; a group keeps one
                    // copy of them (g) and its members only their own registers.
                    let mut index: HashMap<Vec<Int>, usize> = HashMap::new();
                    // (shared values g, member positions in the chunk, member columns)
                    type Group = (Vec<Int>, Vec<usize>, Vec<Vec<Int>>);
                    let mut groups: Vec<Group> = Vec::new();
                    for (j, mut z) in zs.into_iter().enumerate() {
                        let key: Vec<Int> = (0..self.width).filter(|&r| is_shared(r)).map(|r| z[r].clone()).collect();
                        let gi = *index.entry(key).or_insert_with(|| {
                            groups.push((z.clone(), Vec::new(), Vec::new()));
                            groups.len() - 1
                        });
                        for (r, zr) in z.iter_mut().enumerate() {
                            if is_shared(r) {
                                *zr = Int::ZERO;
                            }
                        }
                        groups[gi].1.push(j);
                        groups[gi].2.push(z);
                    }
                    drop(index);
                    n_groups += groups.len();
                    groups
                        .into_par_iter()
                        .map_init(
                            || (Vec::new(), Vec::new()),
                            |(hs, hp), (mut g, members, mut mine)| {
                                for (p, sl) in plans[a..].iter().zip(&split_layers) {
                                    p.apply_split(shared, sl, &mut g, &mut mine, hs, hp);
                                }
                                members
                                    .into_iter()
                                    .zip(mine)
                                    .map(|(j, mut z)| {
                                        for (r, zr) in z.iter_mut().enumerate() {
                                            if is_shared(r) {
                                                *zr = g[r].clone();
                                            }
                                        }
                                        (j, self.readout(&ExactCol::Int(z)))
                                    })
                                    .collect::<Vec<_>>()
                            },
                        )
                        .flatten()
                        .collect()
                }
            };
            for (j, p) in preds {
                out[chunk[j]] = Some(p);
            }
            progress.inc(chunk.len() as u64);
        }
        let swept = if s > 0 {
            format!(
                "blocks {}..{} in one sorted sweep over register {}; ",
                tail_start,
                tail_start + s,
                self.names[x as usize]
            )
        } else {
            String::new()
        };
        let per_column =
            if s < a { format!("blocks {}..{} per column; ", tail_start + s, tail_start + a) } else { String::new() };
        let note = match split {
            None => format!("{swept}{per_column}").trim_end_matches("; ").to_string(),
            Some((a, shared)) => format!(
                "{swept}{per_column}from block {} on, registers {{{}}} once per group of equal values ({} groups for {} columns, in chunks of {} sorted columns)",
                tail_start + a,
                (0..self.width).filter(|r| shared >> r & 1 == 1).map(|r| self.names[r].as_str()).collect::<Vec<_>>().join(", "),
                n_groups,
                n,
                TAIL_CHUNK
            ),
        };
        Ok((out.into_iter().map(|p| p.expect("every column predicted")).collect(), note))
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
pub trait Float:
    Num
    + Copy
    + PartialOrd
    + Into<f64>
    + std::ops::Sub<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Mul<Output = Self>
{
    /// The nearest value of this type to `v`.
    fn of_f64(v: f64) -> Self;
    /// e^self in this type.
    fn exp(self) -> Self;
    /// The IEEE bit pattern widened to u64 (the column key).
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
    /// Compiles `model` with every weight rounded to the nearest `F`.
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
    fn attention(&self, block: usize, cols: &[Vec<F>], targets: &[usize]) -> Result<Vec<Vec<F>>, ModelError> {
        let kind = self.c.kind;
        let out = attention_field(
            &self.c.heads[block],
            cols,
            targets,
            |a, n| *a * (F::of_f64(1.0) / F::of_f64(n as f64)),
            |scores| {
                let max = scores.iter().copied().fold(scores[0], |a, b| if b > a { b } else { a });
                let w: Vec<F> = match kind {
                    AttentionKind::Softmax => scores.iter().map(|s| (*s - max).exp()).collect(),
                    AttentionKind::Hardmax => {
                        scores.iter().map(|s| F::of_f64(if *s == max { 1.0 } else { 0.0 })).collect()
                    }
                };
                let mut sum = F::zero();
                for x in &w {
                    sum.add_ref(x);
                }
                Some(w.iter().map(|x| *x / sum).collect())
            },
        );
        Ok(out.expect("float attention always has weights"))
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

/// Residual FFN layers, z ← z + W_2 ReLU(W_1 z + b_1) + b_2, compiled once
/// into the exact engine's plans (grouped outputs, step pairs; integers
/// while every weight and value is an integer) and run on any number of
/// columns. This is how [`crate::baselines::BaselineNet`] counts memorized
/// examples; its `eval_exact` is the dense reference the tests compare with.
pub struct FfnStack {
    /// Integer plans, when every weight is an integer.
    int: Option<Vec<FfnPlan<Int>>>,
    /// Rational plans, for columns or weights that are not integers.
    rat: Vec<FfnPlan<RBig>>,
}

impl FfnStack {
    /// Compiles `layers`.
    pub fn new(layers: &[Ffn]) -> FfnStack {
        FfnStack {
            int: layers.iter().map(|f| FfnPlan::compile(f, true)).collect(),
            rat: layers.iter().map(|f| FfnPlan::compile(f, true).expect("rationals represent every weight")).collect(),
        }
    }

    /// The column `z` (m registers) after every layer.
    pub fn run(&self, z: &[RBig]) -> Vec<RBig> {
        let ints: Option<Vec<Int>> = z.iter().map(Int::from_exact).collect();
        let mut h = Vec::new();
        if let (Some(mut zi), Some(plans)) = (ints, &self.int) {
            for p in plans {
                p.apply(&mut zi, &mut h);
            }
            return zi.iter().map(|v| RBig::from(v.to_ibig())).collect();
        }
        let mut zr = z.to_vec();
        let mut h = Vec::new();
        for p in &self.rat {
            p.apply(&mut zr, &mut h);
        }
        zr
    }
}

// ------------------------------------------------------------------------
// Pipeline

/// Progress reporting for long evaluations (the core does no IO; the CLI
/// draws bars).
pub trait Progress: Sync {
    /// A stage begins (e.g. "token-wise prefix", "attention") with `total`
    /// work items (columns, sequences or states).
    fn start(&self, _stage: &str, _total: u64) {}
    /// `n` more items of the current stage are done (called from worker threads).
    fn inc(&self, _n: u64) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// A dataset prepared for a model: distinct tokens and sequences as indices.
pub struct Prepared {
    /// The distinct tokens of the dataset, indexed by the entries of `seqs`.
    pub tokens: Vec<TokenValue>,
    /// Every example as indices into `tokens`: N rows of n.
    pub seqs: Vec<Vec<u32>>,
    /// Positions whose outputs are claimed (next-token: the last).
    pub needed: Vec<usize>,
    /// True when the model has learned positions (a column then depends on its position too).
    pub positional: bool,
}

impl Prepared {
    /// Checks that `ds` fits `model` and indexes its tokens.
    pub fn new(model: &Model, ds: &Dataset) -> Result<Prepared, ModelError> {
        // Shapes, ranges and finiteness first: the exact embedding turns every
        // input value into a rational, which a NaN or infinity has not.
        ds.validate().map_err(|e| ModelError::Mismatch(format!("invalid dataset: {e}")))?;
        let c = &model.config;
        let n = ds.seq_len();
        match (&ds.inputs, c.input) {
            (Inputs::Ids { vocab, .. }, crate::model::InputSpec::Ids { vocab: mv }) if *vocab <= mv => {}
            (Inputs::Vectors { d, .. }, crate::model::InputSpec::Vectors { d: md }) if *d == md => {}
            _ => {
                return Err(ModelError::Mismatch(format!(
                    "dataset inputs ({} dims) do not match the model's {:?}",
                    ds.input_dim(),
                    c.input
                )))
            }
        }
        if n != c.seq_len {
            return Err(ModelError::Mismatch(format!(
                "dataset sequences have length {n}, the model was built for {}",
                c.seq_len
            )));
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
    /// One row per example (N), one [`Pred`] per entry of [`Prepared::needed`].
    pub preds: Vec<Vec<Pred>>,
    /// Distinct input sequences evaluated through the attention block(s).
    pub distinct_sequences: usize,
    /// Distinct (token, position) columns run through the pre-attention part.
    pub distinct_tokens: usize,
    /// Distinct column states run through the post-attention part.
    pub distinct_tail_states: usize,
    /// How the post-attention part shared work, if it did.
    pub sharing: Option<String>,
}

/// Runs every example through `engine` (see the module docs for what is
/// shared and why that is exact).
pub fn run<E: Engine>(
    engine: &E,
    model: &Model,
    prep: &Prepared,
    progress: &dyn Progress,
) -> Result<RunOutput, ModelError> {
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
                        // After the last attention block only the claimed positions are read.
                        let targets: Vec<usize> = if b == last { prep.needed.clone() } else { (0..n).collect() };
                        cols = engine.attention(b, &cols, &targets)?;
                        for z in &mut cols {
                            engine.ffn(b, z, scratch);
                        }
                    }
                    progress.inc(1);
                    Ok(cols)
                })
                .collect::<Result<_, ModelError>>()?
        }
    };

    // 3. Token-wise tail, once per distinct column state. States are moved,
    //    not copied, and deduplicated through a hash index (64-bit hash of the
    //    key, collisions chained and compared in full) instead of a map that
    //    would hold a second copy of every state.
    let tail_start = last.map_or(nblocks, |l| l + 1);
    let hasher = std::collections::hash_map::RandomState::new();
    let mut first: HashMap<u64, usize> = HashMap::new();
    let mut chain: Vec<usize> = Vec::new(); // next state with the same hash, or usize::MAX
    let mut states: Vec<E::Col> = Vec::new();
    let state_of: Vec<Vec<usize>> = needed_states
        .into_iter()
        .map(|cols| {
            cols.into_iter()
                .map(|c| {
                    let key = engine.key(&c);
                    let h = std::hash::BuildHasher::hash_one(&hasher, &key);
                    let mut at = first.get(&h).copied().unwrap_or(usize::MAX);
                    while at != usize::MAX {
                        if engine.key(&states[at]) == key {
                            return at;
                        }
                        at = chain[at];
                    }
                    let id = states.len();
                    chain.push(first.insert(h, id).unwrap_or(usize::MAX));
                    states.push(c);
                    id
                })
                .collect()
        })
        .collect();
    drop((first, chain));
    let distinct_tail_states = states.len();
    let mut sharing = None;
    let outs: Vec<Pred> = match engine.shared_tail(tail_start, states, progress) {
        Ok((outs, note)) => {
            sharing = Some(note);
            outs
        }
        Err(states) => {
            progress.start("token-wise tail", states.len() as u64);
            states
                .into_par_iter()
                .map_init(E::Scratch::default, |scratch, mut z| {
                    for b in tail_start..nblocks {
                        engine.ffn(b, &mut z, scratch);
                    }
                    progress.inc(1);
                    engine.readout(&z)
                })
                .collect()
        }
    };
    let preds = seq_of.iter().map(|&u| state_of[u].iter().map(|&s| outs[s].clone()).collect()).collect();
    Ok(RunOutput {
        preds,
        distinct_sequences: uniq.len(),
        distinct_tokens: col_list.len(),
        distinct_tail_states,
        sharing,
    })
}

/// The state of the needed columns after the embedding (entry 0) and after
/// every block (entry b+1), for one sequence, without any sharing: the plain
/// reference forward pass, used for divergence traces and tests.
pub fn trace<E: Engine>(
    engine: &E,
    model: &Model,
    tokens: &[TokenValue],
    needed: &[usize],
) -> Result<Vec<Vec<E::Col>>, ModelError> {
    let mut scratch = E::Scratch::default();
    let mut cols: Vec<E::Col> = tokens.iter().enumerate().map(|(k, t)| engine.embed(t, k)).collect();
    let mut out = vec![needed.iter().map(|&k| cols[k].clone()).collect()];
    let all: Vec<usize> = (0..cols.len()).collect();
    for b in 0..model.config.blocks {
        cols = engine.attention(b, &cols, &all)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use dashu_int::IBig;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random FFN on m registers in which some units come as step pairs
    /// (same W_1 row, biases β + 1 and β, negated W_2 columns), some pairs
    /// on one register with weight 1 (the comparison path), some on two
    /// registers (the general path), plus plain units; weights up to ~2^90.
    fn ffn_with_step_pairs(rng: &mut ChaCha8Rng, m: usize) -> Ffn {
        let q = 8;
        let (mut w1, mut b1) = (Sparse::zeros(q, m), Sparse::zeros(q, 1));
        let (mut w2, mut b2) = (Sparse::zeros(m, q), Sparse::zeros(m, 1));
        let big = |rng: &mut ChaCha8Rng| {
            let v = IBig::from(rng.gen_range(-3i64..=3));
            RBig::from(if rng.gen_bool(0.3) { v << 90 } else { v })
        };
        let mut k = 0;
        while k < q {
            let pair = k == 0 || (k + 1 < q && rng.gen_bool(0.7));
            let beta = big(rng);
            let regs: Vec<usize> = (0..rng.gen_range(1..=2)).map(|_| rng.gen_range(0..m)).collect();
            let weight =
                if regs.len() == 1 && rng.gen_bool(0.6) { RBig::ONE } else { RBig::from(rng.gen_range(1i64..=2)) };
            let rows = if pair { vec![k, k + 1] } else { vec![k] };
            for &row in &rows {
                let mut seen = Vec::new();
                for &r in &regs {
                    if !seen.contains(&r) {
                        w1.push(row, r, weight.clone());
                        seen.push(r);
                    }
                }
            }
            b1.push(k, 0, if pair { &beta + RBig::ONE } else { beta.clone() });
            if pair {
                b1.push(k + 1, 0, beta);
            }
            let out_reg = rng.gen_range(0..m);
            for r in 0..m {
                if r == out_reg || rng.gen_bool(0.5) {
                    let c = loop {
                        let c = big(rng);
                        if c != RBig::ZERO {
                            break c;
                        }
                    };
                    w2.push(r, k, c.clone());
                    if pair {
                        w2.push(r, k + 1, -c);
                    }
                }
            }
            k += rows.len();
        }
        for r in 0..m {
            if rng.gen_bool(0.3) {
                b2.push(r, 0, big(rng));
            }
        }
        Ffn { w1, b1, w2, b2 }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

        /// Step pairs change nothing: the exact plans with pairs (integers and
        /// rationals) equal the plain plan (no grouping, no pairs) on random
        /// columns, huge and fractional values included.
        #[test]
        fn step_pairs_equal_the_plain_ffn(seed in any::<u64>(), m in 1usize..5) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let f = ffn_with_step_pairs(&mut rng, m);
            let paired = FfnPlan::<Int>::compile(&f, true).unwrap();
            let steps = paired.roles.iter().filter(|r| matches!(r, Role::Step { .. })).count();
            prop_assert!(steps > 0, "no step pair detected");
            let plain = FfnPlan::<RBig>::compile(&f, false).unwrap();
            let paired_rat = FfnPlan::<RBig>::compile(&f, true).unwrap();
            for _ in 0..8 {
                let z: Vec<IBig> = (0..m)
                    .map(|_| {
                        let v = IBig::from(rng.gen_range(-6i64..=6));
                        if rng.gen_bool(0.2) { v << 90 } else { v }
                    })
                    .collect();
                let mut want: Vec<RBig> = z.iter().cloned().map(RBig::from).collect();
                plain.apply(&mut want, &mut Vec::new());
                let mut got: Vec<Int> = z.iter().cloned().map(Int::from_ibig).collect();
                paired.apply(&mut got, &mut Vec::new());
                let got: Vec<RBig> = got.iter().map(|v| RBig::from(v.to_ibig())).collect();
                prop_assert_eq!(&got, &want);
                // Rationals: x between t − 1 and t takes the general path.
                let zr: Vec<RBig> = z.iter().map(|v| RBig::from(v.clone()) + RBig::from_parts(IBig::ONE, dashu_int::UBig::from(3u8))).collect();
                let mut want_r = zr.clone();
                plain.apply(&mut want_r, &mut Vec::new());
                let mut got_r = zr;
                paired_rat.apply(&mut got_r, &mut Vec::new());
                prop_assert_eq!(got_r, want_r);
            }
        }
    }
}
