//! `memcap sweep plan|run|merge`: experiment grids that can be sharded over a
//! cluster, killed, retried and merged in any order.
//!
//! * `plan CONFIG` expands a JSON grid into `tasks.jsonl`, one complete task
//!   per line with its id = hash of the task's canonical JSON
//!   (`memcap_report::sweep`).
//! * `run TASKS -o RESULTS` runs all tasks, or the shard chosen by
//!   `--index I [--stride K]` (or `$SLURM_ARRAY_TASK_ID`,
//!   `$JOB_COMPLETION_INDEX`, `$HQ_TASK_ID`), `--jobs J` at a time. Each
//!   result goes to `RESULTS/<id>.json` by temp file + rename; a task whose
//!   result exists is skipped. A SIGKILL therefore loses at most the tasks in
//!   flight (their temp files are never read as results) and a re-run
//!   completes exactly those.
//! * `merge RESULTS` collects every `<id>.json` into `merged.jsonl` and
//!   `merged.csv`, sorted by id, so merging twice gives identical files.
//!
//! A task is a pure function of its JSON: everything in `result` is
//! reproducible; wall-clock times are kept apart, under `timing`.

use crate::commands::Outcome;
use crate::io::{write_atomic, InputError};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use memcap_core::construct::{construct as build, ConstructConfig};
use memcap_core::gen::{self, GenConfig, GenKind};
use memcap_core::model::lower_bound_params;
use memcap_core::verify::{verify, Arith};
use memcap_core::{MapChoice, Positional, Task as CoreTask};
use memcap_report::sweep::{
    canonical_json, expand, is_task_id, parse_task_line, CapacityTask, ConstructTask, Planned, Task, TaskHead,
    TrainTask,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Version tag of a result file.
const RESULT_FORMAT: u64 = 1;

/// Environment variables that carry a shard index, in priority order.
pub const INDEX_ENV: [&str; 3] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "HQ_TASK_ID"];

#[derive(Args)]
pub struct SweepArgs {
    #[command(subcommand)]
    cmd: SweepCmd,
}

#[derive(Subcommand)]
enum SweepCmd {
    /// Expand a sweep CONFIG (JSON grid) into tasks.jsonl (stdout or -o).
    ///
    /// CONFIG: {"kind":"construct","grid":{"N":[100,1000],"n":[8,64],"seed":[0,1]},"fixed":{"vocab":1000}}
    /// or {"sweeps":[{…},{…}]}. Kinds: construct (N, n, vocab, classes, task, seed, input, dim,
    /// positional, map, code_bits, verify), train (+ model, d_model, heads, d_ff, blocks, width,
    /// depth, pos_encoding, layer_norm, lr, weight_decay, batch_size, steps, eval_every, train_seed)
    /// and capacity (+ model, blocks, widths, heads, ff_mult, lrs, seeds, steps, eval_every,
    /// batch_size, strategy, threads). Every default is written into the task, so each line
    /// is complete; the id is a hash of it. Same CONFIG → byte-identical output.
    #[command(verbatim_doc_comment)]
    Plan(PlanArgs),
    /// Run tasks (all, or one shard); write RESULTS/<id>.json atomically, skip done ones.
    ///
    /// The shard index comes from --index, else from $SLURM_ARRAY_TASK_ID,
    /// $JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or $HQ_TASK_ID (HyperQueue).
    /// With an index I: task I only, or I, I+K, I+2K, … with --stride K (0-based
    /// line numbers of TASKS). Without an index (or with --all): every task.
    /// Safe to kill and re-run, and to run overlapping shards: results are keyed by
    /// task id and written by temp file + rename.
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Collect RESULTS/<id>.json into RESULTS/merged.jsonl and merged.csv (sorted by id).
    Merge(MergeArgs),
}

