//! Helpers shared by the CLI integration tests: run the real `memcap` binary
//! (with the scheduler index variables cleared, so a test behaves the same
//! inside a Slurm or Kubernetes job), fresh temp folders, output as text.
#![allow(dead_code)] // each test file uses a subset

use std::path::Path;
use std::process::{Command, Output};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_memcap");

/// Runs `memcap ARGS`.
pub fn memcap(args: &[&str]) -> Output {
    memcap_env(args, &[])
}

/// Runs `memcap ARGS` with the scheduler variables cleared, then `env` set.
pub fn memcap_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args);
    for v in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "HQ_TASK_ID"] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("runs")
}

/// A fresh, empty folder for one test, removed when dropped (tests leave
/// nothing behind). Derefs to its path.
pub struct Tmp(tempfile::TempDir);

impl std::ops::Deref for Tmp {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Tmp {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A fresh temp folder named `memcap-test-NAME-…`.
pub fn tmpdir(name: &str) -> Tmp {
    Tmp(tempfile::Builder::new().prefix(&format!("memcap-test-{name}-")).tempdir().expect("temp dir"))
}

/// A path as &str for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that the command succeeded (printing its output if not).
pub fn ok(o: Output) -> Output {
    assert!(o.status.success(), "exit {:?}\n{}\n{}", o.status.code(), stdout(&o), stderr(&o));
    o
}
