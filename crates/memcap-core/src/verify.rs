//! Verification: run a stored model on a dataset and count what it memorized.
//!
//! [`verify`] with [`Arith::Exact`] is the only source of "memorized" claims:
//! it executes the stored weights (every layer, see [`crate::eval`]) in
//! integers/rationals on every distinct input. The f64/f32 runs report their
//! own k/N and, via [`first_divergence`], the first block where the float
//! state stops equalling the exact one.

use crate::data::{Dataset, Task};
use crate::error::ModelError;
use crate::eval::{self, Engine, ExactEngine, FloatEngine, Prepared, Progress, TokenValue};
use crate::model::Model;
use serde::Serialize;

/// Which arithmetic to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arith {
    /// Exact integers and rationals ([`ExactEngine`]): the only basis for "memorized" claims.
    Exact,
    /// IEEE f64, weights rounded to nearest ([`FloatEngine`]).
    F64,
    /// IEEE f32, weights rounded to nearest ([`FloatEngine`]).
    F32,
}

/// One wrong output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// 0-based index of the example.
    pub example: usize,
    /// 1-based source line of the example, when parsed from text.
    pub line: Option<usize>,
    /// 1-based position.
    pub position: usize,
    /// The label at that position.
    pub expected: u32,
    /// The model's output as text ([`Pred::value`](eval::Pred::value)).
    pub got: String,
}

/// The result of one verification run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The arithmetic that was run.
    pub arithmetic: Arith,
    /// Examples N.
    pub examples: usize,
    /// Examples with every claimed output equal to its label.
    pub memorized: usize,
    /// Claimed outputs: N for next-token, nN for seq2seq.
    pub labels_total: usize,
    /// Claimed outputs equal to their label.
    pub labels_correct: usize,
    /// Distinct input sequences run through the attention block(s).
    pub distinct_sequences: usize,
    /// Distinct (token, position) columns run through the pre-attention part
    /// (tokens only, without positional encoding).
    pub distinct_tokens: usize,
    /// Distinct column states run through the post-attention part.
    pub distinct_tail_states: usize,
    /// How the post-attention blocks shared work between columns (exact
    /// register-closure sharing), if they did.
    pub sharing: Option<String>,
    /// The first failures (at most 10).
    pub failures: Vec<Failure>,
    /// Wall-clock time of the run, in seconds (preparing the data included).
    pub seconds: f64,
}

impl VerifyReport {
    /// True when every example is memorized.
    pub fn all_memorized(&self) -> bool {
        self.memorized == self.examples
    }
}

