//! `memcap export` (a model as safetensors + HF-style config.json, or as
//! ONNX, for PyTorch/onnxruntime) and `memcap baselines` (the paper's
//! comparison: lookup and flattened-input FFN memorizers, published bound
//! formulas, memcap's construction and the trained minimum in one table).
//!
//! Glue only: the float-exactness verdict is memcap-core's certificate; the baselines are built and checked by
//! `memcap_core::baselines`.

use crate::args::Outcome;
use crate::io::{read_dataset, read_model, write_atomic, InputError};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use memcap_core::certificate::FloatType;
use memcap_core::model::{InputSpec, Model};
use memcap_core::parse::ParseOptions;
use memcap_core::{Dataset, Dedupe};
use memcap_export::{float_exactness, hf_config};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
pub enum ExportFormat {
    /// DIR/model.safetensors (f64 or --dtype, PyTorch layout) + DIR/config.json.
    Safetensors,
    /// DIR/model.onnx (opset 13, f64 or --dtype) + DIR/config.json.
    Onnx,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Model JSON written by `memcap construct`, or a `memcap train` run folder
    /// (safetensors only: copies its weights and config; with --data also writes
    /// logits.json, memcap's own logits, for the PyTorch comparison).
    model: PathBuf,
    #[command(flatten)]
    limits: crate::args::ModelLimitArgs,
    /// safetensors (+ config.json, for `memcap_ref.py` / PyTorch) or ONNX
    /// (+ config.json, for onnxruntime); trained runs: safetensors only.
    #[arg(long, value_enum, default_value = "safetensors")]
    format: ExportFormat,
    /// Output directory (created; files are written atomically).
    #[arg(short, long)]
    out: PathBuf,
    /// Dataset to certify float-exactness on (every example, every stage, any
    /// summation order; see `memcap construct --precision`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Float type of the written weights (and of the ONNX graph). Default:
    /// f32 for a model constructed with `--precision f32`, else f64.
    #[arg(long, value_enum)]
    dtype: Option<FloatType>,
    /// Inconsistent labels in --data: error, or keep the majority label.
    #[arg(long, value_enum, default_value = "error")]
    dedupe: Dedupe,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn read_data_for(model: &Model, path: &Path, dedupe: Dedupe) -> Result<Dataset> {
    let opts = ParseOptions {
        vocab: match model.config.input {
            InputSpec::Ids { vocab } => Some(vocab),
            InputSpec::Vectors { .. } => None,
        },
        num_classes: Some(model.config.num_classes),
        // The model's vocabulary already passed the model's size limits.
        max_vocab: Some(usize::MAX),
    };
    let ds = read_dataset(path, opts)?;
    let policy = dedupe;
    let (ds, _) = ds
        .resolve_conflicts(model.config.positional, policy)
        .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
    Ok(ds)
}

pub fn export(a: ExportArgs) -> Result<Outcome> {
    crate::io::check_output_dir(&a.out, "-o")?;
    if a.model.is_dir() {
        return export_trained(&a);
    }
    let model = read_model(&a.model, &a.limits.limits())?;
    let ds = a.data.as_deref().map(|p| read_data_for(&model, p, a.dedupe)).transpose()?;
    let dtype = a.dtype.unwrap_or(if model.construction.get("precision").and_then(|v| v.as_str()) == Some("f32") {
        FloatType::F32
    } else {
        FloatType::F64
    });
    let fe = float_exactness(&model, ds.as_ref(), dtype).map_err(|e| InputError(e.to_string()))?;
    let mut cfg = hf_config(&model, &fe)?;
    cfg["model_sha256"] = serde_json::Value::from(memcap_sweep::exec::model_digest(&model));
    let weights = match a.format {
        ExportFormat::Safetensors => a.out.join("model.safetensors"),
        ExportFormat::Onnx => a.out.join("model.onnx"),
    };
    let bytes = match a.format {
        ExportFormat::Safetensors => memcap_export::to_safetensors_as(&model, dtype)?,
        ExportFormat::Onnx => {
            let meta = vec![
                ("float_exact".to_string(), json!(fe.float_exact).to_string()),
                ("memcap_config".to_string(), serde_json::to_string(&model.config)?),
            ];
            memcap_export::to_onnx_as(&model, &meta, dtype)?
        }
    };
    write_atomic(&weights, &bytes).with_context(|| format!("writing {}", weights.display()))?;
    // The other format's file from an earlier export of another model, or of
    // this one in another dtype, would now disagree with config.json (which
    // records the model's SHA-256 and the dtype).
    let other = match a.format {
        ExportFormat::Safetensors => a.out.join("model.onnx"),
        ExportFormat::Onnx => a.out.join("model.safetensors"),
    };
    let previous: Option<serde_json::Value> = std::fs::read_to_string(a.out.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let same = previous
        .as_ref()
        .is_some_and(|p| p["model_sha256"] == cfg["model_sha256"] && p["torch_dtype"] == cfg["torch_dtype"]);
    if other.exists() && !same {
        eprintln!(
            "warning: {} is from an earlier export (another model or dtype) and was not rewritten; config.json now \
             describes {} in {} (export the other format too, or remove it)",
            other.display(),
            a.model.display(),
            dtype.name()
        );
    }
    let cfg_path = a.out.join("config.json");
    write_atomic(&cfg_path, serde_json::to_string_pretty(&cfg)?.as_bytes())?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"files": [weights, cfg_path], "bytes": bytes.len(), "float_exactness": fe})
            )?
        );
    } else {
        println!("wrote {} ({} bytes) and {}", weights.display(), bytes.len(), cfg_path.display());
        let verdict = match fe.float_exact {
            Some(true) => "FLOAT-EXACT",
            Some(false) => "NOT float-exact",
            None => "float-exactness unknown",
        };
        println!("float exactness  {verdict} in {}: {}", dtype.name(), fe.basis);
    }
    Ok(Outcome::Ok)
}

