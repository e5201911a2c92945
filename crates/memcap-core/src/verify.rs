//! Verification: run a stored model on a dataset and count what it memorized.
//!
//! [`verify`] with [`Arith::Exact`] is the only source of "memorized" claims:
//! it executes the stored weights (every layer, see [`crate::eval`]) in
//! integers/rationals on every distinct input. The f64/f32 runs report their
//! own k/N and, via [`first_divergence`], the first block where the float
//! state stops equalling the exact one.

use crate::data::Dataset;
use crate::error::ModelError;
use crate::eval::{self, Engine, ExactEngine, FloatEngine, Prepared, Progress, TokenValue};
use crate::model::Model;
use serde::{Deserialize, Serialize};

/// Which arithmetic to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Outputs of the plain reference forward pass ([`crate::reference::forward`]:
/// dense matrices from the stored weights, no sharing, no compiled plans) for
/// example `i`, exact: the claimed positions (next-token: every position, so
/// traces can show them; seq2seq: every position).
pub fn reference_outputs(model: &Model, ds: &Dataset, i: usize) -> Result<Vec<eval::Pred>, ModelError> {
    let prep = Prepared::new(model, ds)?;
    let toks: Vec<TokenValue> = prep.seqs[i].iter().map(|&t| prep.tokens[t as usize].clone()).collect();
    Ok(crate::reference::forward(model, &toks)?.iter().map(eval::Pred::exact).collect())
}

/// Format tag of a shard result file.
pub const SHARD_FORMAT: &str = "memcap-verify-shard";

/// One shard of a verification split over machines: the examples `i` with
/// `i mod shards == shard`, run by [`verify_shard`] and combined by
/// [`merge_shards`]. The hashes identify the model and the (resolved) data,
/// so shards of different runs are never merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardReport {
    /// [`SHARD_FORMAT`].
    pub format: String,
    /// This shard's index `I` (0-based).
    pub shard: usize,
    /// The number of shards `K`.
    pub shards: usize,
    /// Hash of the model (the caller's choice of digest, e.g. SHA-256 of its JSON).
    pub model_hash: String,
    /// Hash of the dataset the examples come from.
    pub data_hash: String,
    /// Examples of the whole dataset.
    pub examples_total: usize,
    /// The shard's verification; failure indices are global example indices.
    pub report: VerifyReport,
}

/// Verifies shard `shard` of `shards` of `ds` (examples `i ≡ shard mod shards`).
///
/// # Errors
/// [`ModelError::Mismatch`] for `shards == 0` or `shard >= shards`; the
/// errors of [`verify`].
#[allow(clippy::too_many_arguments)]
pub fn verify_shard(
    model: &Model,
    ds: &Dataset,
    arith: Arith,
    shard: usize,
    shards: usize,
    model_hash: &str,
    data_hash: &str,
    progress: &dyn Progress,
) -> Result<ShardReport, ModelError> {
    if shards == 0 || shard >= shards {
        return Err(ModelError::Mismatch(format!("shard {shard} of {shards}: need 0 <= I < K")));
    }
    let keep: Vec<bool> = (0..ds.len()).map(|i| i % shards == shard).collect();
    let global: Vec<usize> = (0..ds.len()).filter(|i| i % shards == shard).collect();
    let sub = ds.select(&keep);
    let mut report = if sub.is_empty() {
        VerifyReport {
            arithmetic: arith,
            examples: 0,
            memorized: 0,
            labels_total: 0,
            labels_correct: 0,
            distinct_sequences: 0,
            distinct_tokens: 0,
            distinct_tail_states: 0,
            sharing: None,
            failures: Vec::new(),
            seconds: 0.0,
        }
    } else {
        verify(model, &sub, arith, progress)?
    };
    for f in &mut report.failures {
        f.example = global[f.example];
    }
    Ok(ShardReport {
        format: SHARD_FORMAT.into(),
        shard,
        shards,
        model_hash: model_hash.into(),
        data_hash: data_hash.into(),
        examples_total: ds.len(),
        report,
    })
}

