//! docs/construction.md §8: the worked example (N = 4, n = 3, d = 2, next-token),
//! with the exact numbers of the reference implementation when the same
//! projection v = (1, 3), hashes h = (1, 2, 5, 12) and block size ρ = 2 are
//! forced. M1 must fail (a + e + e = b + c + e as vectors) and M2 must hold.

use memcap_core::construct::{construct, ConstructConfig, Forced};
use memcap_core::data::{Dataset, Inputs, Labels};
use memcap_core::eval::{self, ExactCol, ExactEngine, Prepared, TokenValue};
use memcap_core::model::fmt_exact;
use memcap_core::verify::{reference_outputs, verify, Arith};
use memcap_core::{ConstructError, MapChoice};

fn example() -> Dataset {
    let (a, b, c, e) = (vec![0.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]);
    Dataset {
        inputs: Inputs::Vectors {
            d: 2,
            seqs: vec![
                vec![a.clone(), b.clone(), c.clone()],
                vec![c.clone(), b.clone(), a.clone()],
                vec![a.clone(), e.clone(), e.clone()],
                vec![b, c, e],
            ],
        },
        labels: Labels::NextToken(vec![1, 2, 0, 1]),
        num_classes: 3,
        lines: None,
        label_classes: None,
    }
}

fn forced(map: MapChoice) -> ConstructConfig {
    ConstructConfig {
        map,
        rho: [Some(2), Some(2)],
        forced: Forced { projection: Some(vec![1, 3]), hashes: Some(vec![1, 2, 5, 12]) },
        ..Default::default()
    }
}

fn reg(v: &ExactCol, i: usize) -> String {
    match v {
        ExactCol::Int(z) => z[i].to_string(),
        ExactCol::Rat(z) => fmt_exact(&z[i]),
    }
}

#[test]
fn m1_fails_on_equal_vector_sums() {
    let err = construct(&example(), &forced(MapChoice::M1)).unwrap_err();
    assert!(matches!(err, ConstructError::M1Violated(ref why) if why.contains("same code sum 16")), "{err}");
}

#[test]
fn worked_example_exact_numbers() {
    let ds = example();
    let built = construct(&ds, &forced(MapChoice::Auto)).unwrap();
    let m = &built.model;
    assert_eq!(built.info.map, "M2");
    assert!(built.info.map_reason.contains("M1 condition violated"), "{}", built.info.map_reason);

    // Stage 0: embedding row `tok` = α vᵀ = (2, 6), bias 0, so codes 0, 2, 6, 8.
    let tok_row: Vec<(u32, String)> = m.weights.embed.entries.iter().map(|(_, c, v)| (*c, fmt_exact(&v.0))).collect();
    assert_eq!(tok_row, vec![(0, "2".to_string()), (1, "6".to_string())]);
    assert_eq!(built.info.code_range, "8");
    assert_eq!(built.info.key_scale, "10"); // K = R_t + 2
    assert_eq!(built.info.hash_range, "64"); // M = 2^bitlen(2·4²)

    // Memorizer #1: 4 points, ρ = 2, G = 2, B_u = 4, B_y = 4, depth 12.
    let m1 = &built.info.memorizers[0];
    assert_eq!((m1.points, m1.rho, m1.groups, m1.b_u, m1.b_y, m1.depth), (4, 2, 2, 4, 4, 12));
    // Memorizer #2: ρ = 2, G = 2, B_u = bitlen(259) = 9, B_y = 2, depth 22.
    let m2 = &built.info.memorizers[1];
    assert_eq!((m2.points, m2.rho, m2.groups, m2.b_u, m2.b_y, m2.depth), (4, 2, 2, 9, 2, 22));

    // W_1 = 80·2⁹ + 86 = 41046, Y_1 = 2·2² + 1 = 9 (first layer's output bias);
    // W_2 − W_1 = 101634 − 41046 = 60588, Y_2 − Y_1 = 4 − 9 = −5.
    let first = &m.weights.blocks[13].ffn;
    let bw = m.config.registers.iter().position(|r| r == "BW").unwrap() as u32;
    let by = m.config.registers.iter().position(|r| r == "BY").unwrap() as u32;
    let b2: Vec<(u32, String)> = first.b2.entries.iter().map(|(r, _, v)| (*r, fmt_exact(&v.0))).collect();
    assert!(b2.contains(&(bw, "41046".into())) && b2.contains(&(by, "9".into())), "{b2:?}");
    let w2: Vec<(u32, String)> = first.w2.entries.iter().map(|(r, _, v)| (*r, fmt_exact(&v.0))).collect();
    assert!(w2.contains(&(bw, "60588".into())) && w2.contains(&(by, "-5".into())), "{w2:?}");
    // T_W = 2^17: the bit-extraction bias is 1 − T_W.
    let ext = &m.weights.blocks[14].ffn;
    assert!(ext.b1.entries.iter().any(|(_, _, v)| fmt_exact(&v.0) == "-131071"));

    // Keys at the last position after the attention block (block 12):
    // 86, 80, 258, 198 for X1..X4; sid = 8/3 on X1 before the key FFN clears it.
    let prep = Prepared::new(m, &ds).unwrap();
    let engine = ExactEngine::new(m);
    let key = m.config.registers.iter().position(|r| r == "key").unwrap();
    let sid = m.config.registers.iter().position(|r| r == "sid").unwrap();
    let h = m.config.registers.iter().position(|r| r == "h").unwrap();
    let mut keys = Vec::new();
    for (i, s) in prep.seqs.iter().enumerate() {
        let toks: Vec<TokenValue> = s.iter().map(|&t| prep.tokens[t as usize].clone()).collect();
        let states = eval::trace(&engine, m, &toks, &[0, 1, 2]).unwrap();
        keys.push(reg(&states[13][2], key));
        if i == 0 {
            // h column (1, 2, 5) after memorizer #1 (12 blocks).
            let hs: Vec<String> = (0..3).map(|k| reg(&states[12][k], h)).collect();
            assert_eq!(hs, ["1", "2", "5"]);
        }
        assert_eq!(reg(&states[13][2], sid), "0");
    }
    assert_eq!(keys, ["86", "80", "258", "198"]);

    // Full forward outputs at positions 1..3 (the last ones are the labels).
    let outs: Vec<Vec<String>> =
        (0..4).map(|i| reference_outputs(m, &ds, i).unwrap().into_iter().map(|p| p.value).collect()).collect();
    assert_eq!(outs, [["2", "0", "1"], ["1", "0", "2"], ["0", "0", "0"], ["0", "0", "1"]]);

    // Size: L = 12 + 1 + 22 = 35, m = 15, q = 9, dense 12,451, max bits 19.
    let acc = m.accounting();
    assert_eq!((acc.blocks, acc.width, acc.ffn_width), (35, 15, 9));
    assert_eq!(acc.params_dense, 12_451);
    // Nonzeros, counted layer by layer: memorizer #2 316 (phase A 10, two
    // slots of 2·24 + 7·12 + 17, one accumulate 4, final 4), memorizer #1 244,
    // attention 2 + key FFN 5, embedding 2, readout 1 = 570. The reference
    // reports 569: our key FFN has 2 more entries (the unit that clears sid so
    // that everything after attention is an integer), so the reference has one
    // entry that we do not (not identifiable from the notes).
    assert_eq!(acc.params_nonzero, 570);
    assert_eq!(acc.max_weight_bits, 19);

    // And the shared pipeline agrees: 4/4 memorized in exact arithmetic.
    let r = verify(m, &ds, Arith::Exact, &eval::NoProgress).unwrap();
    assert_eq!((r.memorized, r.examples), (4, 4));
}
