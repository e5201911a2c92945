//! The only filesystem code of the crate: writing run folders and reports.
//!
//! Every file is written atomically (write `NAME.tmp`, then rename), so an
//! interrupted run never leaves a half-written `summary.json` that a later
//! script would trust.

use std::fs;
use std::path::Path;

use crate::error::Result;
use crate::train::RunResult;

/// Write `bytes` to `path` via a temporary file in the same folder + rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Write a run folder: `config.json` (resolved), `metrics.jsonl`,
/// `model.safetensors` (PyTorch names/layout), `summary.json`.
/// `summary.json` is written last, so its presence marks a complete run.
pub fn write_run(dir: &Path, run: &RunResult) -> Result<()> {
    fs::create_dir_all(dir)?;
    write_atomic(&dir.join("config.json"), serde_json::to_string_pretty(&run.config)?.as_bytes())?;
    write_atomic(&dir.join("metrics.jsonl"), run.metrics_jsonl()?.as_bytes())?;
    write_atomic(&dir.join("model.safetensors"), &run.safetensors_bytes()?)?;
    write_atomic(&dir.join("summary.json"), serde_json::to_string_pretty(&run.summary)?.as_bytes())?;
    Ok(())
}

/// Write a report as `NAME.json`, `NAME.csv` and `NAME.svg` in `dir`.
pub fn write_report(dir: &Path, name: &str, json: &str, csv: &str, svg: &str) -> Result<()> {
    fs::create_dir_all(dir)?;
    write_atomic(&dir.join(format!("{name}.csv")), csv.as_bytes())?;
    write_atomic(&dir.join(format!("{name}.svg")), svg.as_bytes())?;
    write_atomic(&dir.join(format!("{name}.json")), json.as_bytes())?;
    Ok(())
}
