//! Float-exactness certificates (docs/construction.md §15): a proof, on a
//! dataset, that a model's forward pass in f32 or f64 returns exactly the
//! outputs of the exact pass, **whatever order the floating-point sums are
//! taken in** (so memcap, PyTorch and onnxruntime agree).
//!
//! The certificate runs the exact forward pass once per example and carries,
//! for every register, its exact value x (a dyadic rational) and a bound e on
//! |x̂ − x| for any float evaluation x̂. The rules, with p the mantissa bits
//! (24 or 53), u = 2^−p and γ_k = k·u / (1 − k·u) (Higham, *Accuracy and
//! Stability of Numerical Algorithms*, §3.1):
//!
//! 1. **Exact sums.** A dot product Σ w_i x_i + b whose inputs are exact and
//!    whose terms are multiples of 2^g, with max(Σ positive terms, Σ |negative
//!    terms|) ≤ 2^(g+p), is exact in any order: every partial sum is a
//!    multiple of 2^g of magnitude ≤ 2^(g+p), hence a float (FMA included).
//! 2. **Single rounding onto a unit grid** ("snap"). Two nonzero terms, one a
//!    noisy input times a power of two, the other exact: the float result is
//!    one rounding of their sum. If the exact sum y sits inside a binade
//!    [2^E, 2^(E+1)) with at least one grid step 2^(E−p+1) to either edge, is
//!    a multiple of that step, and the noise is below half a step, the
//!    rounding returns y exactly.
//! 3. **Otherwise** the error is bounded by Σ|w_i|·e_i + γ_k·(Σ|w_i|(|x_i| +
//!    e_i) + |b|), k the number of nonzero terms (any summation order).
//! 4. **ReLU**: a pre-activation whose exact value plus its bound is ≤ 0 is
//!    exactly 0 after the ReLU; otherwise the bound passes through.
//! 5. **Attention** with W_Q or W_K zero: every score is exactly 0, exp(0) = 1,
//!    the weights are fl(1/n) (exact when n is a power of two), and the mixed
//!    value o = Σ_j a v_j is within (1/n)Σ e_j + γ_(n+1)·(1/n)Σ(|v_j| + e_j)
//!    of its exact value. Scores that depend on the input are refused
//!    (softmax weights are then irrational).
//!
//! A model is certified on a dataset when every stored weight is a float of
//! that type and every claimed output ends with bound 0. The exact verifier
//! then decides memorization; the certificate transfers its verdict to floats.

use crate::data::Dataset;
use crate::error::ModelError;
use crate::eval::{Prepared, TokenValue};
use crate::model::{Model, Sparse};
use dashu_ratio::RBig;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// An IEEE 754 binary float type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum FloatType {
    /// binary32: p = 24 mantissa bits.
    F32,
    /// binary64: p = 53 mantissa bits.
    F64,
}

impl FloatType {
    /// Mantissa bits p (the implicit bit included).
    pub fn mantissa_bits(self) -> u32 {
        match self {
            FloatType::F32 => 24,
            FloatType::F64 => 53,
        }
    }
    /// Smallest exponent of a normal float (values below 2^emin are refused).
    fn min_exp(self) -> i32 {
        match self {
            FloatType::F32 => -126,
            FloatType::F64 => -1022,
        }
    }
    /// `f32` or `f64`.
    pub fn name(self) -> &'static str {
        match self {
            FloatType::F32 => "f32",
            FloatType::F64 => "f64",
        }
    }
}

/// The bounds of one stage, over every example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageBound {
    /// "embedding", "block 3 attention", "blocks 4–90 FFN", "readout".
    pub stage: String,
    /// log2 of the largest |exact value| of a register, pre-activation or output in the stage.
    pub max_abs_log2: f64,
    /// Largest error bound on a register at the end of the stage (0: exact).
    pub max_error: f64,
}

