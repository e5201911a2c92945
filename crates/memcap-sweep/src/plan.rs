//! Sweep plans: a JSON grid expanded into a deterministic list of tasks, each
//! a complete, self-describing JSON object identified by the hash of its
//! canonical form.
//!
//! Why: a sweep is run in shards (GNU parallel, Slurm arrays, Kubernetes
//! Indexed Jobs) that can fail, be retried, overlap or finish in any order.
//! If a task is a pure function of its JSON (the seed is in it, every default
//! is filled in) and its result is stored under the hash of that JSON, then
//! re-running anything is harmless: a result either exists under its id or
//! it does not, and two runs of the same task write the same file.
//!
//! Config format (JSON):
//!
//! ```json
//! {"kind": "construct",
//!  "grid":  {"N": [100, 1000, 10000], "n": [8, 64], "seed": [0, 1]},
//!  "fixed": {"vocab": 1000, "num_classes": 16}}
//! ```
//!
//! or `{"sweeps": [ {…}, {…} ]}` for several such blocks (e.g. an N sweep at
//! fixed n plus an n sweep at fixed N). Grid keys are expanded in sorted key
//! order, the last key varying fastest; tasks with equal ids are kept once
//! (first occurrence). The same config always gives the same tasks, ids and
//! order.

use memcap_core::{Positional, Task as Head};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// A planning or task error: `at` says where inside the config or task
/// (e.g. `sweeps[1].grid.N`), `reason` what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct PlanError {
    /// Where: `config`, `sweeps[i].grid.KEY`, `task.KEY`, `line`, `id`.
    pub at: String,
    /// What is wrong.
    pub reason: String,
}

fn perr(at: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError { at: at.into(), reason: reason.into() }
}

/// The data every task draws: a seeded random dataset from memcap-core's
/// generator ([`DataSpec::dataset`]). Construct, train and capacity tasks
/// with equal data fields draw the same dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Number of sequences N.
    #[serde(rename = "N")]
    pub n_seqs: usize,
    /// Sequence length n.
    #[serde(rename = "n")]
    pub seq_len: usize,
    /// Vocabulary size V (default 1000).
    #[serde(default = "d_vocab")]
    pub vocab: usize,
    /// Number of classes C (default 16; `classes` is accepted as an alias).
    #[serde(default = "d_classes", alias = "classes")]
    pub num_classes: u32,
    /// `next-token` (default) or `seq2seq`.
    #[serde(default = "d_task")]
    pub task: Head,
    /// Seed of the data (and, for construct, of the construction).
    #[serde(default)]
    pub seed: u64,
}

impl DataSpec {
    /// The dataset this spec names: memcap-core's seeded generator with token
    /// kind `kind`, drawn distinct for `positional` (so every example is
    /// memorizable by that model kind).
    ///
    /// # Errors
    /// [`memcap_core::DataError`] when the sizes admit too few distinct contexts.
    pub fn dataset(
        &self,
        kind: memcap_core::gen::GenKind,
        positional: Positional,
    ) -> Result<memcap_core::Dataset, memcap_core::DataError> {
        memcap_core::gen::generate(&memcap_core::gen::GenConfig {
            n_seqs: self.n_seqs,
            seq_len: self.seq_len,
            vocab: self.vocab,
            num_classes: self.num_classes,
            task: self.task,
            kind,
            positional,
            seed: self.seed,
        })
    }
}

fn d_vocab() -> usize {
    1000
}
fn d_classes() -> u32 {
    16
}
fn d_task() -> Head {
    Head::NextToken
}
fn d_dim() -> usize {
    8
}
fn d_16() -> usize {
    16
}
fn d_1() -> usize {
    1
}
fn d_lr() -> f64 {
    3e-3
}
fn d_steps() -> usize {
    2000
}
fn d_eval() -> usize {
    50
}
fn d_widths() -> Vec<usize> {
    vec![8, 12, 16, 20, 24, 28, 32, 40, 48]
}
fn d_blocks_list() -> Vec<usize> {
    vec![1]
}
fn d_ff_mult() -> f64 {
    2.0
}
fn d_lrs() -> Vec<f64> {
    vec![1e-2, 3e-3]
}
fn d_seeds() -> Vec<u64> {
    vec![0]
}
fn d_cap_steps() -> usize {
    3000
}
fn d_cap_eval() -> usize {
    100
}
fn d_input() -> String {
    "ids".into()
}
fn d_auto() -> String {
    "auto".into()
}
fn d_transformer() -> String {
    "transformer".into()
}
fn d_grow() -> usize {
    3
}
fn d_bisect() -> String {
    "bisect".into()
}

