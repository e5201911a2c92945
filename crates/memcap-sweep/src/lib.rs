//! # memcap-sweep: experiment grids that shard over a cluster
//!
//! * [`plan`]: a JSON grid expanded into a deterministic list of complete
//!   tasks, each identified by the hash of its canonical JSON.
//! * [`exec`]: running one task (construct + exact verify, train, capacity
//!   search) to a result record, a pool that runs many on `jobs` threads,
//!   shard selection, and the merged CSV.
//!
//! A task is a pure function of its JSON: its `result` is reproducible and
//! wall-clock times are kept apart under `timing`. Construct, train and
//! capacity tasks draw their data through one generator
//! ([`plan::DataSpec::dataset`]), so a construction and a trained minimum
//! with the same data fields are measured on the same dataset.
//!
//! The crate does no file IO: the `memcap` CLI reads `tasks.jsonl`, writes
//! each result atomically to `RESULTS/<id>.json`, and merges.
//!
//! ```
//! use memcap_sweep::{exec, plan};
//! let config = serde_json::json!({
//!     "kind": "construct", "grid": {"N": [20, 40]},
//!     "fixed": {"n": 4, "vocab": 10, "num_classes": 3, "verify": true}});
//! let tasks = plan::expand(&config).unwrap();
//! assert_eq!(tasks.len(), 2);
//! let out = exec::run_task(&tasks[0].task).unwrap();
//! assert_eq!(out.result["memorized"], 20);
//! ```
#![warn(missing_docs)]

pub mod exec;
pub mod plan;

pub use exec::{run_task, SweepError, TaskOutput};
pub use plan::{expand, parse_task_line, task_id, PlanError, Planned, Task};