/// A float-exactness certificate (or the reason there is none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloatCertificate {
    /// The float type certified for.
    pub dtype: FloatType,
    /// True: on every example, the float forward pass in any summation order
    /// returns the exact outputs at every claimed position.
    pub certified: bool,
    /// Why (or why not), in one sentence.
    pub reason: String,
    /// Examples checked (the whole dataset).
    pub examples: usize,
    /// Claimed outputs proven exact.
    pub outputs_exact: usize,
    /// Claimed outputs in total.
    pub outputs: usize,
    /// Labelled positions whose exact output equals the label (the certificate
    /// transfers the exact pass to floats; this says what that pass gets).
    pub labels_matched: usize,
    /// Labelled positions (seq2seq positions without a label are left out).
    pub labels: usize,
    /// Bounds per stage (consecutive FFN blocks with the same behaviour merged).
    pub stages: Vec<StageBound>,
}

/// A dyadic rational m·2^e with m odd (or m = 0, e = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dy {
    m: i128,
    e: i32,
}

impl Dy {
    const ZERO: Dy = Dy { m: 0, e: 0 };
    fn new(m: i128, e: i32) -> Dy {
        if m == 0 {
            return Dy::ZERO;
        }
        let t = m.trailing_zeros();
        Dy { m: m >> t, e: e + t as i32 }
    }
    fn of_rbig(q: &RBig) -> Option<Dy> {
        use dashu_int::ops::{BitTest, PowerOfTwo};
        let den = q.denominator();
        if !den.is_power_of_two() {
            return None;
        }
        let k = den.bit_len() as i32 - 1;
        let m = i128::try_from(q.numerator().clone()).ok()?;
        Some(Dy::new(m, -k))
    }
    fn of_f64(x: f64) -> Option<Dy> {
        if !x.is_finite() {
            return None;
        }
        if x == 0.0 {
            return Some(Dy::ZERO);
        }
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let frac = (bits & ((1u64 << 52) - 1)) as i128;
        let (m, e) = if exp == 0 { (frac, -1074) } else { (frac | (1i128 << 52), exp - 1075) };
        Some(Dy::new(if x < 0.0 { -m } else { m }, e))
    }
    fn add(self, o: Dy) -> Option<Dy> {
        if self.m == 0 {
            return Some(o);
        }
        if o.m == 0 {
            return Some(self);
        }
        let e = self.e.min(o.e);
        let a = shl(self.m, (self.e - e) as u32)?;
        let b = shl(o.m, (o.e - e) as u32)?;
        Some(Dy::new(a.checked_add(b)?, e))
    }
    fn mul(self, o: Dy) -> Option<Dy> {
        Some(Dy::new(self.m.checked_mul(o.m)?, self.e.checked_add(o.e)?))
    }
    /// self / n when that is dyadic.
    fn div_exact(self, n: u64) -> Option<Dy> {
        let k = n.trailing_zeros();
        let odd = (n >> k) as i128;
        (self.m % odd == 0).then(|| Dy::new(self.m / odd, self.e - k as i32))
    }
    /// Upper bound on |self| as an f64.
    fn abs_up(self) -> f64 {
        (self.m.unsigned_abs() as f64) * (1.0 + 2f64.powi(-50)) * 2f64.powi(self.e)
    }
    /// Lower bound on |self| as an f64.
    fn abs_down(self) -> f64 {
        (self.m.unsigned_abs() as f64) * (1.0 - 2f64.powi(-50)) * 2f64.powi(self.e)
    }
    fn to_f64(self) -> f64 {
        (self.m as f64) * 2f64.powi(self.e)
    }
    fn bits(self) -> u32 {
        128 - self.m.unsigned_abs().leading_zeros()
    }
    fn max0(self) -> Dy {
        if self.m < 0 {
            Dy::ZERO
        } else {
            self
        }
    }
}

fn shl(m: i128, s: u32) -> Option<i128> {
    if m == 0 {
        return Some(0);
    }
    if s >= 127 {
        return None;
    }
    m.checked_mul(1i128 << s)
}

/// A register: exact value and error bound.
#[derive(Debug, Clone, Copy)]
struct Val {
    x: Dy,
    e: f64,
}

/// Rounds a bound up a little (the certificate's own f64 arithmetic).
fn up(x: f64) -> f64 {
    x * (1.0 + 2f64.powi(-48)) + f64::MIN_POSITIVE
}

/// Why a certificate cannot be made: (where, why).
type Fail = String;

struct Rules {
    p: u32,
    u: f64,
    min_exp: i32,
}

impl Rules {
    fn gamma(&self, k: usize) -> f64 {
        let ku = k as f64 * self.u;
        up(ku / (1.0 - ku))
    }