/// A training run folder: copy `config.json` + `model.safetensors` and, with
/// `--data`, write `logits.json` computed by memcap-train's candle forward
/// pass with the stored weights loaded into its variables.
fn export_trained(a: &ExportArgs) -> Result<Outcome> {
    if a.format != ExportFormat::Safetensors {
        return Err(InputError(format!(
            "{}: ONNX export of trained models is not implemented (use --format safetensors)",
            a.model.display()
        ))
        .into());
    }
    let cfg_text = std::fs::read_to_string(a.model.join("config.json"))
        .with_context(|| format!("cannot read {}/config.json", a.model.display()))?;
    let run_cfg: serde_json::Value =
        serde_json::from_str(&cfg_text).map_err(|e| InputError(format!("{}/config.json: {e}", a.model.display())))?;
    let mcfg: memcap_train::ModelConfig = serde_json::from_value(run_cfg["model"].clone())
        .map_err(|e| InputError(format!("{}/config.json: not a memcap train run config: {e}", a.model.display())))?;
    let st_path = a.model.join("model.safetensors");
    let st_bytes = std::fs::read(&st_path).with_context(|| format!("cannot read {}", st_path.display()))?;
    if a.dtype.is_some_and(|d| d != FloatType::F32) {
        return Err(InputError(format!(
            "{}: a trained run's weights are f32; --dtype f64 applies to constructed models",
            a.model.display()
        ))
        .into());
    }
    // Everything is checked, and the logits computed, before any file is
    // written: the config first (its errors name config.json), then the
    // weights against it (their errors name model.safetensors).
    mcfg.validate().map_err(|e| InputError(format!("{}/config.json: model: {e}", a.model.display())))?;
    let model = memcap_export::trained::trained_model(&mcfg, &st_bytes)
        .map_err(|e| InputError(format!("{}: {e}", st_path.display())))?;
    let logits = match &a.data {
        Some(data) => {
            // The model's vocabulary and classes, as for constructed models: a subset of the data reads too.
            let (vocab, _, classes, _, vectors) = mcfg.dims();
            let opts = ParseOptions {
                vocab: (!vectors).then_some(vocab),
                num_classes: u32::try_from(classes).ok(),
                max_vocab: Some(usize::MAX),
            };
            let ds = read_dataset(data, opts)?;
            let logits = memcap_export::trained::logits(&model, &ds)
                .map_err(|e| InputError(format!("{} on {}: {e}", a.model.display(), data.display())))?;
            Some((data, ds.len(), logits))
        }
        None => None,
    };
    write_atomic(&a.out.join("model.safetensors"), &st_bytes)?;
    write_atomic(&a.out.join("config.json"), cfg_text.as_bytes())?;
    let mut files = vec![a.out.join("model.safetensors"), a.out.join("config.json")];
    let path = a.out.join("logits.json");
    if let Some((data, n, logits)) = logits {
        // The weights' SHA-256 lets check.py tell logits of another model.
        let doc = json!({"data": data, "model_sha256": memcap_sweep::exec::sha256_hex(&st_bytes), "logits": logits});
        write_atomic(&path, serde_json::to_string(&doc)?.as_bytes())?;
        println!("memcap logits for {n} examples ({} rows) -> {}", logits.len(), path.display());
        files.push(path);
    } else if path.exists() {
        // Logits of an earlier export would now describe another model.
        std::fs::remove_file(&path).with_context(|| format!("removing the stale {}", path.display()))?;
        eprintln!("note: removed {} from an earlier export (pass --data to write this model's)", path.display());
    }
    println!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(Outcome::Ok)
}
