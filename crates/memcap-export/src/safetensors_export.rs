//! Model → safetensors: the dense weights memcap-train's Transformer forward
//! pass runs for the model ([`crate::onnx::forward_weights`]: PyTorch names
//! and `[out, in]` layout), in f64 or f32, with both configs as metadata
//! (`config`: the exact model's; `model`: the forward pass's). f64 rounds big weights: whether the file is
//! float-exact is recorded in the metadata (`float_exact`).

use crate::ExportError;
use memcap_core::certificate::FloatType;
use memcap_core::Model;
use safetensors::tensor::{Dtype, TensorView};

/// Serializes `model` as safetensors bytes (f64).
///
/// # Errors
/// [`ExportError::Safetensors`] if serialization fails.
pub fn to_safetensors(model: &Model) -> Result<Vec<u8>, ExportError> {
    to_safetensors_as(model, FloatType::F64)
}

/// Serializes `model` as safetensors bytes with every weight rounded to
/// `dtype` (exact for a model constructed with that precision).
///
/// # Errors
/// [`ExportError::Safetensors`] if serialization fails.
pub fn to_safetensors_as(model: &Model, dtype: FloatType) -> Result<Vec<u8>, ExportError> {
    // What memcap-train's forward pass runs for this model, in `dtype`.
    let (forward_cfg, tensors) = crate::onnx::forward_weights(model, dtype)?;
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, vals)| {
            let bytes = match dtype {
                FloatType::F64 => vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
                FloatType::F32 => vals.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect(),
            };
            (name, shape, bytes)
        })
        .collect();
    let views = data
        .iter()
        .map(|(n, s, b)| {
            let dt = match dtype {
                FloatType::F64 => Dtype::F64,
                FloatType::F32 => Dtype::F32,
            };
            Ok((n.clone(), TensorView::new(dt, s.clone(), b)?))
        })
        .collect::<Result<Vec<_>, ExportError>>()?;
    let acc = model.accounting();
    // "format": "pt" is what Hugging Face loaders require; memcap's own tag
    // is "memcap_format". Written with sorted keys: equal models give
    // byte-identical files.
    let meta = std::collections::BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("memcap_format".to_string(), "memcap-safetensors".to_string()),
        ("config".to_string(), serde_json::to_string(&model.config)?),
        ("model".to_string(), serde_json::to_string(&memcap_train::ModelConfig::Transformer(forward_cfg))?),
        ("dtype".to_string(), dtype.name().to_string()),
        ("weights_inexact_f64".to_string(), acc.weights_inexact_f64.to_string()),
        ("weights_inexact_f32".to_string(), acc.weights_inexact_f32.to_string()),
        (
            "float_exact_weights".to_string(),
            (match dtype {
                FloatType::F64 => acc.weights_inexact_f64,
                FloatType::F32 => acc.weights_inexact_f32,
            } == 0)
                .to_string(),
        ),
    ]);
    Ok(memcap_train::train::serialize_safetensors(views, &meta)?)
}
