//! The sorted sweep: exact evaluation, for all columns at once, of a run of
//! FFN layers whose hidden units all read one register `x` that none of the
//! layers writes. Phase A of the 1-D memorizer (docs/construction.md §7.4) is
//! such a run: its units are ReLU(u − θ_j + 1) and ReLU(u − θ_j) on the key
//! register u, and they write only the block registers W and Y.
//!
//! # Why it is the per-column pass
//! Inside such a run no unit reads a register the run writes, so every unit
//! sees the column's entry value x, and the run computes, per column,
//!
//! ```text
//! z_r ← z_r + Σ_k w_rk · ReLU(α_k x + β_k) + Σ_layers b_r
//! ```
//!
//! (k over the units of all layers of the run, w_rk its W_2 entry, α_k its
//! W_1 entry on x, β_k its b_1 entry). Sort the columns by x. Unit k is
//! positive on an interval of the sorted order: a suffix when α_k > 0, a
//! prefix when α_k < 0, all or nothing when α_k = 0. Where it is positive,
//! w_rk · ReLU(α_k x + β_k) = x · (w_rk α_k) + (w_rk β_k); elsewhere it is
//! 0. So the sum is x · A_r(i) + B_r(i), where A_r(i) and B_r(i) are the sums
//! of w_rk α_k and w_rk β_k over the units active at sorted position i:
//! running sums that change only where a unit switches on or off. The result
//! equals the per-column pass by distributivity, in exact integers.
//!
//! # Cost
//! Every stored weight of the run is read and multiplied once (not once per
//! column); each unit's interval is found by binary search (O(log N)
//! evaluations of the unit); each column then pays one multiply-add per
//! written register. For the memorizer this turns phase A from ~√N layers per
//! column (O(N²) big-integer work over all columns) into O(N log N + √N).

use super::{Coef, FfnPlan};
use crate::int::Int;

/// The value of a compiled weight.
fn coef_value(c: &Coef<Int>) -> Int {
    match c {
        Coef::One => Int::Small(1),
        Coef::MinusOne => Int::Small(-1),
        Coef::Other(v) => v.clone(),
    }
}

/// The longest leading run of `plans` that the sweep evaluates, and the one
/// register its units read: every unit reads at most one register, always the
/// same `x`, and no layer of the run writes `x`. Returns (0, None) when the
/// first layer does not qualify; x is None when no unit of the run reads
/// anything.
pub(super) fn leading_span(plans: &[&FfnPlan<Int>]) -> (usize, Option<u32>) {
    let mut x: Option<u32> = None;
    let mut written = std::collections::HashSet::new();
    for (s, p) in plans.iter().enumerate() {
        let mut layer_x = x;
        for (terms, _) in &p.units {
            for (r, _) in terms {
                match layer_x {
                    None => layer_x = Some(*r),
                    Some(x0) if x0 == *r => {}
                    Some(_) => return (s, x),
                }
            }
        }
        written.extend(p.outs.iter().map(|(r, _, _)| *r));
        if layer_x.is_some_and(|x0| written.contains(&x0)) {
            return (s, x);
        }
        x = layer_x;
    }
    (plans.len(), x)
}

/// The sorted sweep as a state machine: [`Sweeper::apply_next`] applies the
/// run to the columns in ascending order of register x, one at a time, so a
/// caller can stream columns through it in chunks.
pub(super) struct Sweeper {
    /// The registers the run writes.
    regs: Vec<usize>,
    /// (position, slot, ΔA, ΔB), sorted by position: a unit switching on or
    /// (negated) off at that sorted position.
    events: std::vec::IntoIter<(usize, usize, Int, Int)>,
    /// The next event, peeked.
    next: Option<(usize, usize, Int, Int)>,
    /// Running Σ w·α and Σ w·β (plus Σ b_2) per written register.
    a: Vec<Int>,
    b: Vec<Int>,
    /// The swept register.
    x: usize,
    /// Sorted position of the next column.
    pos: usize,
}