/// Why shards cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    /// No shard given.
    #[error("no shard results to merge")]
    Empty,
    /// A file that is not a shard result.
    #[error("shard {index}: not a {SHARD_FORMAT} result")]
    Format {
        /// Position in the given list.
        index: usize,
    },
    /// Shards of different models, data, arithmetic or shard counts.
    #[error("shard result {index} has {field} {got}, the first has {want}: they are not parts of one verification")]
    Mismatch {
        /// Position of the differing result in the given list (0-based).
        index: usize,
        /// What differs.
        field: &'static str,
        /// The first shard's value.
        want: String,
        /// This shard's value.
        got: String,
    },
    /// A shard index given twice.
    #[error("shard {0} is given twice")]
    Duplicate(usize),
    /// Shards missing from `0..K`.
    #[error("shards {missing:?} of {shards} are missing")]
    Missing {
        /// The absent indices.
        missing: Vec<usize>,
        /// K.
        shards: usize,
    },
}

/// Combines the `K` shards of one verification into one report: counts are
/// summed, the first 10 failures by example index kept. `distinct_*` are
/// sums over shards (an upper bound on the whole run's), `seconds` the
/// summed shard times; `sharing` says so.
///
/// # Errors
/// [`ShardError`] when the shards are not exactly `0..K` of one model, one
/// dataset and one arithmetic.
pub fn merge_shards(parts: &[ShardReport]) -> Result<VerifyReport, ShardError> {
    let first = parts.first().ok_or(ShardError::Empty)?;
    let mut seen = vec![false; first.shards];
    for (index, p) in parts.iter().enumerate() {
        if p.format != SHARD_FORMAT {
            return Err(ShardError::Format { index });
        }
        let checks: [(&'static str, String, String); 5] = [
            ("shard count", first.shards.to_string(), p.shards.to_string()),
            ("model hash", first.model_hash.clone(), p.model_hash.clone()),
            ("data hash", first.data_hash.clone(), p.data_hash.clone()),
            ("example count", first.examples_total.to_string(), p.examples_total.to_string()),
            ("arithmetic", format!("{:?}", first.report.arithmetic), format!("{:?}", p.report.arithmetic)),
        ];
        for (field, want, got) in checks {
            if want != got {
                return Err(ShardError::Mismatch { index, field, want, got });
            }
        }
        match seen.get_mut(p.shard) {
            Some(s) if *s => return Err(ShardError::Duplicate(p.shard)),
            Some(s) => *s = true,
            None => {
                return Err(ShardError::Mismatch {
                    index,
                    field: "shard index",
                    want: format!("< {}", first.shards),
                    got: p.shard.to_string(),
                })
            }
        }
    }
    let missing: Vec<usize> = seen.iter().enumerate().filter(|(_, s)| !**s).map(|(i, _)| i).collect();
    if !missing.is_empty() {
        return Err(ShardError::Missing { missing, shards: first.shards });
    }
    let mut failures: Vec<Failure> = parts.iter().flat_map(|p| p.report.failures.iter().cloned()).collect();
    failures.sort_by_key(|f| (f.example, f.position));
    failures.truncate(10);
    let sum = |f: fn(&VerifyReport) -> usize| parts.iter().map(|p| f(&p.report)).sum::<usize>();
    Ok(VerifyReport {
        arithmetic: first.report.arithmetic,
        examples: sum(|r| r.examples),
        memorized: sum(|r| r.memorized),
        labels_total: sum(|r| r.labels_total),
        labels_correct: sum(|r| r.labels_correct),
        distinct_sequences: sum(|r| r.distinct_sequences),
        distinct_tokens: sum(|r| r.distinct_tokens),
        distinct_tail_states: sum(|r| r.distinct_tail_states),
        sharing: Some(format!(
            "merged from {} shards: the distinct counts and the seconds are sums over the shards",
            parts.len()
        )),
        failures,
        seconds: parts.iter().map(|p| p.report.seconds).sum(),
    })
}