    /// Σ w_i·x_i + bias over the nonzero terms (rules 1–3).
    fn dot(&self, terms: &[(Dy, Val)], bias: Dy, what: &dyn Fn() -> String) -> Result<Val, Fail> {
        let mut y = bias;
        let (mut pos, mut neg, mut prop, mut mag) = (0f64, 0f64, 0f64, bias.abs_up());
        let mut g = if bias.m == 0 { i32::MAX } else { bias.e };
        if bias.m > 0 {
            pos += bias.abs_up();
        } else {
            neg += bias.abs_up();
        }
        let mut k = usize::from(bias.m != 0);
        let mut noisy: Vec<usize> = Vec::new();
        for (i, (w, v)) in terms.iter().enumerate() {
            if w.m == 0 {
                continue;
            }
            k += 1;
            let t = w.mul(v.x).ok_or_else(|| format!("{}: a product exceeds 2^127", what()))?;
            y = y.add(t).ok_or_else(|| format!("{}: a sum exceeds 2^127", what()))?;
            if t.m != 0 {
                g = g.min(t.e);
            }
            if t.m > 0 {
                pos += t.abs_up();
            } else {
                neg += t.abs_up();
            }
            let wa = w.abs_up();
            mag += wa * (v.x.abs_up() + v.e);
            if v.e > 0.0 {
                prop += wa * v.e;
                noisy.push(i);
            }
        }
        // Rule 1: exact inputs on a grid, every partial sum a float.
        if noisy.is_empty() && (g == i32::MAX || (g >= self.min_exp && pos.max(neg) <= 2f64.powi(g + self.p as i32))) {
            return Ok(Val { x: y, e: 0.0 });
        }
        // Rule 2: one rounding onto a unit grid.
        if k == 2 && noisy.len() == 1 && y.m != 0 {
            let (w, _) = terms[noisy[0]];
            let other_exact = match terms.iter().enumerate().find(|(i, (w, _))| *i != noisy[0] && w.m != 0) {
                Some((_, (w2, v2))) => w2.mul(v2.x).is_some_and(|t| t.bits() <= self.p) && v2.e == 0.0,
                None => bias.bits() <= self.p,
            };
            let pow2 = w.m.unsigned_abs() == 1;
            // y = m·2^e; binade E = e + bits − 1; grid step 2^(E−p+1).
            let e_bin = y.e + y.bits() as i32 - 1;
            let step_exp = e_bin - self.p as i32 + 1;
            let on_grid = y.e >= step_exp;
            let m_abs = y.m.unsigned_abs() << (y.e - step_exp).clamp(0, 100);
            // Grid index of |y| within the binade: 2^(p−1) ≤ m_abs < 2^p; one step from each edge.
            let inside = m_abs > (1u128 << (self.p - 1)) && m_abs < (1u128 << self.p);
            if pow2 && other_exact && on_grid && inside && prop < 0.5 * 2f64.powi(step_exp) {
                return Ok(Val { x: y, e: 0.0 });
            }
        }
        // Rule 3.
        let e = up(prop + self.gamma(k.max(1)) * mag);
        Ok(Val { x: y, e })
    }
}

/// Compiled sparse rows of one matrix: `rows[r]` = [(col, weight)].
/// Sparse rows: `rows[r]` = [(col, weight)].
type Rows = Vec<Vec<(usize, Dy)>>;

fn rows_of(s: &Sparse) -> Result<Rows, (u32, u32)> {
    let mut rows = vec![Vec::new(); s.rows];
    for (r, c, v) in &s.entries {
        let d = Dy::of_rbig(&v.0).ok_or((*r, *c))?;
        rows[*r as usize].push((*c as usize, d));
    }
    Ok(rows)
}

fn col_vec(s: &Sparse) -> Result<Vec<Dy>, (u32, u32)> {
    let mut v = vec![Dy::ZERO; s.rows];
    for (r, c, x) in &s.entries {
        v[*r as usize] = Dy::of_rbig(&x.0).ok_or((*r, *c))?;
    }
    Ok(v)
}

struct FfnRows {
    w1: Rows,
    b1: Vec<Dy>,
    w2: Rows,
    b2: Vec<Dy>,
    /// Registers the FFN writes.
    writes: Vec<usize>,
    /// Hidden units with a nonzero row or bias.
    units: Vec<usize>,
}

