//! `memcap sweep plan|run|merge`: experiment grids that can be sharded over a
//! cluster, killed, retried and merged in any order.
//!
//! * `plan CONFIG` expands a JSON grid into `tasks.jsonl`, one complete task
//!   per line with its id = hash of the task's canonical JSON
//!   (`memcap_sweep::plan`).
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

use crate::args::Outcome;
use crate::io::{write_atomic, InputError};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use memcap_sweep::exec::{check_record, result_record, run_pool, select_shard, INDEX_ENV};
use memcap_sweep::plan::{canonical_json, expand, is_task_id, parse_task_line, Planned, Task};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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
    /// positional, map, code_bits, precision, verify), train (+ model, d_model, heads, d_ff, blocks, width,
    /// depth, pos_encoding, layer_norm, lr, weight_decay, batch_size, steps, eval_every, train_seed)
    /// capacity (+ model, blocks, widths, heads, ff_mult, lrs, seeds, steps, eval_every,
    /// batch_size, strategy, threads) and verify (the construct keys + shard, shards: one shard
    /// of an exact verification; `memcap verify merge RESULTS/<id>.json…` combines them).
    /// Every default is written into the task, so each line
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
    if let Some(out) = &a.out {
        crate::io::check_output_file(out, "-o")?;
    }
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
    serde_json::from_str::<Value>(&text).is_ok_and(|v| check_record(id, &v).is_ok())
}

fn run(a: RunArgs) -> Result<Outcome> {
    crate::io::check_output_dir(&a.out, "-o")?;
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
            let lines = select_shard(tasks.len(), i, a.stride).map_err(|e| InputError(e.to_string()))?;
            eprintln!(
                "shard index {i} (from {from}){}: {} of {} tasks",
                a.stride.map_or(String::new(), |k| format!(", stride {k}")),
                lines.len(),
                tasks.len()
            );
            lines.into_iter().map(|l| &tasks[l]).collect()
        }
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let todo: Vec<&(usize, Planned)> =
        selected.iter().copied().filter(|(_, t)| !existing_result(&a.out, &t.id)).collect();
    let skipped = selected.len() - todo.len();
    let line_of: std::collections::HashMap<&str, usize> = todo.iter().map(|(l, p)| (p.id.as_str(), *l)).collect();
    let planned: Vec<&Planned> = todo.iter().map(|(_, p)| p).collect();
    let done = AtomicUsize::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let total = todo.len();
    let on_start = |p: &Planned| {
        if !a.quiet {
            eprintln!("start  {} (line {}) {}", p.id, line_of[p.id.as_str()], describe(&p.task));
        }
    };
    run_pool(&planned, a.jobs, &on_start, |p, out, secs| {
        let written = out.map_err(anyhow::Error::from).and_then(|out| {
            let mut text = serde_json::to_string_pretty(&result_record(p, &out))?;
            text.push('\n');
            write_atomic(&a.out.join(format!("{}.json", p.id)), text.as_bytes())
        });
        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
        match written {
            Ok(()) => eprintln!("done   {} [{n}/{total}] in {secs:.2} s", p.id),
            Err(e) => {
                eprintln!("failed {} [{n}/{total}]: {}", p.id, crate::io::error_chain(&e));
                let line = line_of[p.id.as_str()];
                let msg = format!("{}: line {line} (task {}): {}", a.tasks.display(), p.id, crate::io::error_chain(&e));
                failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(msg);
            }
        }
    });
    let failures = failures.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
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
    let shard = match t {
        Task::Verify(v) => format!(" shard {}/{}", v.shard, v.shards),
        _ => String::new(),
    };
    format!("{} N={} n={} seed={}{shard}", t.kind(), d.n_seqs, d.seq_len, d.seed)
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
        check_record(&id, &v).map_err(|e| bad(e.to_string()))?;
        out.push(v);
    }
    Ok((out, temps))
}

fn merge(a: MergeArgs) -> Result<Outcome> {
    let (records, temps) = load_results(&a.results)?;
    let mut jsonl = String::new();
    for r in &records {
        jsonl.push_str(&canonical_json(r));
        jsonl.push('\n');
    }
    write_atomic(&a.results.join("merged.jsonl"), jsonl.as_bytes())?;
    write_atomic(&a.results.join("merged.csv"), memcap_sweep::exec::to_csv(&records).as_bytes())?;
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
