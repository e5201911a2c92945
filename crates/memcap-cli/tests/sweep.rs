//! `memcap sweep plan|run|merge` as a cluster would use it: deterministic
//! plans with content-hash ids, shards chosen by --index/--stride or by the
//! scheduler's environment variable, idempotent order-independent merges,
//! and a run killed with SIGKILL that a re-run completes without losing or
//! duplicating anything.

mod common;
use common::*;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A small mixed sweep: 6 construct tasks (one verified) and 2 train tasks.
const MIXED: &str = r#"{"sweeps":[
  {"kind":"construct","grid":{"N":[40,80,160],"seed":[0,1]},"fixed":{"n":6,"vocab":60,"classes":4}},
  {"kind":"construct","fixed":{"N":50,"n":5,"vocab":40,"classes":4,"verify":true}},
  {"kind":"train","grid":{"train_seed":[0,1]},"fixed":{"N":16,"n":4,"vocab":12,"classes":4,"d_model":8,"steps":40,"eval_every":10}}
]}"#;

fn plan(dir: &Path, config: &str) -> PathBuf {
    let cfg = dir.join("sweep.json");
    std::fs::write(&cfg, config).unwrap();
    let tasks = dir.join("tasks.jsonl");
    ok(memcap(&["sweep", "plan", s(&cfg), "-o", s(&tasks)]));
    tasks
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Merged records by id, without the wall-clock `timing` part.
fn merged_without_timing(results: &Path) -> BTreeMap<String, Value> {
    lines(&results.join("merged.jsonl"))
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("timing");
            (r["id"].as_str().unwrap().to_string(), r)
        })
        .collect()
}

#[test]
fn plan_is_deterministic_complete_and_keyed_by_content_hash() {
    let d = tmpdir("plan");
    let tasks = plan(&d, MIXED);
    let first = std::fs::read(&tasks).unwrap();
    // Same config with other key order and whitespace: byte-identical plan.
    let reordered = r#"{"sweeps":[{"fixed":{"classes":4,"vocab":60,"n":6},"grid":{"seed":[0,1],"N":[40,80,160]},"kind":"construct"},
      {"fixed":{"verify":true,"classes":4,"vocab":40,"n":5,"N":50},"kind":"construct"},
      {"kind":"train","fixed":{"eval_every":10,"steps":40,"d_model":8,"classes":4,"vocab":12,"n":4,"N":16},"grid":{"train_seed":[0,1]}}]}"#;
    let d2 = tmpdir("plan2");
    let tasks2 = plan(&d2, reordered);
    assert_eq!(first, std::fs::read(&tasks2).unwrap(), "plan depends on key order");
    // Stdout form equals the file.
    let o = ok(memcap(&["sweep", "plan", s(&d.join("sweep.json"))]));
    assert_eq!(o.stdout, first);

    let recs = lines(&tasks);
    assert_eq!(recs.len(), 9);
    let ids: std::collections::BTreeSet<&str> = recs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 9, "ids are unique");
    // Grid order: sorted keys, last fastest (N outer, seed inner).
    let ns: Vec<(u64, u64)> =
        recs[..6].iter().map(|r| (r["task"]["N"].as_u64().unwrap(), r["task"]["seed"].as_u64().unwrap())).collect();
    assert_eq!(ns, [(40, 0), (40, 1), (80, 0), (80, 1), (160, 0), (160, 1)]);
    // Every default is written into the task, so the line alone determines the work.
    let c = &recs[0]["task"];
    for key in
        ["kind", "N", "n", "vocab", "num_classes", "task", "seed", "input", "positional", "map", "code_bits", "verify"]
    {
        assert!(c.get(key).is_some(), "construct task lacks {key}: {c}");
    }
    let t = &recs[7]["task"];
    for key in ["model", "d_model", "heads", "blocks", "lr", "steps", "eval_every", "train_seed", "seed"] {
        assert!(t.get(key).is_some(), "train task lacks {key}: {t}");
    }
    // Id = hash of the canonical task JSON: changing any value changes it.
    assert_ne!(recs[0]["id"], recs[1]["id"]);
}