#[derive(Args)]
struct PlanArgs {
    /// Sweep config (JSON).
    config: PathBuf,
    /// Write tasks here instead of stdout.
    #[arg(short, long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// tasks.jsonl written by `memcap sweep plan`.
    tasks: PathBuf,
    /// Results folder.
    #[arg(short, long, default_value = "results")]
    out: PathBuf,
    /// Shard index (0-based); overrides the environment variables.
    #[arg(long)]
    index: Option<usize>,
    /// Run tasks index, index+K, index+2K, … (one shard of K).
    #[arg(long)]
    stride: Option<usize>,
    /// Run every task even if a shard-index variable is set.
    #[arg(long, conflicts_with_all = ["index", "stride"])]
    all: bool,
    /// Tasks run at the same time in this process.
    #[arg(short, long, default_value_t = 1)]
    jobs: usize,
    /// Print one line per finished task only (no per-task start line).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct MergeArgs {
    /// Results folder of `memcap sweep run`.
    results: PathBuf,
    /// Also report which tasks of this tasks.jsonl have no result yet.
    #[arg(long)]
    tasks: Option<PathBuf>,
}

pub fn sweep(a: SweepArgs) -> Result<Outcome> {
    match a.cmd {
        SweepCmd::Plan(a) => plan(a),
        SweepCmd::Run(a) => run(a),
        SweepCmd::Merge(a) => merge(a),
    }
}

// ------------------------------------------------------------------------
// plan

fn plan(a: PlanArgs) -> Result<Outcome> {
    let p = &a.config;
    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read sweep config {}", p.display()))?;
    let cfg: Value = serde_json::from_str(&text)
        .map_err(|e| InputError(format!("{}: line {}, column {}: {e}", p.display(), e.line(), e.column())))?;
    let tasks = expand(&cfg).map_err(|e| InputError(format!("{}: {e}", p.display())))?;
    let mut out = String::new();
    for t in &tasks {
        out.push_str(&t.to_line());
        out.push('\n');
    }
    match &a.out {
        Some(path) => {
            write_atomic(path, out.as_bytes())?;
            eprintln!("wrote {} tasks to {}", tasks.len(), path.display());
        }
        None => {
            print!("{out}");
            eprintln!("planned {} tasks", tasks.len());
        }
    }
    Ok(Outcome::Ok)
}

/// Reads tasks.jsonl: (1-based line, task); errors name file and line.
pub(crate) fn read_tasks(path: &Path) -> Result<Vec<(usize, Planned)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read tasks {}", path.display()))?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let t = parse_task_line(line).map_err(|e| InputError(format!("{}: line {}: {e}", path.display(), i + 1)))?;
        if !seen.insert(t.id.clone()) {
            return Err(InputError(format!("{}: line {}: task {} appears twice", path.display(), i + 1, t.id)).into());
        }
        out.push((i + 1, t));
    }
    Ok(out)
}

// ------------------------------------------------------------------------
// run

/// The shard index: --index, else the first set scheduler variable.
fn shard_index(a: &RunArgs) -> Result<Option<(usize, &'static str)>> {
    if a.all {
        return Ok(None);
    }
    if let Some(i) = a.index {
        return Ok(Some((i, "--index")));
    }
    for var in INDEX_ENV {
        if let Ok(v) = std::env::var(var) {
            if v.trim().is_empty() {
                continue;
            }
            let i = v
                .trim()
                .parse::<usize>()
                .map_err(|_| InputError(format!("${var} = {v:?} is not a task index (a non-negative integer)")))?;
            return Ok(Some((i, var)));
        }
    }
    Ok(None)
}

/// The result file of a task, if present and valid.
fn existing_result(dir: &Path, id: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(format!("{id}.json"))) else { return false };
    serde_json::from_str::<Value>(&text).is_ok_and(|v| v["id"] == id && v["memcap_sweep_result"] == RESULT_FORMAT)
}