/// What a construct or verify task builds: the data (`memcap gen`, token ids
/// or vectors) and the construction options, seeded by the data's `seed`.
/// Flattened into the task JSON, so its keys sit beside `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSpec {
    /// The data (N, n, vocab, num_classes, task, seed).
    #[serde(flatten)]
    pub data: DataSpec,
    /// `ids` or `vectors`.
    #[serde(default = "d_input")]
    pub input: String,
    /// Dimension of vector tokens (ignored for ids).
    #[serde(default = "d_dim")]
    pub dim: usize,
    /// `none` (default) or `learned`.
    #[serde(default)]
    pub positional: Positional,
    /// `auto`, `m1` or `m2`.
    #[serde(default = "d_auto")]
    pub map: String,
    /// Token-code width of the M1 map (default: derived from N).
    #[serde(default)]
    pub code_bits: Option<u32>,
    /// `exact` (default), `f64` or `f32`: the arithmetic the model must be
    /// exact in (docs/construction.md §15). Left out of the task JSON when
    /// exact, so existing task ids do not change.
    #[serde(default, skip_serializing_if = "is_exact")]
    pub precision: memcap_core::Precision,
}

fn is_exact(p: &memcap_core::Precision) -> bool {
    *p == memcap_core::Precision::Exact
}

/// `memcap construct` on `memcap gen` data (token ids or vectors), with
/// the construction seeded by `seed` as well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstructTask {
    /// Data and construction options.
    #[serde(flatten)]
    pub build: BuildSpec,
    /// Also run the exact verifier on every example.
    #[serde(default)]
    pub verify: bool,
}

/// One shard of an exact verification: the task's data and construction (as
/// in [`ConstructTask`], rebuilt deterministically on every node), then
/// `memcap_core::verify::verify_shard` on the examples i ≡ `shard` (mod
/// `shards`). The result is a `ShardReport`; `memcap verify merge` combines
/// the K records of a sweep (it checks that every shard saw the same model
/// and data by their SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyTask {
    /// Data and construction options.
    #[serde(flatten)]
    pub build: BuildSpec,
    /// This shard's index I, 0 ≤ I < `shards`.
    pub shard: usize,
    /// The number of shards K.
    pub shards: usize,
}

/// One training run of memcap-train on its random dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainTask {
    /// The data (N, n, vocab, num_classes, task, seed).
    #[serde(flatten)]
    pub data: DataSpec,
    /// `transformer` or `mlp`.
    #[serde(default = "d_transformer")]
    pub model: String,
    /// Transformer width d (default 16).
    #[serde(default = "d_16")]
    pub d_model: usize,
    /// Attention heads (default 1).
    #[serde(default = "d_1")]
    pub heads: usize,
    /// FFN width (default 2·d_model).
    #[serde(default)]
    pub d_ff: Option<usize>,
    /// Transformer blocks.
    #[serde(default = "d_1")]
    pub blocks: usize,
    /// MLP hidden width.
    #[serde(default = "d_16")]
    pub width: usize,
    /// MLP hidden layers.
    #[serde(default = "d_1")]
    pub depth: usize,
    /// `none` (default, the paper's setting) or `learned`.
    #[serde(default)]
    pub positional: Positional,
    /// Pre-norm LayerNorm.
    #[serde(default)]
    pub layer_norm: bool,
    /// AdamW learning rate.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// AdamW decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Minibatch size (default: full batch).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Step budget.
    #[serde(default = "d_steps")]
    pub steps: usize,
    /// Exact-argmax evaluation every this many steps.
    #[serde(default = "d_eval")]
    pub eval_every: usize,
    /// Seed of initialization and data order (the data uses `seed`).
    #[serde(default)]
    pub train_seed: u64,
}

