//! memcap-sweep as a library: plans are deterministic and content-addressed,
//! shards cover every task once, and construct / capacity tasks with the same
//! data fields measure the same dataset.

use memcap_core::gen::GenKind;
use memcap_core::Positional;
use memcap_sweep::exec::{check_record, result_record, run_task, select_shard, to_csv};
use memcap_sweep::plan::{expand, parse_task_line, Task};
use serde_json::json;

#[test]
fn the_same_config_plans_the_same_tasks_and_ids() {
    let cfg = json!({"kind": "construct", "grid": {"N": [10, 20], "seed": [0, 1]}, "fixed": {"n": 3, "vocab": 9}});
    let a = expand(&cfg).unwrap();
    let b = expand(&cfg).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 4);
    // A line round-trips, and an edited task no longer matches its id.
    let line = a[0].to_line();
    assert_eq!(parse_task_line(&line).unwrap(), a[0]);
    let edited = line.replace("\"n\":3", "\"n\":4");
    assert!(parse_task_line(&edited).is_err());
}

#[test]
fn shards_with_a_stride_cover_every_task_exactly_once() {
    let mut seen = Vec::new();
    for i in 0..3 {
        seen.extend(select_shard(10, i, Some(3)).unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(select_shard(10, 4, None).unwrap(), vec![4]);
    assert!(select_shard(10, 0, Some(0)).is_err());
}

#[test]
fn construct_and_capacity_tasks_with_equal_data_fields_draw_the_same_dataset() {
    let data = json!({"N": 30, "n": 4, "vocab": 12, "num_classes": 3, "seed": 5});
    let mut c = data.clone();
    c["kind"] = json!("construct");
    let mut k = data.clone();
    k["kind"] = json!("capacity");
    let (Task::Construct(c), Task::Capacity(k)) = (Task::from_value(&c).unwrap(), Task::from_value(&k).unwrap()) else {
        panic!("kinds")
    };
    let a = c.build.data.dataset(GenKind::Ids, c.build.positional).unwrap();
    let b = k.data.dataset(GenKind::Ids, k.positional).unwrap();
    assert_eq!(a, b);
    assert_eq!(c.build.positional, Positional::None);
}

#[test]
fn a_construct_task_verifies_exactly_and_its_record_checks() {
    let cfg = json!({"kind": "construct", "fixed": {"N": 25, "n": 4, "vocab": 10, "num_classes": 3, "verify": true}});
    let p = &expand(&cfg).unwrap()[0];
    let out = run_task(&p.task).unwrap();
    assert_eq!(out.result["memorized"], 25);
    let rec = result_record(p, &out);
    assert!(check_record(&p.id, &rec).is_ok());
    assert!(check_record("0000000000000000", &rec).is_err());
    let csv = to_csv(&[rec]);
    assert!(csv.starts_with("id,kind,") && csv.contains("result.memorized"));
}

/// Verify tasks: each shard covers its residue class, the shards carry the
/// same model and data hashes, their counts add up to N, and the result is a
/// pure function of the task (wall time only under `timing`).
#[test]
fn verify_task_shards_cover_the_dataset_with_one_model_hash() {
    let cfg = json!({"kind": "verify", "grid": {"shard": [0, 1]}, "fixed": {"N": 31, "n": 4, "vocab": 10, "num_classes": 3, "shards": 2}});
    let planned = expand(&cfg).unwrap();
    let outs: Vec<_> = planned.iter().map(|p| run_task(&p.task).unwrap()).collect();
    let examples: Vec<u64> = outs.iter().map(|o| o.result["report"]["examples"].as_u64().unwrap()).collect();
    assert_eq!(examples, vec![16, 15]);
    assert_eq!(outs.iter().map(|o| o.result["report"]["memorized"].as_u64().unwrap()).sum::<u64>(), 31);
    assert_eq!(outs[0].result["model_hash"], outs[1].result["model_hash"]);
    assert_eq!(outs[0].result["data_hash"], outs[1].result["data_hash"]);
    assert_eq!(outs[0].result["report"]["seconds"], 0.0);
    assert_eq!(run_task(&planned[0].task).unwrap().result, outs[0].result);
}

/// The streamed digests are the digests of the whole texts, so shard files
/// written before and after streaming (and by the CLI and sweeps) agree.
#[test]
fn streamed_digests_equal_the_digests_of_the_whole_texts() {
    use memcap_sweep::exec::{data_digest, model_digest, sha256_hex};
    let ds = memcap_core::gen::generate(&memcap_core::gen::GenConfig::random_ids(30, 4, 10, 4, 1)).unwrap();
    let model = memcap_core::construct::construct(&ds, &Default::default()).unwrap().model;
    assert_eq!(model_digest(&model), sha256_hex(model.to_json().as_bytes()));
    assert_eq!(data_digest(&ds), sha256_hex(memcap_core::parse::to_jsonl(&ds).as_bytes()));
}

/// `precision` is a construct key: float tasks build float-exact models and
/// certify them; an exact task's JSON (hence its id) does not mention it, so
/// ids planned before the key existed still hold.
#[test]
fn construct_tasks_take_a_precision_and_certify_float_models() {
    let cfg = json!({"kind": "construct", "grid": {"precision": ["exact", "f32"]},
                     "fixed": {"N": 40, "n": 3, "vocab": 12, "num_classes": 4, "verify": true}});
    let tasks = expand(&cfg).unwrap();
    assert_eq!(tasks.len(), 2);
    let exact = tasks.iter().find(|p| !p.to_line().contains("precision")).expect("exact task without the key");
    let float = tasks.iter().find(|p| p.to_line().contains("\"precision\":\"f32\"")).expect("f32 task");
    let plain = json!({"kind": "construct", "fixed": {"N": 40, "n": 3, "vocab": 12, "num_classes": 4, "verify": true}});
    assert_eq!(expand(&plain).unwrap()[0].id, exact.id);
    let out = run_task(&float.task).unwrap();
    assert_eq!((out.result["memorized"].as_u64(), out.result["certified"].as_bool()), (Some(40), Some(true)));
    assert!(out.result["max_weight_bits"].as_u64().unwrap() <= 24);
    let out = run_task(&exact.task).unwrap();
    assert!(out.result["certified"].is_null());
    let bad = json!({"kind": "construct", "fixed": {"N": 40, "n": 3, "precision": "f16"}});
    assert!(expand(&bad).is_err());
}