impl Sweeper {
    /// Prepares the run `plans` (as found by [`leading_span`], reading
    /// register `x`) for columns whose x values, in ascending order, are `xs`.
    pub(super) fn new(plans: &[&FfnPlan<Int>], x: u32, xs: &[Int]) -> Sweeper {
        let n = xs.len();
        let mut regs: Vec<usize> = Vec::new();
        let mut slot_of = std::collections::HashMap::new();
        // Per slot: Σ b_2 over the run (added to every column).
        let mut bias: Vec<Int> = Vec::new();
        let mut events: Vec<(usize, usize, Int, Int)> = Vec::new();
        for p in plans {
            // Each unit's active interval [lo, hi) of sorted positions and its α.
            let spans: Vec<(usize, usize, Int)> = p
                .units
                .iter()
                .map(|(terms, beta)| {
                    let mut alpha = Int::ZERO;
                    for (_, w) in terms {
                        alpha.add_assign(&coef_value(w));
                    }
                    let pre = |v: &Int| {
                        let mut t = alpha.mul(v);
                        t.add_assign(beta);
                        t
                    };
                    let (lo, hi) = if alpha.is_zero() {
                        if beta.is_negative() {
                            (0, 0)
                        } else {
                            (0, n)
                        }
                    } else if alpha.is_negative() {
                        (0, xs.partition_point(|v| !pre(v).is_negative()))
                    } else {
                        (xs.partition_point(|v| pre(v).is_negative()), n)
                    };
                    (lo, hi, alpha)
                })
                .collect();
            for (r, groups, b2) in &p.outs {
                let slot = *slot_of.entry(*r).or_insert_with(|| {
                    regs.push(*r as usize);
                    bias.push(Int::ZERO);
                    regs.len() - 1
                });
                bias[slot].add_assign(b2);
                for (w, members) in groups {
                    let w = coef_value(w);
                    for &(k, neg) in members {
                        let (lo, hi, alpha) = &spans[k as usize];
                        if lo >= hi {
                            continue;
                        }
                        let wk = if neg { w.neg() } else { w.clone() };
                        let da = wk.mul(alpha);
                        let db = wk.mul(&p.units[k as usize].1);
                        if *hi < n {
                            events.push((*hi, slot, da.neg(), db.neg()));
                        }
                        events.push((*lo, slot, da, db));
                    }
                }
            }
        }
        events.sort_by_key(|e| e.0);
        let mut events = events.into_iter();
        let next = events.next();
        Sweeper { a: vec![Int::ZERO; regs.len()], b: bias, regs, events, next, x: x as usize, pos: 0 }
    }

    /// Applies the run to `z`, the next column in ascending order of x.
    pub(super) fn apply_next(&mut self, z: &mut [Int]) {
        while self.next.as_ref().is_some_and(|e| e.0 == self.pos) {
            let (_, slot, da, db) = self.next.take().expect("peeked");
            self.a[slot].add_assign(&da);
            self.b[slot].add_assign(&db);
            self.next = self.events.next();
        }
        self.pos += 1;
        for (slot, &r) in self.regs.iter().enumerate() {
            if !self.a[slot].is_zero() {
                let t = z[self.x].mul(&self.a[slot]);
                z[r].add_assign(&t);
            }
            if !self.b[slot].is_zero() {
                z[r].add_assign(&self.b[slot]);
            }
        }
    }
}

/// The column order of a sweep over register `x`: indices sorted by x.
pub(super) fn sorted_order(cols: &[Vec<Int>], x: u32) -> Vec<usize> {
    let x = x as usize;
    let mut order: Vec<usize> = (0..cols.len()).collect();
    order.sort_by(|&a, &b| cols[a][x].cmp(&cols[b][x]));
    order
}