/// A memcap-train capacity search (smallest memorizing size of a family).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityTask {
    /// The data (N, n, vocab, num_classes, task, seed).
    #[serde(flatten)]
    pub data: DataSpec,
    /// `transformer` or `mlp`.
    #[serde(default = "d_transformer")]
    pub model: String,
    /// Block counts (Transformer) or hidden layers (MLP) to try.
    #[serde(default = "d_blocks_list")]
    pub blocks: Vec<usize>,
    /// Widths to try.
    #[serde(default = "d_widths")]
    pub widths: Vec<usize>,
    /// Attention heads (default 1).
    #[serde(default = "d_1")]
    pub heads: usize,
    /// FFN width as a multiple of d.
    #[serde(default = "d_ff_mult")]
    pub ff_mult: f64,
    /// `none` (default, the paper's setting) or `learned`.
    #[serde(default)]
    pub positional: Positional,
    /// Pre-norm LayerNorm.
    #[serde(default)]
    pub layer_norm: bool,
    /// Learning rates tried per size.
    #[serde(default = "d_lrs")]
    pub lrs: Vec<f64>,
    /// Seeds tried per size.
    #[serde(default = "d_seeds")]
    pub seeds: Vec<u64>,
    /// Minibatch size (default: full batch).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Step budget per run.
    #[serde(default = "d_cap_steps")]
    pub steps: usize,
    /// Evaluation interval.
    #[serde(default = "d_cap_eval")]
    pub eval_every: usize,
    /// `bisect` or `ascending`.
    #[serde(default = "d_bisect")]
    pub strategy: String,
    /// Under-trained tries are re-run with doubled steps up to this many
    /// (default 4 × steps).
    #[serde(default)]
    pub steps_cap: Option<usize>,
    /// Doublings of the largest size when it fails (default 3).
    #[serde(default = "d_grow")]
    pub max_grow: usize,
    /// Parallel trainings inside this task.
    #[serde(default = "d_1")]
    pub threads: usize,
}

/// A sweep task. Serialized with `"kind"` as the tag and every default
/// filled in, so the JSON alone determines the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Task {
    /// Construct (and optionally verify exactly) on generated data.
    Construct(ConstructTask),
    /// One training run.
    Train(TrainTask),
    /// One capacity search.
    Capacity(CapacityTask),
    /// One shard of an exact verification.
    Verify(VerifyTask),
}

impl Task {
    /// Parses and completes a task object (defaults filled, unknown keys and
    /// bad values rejected).
    pub fn from_value(v: &Value) -> Result<Task, PlanError> {
        let t: Task = serde_json::from_value(v.clone()).map_err(|e| perr("task", e.to_string()))?;
        t.check()?;
        // Unknown keys (serde's deny_unknown_fields does not work with the
        // flattened data fields): the complete task has every known key.
        let mut known = t.to_value();
        // Keys left out of the task JSON at their default (so old ids hold).
        if let (Task::Construct(_) | Task::Verify(_), Some(o)) = (&t, known.as_object_mut()) {
            o.entry("precision").or_insert_with(|| Value::from("exact"));
        }
        if let (Some(given), Some(known)) = (v.as_object(), known.as_object()) {
            // Accepted spellings of known keys (serde aliases).
            fn canonical(k: &str) -> &str {
                match k {
                    "classes" => "num_classes",
                    other => other,
                }
            }
            if let Some(k) = given.keys().find(|k| !known.contains_key(canonical(k))) {
                let mut allowed: Vec<&String> = known.keys().collect();
                allowed.sort();
                let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                return Err(perr(
                    format!("task.{k}"),
                    format!("unknown key for kind {:?} (known: {})", t.kind(), allowed.join(", ")),
                ));
            }
        }
        Ok(t)
    }

