//! The Kajitsuka–Sato style construction (docs/construction.md §7): explicit weights
//! of a Transformer that memorizes a dataset exactly.
//!
//! ```text
//! M2:  [memorizer #1 blocks: tok → h] [1 block: attention avg(h) → sid; FFN: key = K·n·sid + tok] [memorizer #2: key → out]
//! M1:                                 [1 block: attention avg(tok) → sid; FFN: key = K(n·sid − S_min) + tok] [memorizer #2]
//! ```
//! 1. **Token codes** (stage 0): integers t ≥ 0, pairwise ≥ 2 apart. Token
//!    ids get a random code per embedding column (M1) or 2·rank (M2);
//!    vectors get t(x) = 2(D·vᵀx − min), v a random integer projection and D
//!    the common power-of-two denominator of the inputs, so codes are integers.
//!    With learned positions a (token, position) pair is the unit that gets a
//!    code: t = t_tok + p_k, all pairs distinct.
//! 2. **Contextual map** (one attention layer, W_Q = W_K = 0, so every weight
//!    is exactly 1/n under softmax and hardmax): sid = mean of `tok` (M1) or of
//!    a random hash h written by memorizer #1 (M2). M1 is valid iff distinct
//!    multisets have distinct code sums; this is checked exactly and M2 is
//!    the automatic fallback.
//! 3. **Key FFN**: key = K(S − S_min) + t, keys ≥ 2 apart (same S: codes
//!    differ by ≥ 2; different S: K·g_S ≥ R_t + 2 beats |Δt| ≤ R_t). It also
//!    clears `sid` (sid − ReLU(sid) = 0 as sid ≥ 0) so everything after is
//!    integral.
//! 4. **1-D memorizer** ([`memorizer`]): Vardi et al. style block lookup and
//!    bit extraction, key → label, depth Õ(√P).
//!
//! Deterministic in (dataset, config): all randomness comes from
//! ChaCha8(seed).

use crate::data::{Dataset, Inputs, Positional, Task, TokenKey};
use crate::error::ConstructError;
use crate::model::{
    AttentionKind, Block, Ffn, Head, InputSpec, Model, ModelConfig, Sparse, Weights, FORMAT, FORMAT_VERSION,
};
use dashu_int::{IBig, UBig};
use dashu_ratio::RBig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::HashMap;

mod float;

/// The arithmetic a construction must be exact in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Exact rational arithmetic (weights of Õ(√N) bits; docs/construction.md §7).
    #[default]
    Exact,
    /// Every weight an f64 and the f64 forward pass exact in any summation
    /// order (docs/construction.md §15).
    F64,
    /// Every weight an f32 and the f32 forward pass exact in any summation order.
    F32,
}

impl Precision {
    /// `exact`, `f64` or `f32`: the serde and CLI spelling.
    pub fn name(self) -> &'static str {
        self.float_type().map_or("exact", crate::certificate::FloatType::name)
    }

    /// The float type, or None for exact arithmetic.
    pub fn float_type(self) -> Option<crate::certificate::FloatType> {
        match self {
            Precision::Exact => None,
            Precision::F64 => Some(crate::certificate::FloatType::F64),
            Precision::F32 => Some(crate::certificate::FloatType::F32),
        }
    }
}

/// Which contextual map to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum MapChoice {
    /// M1 when its condition holds, else M2.
    #[default]
    Auto,
    /// Plain code sums; error if distinct multisets share a sum.
    M1,
    /// Hashed code sums (always works, pays memorizer #1).
    M2,
}

/// Values to force instead of drawing them (the worked example, tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Forced {
    /// The integer projection v (vector tokens).
    pub projection: Option<Vec<i64>>,
    /// M2 hashes, one per distinct code in ascending code order.
    pub hashes: Option<Vec<u64>>,
}

/// Construction options.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstructConfig {
    /// Seed of the ChaCha8 generator behind every random draw (codes, projection v, hashes).
    pub seed: u64,
    /// Contextual map M1, M2 or automatic (docs/construction.md §7.3).
    pub map: MapChoice,
    /// Positional encoding to build for; with learned positions the
    /// (token, position) pairs get the codes and M2 is required (docs/construction.md §7.2).
    pub positional: Positional,
    /// Attention normalization stored in the model; W_Q = W_K = 0 gives
    /// weights exactly 1/n under either kind (docs/construction.md §7.3).
    pub attention: AttentionKind,
    /// Bits of the random token-id codes for M1 (default 2⌈log2 N⌉ + 2).
    pub code_bits: Option<u32>,
    /// Phase-A steps per layer p_A (hidden width q = max(2 p_A, 9)).
    pub steps_per_layer: usize,
    /// Force the block size ρ of memorizer #1 / #2 (default: depth-optimal).
    pub rho: [Option<usize>; 2],
    /// Random draws per random choice before giving up (M1: then M2).
    pub max_attempts: u32,
    /// Values to use instead of random draws (the docs/construction.md §8 worked example, tests).
    pub forced: Forced,
    /// The arithmetic the model must be exact in: exact (default), f64 or f32
    /// (docs/construction.md §15; token-id inputs without learned positions).
    pub precision: Precision,
}

