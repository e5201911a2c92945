//! Float-exact constructions (docs/construction.md §15): weights that are
//! f64 (or f32) numbers and a forward pass that returns every label exactly
//! in that dtype, in any summation order, proven per dataset by
//! [`crate::certificate::certify`].
//!
//! ```text
//! embed: tok = 2·rank(token), h = hash(token) < M
//! block 0: attention sid = n·mean(h) (≈ S = Σ h, rounded: 1/n is not a float)
//!          FFN S = ReLU(sid + C) − C, C = 3·2^(p−2): one rounding onto the unit grid snaps sid to S
//! block 1: FFN key = K·S + tok
//! blocks 2..: the float label memorizer (key → label)
//! ```
//! Everything after the snap is an integer below 2^p, so exact. The
//! memorizer differs from the exact one ([`super::memorizer`]) in one way:
//! no ReLU unit whose value can be large is multiplied by a large weight.
//! A step ReLU(x−θ+1) − ReLU(x−θ) is first written to a scratch register
//! (0 or 1), and only the next layer multiplies it by the block word ΔW; a
//! bit of W is likewise parked in a register before W ← 2W − 2T·bit. Packed
//! words hold ρ·B ≤ p − 3 bits (smaller blocks ρ, more of them): the
//! parameter–precision trade-off of Vardi, Yehudai & Shamir (2022).

use super::*;
use crate::certificate::FloatType;

/// Registers of the float memorizer.
struct FloatRegs {
    /// Primary key (compared by the steps).
    u: usize,
    /// Secondary key (its fingerprint is matched); may equal `u`.
    v: usize,
    w: usize,
    y: usize,
    c: usize,
    lab: usize,
    mat: usize,
    out: usize,
    /// Two bit registers per word (the bit in use, the next one).
    bw: [usize; 2],
    by: [usize; 2],
    /// Two banks of p_A step registers.
    s: Vec<usize>,
    /// The key's fingerprint (key mod 2^b) being peeled.
    fp: usize,
    /// Two bit registers for the peeling.
    xb: [usize; 2],
}

/// Largest word (bits) the float memorizer may pack: ρ·B ≤ p − ⌈log2(p_A+1)⌉
/// keeps every partial sum below 2^p (see the module docs).
fn word_bits(p: u32, p_a: usize) -> usize {
    (p as usize).saturating_sub(ceil_log2(p_a + 1) as usize)
}

/// A point of the float memorizer: primary key u (the steps compare it),
/// secondary key v (its fingerprint v mod 2^b is matched), label.
type Point = (IBig, IBig, u64);

/// Blocks of consecutive points (sorted by (u, v)) with at most ρ points
/// whose fingerprints v mod 2^b are distinct, never splitting points of
/// equal u (the steps cannot tell them apart): [start, end) index ranges,
/// or None when one group of equal u does not fit a block.
fn fingerprint_blocks(points: &[Point], rho: usize, b: usize) -> Option<Vec<(usize, usize)>> {
    let modulus = IBig::ONE << b;
    let fps: Vec<IBig> = points.iter().map(|x| &x.1 % &modulus).collect();
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut i = 0;
    while i < points.len() {
        let mut e = i + 1;
        while e < points.len() && points[e].0 == points[i].0 {
            e += 1;
        }
        let group = &fps[i..e];
        if group.len() > rho || (1..group.len()).any(|k| group[..k].contains(&group[k])) {
            return None;
        }
        let block = &fps[start..i];
        if i - start + group.len() > rho || group.iter().any(|f| block.contains(f)) {
            out.push((start, i));
            start = i;
        }
        i = e;
    }
    out.push((start, points.len()));
    Some(out)
}