    /// The complete task as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("tasks serialize")
    }

    /// The stable id: hash of the canonical JSON.
    pub fn id(&self) -> String {
        task_id(&self.to_value())
    }

    /// The task's data fields.
    pub fn data(&self) -> &DataSpec {
        match self {
            Task::Construct(t) => &t.build.data,
            Task::Train(t) => &t.data,
            Task::Capacity(t) => &t.data,
            Task::Verify(t) => &t.build.data,
        }
    }

    /// `construct`, `train`, `capacity` or `verify`.
    pub fn kind(&self) -> &'static str {
        match self {
            Task::Construct(_) => "construct",
            Task::Train(_) => "train",
            Task::Capacity(_) => "capacity",
            Task::Verify(_) => "verify",
        }
    }

    /// Value checks serde cannot express (enumerated strings, positivity).
    fn check(&self) -> Result<(), PlanError> {
        let d = self.data();
        if d.n_seqs == 0 || d.seq_len == 0 || d.vocab == 0 || d.num_classes == 0 {
            return Err(perr("task", "N, n, vocab and num_classes must be positive"));
        }
        let one_of = |key: &str, v: &str, allowed: &[&str]| {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(perr(format!("task.{key}"), format!("{v:?} is not one of {}", allowed.join(", "))))
            }
        };
        let build = |b: &BuildSpec| -> Result<(), PlanError> {
            one_of("input", &b.input, &["ids", "vectors"])?;
            one_of("map", &b.map, &["auto", "m1", "m2"])
        };
        match self {
            Task::Construct(t) => build(&t.build)?,
            Task::Train(t) => {
                one_of("model", &t.model, &["transformer", "mlp"])?;
                if t.steps == 0 || t.eval_every == 0 || !(t.lr > 0.0 && t.lr.is_finite()) {
                    return Err(perr("task", "steps, eval_every and lr must be positive"));
                }
            }
            Task::Verify(t) => {
                build(&t.build)?;
                if t.shards == 0 || t.shard >= t.shards {
                    return Err(perr(
                        "task.shard",
                        format!("shard {} of {}: need 0 <= shard < shards", t.shard, t.shards),
                    ));
                }
                if t.shards > d.n_seqs {
                    return Err(perr(
                        "task.shards",
                        format!("{} shards for N = {}: need shards <= N", t.shards, d.n_seqs),
                    ));
                }
            }
            Task::Capacity(t) => {
                one_of("model", &t.model, &["transformer", "mlp"])?;
                one_of("strategy", &t.strategy, &["bisect", "ascending"])?;
                if t.widths.is_empty()
                    || t.blocks.is_empty()
                    || t.lrs.is_empty()
                    || t.seeds.is_empty()
                    || t.threads == 0
                {
                    return Err(perr("task", "blocks, widths, lrs, seeds must be non-empty and threads positive"));
                }
            }
        }
        Ok(())
    }
}

/// JSON with object keys sorted at every level, compact. Independent of
/// serde_json's map ordering features.
pub fn canonical_json(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            x => x.clone(),
        }
    }
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            x => out.push_str(&x.to_string()),
        }
    }
    let mut s = String::new();
    write(&sort(v), &mut s);
    s
}

/// 64-bit FNV-1a of the canonical JSON, as 16 hex digits. A content hash,
/// not a security boundary: it only has to separate the tasks of a sweep.
pub fn task_id(task: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canonical_json(task).bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// True for strings that look like a task id (16 lowercase hex digits).
pub fn is_task_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A planned task: its id, its complete JSON, and the typed form.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// [`task_id`] of the task.
    pub id: String,
    /// The complete task.
    pub task: Task,
}

impl Planned {
    /// The `tasks.jsonl` line: `{"id":…,"task":{…}}` (canonical JSON).
    pub fn to_line(&self) -> String {
        canonical_json(&serde_json::json!({"id": self.id, "task": self.task.to_value()}))
    }
}

/// The most tasks one plan may expand to (a grid is multiplied out before
/// anything runs; a typo such as a 10^4 × 10^4 grid must not hang `plan`).
pub const MAX_TASKS: usize = 1_000_000;