struct HeadRows {
    wv: Rows,
    wo: Rows,
}

/// Per-example stage record: (max |x| log2, max e).
#[derive(Clone, Copy)]
struct StageAcc {
    abs: f64,
    err: f64,
}

impl StageAcc {
    const NONE: StageAcc = StageAcc { abs: 0.0, err: 0.0 };
    fn see(&mut self, v: &Val) {
        self.abs = self.abs.max(v.x.abs_up());
        self.err = self.err.max(v.e);
    }
    fn merge(&mut self, o: &StageAcc) {
        self.abs = self.abs.max(o.abs);
        self.err = self.err.max(o.err);
    }
}

/// Certifies (or refuses, with the reason) that `model` computes in `dtype`
/// exactly what it computes in exact arithmetic, on every example of `ds`
/// and in any summation order (module docs give the rules).
///
/// Cost: one exact forward pass per example (registers as 128-bit dyadic
/// rationals), parallel over examples.
///
/// # Errors
/// [`ModelError::Mismatch`] when the model cannot run on `ds`. A model that
/// is not float-exact is not an error: the certificate says so and why.
pub fn certify(model: &Model, ds: &Dataset, dtype: FloatType) -> Result<FloatCertificate, ModelError> {
    let prep = Prepared::new(model, ds)?;
    let n = model.config.seq_len;
    let outputs = ds.len() * prep.needed.len();
    let refuse = |reason: String| FloatCertificate {
        dtype,
        certified: false,
        reason,
        examples: ds.len(),
        outputs_exact: 0,
        outputs,
        labels_matched: 0,
        labels: 0,
        stages: Vec::new(),
    };
    let p = dtype.mantissa_bits();
    // Every stored weight must be a float of this type.
    for (name, t) in model.tensors() {
        for (r, c, v) in &t.entries {
            let ok = Dy::of_rbig(&v.0).is_some_and(|d| d.bits() <= p && d.e >= dtype.min_exp() - p as i32);
            if !ok {
                return Ok(refuse(format!(
                    "weight {name}[{r},{c}] = {} is not a {} ({} significant bits)",
                    crate::model::fmt_exact(&v.0),
                    dtype.name(),
                    crate::model::weight_bits(&v.0)
                )));
            }
        }
    }
    let w = &model.weights;
    let bad = |(r, c): (u32, u32)| format!("weight ({r},{c}) is not dyadic");
    let embed = rows_of(&w.embed).map_err(|e| ModelError::Invalid(bad(e)))?;
    let embed_bias = col_vec(&w.embed_bias).map_err(|e| ModelError::Invalid(bad(e)))?;
    let pos = w.pos.as_ref().map(rows_of).transpose().map_err(|e| ModelError::Invalid(bad(e)))?;
    let readout = rows_of(&w.readout).map_err(|e| ModelError::Invalid(bad(e)))?;
    let readout_bias = col_vec(&w.readout_bias).map_err(|e| ModelError::Invalid(bad(e)))?;
    let mut ffns = Vec::with_capacity(w.blocks.len());
    let mut heads = Vec::with_capacity(w.blocks.len());
    for (l, b) in w.blocks.iter().enumerate() {
        let f = &b.ffn;
        let w1 = rows_of(&f.w1).map_err(|e| ModelError::Invalid(bad(e)))?;
        let b1 = col_vec(&f.b1).map_err(|e| ModelError::Invalid(bad(e)))?;
        let w2 = rows_of(&f.w2).map_err(|e| ModelError::Invalid(bad(e)))?;
        let b2 = col_vec(&f.b2).map_err(|e| ModelError::Invalid(bad(e)))?;
        let writes = (0..w2.len()).filter(|&r| !w2[r].is_empty() || b2[r].m != 0).collect();
        let units = (0..w1.len()).filter(|&i| !w1[i].is_empty() || b1[i].m != 0).collect();
        ffns.push(FfnRows { w1, b1, w2, b2, writes, units });
        let mut hs = Vec::new();
        for (h, hd) in b.heads.iter().enumerate() {
            if !hd.wq.entries.is_empty() && !hd.wk.entries.is_empty() {
                return Ok(refuse(format!(
                    "block {l} head {h}: attention scores depend on the input, so softmax weights are irrational \
                     (and rounded hardmax scores may tie differently)"
                )));
            }
            hs.push(HeadRows {
                wv: rows_of(&hd.wv).map_err(|e| ModelError::Invalid(bad(e)))?,
                wo: rows_of(&hd.wo).map_err(|e| ModelError::Invalid(bad(e)))?,
            });
        }
        heads.push(hs);
    }
    let last_attn = model.config.attention_blocks.last().copied();
    let rules = Rules { p, u: 2f64.powi(-(p as i32)), min_exp: dtype.min_exp() };
    let tokens: Vec<Vec<Dy>> = prep
        .tokens
        .iter()
        .map(|t| match t {
            TokenValue::Id(_) => Vec::new(),
            TokenValue::Vector(v) => v.iter().map(|x| Dy::of_f64(*x).unwrap_or(Dy::ZERO)).collect(),
        })
        .collect();
    let nblocks = w.blocks.len();
    // Stage slots: 0 embedding, 1 + 2l attention of block l, 2 + 2l FFN of block l, last readout.
    let nstages = 2 + 2 * nblocks;
    let label_rows = ds.label_rows();
    /// Per example: stage bounds, exact outputs, (labels matched, labelled positions).
    type PerExample = (Vec<StageAcc>, usize, (usize, usize));
    let results: Vec<Result<PerExample, Fail>> = prep
        .seqs
        .par_iter()
        .enumerate()
        .map(|(i, seq)| {
            let mut acc = vec![StageAcc::NONE; nstages];
            let m = model.config.width;
            // Embedding.
            let mut cols: Vec<Vec<Val>> = Vec::with_capacity(n);
            for (k, &t) in seq.iter().enumerate() {
                let mut col = Vec::with_capacity(m);
                for r in 0..m {
                    let mut terms: Vec<(Dy, Val)> = Vec::new();
                    match &prep.tokens[t as usize] {
                        TokenValue::Id(id) => {
                            if let Some(&(_, wv)) = embed[r].iter().find(|(c, _)| *c == *id as usize) {
                                terms.push((wv, Val { x: Dy::new(1, 0), e: 0.0 }));
                            }
                        }
                        TokenValue::Vector(_) => {
                            for &(c, wv) in &embed[r] {
                                terms.push((wv, Val { x: tokens[t as usize][c], e: 0.0 }));
                            }
                        }
                    }
                    if let Some(pr) = &pos {
                        if let Some(&(_, wv)) = pr[r].iter().find(|(c, _)| *c == k) {
                            terms.push((wv, Val { x: Dy::new(1, 0), e: 0.0 }));
                        }
                    }
                    let v = rules.dot(&terms, embed_bias[r], &|| format!("example {i}: embedding register {r}"))?;
                    acc[0].see(&v);
                    col.push(v);
                }
                cols.push(col);
            }
            let mut active: Vec<usize> = (0..n).collect();
            // Scratch reused across blocks and columns.
            let mut hidden: Vec<Val> = Vec::new();
            let mut terms: Vec<(Dy, Val)> = Vec::new();
            let mut new: Vec<(usize, Val)> = Vec::new();
            for l in 0..nblocks {
                if !heads[l].is_empty() {
                    let upd = attention(&rules, &heads[l], &cols, &active, &mut acc[1 + 2 * l], n, &|| {
                        format!("example {i}: block {l} attention")
                    })?;
                    for (&j, c) in active.iter().zip(upd) {
                        cols[j] = c;
                    }
                    if Some(l) == last_attn {
                        active = prep.needed.clone();
                    }
                }
                let f = &ffns[l];
                for &j in &active {
                    let col = &mut cols[j];
                    hidden.clear();
                    hidden.resize(f.w1.len(), Val { x: Dy::ZERO, e: 0.0 });
                    for &u in &f.units {
                        terms.clear();
                        terms.extend(f.w1[u].iter().map(|&(c, wv)| (wv, col[c])));
                        let z = rules.dot(&terms, f.b1[u], &|| format!("example {i}: block {l} unit {u}"))?;
                        acc[2 + 2 * l].abs = acc[2 + 2 * l].abs.max(z.x.abs_up());
                        hidden[u] = if z.x.m <= 0 && z.e <= z.x.abs_down() {
                            Val { x: Dy::ZERO, e: 0.0 }
                        } else {
                            Val { x: z.x.max0(), e: z.e }
                        };
                    }
                    new.clear();
                    for &r in &f.writes {
                        terms.clear();
                        terms.push((Dy::new(1, 0), col[r]));
                        terms.extend(f.w2[r].iter().map(|&(u, wv)| (wv, hidden[u])));
                        let v = rules.dot(&terms, f.b2[r], &|| format!("example {i}: block {l} register {r}"))?;
                        new.push((r, v));
                    }
                    for &(r, v) in &new {
                        col[r] = v;
                    }
                    // Registers this block wrote (the others were seen when written).
                    for &(_, v) in &new {
                        acc[2 + 2 * l].see(&v);
                    }
                }
            }
            // Readout.
            let (mut exact, mut matched, mut labelled) = (0, 0, 0);
            for (k, &j) in prep.needed.iter().enumerate() {
                let terms: Vec<(Dy, Val)> = readout[0].iter().map(|&(c, wv)| (wv, cols[j][c])).collect();
                let v = rules.dot(&terms, readout_bias[0], &|| format!("example {i}: readout at position {j}"))?;
                acc[nstages - 1].see(&v);
                if v.e == 0.0 {
                    exact += 1;
                }
                let y = label_rows[i].get(k).copied().unwrap_or(crate::data::IGNORE);
                if y != crate::data::IGNORE {
                    labelled += 1;
                    if v.x == Dy::new(i128::from(y), 0) {
                        matched += 1;
                    }
                }
            }
            Ok((acc, exact, (matched, labelled)))
        })
        .collect();
    let mut total = vec![StageAcc::NONE; nstages];
    let mut outputs_exact = 0;
    let (mut labels_matched, mut labels) = (0, 0);
    let mut first_noisy: Option<usize> = None;
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok((acc, exact, (m, l))) => {
                labels_matched += m;
                labels += l;
                for (t, a) in total.iter_mut().zip(&acc) {
                    t.merge(a);
                }
                if exact < prep.needed.len() && first_noisy.is_none() {
                    first_noisy = Some(i);
                }
                outputs_exact += exact;
            }
            Err(why) => return Ok(refuse(format!("not certified: {why}"))),
        }
    }
    let stages = summarize(&total, w.blocks.iter().map(|b| !b.heads.is_empty()).collect());
    let certified = outputs_exact == outputs;
    let reason = if certified {
        let worst = stages.iter().map(|s| s.max_abs_log2).fold(f64::NEG_INFINITY, f64::max);
        let memo = if labels_matched == labels {
            format!("and equals the label at all {labels} labelled positions")
        } else {
            format!(
                "but equals the label at only {labels_matched} of {labels} labelled positions (the float pass \
                 reproduces the exact pass, which does not memorize these labels)"
            )
        };
        format!(
            "every stored weight is an {d}; on all {} examples every claimed output is exact in {d} in any summation \
             order {memo} (largest exact intermediate 2^{worst:.1} ≤ 2^{p})",
            ds.len(),
            d = dtype.name()
        )
    } else {
        let i = first_noisy.unwrap_or(0);
        let noisy = stages.iter().find(|s| s.max_error > 0.0).map_or(String::new(), |s| {
            format!("; rounding error first survives at {} (bound {:.3e})", s.stage, s.max_error)
        });
        format!(
            "{} of {outputs} claimed outputs are proven exact in {}; example {i}'s output may differ{noisy}",
            outputs_exact,
            dtype.name()
        )
    };
    Ok(FloatCertificate {
        dtype,
        certified,
        reason,
        examples: ds.len(),
        outputs_exact,
        outputs,
        labels_matched,
        labels,
        stages,
    })
}