impl Default for ConstructConfig {
    fn default() -> Self {
        ConstructConfig {
            seed: 0,
            map: MapChoice::Auto,
            positional: Positional::None,
            attention: AttentionKind::Softmax,
            code_bits: None,
            steps_per_layer: 4,
            rho: [None, None],
            max_attempts: 16,
            forced: Forced::default(),
            precision: Precision::Exact,
        }
    }
}

/// Sizes of one memorizer (docs/construction.md §7.4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorizerInfo {
    /// What it maps, e.g. "hash: token code -> h" or "label: key -> out".
    pub role: String,
    /// Training points P.
    pub points: usize,
    /// Block size ρ: points (slots) per block.
    pub rho: usize,
    /// Blocks G = ⌈P/ρ⌉.
    pub groups: usize,
    /// Bits per packed code, B_u = bitlen(u_max + 1).
    pub b_u: usize,
    /// Bits per packed label, B_y = max(1, bitlen(y_max)).
    pub b_y: usize,
    /// Layers (= Transformer blocks) it occupies.
    pub depth: usize,
    /// Nonzero weights of its layers.
    pub params_nonzero: usize,
    /// Dense parameters of its blocks in the fixed-width architecture
    /// (depth × per-block count, attention entries included).
    pub params_dense: usize,
}

/// How the construction went: every derived constant, for reproducibility.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConstructionInfo {
    /// The [`ConstructConfig::seed`] used.
    pub seed: u64,
    /// "M1" or "M2"; for `--precision f64|f32` builds "M1-float" (one hashed
    /// sum, snapped back to an integer) or "M1-float-3" (three heads' sums, a
    /// multi-limb key), docs/construction.md §15.
    pub map: String,
    /// Why that map was used.
    pub map_reason: String,
    /// The positional setting built for.
    pub positional: Positional,
    /// Distinct code units ω (tokens, or (token, position) pairs).
    pub distinct_units: usize,
    /// Token codes lie in [0, R_t].
    pub code_range: String,
    /// Key multiplier K.
    pub key_scale: String,
    /// M2 hash range M (0 for M1).
    pub hash_range: String,
    /// Projection v (vector tokens).
    pub projection: Option<Vec<i64>>,
    /// Random draws used: (code/projection draws, hash draws).
    pub attempts: (u32, u32),
    /// The 1-D memorizers in block order: the hash memorizer #1 (M2 only),
    /// then the label memorizer #2.
    pub memorizers: Vec<MemorizerInfo>,
    /// Keys handed to the label memorizer (after deduplication).
    pub label_keys: usize,
    /// The arithmetic the model is exact in ([`ConstructConfig::precision`]).
    pub precision: Precision,
}

/// A built model and its provenance.
#[derive(Debug, Clone)]
pub struct Construction {
    /// The built model (already checked by [`Model::validate`]).
    pub model: Model,
    /// Derived constants and sizes; the same data is stored as JSON in
    /// [`Model::construction`].
    pub info: ConstructionInfo,
}

fn ibig(v: impl Into<IBig>) -> RBig {
    RBig::from(v.into())
}

/// A step pair on register `x` at threshold `t` (docs/construction.md §7.4):
/// hidden units `base` = ReLU(x − t + 1) and `base + 1` = ReLU(x − t), whose
/// difference is the step [x ≥ t] on integers. The caller writes the pair's
/// W_2 columns (+c on `base`, −c on `base + 1`).
pub(crate) fn push_step_pair(f: &mut Ffn, base: usize, x: usize, t: &IBig) {
    f.w1.push(base, x, RBig::ONE);
    f.b1.push(base, 0, ibig(IBig::ONE - t));
    f.w1.push(base + 1, x, RBig::ONE);
    f.b1.push(base + 1, 0, ibig(-t.clone()));
}

/// The label accumulation unit ReLU(lab + C_y·match − C_y) → out: adds the
/// slot's label to `out` when the match flag is 1, and nothing when it is 0
/// (labels are below C_y; docs/construction.md §7.4).
pub(crate) fn push_accumulate(f: &mut Ffn, unit: usize, lab: usize, mat: usize, out: usize, c_y: &IBig) {
    f.w1.push(unit, lab, RBig::ONE);
    f.w1.push(unit, mat, ibig(c_y.clone()));
    f.b1.push(unit, 0, ibig(-c_y.clone()));
    f.w2.push(out, unit, RBig::ONE);
}

