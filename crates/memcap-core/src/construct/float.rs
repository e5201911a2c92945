//! Float-exact constructions (docs/construction.md §14): weights that are
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
    u: usize,
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
}

/// Largest word (bits) the float memorizer may pack: ρ·B ≤ p − ⌈log2(p_A+1)⌉
/// keeps every partial sum below 2^p (see the module docs).
fn word_bits(p: u32, p_a: usize) -> usize {
    (p as usize).saturating_sub(ceil_log2(p_a + 1) as usize)
}

fn float_memorizer(
    mut points: Vec<(IBig, u64)>,
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
        if &w[1].0 - &w[0].0 < IBig::from(2) {
            return Err(ConstructError::Config(format!("{role}: inputs {} and {} are closer than 2", w[0].0, w[1].0)));
        }
    }
    let p = points.len();
    let u_max = points[p - 1].0.clone();
    let y_max = points.iter().map(|x| x.1).max().unwrap_or(0);
    let b_u = bitlen(&(u_max + IBig::ONE));
    let b_y = (64 - y_max.leading_zeros() as usize).max(1);
    let b_max = b_u.max(b_y);
    if b_max > word {
        return Err(prec(format!(
            "{role}: inputs need {b_u} bits and labels {b_y}; a packed word may hold at most {word} bits in {}",
            ft.name()
        )));
    }
    let rho_cap = (word / b_max).max(1).min(p);
    let depth_of = |rho: usize| {
        let g = p.div_ceil(rho);
        let a = if g > 1 { (g - 1).div_ceil(p_a) + 1 } else { 1 };
        a + 1 + rho * (b_max + 1) + 1
    };
    let rho = match rho {
        Some(x) if x >= 1 && x <= rho_cap => x,
        Some(x) if x > rho_cap => {
            return Err(prec(format!(
                "{role}: block size rho = {x} packs {} bits; {} allows at most rho = {rho_cap}",
                x * b_max,
                ft.name()
            )))
        }
        Some(_) => return Err(ConstructError::Config("rho must be at least 1".into())),
        None => (1..=rho_cap).min_by_key(|&x| (depth_of(x), x)).unwrap_or(1),
    };
    let g = p.div_ceil(rho);
    let depth = depth_of(rho);
    let pack = |vals: &mut dyn Iterator<Item = IBig>, bits: usize| {
        let mut acc = IBig::ZERO;
        for v in vals {
            acc = (acc << bits) + v;
        }
        acc
    };
    let slot = |j: usize, k: usize| points.get(j * rho + k);
    let w_blk: Vec<IBig> =
        (0..g).map(|j| pack(&mut (0..rho).map(|k| slot(j, k).map_or(IBig::ZERO, |x| x.0.clone())), b_u)).collect();
    let y_blk: Vec<IBig> =
        (0..g).map(|j| pack(&mut (0..rho).map(|k| slot(j, k).map_or(IBig::ZERO, |x| IBig::from(x.1))), b_y)).collect();
    let t_w = IBig::ONE << (rho * b_u - 1);
    let t_y = IBig::ONE << (rho * b_y - 1);
    let c_y = IBig::ONE << b_y;
    let new_ffn =
        || Ffn { w1: Sparse::zeros(q, m), b1: Sparse::zeros(q, 1), w2: Sparse::zeros(m, q), b2: Sparse::zeros(m, 1) };
    let mut layers = Vec::with_capacity(depth);

    // Phase A: layer k applies step group k−1 (bank (k−1) mod 2) and computes group k.
    let steps: Vec<usize> = (1..g).collect();
    let groups: Vec<&[usize]> = steps.chunks(p_a).collect();
    for k in 0..=groups.len() {
        let mut f = new_ffn();
        if k == 0 {
            f.b2.push(r.w, 0, ibig(w_blk[0].clone()));
            f.b2.push(r.y, 0, ibig(y_blk[0].clone()));
        }
        if k > 0 {
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
                let theta = points[j * rho].0.clone();
                let reg = r.s[bank * p_a + i];
                f.w1.push(2 * i, r.u, RBig::ONE);
                f.b1.push(2 * i, 0, ibig(IBig::ONE - &theta));
                f.w1.push(2 * i + 1, r.u, RBig::ONE);
                f.b1.push(2 * i + 1, 0, ibig(-theta));
                f.w2.push(reg, 2 * i, RBig::ONE);
                f.w2.push(reg, 2 * i + 1, -RBig::ONE);
            }
        }
        layers.push(f);
    }

    // Phase B. `bit(f, units, big, t, into)`: into ← clamp(a·big − 2t·x − t + 1)
    // where (a, x) = (1, none) for the first bit, (2, the bit in use) after.
    let (n_w, n_y) = (rho * b_u, rho * b_y);
    let mut f = new_ffn();
    for (base, big, t, into) in [(0, r.w, &t_w, r.bw[0]), (2, r.y, &t_y, r.by[0])] {
        f.w1.push(base, big, RBig::ONE);
        f.b1.push(base, 0, ibig(IBig::ONE - t));
        f.w1.push(base + 1, big, RBig::ONE);
        f.b1.push(base + 1, 0, ibig(-t.clone()));
        f.w2.push(into, base, RBig::ONE);
        f.w2.push(into, base + 1, -RBig::ONE);
    }
    layers.push(f);
    let accumulate = |f: &mut Ffn, unit: usize| {
        f.w1.push(unit, r.lab, RBig::ONE);
        f.w1.push(unit, r.mat, ibig(c_y.clone()));
        f.b1.push(unit, 0, ibig(-c_y.clone()));
        f.w2.push(r.out, unit, RBig::ONE);
    };
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
            if l < b_u {
                shift(0, r.w, r.c, &t_w, &r.bw, slot_q * b_u + l, n_w);
            }
            if l < b_y {
                shift(5, r.y, r.lab, &t_y, &r.by, slot_q * b_y + l, n_y);
            }
            if l == 0 && slot_q > 0 {
                accumulate(&mut f, 10);
            }
            layers.push(f);
        }
        // match ← trapezoid(u − c): 1 at 0, 0 for |Δ| ≥ 2.
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
    let params_dense = layers.len() * (4 * m + 2 * m * q + q + m);
    Ok((
        layers,
        MemorizerInfo {
            role: role.to_string(),
            points: p,
            rho,
            groups: g,
            b_u,
            b_y,
            depth: depth_of(rho),
            params_nonzero,
            params_dense,
        },
    ))
}