/// Expands a sweep config into tasks, deterministically.
///
/// # Errors
/// [`PlanError`] naming the config path of a bad value, or a grid that
/// expands past [`MAX_TASKS`].
pub fn expand(config: &Value) -> Result<Vec<Planned>, PlanError> {
    let blocks: Vec<(String, &Value)> = match config.get("sweeps") {
        Some(Value::Array(a)) => {
            if config.as_object().is_some_and(|m| m.len() > 1) {
                return Err(perr("config", "with \"sweeps\" no other top-level key is allowed"));
            }
            a.iter().enumerate().map(|(i, b)| (format!("sweeps[{i}]"), b)).collect()
        }
        Some(_) => return Err(perr("sweeps", "must be a list of sweep objects")),
        None => vec![("config".to_string(), config)],
    };
    if blocks.is_empty() {
        return Err(perr("sweeps", "is empty"));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (at, b) in blocks {
        let obj = b.as_object().ok_or_else(|| perr(&at, "must be an object"))?;
        for k in obj.keys() {
            if !["kind", "grid", "fixed"].contains(&k.as_str()) {
                return Err(perr(&at, format!("unknown key {k:?} (allowed: kind, grid, fixed)")));
            }
        }
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| perr(format!("{at}.kind"), "missing or not a string"))?;
        let empty = Map::new();
        let fixed = match obj.get("fixed") {
            None => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return Err(perr(format!("{at}.fixed"), "must be an object")),
        };
        let grid = match obj.get("grid") {
            None => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return Err(perr(format!("{at}.grid"), "must be an object of lists")),
        };
        let mut axes: Vec<(&String, &Vec<Value>)> = Vec::new();
        let mut keys: Vec<&String> = grid.keys().collect();
        keys.sort();
        for k in keys {
            match &grid[k] {
                Value::Array(vals) if !vals.is_empty() => axes.push((k, vals)),
                _ => return Err(perr(format!("{at}.grid.{k}"), "must be a non-empty list of values")),
            }
            if fixed.contains_key(k) {
                return Err(perr(format!("{at}.grid.{k}"), "is also in \"fixed\""));
            }
        }
        let total = axes.iter().try_fold(1usize, |acc, (_, v)| acc.checked_mul(v.len())).unwrap_or(usize::MAX);
        if total > MAX_TASKS.saturating_sub(out.len()) {
            return Err(perr(
                format!("{at}.grid"),
                format!(
                    "expands to {} tasks, over the limit of {MAX_TASKS} per plan (split the sweep into several configs)",
                    if total == usize::MAX { "more than 2^64".to_string() } else { total.to_string() }
                ),
            ));
        }
        for flat in 0..total {
            let mut obj = fixed.clone();
            obj.insert("kind".into(), Value::String(kind.into()));
            // Mixed radix, last axis fastest.
            let mut rest = flat;
            let mut picks = vec![0; axes.len()];
            for (j, (_, vals)) in axes.iter().enumerate().rev() {
                picks[j] = rest % vals.len();
                rest /= vals.len();
            }
            for (j, (k, vals)) in axes.iter().enumerate() {
                obj.insert((*k).clone(), vals[picks[j]].clone());
            }
            let point: Vec<String> =
                axes.iter().enumerate().map(|(j, (k, vals))| format!("{k}={}", vals[picks[j]])).collect();
            let task = Task::from_value(&Value::Object(obj)).map_err(|e| {
                perr(format!("{at} (grid point {})", point.join(", ")), format!("{}: {}", e.at, e.reason))
            })?;
            let id = task.id();
            if seen.insert(id.clone()) {
                out.push(Planned { id, task });
            }
        }
    }
    Ok(out)
}

/// Parses one `tasks.jsonl` line; the stored id must match the task's hash
/// (so an edited task cannot masquerade under an old result).
pub fn parse_task_line(line: &str) -> Result<Planned, PlanError> {
    let v: Value = serde_json::from_str(line).map_err(|e| perr("line", e.to_string()))?;
    let task_v = v.get("task").ok_or_else(|| perr("line", "no \"task\" object"))?;
    let task = Task::from_value(task_v)?;
    let id = task.id();
    if let Some(given) = v.get("id") {
        if given.as_str() != Some(id.as_str()) {
            return Err(perr(
                "id",
                format!(
                    "{given} does not match the task's hash {id} (was the task edited? re-run `memcap sweep plan`)"
                ),
            ));
        }
    }
    Ok(Planned { id, task })
}