/// Builds the float label memorizer (module docs): phase A selects the
/// block by steps parked in scratch registers; meanwhile the top bits of
/// the key are peeled off, leaving its fingerprint φ = key mod 2^b; phase B
/// extracts each slot's fingerprint and label bit by bit and adds the label
/// of the slot whose fingerprint equals φ. Blocks are cut so that the
/// fingerprints inside one block are distinct.
fn float_memorizer(
    mut points: Vec<Point>,
    rho: Option<usize>,
    p_a: usize,
    (m, q): (usize, usize),
    r: &FloatRegs,
    role: &str,
    (ft, word): (FloatType, usize),
) -> Result<(Vec<Ffn>, MemorizerInfo), ConstructError> {
    points.sort();
    let prec = |reason: String| ConstructError::Precision { dtype: ft.name().into(), reason };
    if points.is_empty() {
        return Err(ConstructError::Config(format!("{role}: no points")));
    }
    for w in points.windows(2) {
        if w[1].0 == w[0].0 && w[1].1 == w[0].1 {
            return Err(ConstructError::Config(format!("{role}: key ({}, {}) given twice", w[0].0, w[0].1)));
        }
    }
    let p = points.len();
    let u_max = points[p - 1].0.clone();
    let v_max = points.iter().map(|x| x.1.clone()).max().unwrap_or(IBig::ZERO);
    let y_max = points.iter().map(|x| x.2).max().unwrap_or(0);
    let key_bits = ft.mantissa_bits() as usize - 1;
    if bitlen(&(u_max + IBig::ONE)) > key_bits || bitlen(&(v_max.clone() + IBig::ONE)) > key_bits {
        return Err(prec(format!("{role}: keys exceed {key_bits} bits in {}", ft.name())));
    }
    let b_u = bitlen(&(v_max + IBig::ONE));
    let b_y = (64 - y_max.leading_zeros() as usize).max(1);
    if b_y > word {
        return Err(prec(format!("{role}: labels need {b_y} bits; {} leaves {word}-bit words", ft.name())));
    }
    // (ρ, b, blocks, estimated nonzero params, depth) for a block size ρ.
    let plan = |rho: usize| {
        let b = b_u.min(word / rho);
        let blocks = fingerprint_blocks(&points, rho, b)?;
        let g = blocks.len();
        let b_max = b.max(b_y);
        let n_groups = (g - 1).div_ceil(p_a);
        let n_x = b_u - b;
        let pre = (n_groups + 1).max(if n_x > 0 { n_x + 1 } else { 0 });
        let depth = pre + 1 + rho * (b_max + 1) + 1;
        let params = 10 * (g - 1) + 9 * n_x + rho * (18 * b_max + 12);
        Some((rho, b, blocks, params, depth))
    };
    let rho_cap = (word / b_y).min(p).min(word);
    let too_big = || prec(format!("{role}: more keys share one primary key than a {word}-bit word can tell apart"));
    let (rho, b, blocks, _, depth) = match rho {
        Some(x) if x >= 1 && x <= rho_cap => plan(x).ok_or_else(too_big)?,
        Some(x) if x > rho_cap => {
            return Err(prec(format!("{role}: block size rho = {x}: {} allows at most rho = {rho_cap}", ft.name())))
        }
        Some(_) => return Err(ConstructError::Config("rho must be at least 1".into())),
        None => (1..=rho_cap).filter_map(plan).min_by_key(|c| (c.3, c.4)).ok_or_else(too_big)?,
    };
    let g = blocks.len();
    let b_max = b.max(b_y);
    let n_x = b_u - b;
    let modulus = IBig::ONE << b;
    let pack = |vals: &mut dyn Iterator<Item = IBig>, bits: usize| {
        let mut acc = IBig::ZERO;
        for v in vals {
            acc = (acc << bits) + v;
        }
        acc
    };
    let slot = |j: usize, k: usize| {
        let (a, e) = blocks[j];
        (a + k < e).then(|| &points[a + k])
    };
    let w_blk: Vec<IBig> =
        (0..g).map(|j| pack(&mut (0..rho).map(|k| slot(j, k).map_or(IBig::ZERO, |x| &x.1 % &modulus)), b)).collect();
    let y_blk: Vec<IBig> =
        (0..g).map(|j| pack(&mut (0..rho).map(|k| slot(j, k).map_or(IBig::ZERO, |x| IBig::from(x.2))), b_y)).collect();
    let t_w = IBig::ONE << (rho * b - 1);
    let t_y = IBig::ONE << (rho * b_y - 1);
    let c_y = IBig::ONE << b_y;
    let new_ffn =
        || Ffn { w1: Sparse::zeros(q, m), b1: Sparse::zeros(q, 1), w2: Sparse::zeros(m, q), b2: Sparse::zeros(m, 1) };
    let mut layers = Vec::with_capacity(depth);

    // Phase A (layer k applies step group k−1 and computes group k) and,
    // alongside, the fingerprint: fp ← key, then peel bits 2^(b_u−1) … 2^b.
    let steps: Vec<usize> = (1..g).collect();
    let groups: Vec<&[usize]> = steps.chunks(p_a).collect();
    let pre = (groups.len() + 1).max(if n_x > 0 { n_x + 1 } else { 0 });
    let thr = |k: usize| IBig::ONE << (b_u - 1 - k);
    let xu = 3 * p_a;
    for k in 0..pre {
        let mut f = new_ffn();
        if k == 0 {
            f.b2.push(r.w, 0, ibig(w_blk[0].clone()));
            f.b2.push(r.y, 0, ibig(y_blk[0].clone()));
        }
        if k > 0 && k <= groups.len() {
            let bank = (k - 1) % 2;
            for (i, &j) in groups[k - 1].iter().enumerate() {
                let (unit, reg) = (2 * p_a + i, r.s[bank * p_a + i]);
                f.w1.push(unit, reg, RBig::ONE);
                f.w2.push(r.w, unit, ibig(&w_blk[j] - &w_blk[j - 1]));
                f.w2.push(r.y, unit, ibig(&y_blk[j] - &y_blk[j - 1]));
                f.w2.push(reg, unit, -RBig::ONE);
            }
        }
        if let Some(grp) = groups.get(k) {
            let bank = k % 2;
            for (i, &j) in grp.iter().enumerate() {
                let theta = points[blocks[j].0].0.clone();
                let reg = r.s[bank * p_a + i];
                push_step_pair(&mut f, 2 * i, r.u, &theta);
                f.w2.push(reg, 2 * i, RBig::ONE);
                f.w2.push(reg, 2 * i + 1, -RBig::ONE);
            }
        }
        if n_x > 0 && k <= n_x {
            // The value the next bit is read from: key (k = 0) or fp − T·x after this layer's subtraction.
            let mut src: Vec<(usize, RBig)> = vec![(r.v, RBig::ONE)];
            if k == 0 {
                f.w1.push(xu, r.v, RBig::ONE);
                f.w2.push(r.fp, xu, RBig::ONE);
            } else {
                let x = r.xb[(k - 1) % 2];
                let t = ibig(thr(k - 1));
                f.w1.push(xu, x, RBig::ONE);
                f.w2.push(r.fp, xu, -t.clone());
                f.w2.push(x, xu, -RBig::ONE);
                src = vec![(r.fp, RBig::ONE), (x, -t)];
            }
            if k < n_x {
                let t = thr(k);
                for (d, off) in [(1, IBig::ONE - &t), (2, -t.clone())] {
                    for (reg, w) in &src {
                        f.w1.push(xu + d, *reg, w.clone());
                    }
                    f.b1.push(xu + d, 0, ibig(off));
                }
                let z = r.xb[k % 2];
                f.w2.push(z, xu + 1, RBig::ONE);
                f.w2.push(z, xu + 2, -RBig::ONE);
            }
        }
        layers.push(f);
    }
    let fp = if n_x > 0 { r.fp } else { r.v };

    // Phase B. First bits: into ← clamp(big − t + 1).
    let (n_w, n_y) = (rho * b, rho * b_y);
    let mut f = new_ffn();
    for (base, big, t, into) in [(0, r.w, &t_w, r.bw[0]), (2, r.y, &t_y, r.by[0])] {
        push_step_pair(&mut f, base, big, t);
        f.w2.push(into, base, RBig::ONE);
        f.w2.push(into, base + 1, -RBig::ONE);
    }
    layers.push(f);
    let accumulate = |f: &mut Ffn, unit: usize| push_accumulate(f, unit, r.lab, r.mat, r.out, &c_y);
    for slot_q in 0..rho {
        for l in 0..b_max {
            let mut f = new_ffn();
            // Shift one bit of `big` into `small`, and compute the next bit.
            let mut shift = |base: usize, big: usize, small: usize, t: &IBig, bank: &[usize; 2], k: usize, n: usize| {
                let (x, z) = (bank[k % 2], bank[(k + 1) % 2]);
                let two_t = ibig(t.clone() * IBig::from(2));
                // big ← 2·big − 2t·x.
                f.w1.push(base, big, RBig::ONE);
                f.w2.push(big, base, RBig::ONE);
                f.w1.push(base + 1, x, RBig::ONE);
                f.w2.push(big, base + 1, -two_t.clone());
                // small ← 2·small + x (← x on a slot's first bit); x ← 0.
                f.w2.push(small, base + 1, RBig::ONE);
                f.w2.push(x, base + 1, -RBig::ONE);
                f.w1.push(base + 2, small, RBig::ONE);
                f.w2.push(small, base + 2, if l == 0 { -RBig::ONE } else { RBig::ONE });
                // z ← clamp(2·big − 2t·x − t + 1): the top bit after this shift.
                if k + 1 < n {
                    for (d, off) in [(3, IBig::ONE - t), (4, -t.clone())] {
                        f.w1.push(base + d, big, ibig(2));
                        f.w1.push(base + d, x, -two_t.clone());
                        f.b1.push(base + d, 0, ibig(off));
                    }
                    f.w2.push(z, base + 3, RBig::ONE);
                    f.w2.push(z, base + 4, -RBig::ONE);
                }
            };
            if l < b {
                shift(0, r.w, r.c, &t_w, &r.bw, slot_q * b + l, n_w);
            }
            if l < b_y {
                shift(5, r.y, r.lab, &t_y, &r.by, slot_q * b_y + l, n_y);
            }
            if l == 0 && slot_q > 0 {
                accumulate(&mut f, 10);
            }
            layers.push(f);
        }
        // match ← triangle(fp − c): 1 at 0, 0 at every other integer.
        let mut f = new_ffn();
        f.w1.push(0, r.mat, RBig::ONE);
        f.w2.push(r.mat, 0, -RBig::ONE);
        for (k, (off, weight)) in [(1i64, 1i64), (0, -2), (-1, 1)].into_iter().enumerate() {
            f.w1.push(k + 1, fp, RBig::ONE);
            f.w1.push(k + 1, r.c, -RBig::ONE);
            f.b1.push(k + 1, 0, ibig(off));
            f.w2.push(r.mat, k + 1, ibig(weight));
        }
        layers.push(f);
    }
    let mut f = new_ffn();
    accumulate(&mut f, 0);
    layers.push(f);
    debug_assert_eq!(layers.len(), depth);
    let params_nonzero =
        layers.iter().map(|f| f.w1.entries.len() + f.b1.entries.len() + f.w2.entries.len() + f.b2.entries.len()).sum();
    let params_dense = layers.len() * (4 * m + 2 * m * q + q + m);
    let depth = layers.len();
    Ok((
        layers,
        MemorizerInfo {
            role: format!("{role} (fingerprint key mod 2^{b})"),
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

/// Builds a model whose forward pass in `ft` memorizes `ds` (module docs).
/// Token-id inputs without learned positions, next-token or seq2seq.
///
/// One limb when a key K·S + t fits the dtype (f64 up to large N): u = v =
/// K·S + t. Otherwise three heads hash the multiset into S1, S2, S3 (each
/// small enough to survive the attention's rounding), the steps compare
/// u = S1 + A·S2 + t (A as large as the dtype allows, so few sequences share
/// u) and the fingerprint is taken of v = S1 + 3·S2 + 5·S3 + t.
pub(super) fn construct_float(
    ds: &Dataset,
    cfg: &ConstructConfig,
    ft: FloatType,
) -> Result<Construction, ConstructError> {
    let native = construct_in(ds, cfg, ft);
    if ft != FloatType::F64 {
        return native;
    }
    // An f32 construction is also exact in f64: its weights are f64 numbers,
    // everything after the snap is an integer below 2^24, and the snap
    // constant 3·2^22 rounds the attention's f64 error (≤ (n+3)·2^−53·S_max
    // < 2^−31, S_max ≤ 2^22/(n+4)) onto the integers (grid 2^−29 there).
    // Keep it when it is smaller, so fewer bits per weight never buy fewer
    // parameters (at small N the f64 keys cost more to peel).
    match (native, construct_in(ds, cfg, FloatType::F32)) {
        (Ok(a), Ok(mut b)) if b.model.accounting().params_nonzero < a.model.accounting().params_nonzero => {
            b.info.precision = cfg.precision;
            b.info.map_reason =
                format!("{} (f32-sized: fewer parameters than the f64-sized build here)", b.info.map_reason);
            b.model.construction = serde_json::to_value(&b.info).unwrap_or_default();
            Ok(b)
        }
        (Ok(a), _) => Ok(a),
        (Err(_), Ok(mut b)) => {
            b.info.precision = cfg.precision;
            b.model.construction = serde_json::to_value(&b.info).unwrap_or_default();
            Ok(b)
        }
        (Err(e), Err(_)) => Err(e),
    }
}

fn construct_in(ds: &Dataset, cfg: &ConstructConfig, ft: FloatType) -> Result<Construction, ConstructError> {
    let prec = |reason: String| ConstructError::Precision { dtype: ft.name().into(), reason };
    ds.validate()?;
    ds.check_consistency(cfg.positional)?;
    if cfg.steps_per_layer == 0 {
        return Err(ConstructError::Config("steps_per_layer must be at least 1".into()));
    }
    if !matches!(ds.inputs, Inputs::Ids { .. }) {
        return Err(prec(
            "vector tokens: their projected codes are not yet made float-exact (use --precision exact)".into(),
        ));
    }
    if cfg.positional != Positional::None {
        return Err(prec(
            "learned positions need hashed (token, position) codes (memorizer #1), not yet float-exact".into(),
        ));
    }
    if cfg.map == MapChoice::M2 {
        return Err(prec("the float construction hashes in the embedding; M2 does not apply".into()));
    }
    if cfg.code_bits.is_some() {
        return Err(prec(
            "code_bits sets the exact construction's M1 codes; the float construction draws its own hashes".into(),
        ));
    }
    let p = ft.mantissa_bits();
    let n = ds.seq_len();
    let n_seq = ds.len();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (keys, seqs) = ds.token_table();
    let omega = keys.len();
    let ids: Vec<u32> = keys.iter().map(|k| if let TokenKey::Id(i) = k { *i } else { 0 }).collect();
    let codes: Vec<IBig> = (0..omega).map(|i| IBig::from(2 * i)).collect();
    let r_t = IBig::from(2 * omega.saturating_sub(1));
    let k_scale = &r_t + IBig::from(2);
    let word = word_bits(p, cfg.steps_per_layer);
    // A sum S of n hashes must stay ≤ 2^p / (4(n+4)): then the attention's
    // rounding error is below 1/4 and the snap returns S exactly.
    // When n is a power of two, 1/n is a float and the mean is exact while
    // S < 2^(p−2) (the snap's binade still needs that bound).
    let s_budget = if n.is_power_of_two() {
        (IBig::ONE << (p as usize - 2)) - IBig::ONE
    } else {
        (IBig::ONE << p as usize) / IBig::from(4 * (n + 4))
    };
    let m0 = IBig::ONE << bitlen(&IBig::from(2 * (n_seq as u64).pow(2)));
    // Keys are integers below 2^(p−1).
    let key_max = (IBig::ONE << (p as usize - 1)) - IBig::ONE;
    // One limb: K·S + t ≤ 2^(p−1) − 1.
    let s1 = s_budget.clone().min((&key_max - &r_t) / &k_scale);
    let m1 = (&s1 / IBig::from(n) + IBig::ONE).min(m0.clone());
    // Three limbs: S1 + 3·S2 + 5·S3 + t ≤ 2^(p−1) − 1, and u = S1 + A·S2 + t
    // with A as large as fits (so that few sequences share u).
    let s3 = s_budget.clone().min((&key_max - &r_t) / IBig::from(9));
    let m3 = &s3 / IBig::from(n) + IBig::ONE;
    let s3_max = IBig::from(n) * (&m3 - IBig::ONE);
    let spread = if s3_max > IBig::ZERO { (&key_max - &r_t - &s3_max) / &s3_max } else { IBig::ONE };
    let spread = spread.max(IBig::ONE);
    // Keys of every claimed position: ((u, v), label).
    let label_rows = ds.label_rows();
    let positions: Vec<usize> = match ds.task() {
        Task::NextToken => vec![n - 1],
        Task::Seq2seq => (0..n).collect(),
    };
    let p_a = cfg.steps_per_layer;
    let q = (3 * p_a + 3).max(11);
    let names_for = |limbs: usize| {
        let mut names: Vec<String> = vec!["tok".into()];
        for prefix in ["h", "sid", "S"] {
            names.extend((1..=limbs).map(|l| format!("{prefix}{l}")));
        }
        names.push("key".into());
        if limbs > 1 {
            names.push("key2".into());
        }
        names.extend(
            ["W", "Y", "c", "lab", "match", "out", "bW0", "bW1", "bY0", "bY1", "fp", "xb0", "xb1"]
                .iter()
                .map(|s| s.to_string()),
        );
        names.extend((0..2 * p_a).map(|i| format!("s{i}")));
        names
    };
    // One limb (one hash sum) and three limbs are both tried, and the build
    // with fewer parameters is kept: one sum can collide where three do not
    // (when the attention's rounding, not the key width, bounds the sums).
    let options: Vec<usize> = vec![1, 3];
    type Found = (usize, IBig, Vec<Vec<IBig>>, Vec<Ffn>, usize, MemorizerInfo, u32);
    let mut found: Option<Found> = None;
    let mut why = String::new();
    let mut why_hash = true;
    for &limbs in &options {
        let big_m = if limbs == 1 { m1.clone() } else { m3.clone() };
        if big_m < IBig::from(2) {
            why = format!(
                "sums of n = {n} token hashes must stay below {s_budget} to survive the attention's rounding; \
                 that leaves no room for a hash"
            );
            continue;
        }
        // Limbs packed into one integer for the injectivity check: every sum
        // of n hashes below M fits `shift` bits, so packed sums do not carry.
        let shift = bitlen(&(IBig::from(n) * &big_m)) + 1;
        let names = names_for(limbs);
        let reg = |s: &str| names.iter().position(|x| x == s).expect("register exists");
        let m = names.len();
        let regs = FloatRegs {
            u: reg("key"),
            v: if limbs == 1 { reg("key") } else { reg("key2") },
            w: reg("W"),
            y: reg("Y"),
            c: reg("c"),
            lab: reg("lab"),
            mat: reg("match"),
            out: reg("out"),
            bw: [reg("bW0"), reg("bW1")],
            by: [reg("bY0"), reg("bY1")],
            s: (0..2 * p_a).map(|i| reg(&format!("s{i}"))).collect(),
            fp: reg("fp"),
            xb: [reg("xb0"), reg("xb1")],
        };
        // f32 with three limbs: the best of four draws (how many sequences
        // share a primary key varies by draw); otherwise the first.
        let wanted = if limbs == 3 && ft == FloatType::F32 { 4 } else { 1 };
        let (mut attempts, mut good) = (0u32, 0);
        'draws: for _ in 0..cfg.max_attempts {
            attempts += 1;
            let h: Vec<Vec<IBig>> =
                (0..limbs).map(|_| (0..omega).map(|_| random_below(&mut rng, &big_m)).collect()).collect();
            let packed: Vec<IBig> = (0..omega)
                .map(|t| (0..limbs).map(|l| &h[l][t] << (shift * l)).fold(IBig::ZERO, |a, b| a + b))
                .collect();
            let sums = match sums_injective(&seqs, &packed) {
                Ok(s) => s,
                Err(e) => {
                    why = e;
                    why_hash = true;
                    continue;
                }
            };
            let mask = (IBig::ONE << shift) - IBig::ONE;
            let limb = |s: &IBig, l: usize| (s >> (shift * l)) & &mask;
            let mut key_label: HashMap<(IBig, IBig), u64> = HashMap::new();
            for (i, s) in seqs.iter().enumerate() {
                let sl: Vec<IBig> = (0..limbs).map(|l| limb(&sums[i], l)).collect();
                for (j, &k) in positions.iter().enumerate() {
                    if label_rows[i][j] == crate::data::IGNORE {
                        continue;
                    }
                    let t = &codes[s[k] as usize];
                    let (u, v) = if limbs == 1 {
                        let u = &k_scale * &sl[0] + t;
                        (u.clone(), u)
                    } else {
                        (&sl[0] + &spread * &sl[1] + t, &sl[0] + IBig::from(3) * &sl[1] + IBig::from(5) * &sl[2] + t)
                    };
                    let y = label_rows[i][j] as u64;
                    if let Some(prev) = key_label.insert((u, v), y) {
                        if prev != y {
                            why = "two keys with different labels share (S1 + A·S2 + t, S1 + 3·S2 + 5·S3 + t)".into();
                            continue 'draws;
                        }
                    }
                }
            }
            let n_keys = key_label.len();
            let points: Vec<Point> = key_label.into_iter().map(|((u, v), y)| (u, v, y)).collect();
            match float_memorizer(points, cfg.rho[1], p_a, (m, q), &regs, "label: key -> out", (ft, word)) {
                Ok((layers, info)) => {
                    // Whole-model nonzero count: memorizer + embedding rows (tok, h_l) +
                    // per limb W_V, W_O and the snap (w1, b1, w2, b2) + key units + readout.
                    let total = |limbs: usize, info: &MemorizerInfo| {
                        info.params_nonzero + omega * (1 + limbs) + 6 * limbs + if limbs == 1 { 3 } else { 9 } + 1
                    };
                    if found.as_ref().is_none_or(|f| total(limbs, &info) < total(f.0, &f.5)) {
                        found = Some((limbs, big_m.clone(), h, layers, n_keys, info, attempts));
                    }
                    good += 1;
                    if good >= wanted {
                        break;
                    }
                }
                Err(ConstructError::Precision { reason, .. }) => {
                    why = reason;
                    why_hash = false;
                }
                Err(e) => {
                    why = e.to_string();
                    why_hash = false;
                }
            }
        }
    }
    let (limbs, big_m, hashes, layers, info_keys, info, attempts) = found.ok_or_else(|| {
        if why_hash {
            prec(format!(
                "{why}; {} keeps every sum of n = {n} hashes below {s_budget}, and N = {n_seq} sequences want hashes \
                 up to about {m0}",
                ft.name()
            ))
        } else {
            prec(why.clone())
        }
    })?;
    let names = names_for(limbs);
    let reg = |s: &str| names.iter().position(|x| x == s).expect("register exists");
    let m = names.len();
    let (tok, key, out) = (reg("tok"), reg("key"), reg("out"));

    let new_ffn =
        || Ffn { w1: Sparse::zeros(q, m), b1: Sparse::zeros(q, 1), w2: Sparse::zeros(m, q), b2: Sparse::zeros(m, 1) };
    let mut blocks = Vec::new();
    // Block 0: sid_l = n·mean(h_l); S_l = ReLU(sid_l + C) − C.
    let snap = IBig::from(3) << (p as usize - 2);
    let mut heads = Vec::new();
    let mut f0 = new_ffn();
    for l in 1..=limbs {
        let (h, sid, s_reg) = (reg(&format!("h{l}")), reg(&format!("sid{l}")), reg(&format!("S{l}")));
        let mut wv = Sparse::zeros(1, m);
        wv.push(0, h, RBig::ONE);
        let mut wo = Sparse::zeros(m, 1);
        wo.push(sid, 0, ibig(n as u64));
        heads.push(Head { wq: Sparse::zeros(1, m), wk: Sparse::zeros(1, m), wv, wo });
        f0.w1.push(l - 1, sid, RBig::ONE);
        f0.b1.push(l - 1, 0, ibig(snap.clone()));
        f0.w2.push(s_reg, l - 1, RBig::ONE);
        f0.b2.push(s_reg, 0, ibig(-snap.clone()));
    }
    blocks.push(Block { heads, ffn: f0 });
    // Block 1: the keys.
    let mut f1 = new_ffn();
    if limbs == 1 {
        f1.w1.push(0, reg("S1"), ibig(k_scale.clone()));
        f1.w1.push(0, tok, RBig::ONE);
        f1.w2.push(key, 0, RBig::ONE);
    } else {
        f1.w1.push(0, reg("S1"), RBig::ONE);
        f1.w1.push(0, reg("S2"), ibig(spread.clone()));
        f1.w1.push(0, tok, RBig::ONE);
        f1.w2.push(key, 0, RBig::ONE);
        for (l, c) in [(1, 1), (2, 3), (3, 5)] {
            f1.w1.push(1, reg(&format!("S{l}")), ibig(c));
        }
        f1.w1.push(1, tok, RBig::ONE);
        f1.w2.push(reg("key2"), 1, RBig::ONE);
    }
    blocks.push(Block { heads: Vec::new(), ffn: f1 });

    let label_keys = info_keys;
    blocks.extend(layers.into_iter().map(|ffn| Block { heads: Vec::new(), ffn }));

    let mut embed = Sparse::zeros(m, ds.input_dim());
    for (i, &id) in ids.iter().enumerate() {
        embed.push(tok, id as usize, ibig(codes[i].clone()));
        for (l, hl) in hashes.iter().enumerate() {
            embed.push(reg(&format!("h{}", l + 1)), id as usize, ibig(hl[i].clone()));
        }
    }
    let mut readout = Sparse::zeros(1, m);
    readout.push(0, out, RBig::ONE);
    let config = ModelConfig {
        input: match ds.inputs {
            Inputs::Ids { vocab, .. } => InputSpec::Ids { vocab },
            Inputs::Vectors { d, .. } => InputSpec::Vectors { d },
        },
        seq_len: n,
        positional: Positional::None,
        task: ds.task(),
        num_classes: ds.num_classes,
        width: m,
        ffn_width: q,
        blocks: blocks.len(),
        heads: limbs,
        head_dim: 1,
        attention: cfg.attention,
        attention_blocks: vec![0],
        registers: names.clone(),
    };
    let map_reason = if limbs == 1 {
        format!(
            "{}: sums S of per-token hashes h < {big_m} are injective on the distinct multisets (draw {attempts}); \
             the attention output is snapped back to S; key K·S + t",
            ft.name()
        )
    } else {
        let why3 = if options.contains(&1) {
            "fewer parameters here than one hash sum".to_string()
        } else {
            format!("one sum would need hashes up to {m0}, more than {} can average without error", ft.name())
        };
        format!(
            "{}: three heads sum hashes h1, h2, h3 < {big_m} ({why3}); the triple is injective on the distinct \
             multisets (draw {attempts}); steps compare S1 + {spread}·S2 + t, fingerprints come from S1 + 3·S2 + \
             5·S3 + t",
            ft.name()
        )
    };
    let info = ConstructionInfo {
        seed: cfg.seed,
        map: if limbs == 1 { "M1-float" } else { "M1-float-3" }.into(),
        map_reason,
        positional: Positional::None,
        distinct_units: omega,
        code_range: r_t.to_string(),
        key_scale: if limbs == 1 { k_scale.to_string() } else { "1 (multi-limb)".into() },
        hash_range: big_m.to_string(),
        projection: None,
        attempts: (1, attempts),
        memorizers: vec![info],
        label_keys,
        precision: cfg.precision,
    };
    let model = Model {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        config,
        weights: Weights {
            embed,
            embed_bias: Sparse::zeros(m, 1),
            pos: None,
            blocks,
            readout,
            readout_bias: Sparse::zeros(1, 1),
        },
        construction: serde_json::to_value(&info).unwrap_or_default(),
    };
    model.validate().map_err(|e| ConstructError::Config(format!("internal: built an invalid model: {e}")))?;
    Ok(Construction { model, info })
}