fn bitlen(x: &IBig) -> usize {
    use dashu_int::ops::{BitTest, UnsignedAbs};
    x.unsigned_abs().bit_len()
}

/// Register indices of one memorizer.
#[derive(Debug, Clone, Copy)]
pub struct MemRegs {
    /// Input register holding u (read only), e.g. `tok` or `key`.
    pub u: usize,
    /// Scratch W: the packed codes of the selected block, shifted left bit by bit.
    pub w: usize,
    /// Scratch Y: the packed labels of the selected block, shifted left bit by bit.
    pub y: usize,
    /// Scratch c: the code of the current slot, rebuilt bit by bit.
    pub c: usize,
    /// Scratch lab: the label of the current slot, rebuilt bit by bit.
    pub lab: usize,
    /// Scratch match: 1 when the current slot's code matches u, else 0.
    pub mat: usize,
    /// Output register the matching label is added to, e.g. `h` or `out`.
    pub out: usize,
}

/// Builds the FFN layers of a 1-D memorizer (docs/construction.md §7.4) mapping
/// integer inputs `u` (≥ 0, pairwise ≥ 2 apart) to labels `y`.
///
/// Phase A selects the block W_j, Y_j holding the ρ codes and labels of the
/// input's block by telescoping steps W += ΔW_j·(ReLU(u−θ_j+1) − ReLU(u−θ_j));
/// phase B extracts each slot's code and label bit by bit
/// (bit = ReLU(W−T+1) − ReLU(W−T), W ← 2W − 2T·bit), compares the code with u
/// by a trapezoid and adds the label of the matching slot to `out`.
pub fn memorizer(
    mut points: Vec<(IBig, u64)>,
    rho: Option<usize>,
    p_a: usize,
    m: usize,
    q: usize,
    r: MemRegs,
    role: &str,
) -> Result<(Vec<Ffn>, MemorizerInfo), ConstructError> {
    points.sort();
    if points.is_empty() {
        return Err(ConstructError::Config(format!("{role}: no points")));
    }
    for w in points.windows(2) {
        if &w[1].0 - &w[0].0 < IBig::from(2) {
            return Err(ConstructError::Config(format!("{role}: inputs {} and {} are closer than 2", w[0].0, w[1].0)));
        }
    }
    if points[0].0 < IBig::ZERO {
        return Err(ConstructError::Config(format!("{role}: negative input {}", points[0].0)));
    }
    let p = points.len();
    let u_max = points[p - 1].0.clone();
    let y_max = points.iter().map(|x| x.1).max().unwrap_or(0);
    let b_u = bitlen(&(u_max + IBig::ONE));
    let b_y = (64 - y_max.leading_zeros() as usize).max(1);
    let b_max = b_u.max(b_y);
    let depth_of = |rho: usize| {
        let g = p.div_ceil(rho);
        (g - 1).div_ceil(p_a).max(1) + rho * (b_max + 1) + 1
    };
    let rho = match rho {
        Some(r) if r >= 1 => r.min(p),
        Some(_) => return Err(ConstructError::Config("rho must be at least 1".into())),
        None => (1..=p).min_by_key(|&r| (depth_of(r), r)).unwrap_or(1),
    };
    let g = p.div_ceil(rho);
    let depth = depth_of(rho);

    // Block integers W_j (codes) and Y_j (labels); pads are code 0, label 0.
    let pack = |vals: &mut dyn Iterator<Item = IBig>, bits: usize| {
        let mut acc = IBig::ZERO;
        for v in vals {
            acc = (acc << bits) + v;
        }
        acc
    };
    let slot = |j: usize, q: usize| points.get(j * rho + q);
    let w_blk: Vec<IBig> =
        (0..g).map(|j| pack(&mut (0..rho).map(|q| slot(j, q).map_or(IBig::ZERO, |x| x.0.clone())), b_u)).collect();
    let y_blk: Vec<IBig> =
        (0..g).map(|j| pack(&mut (0..rho).map(|q| slot(j, q).map_or(IBig::ZERO, |x| IBig::from(x.1))), b_y)).collect();
    let t_w = IBig::ONE << (rho * b_u - 1);
    let t_y = IBig::ONE << (rho * b_y - 1);
    let c_y = IBig::ONE << b_y;

    let mut layers = Vec::with_capacity(depth);
    let new_ffn =
        || Ffn { w1: Sparse::zeros(q, m), b1: Sparse::zeros(q, 1), w2: Sparse::zeros(m, q), b2: Sparse::zeros(m, 1) };

    // Phase A.
    let steps: Vec<usize> = (1..g).collect();
    let n_a = steps.len().div_ceil(p_a).max(1);
    for li in 0..n_a {
        let mut f = new_ffn();
        if li == 0 {
            f.b2.push(r.w, 0, ibig(w_blk[0].clone()));
            f.b2.push(r.y, 0, ibig(y_blk[0].clone()));
        }
        for (s, &j) in steps.iter().skip(li * p_a).take(p_a).enumerate() {
            let theta = points[j * rho].0.clone();
            let (ua, ub) = (2 * s, 2 * s + 1);
            push_step_pair(&mut f, ua, r.u, &theta);
            let dw = &w_blk[j] - &w_blk[j - 1];
            let dy = &y_blk[j] - &y_blk[j - 1];
            f.w2.push(r.w, ua, ibig(dw.clone()));
            f.w2.push(r.w, ub, ibig(-dw));
            f.w2.push(r.y, ua, ibig(dy.clone()));
            f.w2.push(r.y, ub, ibig(-dy));
        }
        layers.push(f);
    }

    // Label accumulation unit: ReLU(lab + C_y·match − C_y) → out.
    let accumulate = |f: &mut Ffn, unit: usize| push_accumulate(f, unit, r.lab, r.mat, r.out, &c_y);
    // Phase B.
    for slot_q in 0..rho {
        for l in 0..b_max {
            let mut f = new_ffn();
            // Extract the top bit of `big` (threshold t) into `small`.
            let mut extract = |base: usize, big: usize, small: usize, t: &IBig| {
                push_step_pair(&mut f, base, big, t);
                f.w1.push(base + 2, big, RBig::ONE);
                f.w1.push(base + 3, small, RBig::ONE);
                let two_t = ibig(t.clone() * IBig::from(2));
                f.w2.push(big, base + 2, RBig::ONE);
                f.w2.push(big, base, -two_t.clone());
                f.w2.push(big, base + 1, two_t);
                // small ← 2·small + bit, or ← bit on the first bit.
                f.w2.push(small, base + 3, if l == 0 { -RBig::ONE } else { RBig::ONE });
                f.w2.push(small, base, RBig::ONE);
                f.w2.push(small, base + 1, -RBig::ONE);
            };
            if l < b_u {
                extract(0, r.w, r.c, &t_w);
            }
            if l < b_y {
                extract(4, r.y, r.lab, &t_y);
            }
            if l == 0 && slot_q > 0 {
                accumulate(&mut f, 8);
            }
            layers.push(f);
        }
        // Match layer: match ← trapezoid(u − c), 1 at 0, 0 for |Δ| ≥ 2.
        let mut f = new_ffn();
        f.w1.push(0, r.mat, RBig::ONE);
        f.w2.push(r.mat, 0, -RBig::ONE);
        for (k, (off, sign)) in [(1i64, 1i64), (0, -1), (-1, -1), (-2, 1)].into_iter().enumerate() {
            f.w1.push(k + 1, r.u, RBig::ONE);
            f.w1.push(k + 1, r.c, -RBig::ONE);
            f.b1.push(k + 1, 0, ibig(off));
            f.w2.push(r.mat, k + 1, ibig(sign));
        }
        layers.push(f);
    }
    let mut f = new_ffn();
    accumulate(&mut f, 0);
    layers.push(f);
    debug_assert_eq!(layers.len(), depth);
    let params_nonzero =
        layers.iter().map(|f| f.w1.entries.len() + f.b1.entries.len() + f.w2.entries.len() + f.b2.entries.len()).sum();
    // Per block: 4 m s H attention entries (s = H = 1) + W_1, b_1, W_2, b_2.
    let params_dense = depth * (4 * m + 2 * m * q + q + m);
    Ok((
        layers,
        MemorizerInfo {
            role: role.to_string(),
            points: p,
            rho,
            groups: g,
            b_u,
            b_y,
            depth,
            params_nonzero,
            params_dense,
        },
    ))
}

