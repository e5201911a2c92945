//! Float-exact constructions (docs/construction.md §14): the f32 / f64
//! forward pass of `--precision f32|f64` models returns every label exactly,
//! in any summation order, and the certificate proves it (or refuses).

use memcap_core::certificate::{certify, FloatType};
use memcap_core::eval::NoProgress;
use memcap_core::gen::{generate, GenConfig};
use memcap_core::model::Model;
use memcap_core::{construct, verify, Arith, ConstructConfig, Dataset, Inputs, Precision};

fn build(ds: &Dataset, precision: Precision) -> Model {
    construct(ds, &ConstructConfig { precision, ..Default::default() }).expect("construct").model
}

/// A plain dense f32 forward pass, written here independently of memcap's
/// engines, with every sum taken forward or backward: the two summation
/// orders the certificate must cover.
fn dense_f32(model: &Model, tokens: &[u32], reverse: bool) -> f32 {
    let c = &model.config;
    let (m, n) = (c.width, c.seq_len);
    let w = &model.weights;
    let dense = |s: &memcap_core::model::Sparse| -> Vec<Vec<f32>> {
        let mut d = vec![vec![0f32; s.cols]; s.rows];
        for (r, cc, v) in &s.entries {
            d[*r as usize][*cc as usize] = v.0.to_f64().value() as f32;
        }
        d
    };
    let sum = |xs: Vec<f32>| -> f32 {
        let mut acc = 0f32;
        if reverse {
            for x in xs.into_iter().rev() {
                acc += x;
            }
        } else {
            for x in xs {
                acc += x;
            }
        }
        acc
    };
    let matvec = |a: &Vec<Vec<f32>>, x: &[f32], b: Option<&Vec<Vec<f32>>>| -> Vec<f32> {
        a.iter()
            .enumerate()
            .map(|(r, row)| {
                let mut terms: Vec<f32> = row.iter().zip(x).map(|(w, x)| w * x).collect();
                if let Some(b) = b {
                    terms.push(b[r][0]);
                }
                sum(terms)
            })
            .collect()
    };
    let e = dense(&w.embed);
    let eb = dense(&w.embed_bias);
    let mut cols: Vec<Vec<f32>> =
        tokens.iter().map(|&t| (0..m).map(|r| sum(vec![e[r][t as usize], eb[r][0]])).collect()).collect();
    for b in &w.blocks {
        if !b.heads.is_empty() {
            // Softmax of all-zero scores: weights fl(1/n), then Σ_j a·v_j, then W_O, then the residual.
            let a = 1f32 / n as f32;
            let mut delta = vec![vec![0f32; m]; n];
            for h in &b.heads {
                let (wv, wo) = (dense(&h.wv), dense(&h.wo));
                let vals: Vec<Vec<f32>> = cols.iter().map(|x| matvec(&wv, x, None)).collect();
                let o: Vec<f32> = (0..wv.len()).map(|d| sum(vals.iter().map(|v| a * v[d]).collect())).collect();
                let out = matvec(&wo, &o, None);
                for dl in delta.iter_mut() {
                    for (x, y) in dl.iter_mut().zip(&out) {
                        *x += y;
                    }
                }
            }
            for (col, dl) in cols.iter_mut().zip(&delta) {
                for (x, y) in col.iter_mut().zip(dl) {
                    *x = sum(vec![*x, *y]);
                }
            }
        }
        let (w1, b1, w2, b2) = (dense(&b.ffn.w1), dense(&b.ffn.b1), dense(&b.ffn.w2), dense(&b.ffn.b2));
        for col in cols.iter_mut() {
            let hid: Vec<f32> = matvec(&w1, col, Some(&b1)).into_iter().map(|z| z.max(0.0)).collect();
            let upd = matvec(&w2, &hid, Some(&b2));
            for (x, y) in col.iter_mut().zip(upd) {
                *x = sum(vec![*x, y]);
            }
        }
    }
    let ro = dense(&w.readout);
    let rb = dense(&w.readout_bias);
    matvec(&ro, &cols[n - 1], Some(&rb))[0]
}

fn labels(ds: &Dataset) -> Vec<u32> {
    ds.label_rows().iter().map(|r| r[0]).collect()
}

fn seqs(ds: &Dataset) -> Vec<Vec<u32>> {
    match &ds.inputs {
        Inputs::Ids { seqs, .. } => seqs.clone(),
        Inputs::Vectors { .. } => unreachable!("token ids"),
    }
}

/// n = 3 (1/3 is not a float): the f32 construction is memorized by an f32
/// forward pass in two summation orders, by memcap's f32 engine, and exactly.
#[test]
fn f32_construction_memorizes_in_f32_in_any_summation_order() {
    let ds = generate(&GenConfig::random_ids(40, 3, 12, 4, 7)).unwrap();
    let model = build(&ds, Precision::F32);
    let cert = certify(&model, &ds, FloatType::F32).unwrap();
    assert!(cert.certified, "{}", cert.reason);
    for reverse in [false, true] {
        for (s, y) in seqs(&ds).iter().zip(labels(&ds)) {
            assert_eq!(dense_f32(&model, s, reverse), y as f32, "sequence {s:?}, reverse {reverse}");
        }
    }
    for arith in [Arith::Exact, Arith::F32, Arith::F64] {
        let r = verify(&model, &ds, arith, &NoProgress).unwrap();
        assert_eq!(r.memorized, ds.len(), "{arith:?}");
    }
}
