//! # memcap-export: memcap models for PyTorch, safetensors and onnxruntime
//!
//! * [`to_safetensors`]: dense f64 tensors in PyTorch layout (`[out, in]`),
//!   the config as metadata.
//! * [`to_onnx`]: the general forward pass as an ONNX graph (opset 13, f64
//!   initializers under the safetensors names), written with hand-written
//!   prost messages ([`onnx_proto`]; no `protoc`).
//! * [`to_safetensors_as`] / [`to_onnx_as`]: the same in f32 (for models
//!   constructed with `--precision f32`).
//! * [`float_exactness`] and [`hf_config`]: the verdict whether the export
//!   in f64 or f32 computes exactly what the exact model computes on given
//!   data, decided by [`memcap_core::certificate::certify`] on every
//!   example, and an HF-style `config.json` that carries it.
//! * [`trained_logits`]: memcap's logits of a `memcap train` run, for the
//!   1e-5 comparison with a PyTorch loader.
//!
//! No file IO: functions return bytes and values.
//!
//! ```
//! use memcap_core::{construct, gen, ConstructConfig};
//! let ds = gen::generate(&gen::GenConfig::random_ids(6, 4, 5, 3, 0)).unwrap();
//! let cfg = ConstructConfig { code_bits: Some(4), ..Default::default() };
//! let model = construct(&ds, &cfg).unwrap().model;
//! let fe = memcap_export::float_exactness(&model, Some(&ds), memcap_core::certificate::FloatType::F64).unwrap();
//! println!("float-exact: {:?} ({})", fe.float_exact, fe.basis);
//! let onnx = memcap_export::to_onnx(&model, &[]).unwrap();
//! let st = memcap_export::to_safetensors(&model).unwrap();
//! assert!(!onnx.is_empty() && !st.is_empty());
//! ```
#![warn(missing_docs)]

pub mod exactness;
pub mod onnx;
pub mod onnx_proto;
mod safetensors_export;
pub mod trained;

pub use exactness::{float_exactness, hf_config, FloatExactness};
pub use onnx::{to_onnx, to_onnx_as};
pub use safetensors_export::{to_safetensors, to_safetensors_as};
pub use trained::trained_logits;

/// Export failures.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The model cannot run on the data (memcap-core).
    #[error(transparent)]
    Model(#[from] memcap_core::ModelError),
    /// safetensors (de)serialization failed.
    #[error("safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    /// JSON serialization of the config failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A trained run's weights do not fit its config.
    #[error("weights: {0}")]
    Weights(String),
    /// The trained model could not be built or run on the data.
    #[error(transparent)]
    Train(#[from] memcap_train::TrainError),
}
