//! File IO for the CLI: reading datasets and models with the file name in
//! every error, and atomic writes (temp file + rename, so a failed or killed
//! command never leaves a partial output).

use anyhow::{Context, Result};
use memcap_core::parse::{self, ParseOptions};
use memcap_core::{Dataset, Model};
use std::path::Path;

/// A user-input error: printed as `error: …` with exit code 2.
#[derive(Debug)]
pub struct InputError(pub String);
impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for InputError {}

/// Reads a dataset; `.csv` files are CSV, everything else JSONL.
pub fn read_dataset(path: &Path, opts: ParseOptions) -> Result<Dataset> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read dataset {}", path.display()))?;
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let parsed = if is_csv { parse::parse_csv(&text, opts) } else { parse::parse_jsonl(&text, opts) };
    parsed.map_err(|e| InputError(format!("{}: {e}", path.display())).into())
}

/// Reads a model JSON file.
pub fn read_model(path: &Path) -> Result<Model> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read model {}", path.display()))?;
    Model::from_json(&text).map_err(|e| InputError(format!("{}: {e}", path.display())).into())
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().map(|s| s.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Writes a training run folder: `config.json` (resolved), `metrics.jsonl`,
/// `model.safetensors` (PyTorch names and layout), and `summary.json` last,
/// so its presence marks a complete run.
pub fn write_run(dir: &Path, run: &memcap_train::RunResult) -> Result<()> {
    write_atomic(&dir.join("config.json"), serde_json::to_string_pretty(&run.config)?.as_bytes())?;
    write_atomic(&dir.join("metrics.jsonl"), run.metrics_jsonl()?.as_bytes())?;
    write_atomic(&dir.join("model.safetensors"), &run.safetensors_bytes()?)?;
    write_atomic(&dir.join("summary.json"), serde_json::to_string_pretty(&run.summary)?.as_bytes())?;
    Ok(())
}