fn run(a: RunArgs) -> Result<Outcome> {
    let tasks = read_tasks(&a.tasks)?;
    if a.jobs == 0 {
        return Err(InputError("--jobs must be at least 1".into()).into());
    }
    let selected: Vec<&(usize, Planned)> = match shard_index(&a)? {
        None if a.stride.is_some() => {
            return Err(InputError("--stride needs a shard index (--index or a scheduler variable)".into()).into())
        }
        None => tasks.iter().collect(),
        Some((i, from)) => {
            let k = a.stride.unwrap_or(usize::MAX);
            if k == 0 {
                return Err(InputError("--stride must be at least 1".into()).into());
            }
            let sel: Vec<_> = tasks.iter().skip(i).step_by(k.min(tasks.len().max(1))).collect();
            let sel = if a.stride.is_none() { sel.into_iter().take(1).collect() } else { sel };
            eprintln!(
                "shard index {i} (from {from}){}: {} of {} tasks",
                a.stride.map_or(String::new(), |k| format!(", stride {k}")),
                sel.len(),
                tasks.len()
            );
            sel
        }
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let todo: Vec<&(usize, Planned)> =
        selected.iter().copied().filter(|(_, t)| !existing_result(&a.out, &t.id)).collect();
    let skipped = selected.len() - todo.len();
    if todo.iter().any(|(_, t)| !matches!(t.task, Task::Construct(_))) {
        // Before any thread starts: candle single-threaded per training.
        memcap_train::ensure_single_threaded_ops();
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let total = todo.len();
    let worker = || loop {
        let k = next.fetch_add(1, Ordering::SeqCst);
        let Some((line, p)) = todo.get(k) else { break };
        if !a.quiet {
            eprintln!("start  {} (line {line}) {}", p.id, describe(&p.task));
        }
        let t0 = Instant::now();
        let outcome = run_task(&p.task).and_then(|(result, timing)| {
            let rec = json!({"memcap_sweep_result": RESULT_FORMAT, "id": p.id, "task": p.task.to_value(), "result": result, "timing": timing});
            let mut text = serde_json::to_string_pretty(&rec)?;
            text.push('\n');
            write_atomic(&a.out.join(format!("{}.json", p.id)), text.as_bytes())
        });
        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
        match outcome {
            Ok(()) => eprintln!("done   {} [{n}/{total}] in {:.2} s", p.id, t0.elapsed().as_secs_f64()),
            Err(e) => {
                eprintln!("failed {} [{n}/{total}]: {e:#}", p.id);
                failures.lock().unwrap().push(format!("{}: line {line} (task {}): {e:#}", a.tasks.display(), p.id));
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..a.jobs.min(total.max(1)) {
            s.spawn(worker);
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "ran {} tasks ({} failed), skipped {skipped} already done; results in {}",
        total - failures.len(),
        failures.len(),
        a.out.display()
    );
    if !failures.is_empty() {
        return Err(InputError(failures.join("\n")).into());
    }
    Ok(Outcome::Ok)
}

fn describe(t: &Task) -> String {
    let d = t.data();
    format!("{} N={} n={} seed={}", t.kind(), d.n_seqs, d.n, d.seed)
}

/// Runs one task: (result, timing). Errors are the task's own (bad values).
fn run_task(t: &Task) -> Result<(Value, Value)> {
    match t {
        Task::Construct(c) => run_construct(c),
        Task::Train(c) => run_train(c),
        Task::Capacity(c) => run_capacity(c),
    }
}

fn core_task(h: TaskHead) -> CoreTask {
    match h {
        TaskHead::NextToken => CoreTask::NextToken,
        TaskHead::Seq2seq => CoreTask::Seq2seq,
    }
}

fn run_construct(c: &ConstructTask) -> Result<(Value, Value)> {
    let d = &c.data;
    let positional = if c.positional == "learned" { Positional::Learned } else { Positional::None };
    let ds = gen::generate(&GenConfig {
        n_seqs: d.n_seqs,
        seq_len: d.n,
        vocab: d.vocab,
        num_classes: d.classes,
        task: core_task(d.task),
        kind: if c.input == "vectors" { GenKind::Vectors { d: c.dim } } else { GenKind::Ids },
        positional,
        seed: d.seed,
    })
    .map_err(|e| InputError(e.to_string()))?;
    let cfg = ConstructConfig {
        seed: d.seed,
        map: match c.map.as_str() {
            "m1" => MapChoice::M1,
            "m2" => MapChoice::M2,
            _ => MapChoice::Auto,
        },
        positional,
        code_bits: c.code_bits,
        ..Default::default()
    };
    let t0 = Instant::now();
    let built = build(&ds, &cfg).map_err(|e| InputError(e.to_string()))?;
    let construct_seconds = t0.elapsed().as_secs_f64();
    let acc = built.model.accounting();
    let ver = if c.verify {
        Some(
            verify(&built.model, &ds, Arith::Exact, &memcap_core::eval::NoProgress)
                .map_err(|e| InputError(e.to_string()))?,
        )
    } else {
        None
    };
    let result = json!({
        "examples": ds.len(), "map": built.info.map, "blocks": acc.blocks, "width": acc.width,
        "ffn_width": acc.ffn_width, "params_dense": acc.params_dense, "params_nonzero": acc.params_nonzero,
        "max_weight_bits": acc.max_weight_bits, "total_bits": acc.total_bits,
        "weights_inexact_f64": acc.weights_inexact_f64, "weights_inexact_f32": acc.weights_inexact_f32,
        "information_limit_bits": ds.label_bits(), "lower_bound": lower_bound_params(ds.len()),
        "memorized": ver.as_ref().map(|v| v.memorized),
    });
    let timing = json!({"construct_seconds": construct_seconds, "verify_seconds": ver.as_ref().map(|v| v.seconds)});
    Ok((result, timing))
}

fn train_data(d: &memcap_report::sweep::DataSpec) -> Result<memcap_train::TrainData> {
    let spec = memcap_train::RandomSpec {
        n_examples: d.n_seqs,
        seq_len: d.n,
        vocab: d.vocab,
        num_classes: d.classes as usize,
        task: match d.task {
            TaskHead::NextToken => memcap_train::Task::NextToken,
            TaskHead::Seq2seq => memcap_train::Task::Seq2Seq,
        },
        seed: d.seed,
    };
    Ok(memcap_train::random_dataset(&spec).map_err(|e| InputError(e.to_string()))?)
}

fn run_train(c: &TrainTask) -> Result<(Value, Value)> {
    use memcap_train::{MlpConfig, ModelConfig, TrainConfig, TransformerConfig};
    let data = train_data(&c.data)?;
    let model = if c.model == "mlp" {
        ModelConfig::Mlp(MlpConfig::for_data(&data, c.width, c.depth))
    } else {
        let head_dim = (c.d_model / c.heads.max(1)).max(1);
        ModelConfig::Transformer(TransformerConfig {
            head_dim,
            pos_encoding: c.pos_encoding,
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
    let r = memcap_train::train(&model, &train, &data, &mut |_| {}).map_err(|e| InputError(e.to_string()))?;
    let s = &r.summary;
    let metrics: Vec<Value> =
        r.metrics.iter().map(|m| json!({"step": m.step, "loss": m.loss, "acc": m.acc, "seq_acc": m.seq_acc})).collect();
    let result = json!({
        "model": r.config.model, "num_params": s.num_params, "memorized": s.memorized, "steps": s.steps,
        "final_loss": s.final_loss, "final_acc": s.final_acc, "final_seq_acc": s.final_seq_acc,
        "first_memorized_step": s.first_memorized_step, "diverged": s.diverged,
        "label_bits": data.label_bits(), "bits_per_param": s.bits_per_param, "metrics": metrics,
    });
    Ok((result, json!({"seconds": s.elapsed_s})))
}

fn run_capacity(c: &CapacityTask) -> Result<(Value, Value)> {
    use memcap_train::capacity::{capacity_search, CapacitySpec, Family, Strategy};
    use memcap_train::TrainConfig;
    let data = train_data(&c.data)?;
    let family = if c.model == "mlp" {
        Family::Mlp
    } else {
        Family::Transformer {
            heads: c.heads,
            ff_mult: c.ff_mult,
            pos_encoding: c.pos_encoding,
            layer_norm: c.layer_norm,
        }
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
    };
    let rep = capacity_search(&spec, &data, &mut |_| {}).map_err(|e| InputError(e.to_string()))?;
    let tested: Vec<Value> = rep
        .tested
        .iter()
        .map(|o| json!({"num_params": o.num_params, "memorized": o.memorized, "best_acc": o.best_acc, "runs": o.runs, "winner": o.winner}))
        .collect();
    let result = json!({
        "min_params": rep.min_params, "bits_per_param": rep.bits_per_param, "label_bits": data.label_bits(),
        "best_model": rep.best.as_ref().map(|b| &b.model), "candidates": rep.candidates, "runs_used": rep.runs_used,
        "tested": tested,
    });
    Ok((result, json!({"seconds": rep.elapsed_s})))
}

// ------------------------------------------------------------------------
// merge

/// Reads every `<id>.json` result of `dir` (ignoring temp files, merged
/// outputs and anything else), checks each against its task's hash, sorted
/// by id. Returns (records, number of leftover temp files).
pub(crate) fn load_results(dir: &Path) -> Result<(Vec<Value>, usize)> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read results folder {}", dir.display()))?;
    let mut names = Vec::new();
    let mut temps = 0;
    for e in entries {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            temps += 1;
        } else if let Some(id) = name.strip_suffix(".json").filter(|s| is_task_id(s)) {
            names.push(id.to_string());
        }
    }
    names.sort();
    let mut out = Vec::new();
    for id in names {
        let path = dir.join(format!("{id}.json"));
        let bad = |reason: String| InputError(format!("{}: {reason}", path.display()));
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("line {}: {e}", e.line())))?;
        if v["memcap_sweep_result"] != RESULT_FORMAT {
            return Err(bad("not a memcap sweep result (no \"memcap_sweep_result\": 1)".into()).into());
        }
        let task = Task::from_value(&v["task"]).map_err(|e| bad(e.to_string()))?;
        if task.id() != id || v["id"] != id.as_str() {
            return Err(bad(format!("file name / id do not match the task's hash {}", task.id())).into());
        }
        out.push(v);
    }
    Ok((out, temps))
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
pub(crate) fn to_csv(records: &[Value]) -> String {
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

fn merge(a: MergeArgs) -> Result<Outcome> {
    let (records, temps) = load_results(&a.results)?;
    let mut jsonl = String::new();
    for r in &records {
        jsonl.push_str(&canonical_json(r));
        jsonl.push('\n');
    }
    write_atomic(&a.results.join("merged.jsonl"), jsonl.as_bytes())?;
    write_atomic(&a.results.join("merged.csv"), to_csv(&records).as_bytes())?;
    eprintln!(
        "merged {} results into {} and merged.csv{}",
        records.len(),
        a.results.join("merged.jsonl").display(),
        if temps > 0 { format!(" (ignored {temps} temp files left by killed runs)") } else { String::new() }
    );
    if let Some(tp) = &a.tasks {
        let tasks = read_tasks(tp)?;
        let have: BTreeSet<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
        let missing: Vec<usize> =
            tasks.iter().enumerate().filter(|(_, (_, t))| !have.contains(t.id.as_str())).map(|(i, _)| i).collect();
        eprintln!("{} of {} tasks of {} done", tasks.len() - missing.len(), tasks.len(), tp.display());
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(20).map(|i| i.to_string()).collect();
            eprintln!(
                "missing task indices (0-based): {}{}",
                shown.join(","),
                if missing.len() > 20 { format!(",… ({} in all)", missing.len()) } else { String::new() }
            );
        }
    }
    Ok(Outcome::Ok)
}
