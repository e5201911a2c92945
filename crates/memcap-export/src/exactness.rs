//! The float-exactness verdict of an export: does the exported model, in
//! f64 or f32, compute exactly what the exact model computes on the given
//! data, in any runtime? Decided by a certificate
//! ([`memcap_core::certificate::certify`]), not a sample: every example,
//! every stage, any summation order.

use crate::ExportError;
use memcap_core::certificate::{certify, FloatCertificate, FloatType};
use memcap_core::model::{InputSpec, Model};
use memcap_core::Dataset;
use serde::Serialize;
use serde_json::json;

/// Whether the export in one dtype computes exactly what the exact model computes.
#[derive(Debug, Clone, Serialize)]
pub struct FloatExactness {
    /// The dtype the weights are written in and the verdict is for.
    pub dtype: FloatType,
    /// true: certified on the dataset; false: a weight is not a float of
    /// this dtype, or the certificate fails (with the reason); None: the
    /// weights fit but no dataset was given to certify on.
    pub float_exact: Option<bool>,
    /// Stored weights that the dtype cannot hold exactly.
    pub weights_inexact: u64,
    /// Examples in the dataset (0 without one).
    pub examples: usize,
    /// The certificate, when a dataset was given.
    pub certificate: Option<FloatCertificate>,
    /// The verdict's reason, in words.
    pub basis: String,
}

/// Decides float-exactness in `dtype` (see [`FloatExactness`]): certifies
/// on every example of `ds` when given.
///
/// # Errors
/// [`ExportError::Model`] when the model cannot run on `ds` (shape mismatch).
pub fn float_exactness(model: &Model, ds: Option<&Dataset>, dtype: FloatType) -> Result<FloatExactness, ExportError> {
    let acc = model.accounting();
    let bad = match dtype {
        FloatType::F64 => acc.weights_inexact_f64,
        FloatType::F32 => acc.weights_inexact_f32,
    };
    let mut r = FloatExactness {
        dtype,
        float_exact: if bad > 0 { Some(false) } else { None },
        weights_inexact: bad,
        examples: ds.map_or(0, |d| d.len()),
        certificate: None,
        basis: if bad > 0 {
            format!("{bad} weights are not representable in {}", dtype.name())
        } else {
            format!("all weights are exact in {}; intermediates not certified (pass --data)", dtype.name())
        },
    };
    let Some(ds) = ds else { return Ok(r) };
    if bad > 0 {
        return Ok(r);
    }
    let cert = certify(model, ds, dtype)?;
    r.float_exact = Some(cert.certified);
    r.basis = cert.reason.clone();
    r.certificate = Some(cert);
    Ok(r)
}

/// HF-style config.json for an exported constructed model. `"model"` is
/// the config of the Transformer forward pass the export's weights are for
/// (memcap-train's, as in a training run's `config.json`), `"memcap_config"`
/// the exact model's.
///
/// # Errors
/// [`ExportError::Train`] when the model does not map onto that Transformer.
pub fn hf_config(model: &Model, fe: &FloatExactness) -> Result<serde_json::Value, ExportError> {
    let c = &model.config;
    let forward = memcap_train::ModelConfig::Transformer(memcap_train::model::construction_config(model)?);
    let (kind, dim) = match c.input {
        InputSpec::Ids { vocab } => ("ids", vocab),
        InputSpec::Vectors { d } => ("vectors", d),
    };
    Ok(json!({
        "model_type": "memcap-constructed",
        "architectures": ["MemcapTransformer"],
        "hidden_size": c.width,
        "intermediate_size": c.ffn_width,
        "num_hidden_layers": c.blocks,
        "num_attention_heads": c.heads,
        "head_dim": c.head_dim,
        "input_kind": kind,
        "vocab_size": if kind == "ids" { Some(dim) } else { None },
        "input_dim": dim,
        "max_position_embeddings": c.seq_len,
        "positional": c.positional,
        "attention": c.attention,
        "attention_scale": 1.0,
        "attention_blocks": c.attention_blocks,
        "num_classes": c.num_classes,
        "task": c.task,
        "float_exact": fe.float_exact,
        "float_exactness": fe,
        "torch_dtype": match fe.dtype { FloatType::F64 => "float64", FloatType::F32 => "float32" },
        "memcap_config": c,
        "model": forward,
    }))
}