/// Code units: what gets a token code (tokens, or (token, position) pairs).
struct Units {
    /// Code of each unit, indexed like `keys`.
    codes: Vec<IBig>,
    /// Every sequence as unit indices.
    seqs: Vec<Vec<u32>>,
    r_t: IBig,
    /// Embedding (m×d row `tok` only), bias and positions, as (col, value).
    embed_row: Vec<(usize, RBig)>,
    embed_bias: RBig,
    pos_row: Vec<(usize, RBig)>,
    projection: Option<Vec<i64>>,
}

fn build_units(
    ds: &Dataset,
    cfg: &ConstructConfig,
    random_id_codes: bool,
    rng: &mut ChaCha8Rng,
    attempts: &mut u32,
) -> Result<Units, ConstructError> {
    let (keys, tok_seqs) = ds.token_table();
    let n = ds.seq_len();
    // Per distinct token: integer code, ≥ 2 apart; the embedding row `tok`
    // (as (column, value)), its bias, and the projection v for vectors.
    type TokenCodes = (Vec<IBig>, Vec<(usize, RBig)>, RBig, Option<Vec<i64>>);
    let (tok_code, embed_row, embed_bias, projection): TokenCodes = match &ds.inputs {
        Inputs::Ids { .. } => {
            let ids: Vec<u32> = keys.iter().map(|k| if let TokenKey::Id(i) = k { *i } else { 0 }).collect();
            *attempts += 1;
            let codes: Vec<IBig> = if random_id_codes {
                // Codes are 2·r with r uniform in [0, 2^(bits−1)), distinct. The
                // default makes sums collide with probability ≤ 1/4 over all
                // pairs of sequences (2⌈log2 N⌉ + 2 bits) and leaves room for
                // every distinct token (at least 4ω draws' worth of codes).
                let omega = ids.len();
                let bits = match cfg.code_bits {
                    Some(b) if b >= 2 && (b > usize::BITS || (1usize << (b - 1)) >= omega) => b,
                    Some(b) => {
                        return Err(ConstructError::Config(format!(
                            "code_bits = {b} gives 2^{} codes, fewer than the {omega} distinct tokens",
                            b.saturating_sub(1)
                        )))
                    }
                    None => (2 * ceil_log2(ds.len()) + 2).max(ceil_log2(omega) + 3),
                };
                let half = IBig::ONE << (bits as usize - 1);
                let mut seen = std::collections::HashSet::new();
                let mut out = Vec::with_capacity(ids.len());
                while out.len() < ids.len() {
                    let r = random_below(rng, &half);
                    if seen.insert(r.clone()) {
                        out.push(r * IBig::from(2));
                    }
                }
                out
            } else {
                (0..ids.len()).map(|i| IBig::from(2 * i)).collect()
            };
            let row = ids.iter().zip(&codes).map(|(&id, c)| (id as usize, RBig::from(c.clone()))).collect();
            (codes, row, RBig::ZERO, None)
        }
        Inputs::Vectors { d, .. } => {
            let vecs: Vec<Vec<RBig>> = keys
                .iter()
                .map(|k| match k {
                    TokenKey::Vector(b) => {
                        b.iter().map(|x| RBig::try_from(f64::from_bits(*x)).unwrap_or(RBig::ZERO)).collect()
                    }
                    TokenKey::Id(_) => Vec::new(),
                })
                .collect();
            // Common denominator D (a power of two) of every coordinate.
            let dd: UBig = vecs.iter().flatten().map(|x| x.denominator().clone()).max().unwrap_or(UBig::ONE);
            let dr = RBig::from(IBig::from(dd.clone()));
            let mut tries = 0;
            let (v, z) = loop {
                tries += 1;
                *attempts += 1;
                let v: Vec<i64> = match &cfg.forced.projection {
                    Some(v) if v.len() == *d => v.clone(),
                    Some(v) => {
                        return Err(ConstructError::Config(format!(
                            "forced projection has {} entries, d = {d}",
                            v.len()
                        )))
                    }
                    None => (0..*d).map(|_| rng.gen_range(-4096i64..=4096)).collect(),
                };
                let z: Vec<IBig> = vecs
                    .iter()
                    .map(|x| {
                        let s: RBig = x.iter().zip(&v).fold(RBig::ZERO, |acc, (a, b)| acc + a * RBig::from(*b) * &dr);
                        s.into_parts().0
                    })
                    .collect();
                let mut sorted = z.clone();
                sorted.sort();
                sorted.dedup();
                if sorted.len() == z.len() {
                    break (v, z);
                }
                if cfg.forced.projection.is_some() || tries >= cfg.max_attempts {
                    return Err(ConstructError::Retries {
                        attempts: tries,
                        what: "projection v injective on the distinct tokens".into(),
                    });
                }
            };
            let zmin = z.iter().min().cloned().unwrap_or(IBig::ZERO);
            let codes: Vec<IBig> = z.iter().map(|x| (x - &zmin) * IBig::from(2)).collect();
            let two_d = RBig::from(IBig::from(2)) * &dr;
            let row = v.iter().enumerate().map(|(j, vj)| (j, RBig::from(*vj) * &two_d)).collect();
            (codes, row, RBig::from(-(zmin * IBig::from(2))), Some(v))
        }
    };
    let r_tok = tok_code.iter().max().cloned().unwrap_or(IBig::ZERO);
    match cfg.positional {
        Positional::None => Ok(Units {
            codes: tok_code,
            seqs: tok_seqs,
            r_t: r_tok,
            embed_row,
            embed_bias,
            pos_row: Vec::new(),
            projection,
        }),
        Positional::Learned => {
            // Pair (token, k) has code t_tok + (R_tok + 2)·k: all distinct, ≥ 2 apart.
            let stride = &r_tok + IBig::from(2);
            let mut ids: HashMap<(u32, usize), u32> = HashMap::new();
            let mut codes = Vec::new();
            let seqs = tok_seqs
                .iter()
                .map(|s| {
                    s.iter()
                        .enumerate()
                        .map(|(k, &t)| {
                            *ids.entry((t, k)).or_insert_with(|| {
                                codes.push(&tok_code[t as usize] + &stride * IBig::from(k));
                                codes.len() as u32 - 1
                            })
                        })
                        .collect()
                })
                .collect();
            let pos_row = (0..n).map(|k| (k, RBig::from(&stride * IBig::from(k)))).collect();
            let r_t = codes.iter().max().cloned().unwrap_or(IBig::ZERO);
            Ok(Units { codes, seqs, r_t, embed_row, embed_bias, pos_row, projection })
        }
    }
}

