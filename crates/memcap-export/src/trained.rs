//! Trained runs (`memcap train` folders) for PyTorch: memcap's own logits of
//! the stored weights, so a loader in another framework can be compared to
//! 1e-5.

use crate::ExportError;
use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use memcap_core::Dataset;
use memcap_train::ModelConfig;

/// The logits memcap-train's candle forward pass computes with the weights
/// of `safetensors` (PyTorch names and `[out, in]` layout, f32) on every
/// example of `ds`: shape `[N, C]` (next-token) or `[N·n, C]` (seq2seq).
///
/// # Errors
/// [`ExportError::Weights`] for a missing or misshapen tensor,
/// [`ExportError::Train`] for token data that does not fit the model (vector
/// inputs, wrong vocabulary).
pub fn trained_logits(config: &ModelConfig, safetensors: &[u8], ds: &Dataset) -> Result<Vec<Vec<f32>>, ExportError> {
    config.validate_for(ds)?;
    logits(&trained_model(config, safetensors)?, ds)
}

/// The logits of a loaded trained model ([`trained_model`]) on every example
/// of `ds`, shaped as in [`trained_logits`].
///
/// # Errors
/// [`ExportError::Train`] for data that do not fit the model;
/// [`ExportError::Weights`] when a logit is NaN or infinite (named by example).
pub fn logits(model: &memcap_train::model::Model, ds: &Dataset) -> Result<Vec<Vec<f32>>, ExportError> {
    model.config().validate_for(ds)?;
    let tokens = memcap_train::data::input_tensor(ds)?;
    let logits: Vec<Vec<f32>> = model.logits(&tokens, true)?.to_vec2().map_err(memcap_train::TrainError::from)?;
    if let Some(i) = logits.iter().position(|row| row.iter().any(|x| !x.is_finite())) {
        return Err(ExportError::Weights(format!(
            "the logits of example {i} are not finite (NaN or ±inf): the weights or the attention scale overflow f32"
        )));
    }
    Ok(logits)
}

/// The model a trained run's `safetensors` bytes hold for `config`: the
/// forward pass training ran, on the stored weights. Checks that every
/// tensor is f32, named as a parameter of `config` and of its shape.
///
/// # Errors
/// [`ExportError::Safetensors`] for unreadable bytes; [`ExportError::Weights`]
/// for a tensor that is not f32 or holds a NaN or infinity; [`ExportError::Train`] for a missing,
/// misshapen or foreign tensor (named) or an invalid config.
pub fn trained_model(config: &ModelConfig, safetensors: &[u8]) -> Result<memcap_train::model::Model, ExportError> {
    memcap_train::ensure_single_threaded_ops();
    config.validate()?;
    let st = safetensors::SafeTensors::deserialize(safetensors)?;
    let mut tensors = BTreeMap::new();
    for (name, t) in st.tensors() {
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(ExportError::Weights(format!("{name}: dtype {:?}, expected F32", t.dtype())));
        }
        let vals: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some(j) = vals.iter().position(|x| !x.is_finite()) {
            return Err(ExportError::Weights(format!("{name}: entry {j} is {}, not a finite number", vals[j])));
        }
        let tensor = Tensor::from_vec(vals, t.shape(), &Device::Cpu).map_err(memcap_train::TrainError::from)?;
        tensors.insert(name, tensor);
    }
    // Missing, misshapen or foreign tensors are refused by name.
    Ok(memcap_train::model::Model::from_tensors(config, &tensors)?)
}
