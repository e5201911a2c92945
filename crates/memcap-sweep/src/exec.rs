//! Running sweep tasks: one task to a result record ([`run_task`],
//! [`result_record`]), many on a thread pool ([`run_pool`]), shard selection
//! ([`select_shard`]), validation of stored records ([`check_record`]) and the
//! merged table ([`to_csv`]).

use crate::plan::{canonical_json, BuildSpec, CapacityTask, ConstructTask, Planned, Task, TrainTask, VerifyTask};
use memcap_core::construct::{construct, ConstructConfig};
use memcap_core::gen::GenKind;
use memcap_core::model::lower_bound_params;
use memcap_core::verify::{verify, Arith};
use memcap_core::MapChoice;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Version tag of a result record (`"memcap_sweep_result": 1`).
pub const RESULT_FORMAT: u64 = 1;

/// Environment variables that carry a shard index, in priority order
/// (Slurm arrays, Kubernetes Indexed Jobs, HyperQueue).
pub const INDEX_ENV: [&str; 3] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "HQ_TASK_ID"];

/// Why a task or a stored record failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The task's data could not be drawn.
    #[error("data: {0}")]
    Data(#[from] memcap_core::DataError),
    /// The construction failed.
    #[error("construct: {0}")]
    Construct(#[from] memcap_core::ConstructError),
    /// The exact verifier failed.
    #[error("verify: {0}")]
    Verify(#[from] memcap_core::ModelError),
    /// Training or the capacity search failed.
    #[error("train: {0}")]
    Train(#[from] memcap_train::TrainError),
    /// A stored result record is not what its file name and task say.
    #[error("{0}")]
    BadRecord(String),
    /// A shard request that selects nothing sensible.
    #[error("{0}")]
    Shard(String),
}

/// What a task produced: the reproducible `result` and the wall-clock `timing`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutput {
    /// Reproducible numbers (a pure function of the task).
    pub result: Value,
    /// Seconds; differs between runs.
    pub timing: Value,
}

/// Runs one task.
///
/// # Errors
/// The task's own failures ([`SweepError`]); a task never panics on its values.
pub fn run_task(t: &Task) -> Result<TaskOutput, SweepError> {
    match t {
        Task::Construct(c) => run_construct(c),
        Task::Train(c) => run_train(c),
        Task::Capacity(c) => run_capacity(c),
        Task::Verify(c) => run_verify(c),
    }
}

/// The stored record of a finished task:
/// `{"memcap_sweep_result":1,"id","task","result","timing"}`.
pub fn result_record(p: &Planned, out: &TaskOutput) -> Value {
    json!({"memcap_sweep_result": RESULT_FORMAT, "id": p.id, "task": p.task.to_value(),
           "result": out.result, "timing": out.timing})
}

/// Checks a stored record: the format tag, and that `id` (the file name's
/// stem) is the hash of the record's task.
///
/// # Errors
/// [`SweepError::BadRecord`] with the reason.
pub fn check_record(id: &str, v: &Value) -> Result<Task, SweepError> {
    if v["memcap_sweep_result"] != RESULT_FORMAT {
        return Err(SweepError::BadRecord("not a memcap sweep result (no \"memcap_sweep_result\": 1)".into()));
    }
    let task = Task::from_value(&v["task"]).map_err(|e| SweepError::BadRecord(e.to_string()))?;
    if task.id() != id || v["id"] != id {
        return Err(SweepError::BadRecord(format!("file name / id do not match the task's hash {}", task.id())));
    }
    Ok(task)
}

/// Line numbers (0-based) of the tasks a shard runs: task `index` only, or
/// `index, index + stride, …` with a stride.
///
/// # Errors
/// [`SweepError::Shard`] for a zero stride.
pub fn select_shard(total: usize, index: usize, stride: Option<usize>) -> Result<Vec<usize>, SweepError> {
    match stride {
        Some(0) => Err(SweepError::Shard("--stride must be at least 1".into())),
        Some(k) => Ok((index..total).step_by(k).collect()),
        None => Ok((index..total).take(1).collect()),
    }
}

/// Runs `tasks` on `jobs` threads (work stealing from a shared counter) and
/// calls `on_done` with each task's outcome as soon as it finishes (from the
/// worker thread). Training tasks keep candle single-threaded per task.
pub fn run_pool<'a, F>(tasks: &[&'a Planned], jobs: usize, on_start: &(dyn Fn(&'a Planned) + Sync), on_done: F)
where
    F: Fn(&'a Planned, Result<TaskOutput, SweepError>, f64) + Sync,
{
    if tasks.iter().any(|t| !matches!(t.task, Task::Construct(_))) {
        // Before any thread starts: candle single-threaded per training.
        memcap_train::ensure_single_threaded_ops();
    }
    let next = AtomicUsize::new(0);
    let worker = || loop {
        let k = next.fetch_add(1, Ordering::SeqCst);
        let Some(p) = tasks.get(k) else { break };
        on_start(p);
        let t0 = Instant::now();
        let out = run_task(&p.task);
        on_done(p, out, t0.elapsed().as_secs_f64());
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(tasks.len().max(1)) {
            s.spawn(worker);
        }
    });
}

/// SHA-256 of `bytes` as lowercase hex: the digest `memcap verify --shard`
/// records for the model JSON and the dataset's JSONL, so shards from a sweep
/// and from the CLI identify models and data the same way.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// [`sha256_hex`] of the model's JSON (`Model::to_json`), streamed into the
/// hash instead of built as one string (~1 GB at N = 10⁷).
pub fn model_digest(model: &memcap_core::Model) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    serde_json::to_writer(&mut h, model).expect("models serialize");
    hex(&h.finalize())
}

/// [`sha256_hex`] of the dataset's JSONL (`to_jsonl`), streamed line by line.
pub fn data_digest(ds: &memcap_core::Dataset) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for line in memcap_core::parse::to_jsonl_lines(ds) {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finalize())
}

fn construct_config(c: &BuildSpec) -> ConstructConfig {
    ConstructConfig {
        seed: c.data.seed,
        map: match c.map.as_str() {
            "m1" => MapChoice::M1,
            "m2" => MapChoice::M2,
            _ => MapChoice::Auto,
        },
        positional: c.positional,
        code_bits: c.code_bits,
        precision: c.precision,
        ..Default::default()
    }
}

fn task_dataset(c: &BuildSpec) -> Result<memcap_core::Dataset, SweepError> {
    let kind = if c.input == "vectors" { GenKind::Vectors { d: c.dim } } else { GenKind::Ids };
    Ok(c.data.dataset(kind, c.positional)?)
}

fn run_verify(v: &VerifyTask) -> Result<TaskOutput, SweepError> {
    let ds = task_dataset(&v.build)?;
    let t0 = Instant::now();
    let model = construct(&ds, &construct_config(&v.build))?.model;
    let construct_seconds = t0.elapsed().as_secs_f64();
    let (mh, dh) = (model_digest(&model), data_digest(&ds));
    let mut shard = memcap_core::verify::verify_shard(
        &model,
        &ds,
        Arith::Exact,
        v.shard,
        v.shards,
        &mh,
        &dh,
        &memcap_core::eval::NoProgress,
    )?;
    // Wall time goes to `timing`; the result stays a pure function of the task.
    let verify_seconds = std::mem::take(&mut shard.report.seconds);
    let stages = std::mem::take(&mut shard.report.stages);
    let result = serde_json::to_value(&shard).expect("shard reports serialize");
    Ok(TaskOutput {
        result,
        timing: json!({"construct_seconds": construct_seconds, "verify_seconds": verify_seconds, "verify_stages": stages}),
    })
}

fn run_construct(c: &ConstructTask) -> Result<TaskOutput, SweepError> {
    let ds = task_dataset(&c.build)?;
    let t0 = Instant::now();
    let built = construct(&ds, &construct_config(&c.build))?;
    let construct_seconds = t0.elapsed().as_secs_f64();
    let acc = built.model.accounting();
    let ver =
        if c.verify { Some(verify(&built.model, &ds, Arith::Exact, &memcap_core::eval::NoProgress)?) } else { None };
    // A float precision is only claimed with its certificate.
    let cert = match (c.verify, c.build.precision.float_type()) {
        (true, Some(ft)) => Some(memcap_core::certificate::certify(&built.model, &ds, ft)?),
        _ => None,
    };
    let result = json!({
        "precision": c.build.precision, "certified": cert.as_ref().map(|c| c.certified),
        "examples": ds.len(), "map": built.info.map, "blocks": acc.blocks, "width": acc.width,
        "ffn_width": acc.ffn_width, "params_dense": acc.params_dense, "params_nonzero": acc.params_nonzero,
        "max_weight_bits": acc.max_weight_bits, "total_bits": acc.total_bits,
        "weights_inexact_f64": acc.weights_inexact_f64, "weights_inexact_f32": acc.weights_inexact_f32,
        "information_limit_bits": ds.label_bits(), "lower_bound": lower_bound_params(ds.len()),
        "memorized": ver.as_ref().map(|v| v.memorized),
    });
    let timing = json!({"construct_seconds": construct_seconds, "verify_seconds": ver.as_ref().map(|v| v.seconds)});
    Ok(TaskOutput { result, timing })
}

fn run_train(c: &TrainTask) -> Result<TaskOutput, SweepError> {
    use memcap_train::{MlpConfig, ModelConfig, TrainConfig, TransformerConfig};
    let data = c.data.dataset(GenKind::Ids, c.positional)?;
    let model = if c.model == "mlp" {
        ModelConfig::Mlp(MlpConfig::for_data(&data, c.width, c.depth))
    } else {
        let head_dim = (c.d_model / c.heads.max(1)).max(1);
        ModelConfig::Transformer(TransformerConfig {
            head_dim,
            positional: c.positional,
            layer_norm: c.layer_norm,
            ..TransformerConfig::for_data(&data, c.d_model, c.heads, c.d_ff.unwrap_or(2 * c.d_model), c.blocks)
        })
    };
    let train = TrainConfig {
        lr: c.lr,
        weight_decay: c.weight_decay,
        batch_size: c.batch_size,
        max_steps: c.steps,
        eval_every: c.eval_every,
        seed: c.train_seed,
        ..TrainConfig::default()
    };
    let r = memcap_train::train(&model, &train, &data, &mut |_| {})?;
    let s = &r.summary;
    let metrics: Vec<Value> =
        r.metrics.iter().map(|m| json!({"step": m.step, "loss": m.loss, "acc": m.acc, "seq_acc": m.seq_acc})).collect();
    let result = json!({
        "model": r.config.model, "num_params": s.num_params, "memorized": s.memorized, "steps": s.steps,
        "final_loss": s.final_loss, "final_acc": s.final_acc, "final_seq_acc": s.final_seq_acc,
        "first_memorized_step": s.first_memorized_step, "diverged": s.diverged,
        "label_bits": data.label_bits(), "bits_per_param": s.bits_per_param, "memorized_bits": s.memorized_bits,
        "memorized_bits_per_param": s.memorized_bits_per_param, "under_trained": s.under_trained,
        "stop_reason": s.stop_reason, "metrics": metrics,
    });
    Ok(TaskOutput { result, timing: json!({"seconds": s.elapsed_s}) })
}

fn run_capacity(c: &CapacityTask) -> Result<TaskOutput, SweepError> {
    use memcap_train::capacity::{capacity_search, CapacitySpec, Family, Strategy};
    use memcap_train::TrainConfig;
    let data = c.data.dataset(GenKind::Ids, c.positional)?;
    let family = if c.model == "mlp" {
        Family::Mlp
    } else {
        Family::Transformer { heads: c.heads, ff_mult: c.ff_mult, positional: c.positional, layer_norm: c.layer_norm }
    };
    let spec = CapacitySpec {
        family,
        blocks: c.blocks.clone(),
        widths: c.widths.clone(),
        lrs: c.lrs.clone(),
        seeds: c.seeds.clone(),
        train: TrainConfig {
            batch_size: c.batch_size,
            max_steps: c.steps,
            eval_every: c.eval_every,
            ..TrainConfig::default()
        },
        strategy: if c.strategy == "ascending" { Strategy::Ascending } else { Strategy::Bisect },
        threads: c.threads,
        max_steps_cap: c.steps_cap.unwrap_or(c.steps.saturating_mul(4)).max(c.steps),
        max_grow: c.max_grow,
        min_loss_drop: 0.5,
    };
    let rep = capacity_search(&spec, &data, &mut |_| {})?;
    let tested: Vec<Value> = rep
        .tested
        .iter()
        .map(|o| {
            json!({"num_params": o.num_params, "memorized": o.memorized, "best_acc": o.best_acc, "runs": o.runs,
                         "winner": o.winner, "under_trained": o.under_trained, "max_steps_used": o.max_steps_used,
                         "memorized_bits": o.memorized_bits})
        })
        .collect();
    let result = json!({
        "status": rep.status, "reason": rep.reason, "under_trained": rep.under_trained, "axis": rep.axis,
        "min_params": rep.min_params, "bits_per_param": rep.bits_per_param, "label_bits": data.label_bits(),
        "memorized_bits_per_param": rep.memorized_bits_per_param, "best_acc": rep.best_acc,
        "best_model": rep.best.as_ref().map(|b| &b.model), "candidates": rep.candidates, "runs_used": rep.runs_used,
        "tested": tested,
    });
    Ok(TaskOutput { result, timing: json!({"seconds": rep.elapsed_s}) })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// merged.csv: id, kind, then task.*, result.*, timing.* columns (union of
/// keys, sorted). Lists and objects (training metrics, tested sizes) are
/// written as canonical JSON in their cell; merged.jsonl has them too.
pub fn to_csv(records: &[Value]) -> String {
    let mut cols: BTreeSet<(u8, String)> = BTreeSet::new();
    for r in records {
        for (rank, sect) in [(0u8, "task"), (1, "result"), (2, "timing")] {
            if let Some(m) = r[sect].as_object() {
                for k in m.keys().filter(|k| !(sect == "task" && k.as_str() == "kind")) {
                    cols.insert((rank, format!("{sect}.{k}")));
                }
            }
        }
    }
    let mut s = String::from("id,kind");
    for (_, c) in &cols {
        s.push(',');
        s.push_str(&csv_field(c));
    }
    s.push('\n');
    for r in records {
        s.push_str(&csv_field(r["id"].as_str().unwrap_or_default()));
        s.push(',');
        s.push_str(&csv_field(r["task"]["kind"].as_str().unwrap_or_default()));
        for (_, c) in &cols {
            let (sect, k) = c.split_once('.').unwrap_or_default();
            let v = &r[sect][k];
            let cell = scalar(v).unwrap_or_else(|| canonical_json(v));
            s.push(',');
            s.push_str(&csv_field(&cell));
        }
        s.push('\n');
    }
    s
}