/// Evaluates the run `plans` (as found by [`leading_span`], reading register
/// `x`) on every column of `cols` in place. Exactly the per-column
/// `FfnPlan::apply` sequence (see the module docs).
#[cfg(test)]
pub(super) fn apply_span(plans: &[&FfnPlan<Int>], x: u32, cols: &mut [Vec<Int>]) {
    let order = sorted_order(cols, x);
    let xs: Vec<Int> = order.iter().map(|&i| cols[i][x as usize].clone()).collect();
    let mut sweeper = Sweeper::new(plans, x, &xs);
    for &i in &order {
        sweeper.apply_next(&mut cols[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Ffn, Sparse};
    use dashu_int::IBig;
    use dashu_ratio::RBig;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random FFN layer on m registers with q units. `x = Some(r)`: every
    /// unit reads only r (coefficient possibly 0), outputs avoid r, so the
    /// layer qualifies for the sweep; None: units read 1–2 random registers
    /// and write anywhere.
    fn layer(rng: &mut ChaCha8Rng, m: usize, q: usize, x: Option<usize>) -> Ffn {
        let mut w1 = Sparse::zeros(q, m);
        let mut b1 = Sparse::zeros(q, 1);
        let mut w2 = Sparse::zeros(m, q);
        let mut b2 = Sparse::zeros(m, 1);
        let big = |rng: &mut ChaCha8Rng| {
            // Small values mostly, sometimes a ~2^90 one (the block integers).
            let v: i64 = rng.gen_range(-3..=3);
            if rng.gen_bool(0.2) {
                RBig::from(IBig::from(v) << 90)
            } else {
                RBig::from(v)
            }
        };
        for k in 0..q {
            match x {
                Some(r) => w1.push(k, r, RBig::from(rng.gen_range(-2i64..=2))),
                None => {
                    for _ in 0..rng.gen_range(1..=2) {
                        let r = rng.gen_range(0..m);
                        if !w1.entries.iter().any(|(a, c, _)| *a as usize == k && *c as usize == r) {
                            w1.push(k, r, RBig::from(rng.gen_range(-2i64..=2)));
                        }
                    }
                }
            }
            b1.push(k, 0, RBig::from(rng.gen_range(-6i64..=6)));
            for r in 0..m {
                if Some(r) != x && rng.gen_bool(0.5) {
                    w2.push(r, k, big(rng));
                }
            }
        }
        for r in 0..m {
            if Some(r) != x && rng.gen_bool(0.3) {
                b2.push(r, 0, big(rng));
            }
        }
        Ffn { w1, b1, w2, b2 }
    }

    /// The per-column pass that the sweep replaces.
    fn plain(plans: &[&FfnPlan<Int>], cols: &[Vec<Int>]) -> Vec<Vec<Int>> {
        cols.iter()
            .map(|z| {
                let mut z = z.clone();
                let mut h = Vec::new();
                for p in plans {
                    p.apply(&mut z, &mut h);
                }
                z
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(14), ..ProptestConfig::default() })]

        /// The sorted sweep equals the per-column pass on every column, for
        /// random runs (negative, zero and positive slopes, huge weights,
        /// tied and huge keys), and `leading_span` stops exactly where a
        /// layer reads a second register or writes the swept one.
        #[test]
        fn sorted_sweep_equals_the_per_column_pass(
            seed in any::<u64>(), m in 2usize..6, q in 1usize..6, span in 0usize..5, tail in 0usize..3, n_cols in 1usize..40,
        ) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let x = rng.gen_range(0..m);
            let mut ffns: Vec<Ffn> = (0..span).map(|_| layer(&mut rng, m, q, Some(x))).collect();
            ffns.extend((0..tail).map(|_| layer(&mut rng, m, q, None)));
            let plans: Vec<FfnPlan<Int>> = ffns.iter().map(|f| FfnPlan::compile(f, true).unwrap()).collect();
            let plans: Vec<&FfnPlan<Int>> = plans.iter().collect();
            let cols: Vec<Vec<Int>> = (0..n_cols)
                .map(|_| {
                    (0..m)
                        .map(|_| {
                            let v = IBig::from(rng.gen_range(-8i64..=8));
                            Int::from_ibig(if rng.gen_bool(0.1) { v << 100 } else { v })
                        })
                        .collect()
                })
                .collect();
            let (s, sx) = leading_span(&plans);
            prop_assert!(s >= span.min(plans.len()));
            // The found run really qualifies.
            for p in &plans[..s] {
                for (terms, _) in &p.units {
                    prop_assert!(terms.iter().all(|(r, _)| Some(*r) == sx));
                }
                prop_assert!(p.outs.iter().all(|(r, _, _)| Some(*r) != sx));
            }
            let mut swept = cols.clone();
            if s > 0 {
                apply_span(&plans[..s], sx.unwrap_or(0), &mut swept);
            }
            prop_assert_eq!(swept, plain(&plans[..s], &cols));
        }
    }
}