#[test]
fn bad_configs_and_tampered_tasks_exit_2_naming_file_and_place() {
    let d = tmpdir("bad");
    let cfg = d.join("bad.json");
    std::fs::write(&cfg, r#"{"kind":"construct","grid":{"N":[10,20]},"fixed":{"n":4,"colour":"red"}}"#).unwrap();
    let o = memcap(&["sweep", "plan", s(&cfg)]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("bad.json") && e.contains("colour") && e.contains("unknown key"), "{e}");

    std::fs::write(&cfg, "{\"kind\":\"construct\",\n \"grid\":{\"N\":[10,}}").unwrap();
    let o = memcap(&["sweep", "plan", s(&cfg)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.json: line 2"), "{}", stderr(&o));

    std::fs::write(&cfg, r#"{"kind":"construct","grid":{"N":[]},"fixed":{"n":4}}"#).unwrap();
    let o = memcap(&["sweep", "plan", s(&cfg)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("grid.N: must be a non-empty list"), "{}", stderr(&o));

    // A task edited after planning no longer matches its id.
    let tasks = plan(&d, MIXED);
    let text = std::fs::read_to_string(&tasks).unwrap().replacen("\"N\":40", "\"N\":41", 1);
    std::fs::write(&tasks, text).unwrap();
    let o = memcap(&["sweep", "run", s(&tasks), "-o", s(&d.join("res"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tasks.jsonl: line 1") && stderr(&o).contains("does not match"), "{}", stderr(&o));

    // A scheduler variable that is not an index.
    let tasks = plan(&d, MIXED);
    let o = memcap_env(&["sweep", "run", s(&tasks), "-o", s(&d.join("res"))], &[("SLURM_ARRAY_TASK_ID", "x1")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("SLURM_ARRAY_TASK_ID"), "{}", stderr(&o));
}

#[test]
fn shards_from_index_stride_and_scheduler_variables_cover_every_task_once() {
    let d = tmpdir("shards");
    let tasks = plan(&d, MIXED);
    let res = d.join("res");
    // Three shards of stride 3, the index from three different sources.
    ok(memcap(&["sweep", "run", s(&tasks), "-o", s(&res), "--index", "0", "--stride", "3"]));
    ok(memcap_env(&["sweep", "run", s(&tasks), "-o", s(&res), "--stride", "3"], &[("SLURM_ARRAY_TASK_ID", "1")]));
    ok(memcap_env(&["sweep", "run", s(&tasks), "-o", s(&res), "--stride", "3"], &[("JOB_COMPLETION_INDEX", "2")]));
    ok(memcap(&["sweep", "merge", s(&res)]));
    assert_eq!(lines(&res.join("merged.jsonl")).len(), 9);
    // One-task-per-index (no stride, HyperQueue variable): the result exists, so it is skipped.
    let o = ok(memcap_env(&["sweep", "run", s(&tasks), "-o", s(&res)], &[("HQ_TASK_ID", "4")]));
    assert!(stderr(&o).contains("1 of 9 tasks") && stderr(&o).contains("skipped 1 already done"), "{}", stderr(&o));
    // An index past the end (a larger array than tasks) does nothing, successfully.
    let o = ok(memcap(&["sweep", "run", s(&tasks), "-o", s(&res), "--index", "50"]));
    assert!(stderr(&o).contains("0 of 9 tasks"), "{}", stderr(&o));
}

#[test]
fn merge_is_idempotent_and_independent_of_shard_order_and_jobs() {
    let d = tmpdir("merge");
    let tasks = plan(&d, MIXED);
    // A: shards in reverse order, one at a time.
    let a = d.join("a");
    for i in (0..9).rev() {
        ok(memcap(&["sweep", "run", s(&tasks), "-o", s(&a), "--index", &i.to_string()]));
    }
    // B: everything at once, two parallel jobs.
    let b = d.join("b");
    ok(memcap(&["sweep", "run", s(&tasks), "-o", s(&b), "--jobs", "2"]));
    ok(memcap(&["sweep", "merge", s(&a)]));
    let m1 = std::fs::read(a.join("merged.jsonl")).unwrap();
    let c1 = std::fs::read(a.join("merged.csv")).unwrap();
    // Merging again (merged files present in the folder) changes nothing.
    ok(memcap(&["sweep", "merge", s(&a), "--tasks", s(&tasks)]));
    assert_eq!(m1, std::fs::read(a.join("merged.jsonl")).unwrap());
    assert_eq!(c1, std::fs::read(a.join("merged.csv")).unwrap());
    // Results are pure functions of the task (training included).
    ok(memcap(&["sweep", "merge", s(&b)]));
    assert_eq!(merged_without_timing(&a), merged_without_timing(&b));
    // Sorted by id; the CSV has a header and one row per result.
    let ids: Vec<String> = merged_without_timing(&a).into_keys().collect();
    let in_file: Vec<String> =
        lines(&a.join("merged.jsonl")).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, in_file);
    let csv = String::from_utf8(c1).unwrap();
    assert_eq!(csv.lines().count(), 10);
    assert!(csv.starts_with("id,kind,"));
    assert!(csv.lines().next().unwrap().contains("result.params_nonzero"));
}

#[test]
fn sigkill_mid_run_then_rerun_loses_nothing_and_duplicates_nothing() {
    let d = tmpdir("kill");
    // 10 tasks of ~0.2 s each (construct + exact verify).
    let tasks = plan(
        &d,
        r#"{"kind":"construct","grid":{"seed":[0,1,2,3,4,5,6,7,8,9]},"fixed":{"N":2000,"n":16,"vocab":500,"classes":8,"verify":true}}"#,
    );
    let res = d.join("res");
    let count = |dir: &Path| -> usize {
        std::fs::read_dir(dir)
            .map_or(0, |es| es.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".json")).count())
    };
    let mut child = Command::new(BIN)
        .args(["sweep", "run", s(&tasks), "-o", s(&res)])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("HQ_TASK_ID")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while count(&res) < 3 {
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be killed");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = count(&res);
    assert!((3..10).contains(&before), "{before} results at kill time");
    // A temp file as a killed write leaves it: never counted as a result.
    std::fs::write(res.join(".0123456789abcdef.json.99999.tmp"), "{\"partial\":").unwrap();

    let o = ok(memcap(&["sweep", "run", s(&tasks), "-o", s(&res)]));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("ran {} tasks", 10 - before)) && e.contains(&format!("skipped {before} already done")),
        "{e}"
    );
    let o = ok(memcap(&["sweep", "merge", s(&res), "--tasks", s(&tasks)]));
    assert!(stderr(&o).contains("10 of 10 tasks") && stderr(&o).contains("ignored 1 temp files"), "{}", stderr(&o));
    let merged = lines(&res.join("merged.jsonl"));
    assert_eq!(merged.len(), 10);
    let planned: Vec<String> = lines(&tasks).iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    let mut got: Vec<String> = merged.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    got.dedup();
    assert_eq!(got.len(), 10, "duplicates in merge");
    let mut want = planned.clone();
    want.sort();
    assert_eq!(got, want);
    for r in &merged {
        assert_eq!(r["result"]["memorized"], 2000, "{r}");
    }
    // Same results as a clean, uninterrupted run.
    let clean = d.join("clean");
    ok(memcap(&["sweep", "run", s(&tasks), "-o", s(&clean), "--jobs", "2"]));
    ok(memcap(&["sweep", "merge", s(&clean)]));
    assert_eq!(merged_without_timing(&res), merged_without_timing(&clean));
}

#[test]
fn shipped_example_configs_plan_without_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sweep");
    for (name, tasks) in [("tiny.json", 15), ("sweep.json", 18)] {
        let o = ok(memcap(&["sweep", "plan", s(&dir.join(name))]));
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), tasks, "{name}");
    }
}

/// `kind: verify` tasks are the shards of one exact verification: run as a
/// sweep (here 3 shards on 2 jobs, as a Slurm array would), their records
/// merge with `memcap verify merge` into one run's counts; a shard left out is
/// refused; a `shard >= shards` task is refused at plan time.
#[test]
fn verify_tasks_shard_one_exact_verification_and_merge() {
    let d = tmpdir("sweep-verify");
    let tasks = plan(
        &d,
        r#"{"kind":"verify","grid":{"shard":[0,1,2]},"fixed":{"N":60,"n":5,"vocab":30,"classes":4,"seed":3,"shards":3}}"#,
    );
    let results = d.join("results");
    ok(memcap(&["sweep", "run", s(&tasks), "-o", s(&results), "--jobs", "2"]));
    let files: Vec<PathBuf> =
        lines(&tasks).iter().map(|t| results.join(format!("{}.json", t["id"].as_str().unwrap()))).collect();
    let args: Vec<&str> = ["verify", "merge"].into_iter().chain(files.iter().map(|f| s(f))).collect();
    let o = ok(memcap(&args));
    assert!(stdout(&o).contains("merged 3 shards") && stdout(&o).contains("memorized 60/60"), "{}", stdout(&o));
    let o = memcap(&["verify", "merge", s(&files[0]), s(&files[1])]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("1 of 3 shards are missing: 2"), "{}", stderr(&o));
    let cfg = d.join("bad.json");
    std::fs::write(&cfg, r#"{"kind":"verify","fixed":{"N":60,"n":5,"shard":3,"shards":3}}"#).unwrap();
    let o = memcap(&["sweep", "plan", s(&cfg)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("need 0 <= shard < shards"), "{}", stderr(&o));
}