/// Attention of one block over the `active` columns (rule 5).
fn attention(
    rules: &Rules,
    heads: &[HeadRows],
    cols: &[Vec<Val>],
    active: &[usize],
    acc: &mut StageAcc,
    n: usize,
    what: &dyn Fn() -> String,
) -> Result<Vec<Vec<Val>>, Fail> {
    // Per head and value dim: exact numerator Σ_j v_j, and the bound of the mixed value ô.
    struct Mixed {
        num: Dy,
        exact: Option<Dy>,
        abs: f64,
        e: f64,
    }
    let pow2 = n.is_power_of_two();
    let inv_n = if pow2 { Dy::new(1, -(n.trailing_zeros() as i32)) } else { Dy::ZERO };
    let mut mixed: Vec<Vec<Mixed>> = Vec::with_capacity(heads.len());
    for h in heads {
        let mut per_dim = Vec::with_capacity(h.wv.len());
        for row in &h.wv {
            let vals: Vec<Val> = cols
                .iter()
                .map(|c| {
                    let terms: Vec<(Dy, Val)> = row.iter().map(|&(r, w)| (w, c[r])).collect();
                    rules.dot(&terms, Dy::ZERO, what)
                })
                .collect::<Result<_, _>>()?;
            let mut num = Dy::ZERO;
            let (mut sum_e, mut sum_abs) = (0f64, 0f64);
            for v in &vals {
                num = num.add(v.x).ok_or_else(|| format!("{}: a sum exceeds 2^127", what()))?;
                sum_e += v.e;
                sum_abs += v.x.abs_up() + v.e;
            }
            let m = if pow2 && sum_e == 0.0 {
                let terms: Vec<(Dy, Val)> = vals.iter().map(|v| (inv_n, *v)).collect();
                let o = rules.dot(&terms, Dy::ZERO, what)?;
                Mixed { num, exact: (o.e == 0.0).then_some(o.x), abs: o.x.abs_up(), e: o.e }
            } else {
                let nf = n as f64;
                Mixed {
                    num,
                    exact: None,
                    abs: num.abs_up() / nf,
                    e: up(sum_e / nf + rules.gamma(n + 1) * sum_abs / nf),
                }
            };
            per_dim.push(m);
        }
        mixed.push(per_dim);
    }
    let mut out = Vec::with_capacity(active.len());
    for &j in active {
        let mut col = cols[j].clone();
        for (r, slot) in col.iter_mut().enumerate() {
            let entries: Vec<(usize, usize, Dy)> =
                heads.iter().enumerate().flat_map(|(hi, h)| h.wo[r].iter().map(move |&(d, w)| (hi, d, w))).collect();
            if entries.is_empty() {
                continue;
            }
            let all_exact = entries.iter().all(|&(hi, d, _)| mixed[hi][d].exact.is_some());
            let v = if all_exact {
                let mut terms: Vec<(Dy, Val)> = vec![(Dy::new(1, 0), *slot)];
                terms.extend(
                    entries.iter().map(|&(hi, d, w)| (w, Val { x: mixed[hi][d].exact.unwrap_or(Dy::ZERO), e: 0.0 })),
                );
                rules.dot(&terms, Dy::ZERO, what)?
            } else {
                // Exact value (x·n + Σ W_O·num) / n must be dyadic.
                let mut numer = slot.x.mul(Dy::new(n as i128, 0)).ok_or_else(|| format!("{}: overflow", what()))?;
                let (mut prop, mut mag) = (slot.e, slot.x.abs_up() + slot.e);
                for &(hi, d, w) in &entries {
                    let mx = &mixed[hi][d];
                    numer = numer
                        .add(w.mul(mx.num).ok_or_else(|| format!("{}: overflow", what()))?)
                        .ok_or_else(|| format!("{}: overflow", what()))?;
                    prop += w.abs_up() * mx.e;
                    mag += w.abs_up() * (mx.abs + mx.e);
                }
                let x = numer.div_exact(n as u64).ok_or_else(|| {
                    format!(
                        "{}: register {r} holds an average over n = {n} tokens, {}/{n}, which no binary float \
                         holds (1/{n} is not a float)",
                        what(),
                        numer.to_f64()
                    )
                })?;
                Val { x, e: up(prop + rules.gamma(entries.len() + 1) * mag) }
            };
            acc.see(&v);
            *slot = v;
        }
        out.push(col);
    }
    Ok(out)
}

