//! The plain reference forward pass: dense exact matrices read straight from
//! the stored [`Model`], every column through every block, nothing shared, no
//! compiled plans, no fast paths.
//!
//! It is the oracle of the fast engines in [`crate::eval`], as llm.c keeps a
//! naive CPU forward beside every kernel: its only virtue is being obviously
//! the model of ARCHITECTURE.md ("The forward pass"). It costs
//! O(L·n·(m·q + n·H·m·s)) rational operations per sequence (L blocks, n
//! positions, width m, FFN width q, H heads of size s), so it is for tests and
//! spot checks ([`crate::verify::reference_outputs`]), not for whole datasets.

use crate::error::ModelError;
use crate::eval::TokenValue;
use crate::model::{AttentionKind, Model, Sparse};
use dashu_ratio::RBig;

/// A dense row-major copy of a sparse matrix.
fn dense(s: &Sparse) -> Vec<Vec<RBig>> {
    let mut a = vec![vec![RBig::ZERO; s.cols]; s.rows];
    for (r, c, v) in &s.entries {
        a[*r as usize][*c as usize] = v.0.clone();
    }
    a
}

/// y = A x
fn matvec(a: &[Vec<RBig>], x: &[RBig]) -> Vec<RBig> {
    a.iter().map(|row| row.iter().zip(x).fold(RBig::ZERO, |acc, (w, v)| acc + w * v)).collect()
}

/// The m×1 matrix `s` as a vector.
fn vector(s: &Sparse) -> Vec<RBig> {
    dense(s).into_iter().map(|row| row.into_iter().next().unwrap_or(RBig::ZERO)).collect()
}

/// The output w_oᵀ z + b_o at every position of one sequence, in exact
/// rationals.
///
/// `tokens[k]` is the token at position k (0-based); ids must be below the
/// model's vocabulary, vectors must have its input dimension d and finite
/// entries. Returns n values, one per position.
///
/// # Errors
/// [`ModelError::Mismatch`] for a token the model cannot embed;
/// [`ModelError::InexactSoftmax`] when a softmax block has unequal scores in
/// some column (its weights are irrational).
pub fn forward(model: &Model, tokens: &[TokenValue]) -> Result<Vec<RBig>, ModelError> {
    let w = &model.weights;
    let embed = dense(&w.embed);
    let bias = vector(&w.embed_bias);
    let pos = w.pos.as_ref().map(dense);
    let mut z: Vec<Vec<RBig>> = Vec::with_capacity(tokens.len());
    for (k, tok) in tokens.iter().enumerate() {
        let x: Vec<RBig> = match tok {
            TokenValue::Id(id) => {
                let id = *id as usize;
                if id >= w.embed.cols {
                    return Err(ModelError::Mismatch(format!("token id {id} outside the vocabulary {}", w.embed.cols)));
                }
                (0..w.embed.cols).map(|c| if c == id { RBig::ONE } else { RBig::ZERO }).collect()
            }
            TokenValue::Vector(v) => {
                if v.len() != w.embed.cols {
                    return Err(ModelError::Mismatch(format!(
                        "token of {} dims, model input {}",
                        v.len(),
                        w.embed.cols
                    )));
                }
                v.iter()
                    .map(|x| RBig::try_from(*x).map_err(|_| ModelError::Mismatch(format!("non-finite input {x}"))))
                    .collect::<Result<_, _>>()?
            }
        };
        let mut col: Vec<RBig> = matvec(&embed, &x).into_iter().zip(&bias).map(|(a, b)| a + b).collect();
        if let Some(p) = &pos {
            for (r, v) in col.iter_mut().enumerate() {
                *v = &*v + p.get(r).and_then(|row| row.get(k)).cloned().unwrap_or(RBig::ZERO);
            }
        }
        z.push(col);
    }
    for (b, block) in w.blocks.iter().enumerate() {
        // Attention: every head reads the block's input Z; the sum of the
        // heads is added through the residual.
        let mut delta: Vec<Vec<RBig>> = vec![vec![RBig::ZERO; model.config.width]; z.len()];
        for h in &block.heads {
            if h.wv.entries.is_empty() || h.wo.entries.is_empty() {
                continue; // W_O W_V Z = 0: the head adds exactly nothing, whatever its weights
            }
            let (wq, wk, wv, wo) = (dense(&h.wq), dense(&h.wk), dense(&h.wv), dense(&h.wo));
            let keys: Vec<Vec<RBig>> = z.iter().map(|c| matvec(&wk, c)).collect();
            let vals: Vec<Vec<RBig>> = z.iter().map(|c| matvec(&wv, c)).collect();
            for (i, zi) in z.iter().enumerate() {
                let q = matvec(&wq, zi);
                let scores: Vec<RBig> =
                    keys.iter().map(|k| k.iter().zip(&q).fold(RBig::ZERO, |acc, (a, b)| acc + a * b)).collect();
                let Some(max) = scores.iter().max().cloned() else { continue };
                let all_equal = scores.iter().all(|s| *s == max);
                if !all_equal && model.config.attention == AttentionKind::Softmax {
                    return Err(ModelError::InexactSoftmax { block: b });
                }
                // Hardmax (and softmax over equal scores): uniform over the maxima.
                let ties = scores.iter().filter(|s| **s == max).count();
                let weight = RBig::ONE / RBig::from(ties);
                let mut mixed = vec![RBig::ZERO; wv.len()];
                for (s, v) in scores.iter().zip(&vals) {
                    if *s == max {
                        for (m, x) in mixed.iter_mut().zip(v) {
                            *m = &*m + &weight * x;
                        }
                    }
                }
                for (d, o) in delta[i].iter_mut().zip(matvec(&wo, &mixed)) {
                    *d = &*d + o;
                }
            }
        }
        for (c, d) in z.iter_mut().zip(delta) {
            for (a, b) in c.iter_mut().zip(d) {
                *a = &*a + b;
            }
        }
        // FFN with its residual.
        let (w1, b1, w2, b2) =
            (dense(&block.ffn.w1), vector(&block.ffn.b1), dense(&block.ffn.w2), vector(&block.ffn.b2));
        for c in z.iter_mut() {
            let hidden: Vec<RBig> = matvec(&w1, c)
                .into_iter()
                .zip(&b1)
                .map(|(a, b)| {
                    let v = a + b;
                    if v < RBig::ZERO {
                        RBig::ZERO
                    } else {
                        v
                    }
                })
                .collect();
            for ((a, o), b) in c.iter_mut().zip(matvec(&w2, &hidden)).zip(&b2) {
                *a = &*a + o + b;
            }
        }
    }
    let readout = dense(&w.readout);
    let b_o = vector(&w.readout_bias).into_iter().next().unwrap_or(RBig::ZERO);
    Ok(z.iter().map(|c| matvec(&readout, c).into_iter().next().unwrap_or(RBig::ZERO) + &b_o).collect())
}
