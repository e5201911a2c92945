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

/// Records when each pipeline stage starts, passing progress through.
struct Timed<'a> {
    inner: &'a dyn Progress,
    starts: std::sync::Mutex<Vec<(String, std::time::Instant)>>,
}

impl Progress for Timed<'_> {
    fn start(&self, stage: &str, total: u64) {
        if let Ok(mut s) = self.starts.lock() {
            s.push((stage.to_string(), std::time::Instant::now()));
        }
        self.inner.start(stage, total);
    }
    fn inc(&self, n: u64) {
        self.inner.inc(n);
    }
}

impl Timed<'_> {
    /// (stage, seconds): each stage ends where the next begins, the last now.
    fn durations(&self) -> Vec<(String, f64)> {
        let s = self.starts.lock().map(|s| s.clone()).unwrap_or_default();
        let now = std::time::Instant::now();
        s.iter()
            .enumerate()
            .map(|(i, (name, t))| (name.clone(), s.get(i + 1).map_or(now, |n| n.1).duration_since(*t).as_secs_f64()))
            .collect()
    }
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
    /// Wall-clock seconds of each stage ("prepare", "token-wise prefix",
    /// "attention", the tail; the last also counts the results), in order;
    /// empty for merged shards.
    #[serde(default)]
    pub stages: Vec<(String, f64)>,
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
    let timed = Timed { inner: progress, starts: std::sync::Mutex::new(vec![("prepare".to_string(), t0)]) };
    let prep = Prepared::new(model, ds)?;
    let out = match arith {
        Arith::Exact => eval::run(&ExactEngine::new(model), model, &prep, &timed)?,
        Arith::F64 => eval::run(&FloatEngine::<f64>::new(model), model, &prep, &timed)?,
        Arith::F32 => eval::run(&FloatEngine::<f32>::new(model), model, &prep, &timed)?,
    };
    let stages = timed.durations();
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
        stages,
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
/// [`ModelError::Mismatch`] for `shards == 0`, `shard >= shards` or more
/// shards than examples; the errors of [`verify`].
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
    if shards > ds.len().max(1) {
        return Err(ModelError::Mismatch(format!(
            "{shards} shards for {} examples: need K <= N (every shard gets at least one example)",
            ds.len()
        )));
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
            stages: Vec::new(),
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
    #[error("shard {shard} is given twice (results {first} and {index})")]
    Duplicate {
        /// The shard index.
        shard: usize,
        /// Position of its first result in the given list (0-based).
        first: usize,
        /// Position of the second.
        index: usize,
    },
    /// Shards missing from `0..K`.
    #[error("{} of {shards} shards are missing: {}", missing.len(), list_some(missing))]
    Missing {
        /// The absent indices.
        missing: Vec<usize>,
        /// K.
        shards: usize,
    },
    /// A shard whose own numbers cannot be right (a truncated or edited
    /// file): counts that do not fit its residue class, more memorized than
    /// examples, failures outside the shard.
    #[error("shard result {index} (shard {shard} of {shards}) is inconsistent: {reason}")]
    Inconsistent {
        /// Position of the result in the given list (0-based).
        index: usize,
        /// Its shard index.
        shard: usize,
        /// K.
        shards: usize,
        /// What does not add up.
        reason: String,
    },
}

/// At most 10 indices, then how many more.
fn list_some(v: &[usize]) -> String {
    let head: Vec<String> = v.iter().take(10).map(usize::to_string).collect();
    if v.len() > 10 {
        format!("{} and {} more", head.join(", "), v.len() - 10)
    } else {
        head.join(", ")
    }
}

/// Checks one shard's numbers against its residue class.
fn check_shard(index: usize, p: &ShardReport) -> Result<(), ShardError> {
    let bad = |reason: String| ShardError::Inconsistent { index, shard: p.shard, shards: p.shards, reason };
    let n = p.examples_total;
    let expected = if p.shard < n { (n - p.shard).div_ceil(p.shards) } else { 0 };
    let r = &p.report;
    if r.examples != expected {
        return Err(bad(format!(
            "{} examples, but i ≡ {} (mod {}) for i < {n} selects {expected}",
            r.examples, p.shard, p.shards
        )));
    }
    if r.memorized > r.examples || r.labels_correct > r.labels_total {
        return Err(bad(format!(
            "{} of {} examples and {} of {} labels memorized",
            r.memorized, r.examples, r.labels_correct, r.labels_total
        )));
    }
    if r.memorized < r.examples && r.failures.is_empty() {
        return Err(bad(format!("{} examples not memorized but no failure listed", r.examples - r.memorized)));
    }
    if let Some(f) = r.failures.iter().find(|f| f.example >= n || f.example % p.shards != p.shard) {
        return Err(bad(format!("failure at example {} lies outside this shard", f.example)));
    }
    Ok(())
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
    if first.format != SHARD_FORMAT {
        return Err(ShardError::Format { index: 0 });
    }
    if first.shards == 0 || first.shards > first.examples_total.max(1) {
        return Err(ShardError::Inconsistent {
            index: 0,
            shard: first.shard,
            shards: first.shards,
            reason: format!("{} shards for {} examples (need 1 <= K <= N)", first.shards, first.examples_total),
        });
    }
    // seen[I] = position of shard I's result in `parts`.
    let mut seen: Vec<Option<usize>> = vec![None; first.shards];
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
            Some(Some(first)) => return Err(ShardError::Duplicate { shard: p.shard, first: *first, index }),
            Some(s) => *s = Some(index),
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
    for (index, p) in parts.iter().enumerate() {
        check_shard(index, p)?;
    }
    let missing: Vec<usize> = seen.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i).collect();
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
        stages: Vec::new(),
    })
}