/// ⌈log2 x⌉ for x ≥ 1 (and 1 for x ≤ 2).
fn ceil_log2(x: usize) -> u32 {
    x.max(2).next_power_of_two().trailing_zeros()
}

/// Uniform integer in [0, bound).
fn random_below(rng: &mut ChaCha8Rng, bound: &IBig) -> IBig {
    let bits = bitlen(bound);
    loop {
        let mut x = IBig::ZERO;
        let mut have = 0;
        while have < bits {
            x = (x << 64) + IBig::from(rng.gen::<u64>());
            have += 64;
        }
        x >>= have - bits;
        if &x < bound {
            return x;
        }
    }
}

/// Sum of `vals` over each sequence; Err(description) when two distinct
/// multisets share a sum.
fn sums_injective(seqs: &[Vec<u32>], vals: &[IBig]) -> Result<Vec<IBig>, String> {
    let mut by_sum: HashMap<IBig, Vec<u32>> = HashMap::new();
    let mut sums = Vec::with_capacity(seqs.len());
    for s in seqs {
        let sum: IBig = s.iter().map(|&u| vals[u as usize].clone()).sum();
        let mut ms = s.clone();
        ms.sort_unstable();
        match by_sum.get(&sum) {
            Some(other) if *other != ms => return Err(format!("two different multisets have the same code sum {sum}")),
            Some(_) => {}
            None => {
                by_sum.insert(sum.clone(), ms);
            }
        }
        sums.push(sum);
    }
    Ok(sums)
}