/// Builds a model whose forward pass in `ft` memorizes `ds` (module docs).
/// Token-id inputs without learned positions, next-token or seq2seq.
pub(super) fn construct_float(
    ds: &Dataset,
    cfg: &ConstructConfig,
    ft: FloatType,
) -> Result<Construction, ConstructError> {
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
    // Hash range M: birthday-safe 2N² when the dtype allows; the attention
    // error of S = Σ h must stay below 1/4 (S ≤ 2^p / (4(n+4))) and keys
    // K·S + t must fit the memorizer's word.
    let word = word_bits(p, cfg.steps_per_layer);
    let two_p = IBig::ONE << p as usize;
    let s_budget = &two_p / IBig::from(4 * (n + 4));
    let key_budget = ((IBig::ONE << (word - 1)) - &r_t) / &k_scale;
    let s_max = s_budget.min(key_budget);
    let m_budget = &s_max / IBig::from(n) + IBig::ONE;
    let m0 = IBig::ONE << bitlen(&IBig::from(2 * (n_seq as u64).pow(2)));
    let big_m = m0.clone().min(m_budget.clone());
    if big_m < IBig::from(2) {
        return Err(prec(format!(
            "sums of n = {n} token hashes must stay below {s_max} to survive the attention's rounding and fit a \
             {word}-bit key; that leaves no room for a hash (V = {omega} tokens)"
        )));
    }
    let mut found = None;
    let mut attempts = 0;
    for _ in 0..cfg.max_attempts {
        attempts += 1;
        let h: Vec<IBig> = (0..omega).map(|_| random_below(&mut rng, &big_m)).collect();
        if let Ok(s) = sums_injective(&seqs, &h) {
            found = Some((h, s));
            break;
        }
    }
    let (hashes, sums) = found.ok_or_else(|| {
        prec(format!(
            "in {attempts} draws, sums of n = {n} hashes below M = {big_m} collided on two distinct multisets; {} \
             allows hashes below {m_budget} here, and N = {n_seq} sequences want about {m0} (a multi-limb key \
             would be needed)",
            ft.name()
        ))
    })?;

    let p_a = cfg.steps_per_layer;
    let q = (3 * p_a).max(11);
    let mut names: Vec<String> = ["tok", "h", "sid", "S", "key", "W", "Y", "c", "lab", "match", "out", "bW0", "bW1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.extend(["bY0", "bY1"].iter().map(|s| s.to_string()));
    names.extend((0..2 * p_a).map(|i| format!("s{i}")));
    let reg = |s: &str| names.iter().position(|x| x == s).expect("register exists");
    let m = names.len();
    let (tok, h, sid, s_reg, key, out) = (reg("tok"), reg("h"), reg("sid"), reg("S"), reg("key"), reg("out"));
    let new_ffn =
        || Ffn { w1: Sparse::zeros(q, m), b1: Sparse::zeros(q, 1), w2: Sparse::zeros(m, q), b2: Sparse::zeros(m, 1) };
    let mut blocks = Vec::new();
    // Block 0: sid = n·mean(h); S = ReLU(sid + C) − C.
    let head = {
        let mut wv = Sparse::zeros(1, m);
        wv.push(0, h, RBig::ONE);
        let mut wo = Sparse::zeros(m, 1);
        wo.push(sid, 0, ibig(n as u64));
        Head { wq: Sparse::zeros(1, m), wk: Sparse::zeros(1, m), wv, wo }
    };
    let snap = IBig::from(3) << (p as usize - 2);
    let mut f0 = new_ffn();
    f0.w1.push(0, sid, RBig::ONE);
    f0.b1.push(0, 0, ibig(snap.clone()));
    f0.w2.push(s_reg, 0, RBig::ONE);
    f0.b2.push(s_reg, 0, ibig(-snap.clone()));
    blocks.push(Block { heads: vec![head], ffn: f0 });
    // Block 1: key = K·S + tok.
    let mut f1 = new_ffn();
    f1.w1.push(0, s_reg, ibig(k_scale.clone()));
    f1.w1.push(0, tok, RBig::ONE);
    f1.w2.push(key, 0, RBig::ONE);
    blocks.push(Block { heads: Vec::new(), ffn: f1 });

    // Keys and labels.
    let label_rows = ds.label_rows();
    let positions: Vec<usize> = match ds.task() {
        Task::NextToken => vec![n - 1],
        Task::Seq2seq => (0..n).collect(),
    };
    let mut key_label: HashMap<IBig, u64> = HashMap::new();
    for (i, s) in seqs.iter().enumerate() {
        for (j, &k) in positions.iter().enumerate() {
            if label_rows[i][j] == crate::data::IGNORE {
                continue;
            }
            let kv = &k_scale * &sums[i] + &codes[s[k] as usize];
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
    let regs = FloatRegs {
        u: key,
        w: reg("W"),
        y: reg("Y"),
        c: reg("c"),
        lab: reg("lab"),
        mat: reg("match"),
        out,
        bw: [reg("bW0"), reg("bW1")],
        by: [reg("bY0"), reg("bY1")],
        s: (0..2 * p_a).map(|i| reg(&format!("s{i}"))).collect(),
    };
    let (layers, info) = float_memorizer(
        key_label.into_iter().collect(),
        cfg.rho[1],
        p_a,
        (m, q),
        &regs,
        "label: key -> out",
        (ft, word),
    )?;
    blocks.extend(layers.into_iter().map(|ffn| Block { heads: Vec::new(), ffn }));

    let mut embed = Sparse::zeros(m, ds.input_dim());
    for (i, &id) in ids.iter().enumerate() {
        embed.push(tok, id as usize, ibig(codes[i].clone()));
        embed.push(h, id as usize, ibig(hashes[i].clone()));
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
        heads: 1,
        head_dim: 1,
        attention: cfg.attention,
        attention_blocks: vec![0],
        registers: names.clone(),
    };
    let info = ConstructionInfo {
        seed: cfg.seed,
        map: "M1".into(),
        map_reason: format!(
            "{}: sums of per-token hashes h < {big_m} are injective on the distinct multisets (draw {attempts}); the \
             attention output is snapped back to that integer sum",
            ft.name()
        ),
        positional: Positional::None,
        distinct_units: omega,
        code_range: r_t.to_string(),
        key_scale: k_scale.to_string(),
        hash_range: big_m.to_string(),
        projection: None,
        attempts: (1, attempts),
        memorizers: vec![info],
        label_keys,
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