/// Runs `model` on `ds` in the chosen arithmetic.
pub fn verify(model: &Model, ds: &Dataset, arith: Arith, progress: &dyn Progress) -> Result<VerifyReport, ModelError> {
    let t0 = std::time::Instant::now();
    let prep = Prepared::new(model, ds)?;
    let out = match arith {
        Arith::Exact => eval::run(&ExactEngine::new(model), model, &prep, progress)?,
        Arith::F64 => eval::run(&FloatEngine::<f64>::new(model), model, &prep, progress)?,
        Arith::F32 => eval::run(&FloatEngine::<f32>::new(model), model, &prep, progress)?,
    };
    let labels = ds.label_rows();
    let mut memorized = 0;
    let mut correct = 0;
    let mut total = 0;
    let mut failures = Vec::new();
    for (i, preds) in out.preds.iter().enumerate() {
        let mut all = true;
        for (j, p) in preds.iter().enumerate() {
            if labels[i][j] == crate::data::IGNORE {
                continue; // left out of memorization
            }
            total += 1;
            if p.class == Some(labels[i][j] as i64) {
                correct += 1;
            } else {
                all = false;
                if failures.len() < 10 {
                    failures.push(Failure {
                        example: i,
                        line: ds.origin(i).line,
                        position: prep.needed[j] + 1,
                        expected: labels[i][j],
                        got: p.value.clone(),
                    });
                }
            }
        }
        memorized += all as usize;
    }
    Ok(VerifyReport {
        arithmetic: arith,
        examples: ds.len(),
        memorized,
        labels_total: total,
        labels_correct: correct,
        distinct_sequences: out.distinct_sequences,
        distinct_tokens: out.distinct_tokens,
        distinct_tail_states: out.distinct_tail_states,
        sharing: out.sharing,
        failures,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Where a float forward pass first differs from the exact one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Divergence {
    /// 0-based index of the example.
    pub example: usize,
    /// "embedding" or "block b" (0-based).
    pub stage: String,
    /// Name of the first differing register (its index when unnamed).
    pub register: String,
    /// 1-based position of the column.
    pub position: usize,
    /// The exact value, "p" or "p/q".
    pub exact: String,
    /// The float value, widened to f64.
    pub float: f64,
}

/// Traces example `i` through the exact and the float engine side by side
/// (no sharing) and returns the first register whose float value differs
/// from the exact value rounded to f64; None if they agree throughout, or if
/// the model has no exact evaluation (softmax over non-equal scores).
pub fn first_divergence(model: &Model, ds: &Dataset, i: usize, arith: Arith) -> Result<Option<Divergence>, ModelError> {
    let prep = Prepared::new(model, ds)?;
    let toks: Vec<TokenValue> = prep.seqs[i].iter().map(|&t| prep.tokens[t as usize].clone()).collect();
    let exact_engine = ExactEngine::new(model);
    let exact = match eval::trace(&exact_engine, model, &toks, &prep.needed) {
        // Irrational softmax weights: no exact trajectory to compare with.
        Err(ModelError::InexactSoftmax { .. }) => return Ok(None),
        other => other?,
    };
    let float: Vec<Vec<Vec<f64>>> = match arith {
        Arith::Exact => return Ok(None),
        Arith::F64 => {
            let e = FloatEngine::<f64>::new(model);
            eval::trace(&e, model, &toks, &prep.needed)?
                .iter()
                .map(|c| c.iter().map(|z| e.to_f64(z)).collect())
                .collect()
        }
        Arith::F32 => {
            let e = FloatEngine::<f32>::new(model);
            eval::trace(&e, model, &toks, &prep.needed)?
                .iter()
                .map(|c| c.iter().map(|z| e.to_f64(z)).collect())
                .collect()
        }
    };
    for (stage, (ex, fl)) in exact.iter().zip(&float).enumerate() {
        for (j, (ec, fc)) in ex.iter().zip(fl).enumerate() {
            let ev = exact_engine.to_f64(ec);
            let exact_rat = match ec {
                eval::ExactCol::Int(z) => z.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                eval::ExactCol::Rat(z) => z.iter().map(crate::model::fmt_exact).collect(),
            };
            for (r, (a, b)) in ev.iter().zip(fc).enumerate() {
                // Exact value rounded to the float type under test.
                let a = if arith == Arith::F32 { *a as f32 as f64 } else { *a };
                if a != *b {
                    return Ok(Some(Divergence {
                        example: i,
                        stage: if stage == 0 { "embedding".into() } else { format!("block {}", stage - 1) },
                        register: model.config.registers.get(r).cloned().unwrap_or_else(|| r.to_string()),
                        position: prep.needed[j] + 1,
                        exact: exact_rat[r].clone(),
                        float: *b,
                    }));
                }
            }
        }
    }
    Ok(None)
}

/// Outputs of the reference (unshared) forward pass for example `i`, exact.
pub fn reference_outputs(model: &Model, ds: &Dataset, i: usize) -> Result<Vec<eval::Pred>, ModelError> {
    let prep = Prepared::new(model, ds)?;
    let toks: Vec<TokenValue> = prep.seqs[i].iter().map(|&t| prep.tokens[t as usize].clone()).collect();
    let e = ExactEngine::new(model);
    let all: Vec<usize> = (0..toks.len()).collect();
    let states = eval::trace(&e, model, &toks, if ds.task() == Task::Seq2seq { &prep.needed } else { &all })?;
    Ok(eval::trace_outputs(&e, &states))
}