/// Builds a model that memorizes `ds` exactly (checked by the caller with
/// [`crate::verify()`]). Fails on inconsistent data.
pub fn construct(ds: &Dataset, cfg: &ConstructConfig) -> Result<Construction, ConstructError> {
    if let Some(ft) = cfg.precision.float_type() {
        return float::construct_float(ds, cfg, ft);
    }
    ds.validate()?;
    ds.check_consistency(cfg.positional)?;
    if cfg.steps_per_layer == 0 {
        return Err(ConstructError::Config("steps_per_layer must be at least 1".into()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let n = ds.seq_len();
    let is_ids = matches!(ds.inputs, Inputs::Ids { .. });
    let m1_possible = cfg.positional == Positional::None;
    if cfg.map == MapChoice::M1 && !m1_possible {
        return Err(ConstructError::M1Violated(
            "with positions, code sums do not see order; the (token, position) codes need hashing (M2)".into(),
        ));
    }

    // Stage 0 + contextual map choice.
    let mut unit_attempts = 0u32;
    let mut m1: Option<(Units, Vec<IBig>)> = None;
    let mut reason = String::new();
    if cfg.map != MapChoice::M2 && m1_possible {
        let tries = if is_ids && cfg.forced.projection.is_none() { cfg.max_attempts } else { 1 };
        for _ in 0..tries {
            let units = build_units(ds, cfg, true, &mut rng, &mut unit_attempts)?;
            match sums_injective(&units.seqs, &units.codes) {
                Ok(sums) => {
                    reason = format!("M1: code sums are injective on the distinct multisets (draw {unit_attempts})");
                    m1 = Some((units, sums));
                    break;
                }
                Err(why) => reason = why,
            }
        }
        if m1.is_none() {
            if cfg.map == MapChoice::M1 {
                return Err(ConstructError::M1Violated(reason));
            }
            reason = format!("M2: M1 condition violated after {unit_attempts} draw(s): {reason}");
        }
    } else {
        reason = match cfg.positional {
            Positional::Learned => "M2: learned positions; (token, position) codes are hashed so sums see order".into(),
            Positional::None => "M2: requested".into(),
        };
    }

    let p_a = cfg.steps_per_layer;
    let q = (2 * p_a).max(9);
    let mut hash_attempts = 0u32;
    let (use_m1, units, sums, hashes, hash_range) = match m1 {
        Some((u, s)) => (true, u, s, None, IBig::ZERO),
        None => {
            let units = build_units(ds, cfg, false, &mut rng, &mut unit_attempts)?;
            let n_seq = ds.len() as u64;
            let big_m = IBig::ONE << bitlen(&IBig::from(2 * n_seq * n_seq));
            // Hashes per unit; forced ones are given in ascending code order.
            let mut order: Vec<usize> = (0..units.codes.len()).collect();
            order.sort_by(|a, b| units.codes[*a].cmp(&units.codes[*b]));
            let mut found = None;
            for _ in 0..cfg.max_attempts {
                hash_attempts += 1;
                let mut h = vec![IBig::ZERO; units.codes.len()];
                match &cfg.forced.hashes {
                    Some(f) if f.len() == h.len() => {
                        for (rank, &u) in order.iter().enumerate() {
                            h[u] = IBig::from(f[rank]);
                        }
                    }
                    Some(f) => {
                        return Err(ConstructError::Config(format!(
                            "{} forced hashes for {} distinct codes",
                            f.len(),
                            h.len()
                        )))
                    }
                    None => {
                        for x in h.iter_mut() {
                            *x = random_below(&mut rng, &big_m);
                        }
                    }
                }
                if let Ok(s) = sums_injective(&units.seqs, &h) {
                    found = Some((h, s));
                    break;
                }
                if cfg.forced.hashes.is_some() {
                    return Err(ConstructError::Config("forced hashes collide on two distinct multisets".into()));
                }
            }
            let (h, s) = found.ok_or(ConstructError::Retries {
                attempts: hash_attempts,
                what: "hash sums injective on distinct multisets".into(),
            })?;
            (false, units, s, Some(h), big_m)
        }
    };

    // Registers (docs/construction.md §7.1).
    let names: Vec<&str> = if use_m1 {
        vec!["tok", "sid", "key", "W", "Y", "c", "lab", "match", "out"]
    } else {
        vec!["tok", "AW", "AY", "Ac", "Alab", "Amatch", "h", "sid", "key", "BW", "BY", "Bc", "Blab", "Bmatch", "out"]
    };
    let reg = |s: &str| names.iter().position(|x| *x == s).expect("register exists");
    let m = names.len();
    let (tok, sid, key, out) = (reg("tok"), reg("sid"), reg("key"), reg("out"));
    let mut blocks: Vec<Block> = Vec::new();
    let mut mems = Vec::new();

    // Memorizer #1 (M2): tok code → hash.
    if let Some(h) = &hashes {
        let pts: Vec<(IBig, u64)> =
            units.codes.iter().cloned().zip(h.iter().map(|x| u64::try_from(x.clone()).unwrap_or(u64::MAX))).collect();
        let regs = MemRegs {
            u: tok,
            w: reg("AW"),
            y: reg("AY"),
            c: reg("Ac"),
            lab: reg("Alab"),
            mat: reg("Amatch"),
            out: reg("h"),
        };
        let (layers, info) = memorizer(pts, cfg.rho[0], p_a, m, q, regs, "hash: token code -> h")?;
        blocks.extend(layers.into_iter().map(|ffn| Block { heads: Vec::new(), ffn }));
        mems.push(info);
    }

    // Attention block + key FFN.
    let s_min = if use_m1 { sums.iter().min().cloned().unwrap_or(IBig::ZERO) } else { IBig::ZERO };
    let k_scale = if use_m1 {
        let mut distinct: Vec<&IBig> = sums.iter().collect();
        distinct.sort();
        distinct.dedup();
        let g_s = distinct.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(IBig::ONE);
        let num = &units.r_t + IBig::from(2);
        (&num + &g_s - IBig::ONE) / &g_s
    } else {
        &units.r_t + IBig::from(2)
    };
    let src = if use_m1 { tok } else { reg("h") };
    let head = {
        let mut wv = Sparse::zeros(1, m);
        wv.push(0, src, RBig::ONE);
        let mut wo = Sparse::zeros(m, 1);
        wo.push(sid, 0, RBig::ONE);
        Head { wq: Sparse::zeros(1, m), wk: Sparse::zeros(1, m), wv, wo }
    };
    let mut kf =
        Ffn { w1: Sparse::zeros(q, m), b1: Sparse::zeros(q, 1), w2: Sparse::zeros(m, q), b2: Sparse::zeros(m, 1) };
    kf.w1.push(0, sid, RBig::from(&k_scale * IBig::from(n)));
    kf.w1.push(0, tok, RBig::ONE);
    kf.b1.push(0, 0, RBig::from(-(&k_scale * &s_min)));
    kf.w2.push(key, 0, RBig::ONE);
    kf.w1.push(1, sid, RBig::ONE);
    kf.w2.push(sid, 1, -RBig::ONE);
    let attn_block = blocks.len();
    blocks.push(Block { heads: vec![head], ffn: kf });

    // Keys and labels for memorizer #2.
    let label_rows = ds.label_rows();
    let positions: Vec<usize> = match ds.task() {
        Task::NextToken => vec![n - 1],
        Task::Seq2seq => (0..n).collect(),
    };
    let mut key_label: HashMap<IBig, u64> = HashMap::new();
    for (i, s) in units.seqs.iter().enumerate() {
        for (j, &k) in positions.iter().enumerate() {
            let kv = &k_scale * (&sums[i] - &s_min) + &units.codes[s[k] as usize];
            if label_rows[i][j] == crate::data::IGNORE {
                continue; // no label to hold: this position gets no key
            }
            let y = label_rows[i][j] as u64;
            if let Some(prev) = key_label.insert(kv.clone(), y) {
                if prev != y {
                    return Err(ConstructError::Config(format!(
                        "key {kv} carries labels {prev} and {y} (consistency check missed a conflict)"
                    )));
                }
            }
        }
    }
    let label_keys = key_label.len();
    let regs2 = if use_m1 {
        MemRegs { u: key, w: reg("W"), y: reg("Y"), c: reg("c"), lab: reg("lab"), mat: reg("match"), out }
    } else {
        MemRegs { u: key, w: reg("BW"), y: reg("BY"), c: reg("Bc"), lab: reg("Blab"), mat: reg("Bmatch"), out }
    };
    let (layers, info2) =
        memorizer(key_label.into_iter().collect(), cfg.rho[1], p_a, m, q, regs2, "label: key -> out")?;
    blocks.extend(layers.into_iter().map(|ffn| Block { heads: Vec::new(), ffn }));
    mems.push(info2);

    // Embedding, positions, readout.
    let d = ds.input_dim();
    let mut embed = Sparse::zeros(m, d);
    for (col, v) in &units.embed_row {
        embed.push(tok, *col, v.clone());
    }
    let mut embed_bias = Sparse::zeros(m, 1);
    embed_bias.push(tok, 0, units.embed_bias.clone());
    let pos = (cfg.positional == Positional::Learned).then(|| {
        let mut p = Sparse::zeros(m, n);
        for (k, v) in &units.pos_row {
            p.push(tok, *k, v.clone());
        }
        p
    });
    let mut readout = Sparse::zeros(1, m);
    readout.push(0, out, RBig::ONE);

    let config = ModelConfig {
        input: match ds.inputs {
            Inputs::Ids { vocab, .. } => InputSpec::Ids { vocab },
            Inputs::Vectors { d, .. } => InputSpec::Vectors { d },
        },
        seq_len: n,
        positional: cfg.positional,
        task: ds.task(),
        num_classes: ds.num_classes,
        width: m,
        ffn_width: q,
        blocks: blocks.len(),
        heads: 1,
        head_dim: 1,
        attention: cfg.attention,
        attention_blocks: vec![attn_block],
        registers: names.iter().map(|s| s.to_string()).collect(),
    };
    let info = ConstructionInfo {
        seed: cfg.seed,
        map: if use_m1 { "M1" } else { "M2" }.into(),
        map_reason: reason,
        positional: cfg.positional,
        distinct_units: units.codes.len(),
        code_range: units.r_t.to_string(),
        key_scale: k_scale.to_string(),
        hash_range: hash_range.to_string(),
        projection: units.projection.clone(),
        attempts: (unit_attempts, hash_attempts),
        memorizers: mems,
        label_keys,
        precision: Precision::Exact,
    };
    let model = Model {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        config,
        weights: Weights { embed, embed_bias, pos, blocks, readout, readout_bias: Sparse::zeros(1, 1) },
        construction: serde_json::to_value(&info).unwrap_or_default(),
    };
    model.validate().map_err(|e| ConstructError::Config(format!("internal: built an invalid model: {e}")))?;
    Ok(Construction { model, info })
}
