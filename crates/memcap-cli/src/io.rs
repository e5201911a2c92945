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

/// An error and its causes on one line, `outer: cause: …`, leaving out a
/// cause whose text the line already holds (typed errors that wrap their
/// source print it themselves, and `{:#}` would print it twice).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// A dataset path in memcap's CSV format: its extension is `.csv` (any case).
pub fn is_csv_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Reads a dataset; `.csv` files are CSV, everything else JSONL.
pub fn read_dataset(path: &Path, opts: ParseOptions) -> Result<Dataset> {
    let is_csv = is_csv_path(path);
    let bad = |e: memcap_core::DataError| -> anyhow::Error { InputError(format!("{}: {e}", path.display())).into() };
    if is_csv {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read dataset {}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
            InputError(format!("{}: line {line}: not valid UTF-8 text", path.display()))
        })?;
        return parse::parse_csv(&text, opts).map_err(bad);
    }
    // JSONL streams line by line: the file's text is never held whole.
    use std::io::BufRead;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read dataset {}", path.display()))?;
    let mut reader = parse::JsonlReader::new(opts);
    let mut buf = Vec::new();
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    for line in 1.. {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf).with_context(|| format!("cannot read dataset {}", path.display()))?;
        if n == 0 {
            break;
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| InputError(format!("{}: line {line}: not valid UTF-8 text", path.display())))?;
        reader.push_line(text.trim_end_matches(['\n', '\r'])).map_err(bad)?;
    }
    reader.finish().map_err(bad)
}

/// Reads a model JSON file under `limits`.
pub fn read_model(path: &Path, limits: &memcap_core::Limits) -> Result<Model> {
    if path.is_dir() {
        return Err(InputError(format!(
            "{}: is a directory, not a model JSON (`memcap construct DATA -o FILE` writes one; a `memcap train` run \
             folder is checked with `memcap export RUN --data DATA`)",
            path.display()
        ))
        .into());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read model {}", path.display()))?;
    Model::from_json_with(&text, limits).map_err(|e| InputError(format!("{}: {e}", path.display())).into())
}

/// Refuses an output file path that cannot be written as a file (an
/// existing directory), before any work starts.
pub fn check_output_file(path: &Path, flag: &str) -> Result<()> {
    if path.is_dir() {
        return Err(InputError(format!("{flag} {}: is an existing directory; give a file path", path.display())).into());
    }
    if path.as_os_str().to_string_lossy().ends_with(std::path::MAIN_SEPARATOR) {
        return Err(InputError(format!("{flag} {}: is a directory path; give a file path", path.display())).into());
    }
    Ok(())
}

/// Refuses an output file that is one of the command's inputs (it would be
/// replaced by the output), before any work starts.
pub fn check_not_input(out: &Path, inputs: &[&Path], flag: &str) -> Result<()> {
    let Ok(o) = out.canonicalize() else { return Ok(()) }; // does not exist yet
    for i in inputs {
        if i.canonicalize().is_ok_and(|i| i == o) {
            return Err(InputError(format!(
                "{flag} {}: is an input of this command; give another path",
                out.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Refuses an output folder path that is an existing file, before any work
/// starts.
pub fn check_output_dir(path: &Path, flag: &str) -> Result<()> {
    if path.exists() && !path.is_dir() {
        return Err(InputError(format!("{flag} {}: is an existing file; give a folder path", path.display())).into());
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temp file in the same folder
/// (deleted on any error) renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Like [`write_atomic`], with the content streamed by `write` into a
/// buffered writer (for outputs too large to build in memory first).
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn std::io::Write) -> Result<()>) -> Result<()> {
    use std::io::Write;
    check_output_file(path, "output")?;
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            dir
        }
        None => Path::new("."),
    };
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        // Mode 0666 before the umask, as a plain file create: results are
        // readable by the group/web server the user's umask allows (tempfile's
        // default 0600 would survive the rename).
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        write(&mut w).and_then(|()| Ok(w.flush()?)).with_context(|| format!("cannot write {}", path.display()))?;
    }
    tmp.persist(path)
        .map_err(|e| anyhow::anyhow!("cannot move {} to {}: {}", e.file.path().display(), path.display(), e.error))?;
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