/// Stage records: embedding, attention blocks, runs of FFN blocks with the
/// same exactness, readout.
fn summarize(total: &[StageAcc], has_attn: Vec<bool>) -> Vec<StageBound> {
    let lg = |a: f64| if a > 0.0 { a.log2() } else { f64::NEG_INFINITY };
    let mut out =
        vec![StageBound { stage: "embedding".into(), max_abs_log2: lg(total[0].abs), max_error: total[0].err }];
    let mut run: Option<(usize, usize, StageAcc)> = None;
    let flush = |out: &mut Vec<StageBound>, run: &mut Option<(usize, usize, StageAcc)>| {
        if let Some((a, b, s)) = run.take() {
            let stage = if a == b { format!("block {a} FFN") } else { format!("blocks {a}–{b} FFN") };
            out.push(StageBound { stage, max_abs_log2: lg(s.abs), max_error: s.err });
        }
    };
    for (l, &attn) in has_attn.iter().enumerate() {
        if attn {
            flush(&mut out, &mut run);
            let s = total[1 + 2 * l];
            out.push(StageBound { stage: format!("block {l} attention"), max_abs_log2: lg(s.abs), max_error: s.err });
        }
        let s = total[2 + 2 * l];
        match &mut run {
            Some((_, b, acc)) if (acc.err == 0.0) == (s.err == 0.0) && !attn => {
                *b = l;
                acc.merge(&s);
            }
            _ => {
                flush(&mut out, &mut run);
                run = Some((l, l, s));
            }
        }
    }
    flush(&mut out, &mut run);
    let r = total[total.len() - 1];
    out.push(StageBound { stage: "readout".into(), max_abs_log2: lg(r.abs), max_error: r.err });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dyadic_arithmetic_is_exact() {
        let a = Dy::of_f64(0.375).unwrap();
        assert_eq!(a, Dy::new(3, -3));
        let b = Dy::of_f64(-2.5).unwrap();
        assert_eq!(a.add(b).unwrap().to_f64(), -2.125);
        assert_eq!(a.mul(b).unwrap().to_f64(), -0.9375);
        assert_eq!(Dy::new(9, 0).div_exact(3), Some(Dy::new(3, 0)));
        assert_eq!(Dy::new(10, 0).div_exact(3), None);
        assert_eq!(Dy::new(12, 0).div_exact(8), Some(Dy::new(3, -1)));
        assert!(Dy::new(1, 126).mul(Dy::new(3, 0)).is_some());
        assert!(Dy::new((1 << 100) + 1, 0).mul(Dy::new((1 << 100) + 1, 0)).is_none());
    }

    fn rules(p: u32) -> Rules {
        Rules { p, u: 2f64.powi(-(p as i32)), min_exp: -126 }
    }

    /// Rule 1 holds up to 2^p and no further; rule 2 snaps a noisy value
    /// onto the unit grid of the binade [2^(p−1), 2^p).
    #[test]
    fn exact_sum_and_snap_rules() {
        let r = rules(24);
        let one = Dy::new(1, 0);
        let exact = |x: i128| Val { x: Dy::new(x, 0), e: 0.0 };
        let ok = r.dot(&[(one, exact(1 << 23)), (one, exact((1 << 23) - 1))], Dy::ZERO, &|| String::new()).unwrap();
        assert_eq!((ok.x.to_f64(), ok.e), ((1u64 << 24) as f64 - 1.0, 0.0));
        let over = r.dot(&[(one, exact(1 << 23)), (one, exact((1 << 23) + 1))], Dy::ZERO, &|| String::new()).unwrap();
        assert!(over.e > 0.0);
        // Snap: noisy 5 ± 0.3 plus C = 3·2^22 (grid 1) is exactly C + 5.
        let c = Dy::new(3 << 22, 0);
        let noisy = Val { x: Dy::new(5, 0), e: 0.3 };
        let s = r.dot(&[(one, noisy)], c, &|| String::new()).unwrap();
        assert_eq!(s.e, 0.0);
        // Noise of half a step or more is not snapped.
        let s = r.dot(&[(one, Val { x: Dy::new(5, 0), e: 0.5 })], c, &|| String::new()).unwrap();
        assert!(s.e > 0.0);
        // C = 2^22: that binade's grid is 1/2, and 0.3 is more than half of it.
        let s = r.dot(&[(one, noisy)], Dy::new(1 << 22, 0), &|| String::new()).unwrap();
        assert!(s.e > 0.0);
    }
}
