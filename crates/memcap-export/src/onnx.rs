//! Model → ONNX (opset 13, IR 8) with f64 weights, so that onnxruntime or
//! any other ONNX runtime can execute a memcap model without memcap.
//!
//! The graph is memcap-train's Transformer forward pass, the one trained
//! and constructed models share, on the weights it runs
//! ([`forward_weights`]), in row form (tokens are rows, `Z: [batch, n, d]`):
//!
//! ```text
//! Z = Gather(embed.weight, tokens) | x·embed.weight,  + embed.bias (+ pos_embed.weight)
//! per block with heads:  Q, K, V = Z·q_projᵀ, …  reshaped [batch, n, h, d_h]
//!                        scores[b, j, k, h] = scale · Σ_s Q[b, j, h, s] K[b, k, h, s]
//!                        A = softmax over keys k (hardmax: ties averaged, via ReduceMax/Equal/Cast/ReduceSum/Div)
//!                        Z += (Σ_k A[b, j, k, h] V[b, k, h, ·]) merged to [batch, n, h·d_h] · o_projᵀ
//! per block:             Z += Relu(Z·fc1ᵀ + fc1.bias)·fc2ᵀ + fc2.bias
//! out = Z·headᵀ + head.bias  → [batch, n]   (next-token: read column n−1)
//! ```
//!
//! Attention is exported in its general form, so any model in the format
//! runs, not only the constructed one with W_Q = W_K = 0; blocks without
//! heads are the identity and are skipped. Weights are initializers under
//! the safetensors names; matrices are stored **pre-transposed**, `[in,
//! out]` (the safetensors file holds PyTorch's `[out, in]`): the graph has
//! no `Transpose` feeding a `MatMul`, a pair onnxruntime fuses into
//! `FusedMatMul`, which lacks an f64 kernel in some versions. Attention
//! scores and the weighted sum of values are broadcast products summed over
//! an axis for the same reason.

use crate::onnx_proto::{
    attribute_type, data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use std::collections::BTreeMap;

use crate::ExportError;
use candle_core::DType;
use memcap_core::certificate::FloatType;
use memcap_core::model::{AttentionKind, InputSpec, Model};
use memcap_core::Positional;
use memcap_train::{ModelConfig, TransformerConfig};
use prost::Message;

/// The opset the graph is written for (Squeeze/ReduceSum take axes as inputs).
pub const OPSET: i64 = 13;
/// ONNX IR version 8 (ONNX 1.10+), accepted by every current runtime.
pub const IR_VERSION: i64 = 8;

/// Name of the graph input: `tokens` (int64 ids) or `x` (f64 vectors).
pub fn input_name(model: &Model) -> &'static str {
    match model.config.input {
        InputSpec::Ids { .. } => "tokens",
        InputSpec::Vectors { .. } => "x",
    }
}

struct Builder {
    /// ONNX element type of every float tensor (FLOAT or DOUBLE).
    elem: i32,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    next: usize,
}

impl Builder {
    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }
    fn node(&mut self, op: &str, inputs: &[&str], hint: &str, attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(hint);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: format!("{op}_{}", self.next),
            op_type: op.to_string(),
            attribute: attrs,
            ..Default::default()
        });
        out
    }
    fn init_f64(&mut self, name: &str, dims: Vec<i64>, vals: &[f64]) -> String {
        let raw_data = if self.elem == data_type::FLOAT {
            vals.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect()
        } else {
            vals.iter().flat_map(|v| v.to_le_bytes()).collect()
        };
        self.inits.push(TensorProto {
            name: name.to_string(),
            dims,
            data_type: self.elem,
            raw_data,
            ..Default::default()
        });
        name.to_string()
    }
    fn init_i64(&mut self, name: &str, vals: &[i64]) -> String {
        self.inits.push(TensorProto {
            name: name.to_string(),
            dims: vec![vals.len() as i64],
            data_type: data_type::INT64,
            raw_data: vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.to_string()
    }
    fn matmul(&mut self, a: &str, b: &str) -> String {
        self.node("MatMul", &[a, b], "mm", vec![])
    }
    fn add(&mut self, a: &str, b: &str) -> String {
        self.node("Add", &[a, b], "add", vec![])
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i: v, r#type: attribute_type::INT, ..Default::default() }
}

fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), ints: v.to_vec(), r#type: attribute_type::INTS, ..Default::default() }
}

fn tensor_info(name: &str, elem: i32, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Ok(v) => Dimension { dim_value: Some(*v), ..Default::default() },
            Err(p) => Dimension { dim_param: Some(p.to_string()), ..Default::default() },
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor { elem_type: elem, shape: Some(TensorShapeProto { dim }) }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds the ONNX model; `metadata` goes into `metadata_props`.
///
/// # Errors
/// As [`forward_weights`].
pub fn to_onnx_proto(model: &Model, metadata: &[(String, String)]) -> Result<ModelProto, ExportError> {
    to_onnx_proto_as(model, metadata, FloatType::F64)
}

/// [`to_onnx_proto`] with every float tensor (weights, vector inputs,
/// output) in `dtype`.
///
/// # Errors
/// As [`forward_weights`].
pub fn to_onnx_proto_as(
    model: &Model,
    metadata: &[(String, String)],
    dtype: FloatType,
) -> Result<ModelProto, ExportError> {
    let (c, tensors) = forward_weights(model, dtype)?;
    let weights: BTreeMap<String, (Vec<usize>, Vec<f64>)> =
        tensors.into_iter().map(|(name, shape, vals)| (name, (shape, vals))).collect();
    let get = |name: &str| -> Result<&(Vec<usize>, Vec<f64>), ExportError> {
        weights.get(name).ok_or_else(|| ExportError::Weights(format!("{name} is missing")))
    };
    let n = c.seq_len as i64;
    let (h, dh) = (c.heads as i64, c.head_dim as i64);
    let elem = match dtype {
        FloatType::F64 => data_type::DOUBLE,
        FloatType::F32 => data_type::FLOAT,
    };
    let mut b = Builder { elem, nodes: Vec::new(), inits: Vec::new(), next: 0 };
    // A `[out, in]` weight stored pre-transposed, `[in, out]` (see the module docs).
    let matrix_t = |b: &mut Builder, name: &str| -> Result<String, ExportError> {
        let (shape, vals) = get(name)?;
        let (rows, cols) = (shape[0], shape[1]);
        let mut t = vec![0.0; vals.len()];
        for r in 0..rows {
            for col in 0..cols {
                t[col * rows + r] = vals[r * cols + col];
            }
        }
        Ok(b.init_f64(name, vec![cols as i64, rows as i64], &t))
    };
    let as_is = |b: &mut Builder, name: &str| -> Result<String, ExportError> {
        let (shape, vals) = get(name)?;
        Ok(b.init_f64(name, shape.iter().map(|&d| d as i64).collect(), vals))
    };

    // Embedding: `embed.weight [V, d]` is both the lookup table and the
    // input projection of vector tokens.
    let input = input_name(model);
    let embed = as_is(&mut b, "embed.weight")?;
    let (mut z, input_info) = if c.vector_input {
        (b.matmul(input, &embed), tensor_info(input, elem, &[Err("batch"), Ok(n), Ok(c.vocab as i64)]))
    } else {
        let g = b.node("Gather", &[&embed, input], "embed", vec![int_attr("axis", 0)]);
        (g, tensor_info(input, data_type::INT64, &[Err("batch"), Ok(n)]))
    };
    if c.embed_bias {
        let eb = as_is(&mut b, "embed.bias")?;
        z = b.add(&z, &eb);
    }
    if c.positional == Positional::Learned {
        let p = as_is(&mut b, "pos_embed.weight")?;
        z = b.add(&z, &p);
    }
    // Shared constants, each one initializer: axes 2 (the readout's Squeeze
    // and attention), and for attention axes 1, 4, −1 and the head shapes.
    let a2 = b.init_i64("const.axes_2", &[2]);
    let any_heads = (0..c.blocks).any(|l| c.has_attention(l));
    let [a1, a4, a_last, heads_shape, merged_shape] = if any_heads {
        [
            b.init_i64("const.axes_1", &[1]),
            b.init_i64("const.axes_4", &[4]),
            b.init_i64("const.axes_m1", &[-1]),
            b.init_i64("const.shape_heads", &[0, 0, h, dh]),
            b.init_i64("const.shape_merged", &[0, 0, h * dh]),
        ]
    } else {
        Default::default()
    };
    let scale = c.score_scale();
    for l in 0..c.blocks {
        let pre = format!("blocks.{l}");
        if c.has_attention(l) {
            // [B, n, h·dh] -> [B, n, h, dh]
            let proj = |b: &mut Builder, s: &str| -> Result<String, ExportError> {
                let w = matrix_t(b, &format!("{pre}.attn.{s}_proj.weight"))?;
                let y = b.matmul(&z, &w);
                Ok(b.node("Reshape", &[&y, &heads_shape], s, vec![]))
            };
            let (q, k, v) = (proj(&mut b, "q")?, proj(&mut b, "k")?, proj(&mut b, "v")?);
            // scores[B, query, key, head] = Σ_s q[B, query, head, s] k[B, key, head, s]: a broadcast
            // product summed over the head dimension (no Transpose→MatMul pair for a runtime to fuse).
            let q5 = b.node("Unsqueeze", &[&q, &a2], "q5", vec![]);
            let k5 = b.node("Unsqueeze", &[&k, &a1], "k5", vec![]);
            let qk = b.node("Mul", &[&q5, &k5], "qk", vec![]);
            let mut s = b.node("ReduceSum", &[&qk, &a_last], "scores", vec![int_attr("keepdims", 0)]);
            if scale != 1.0 {
                let sc = b.init_f64(&format!("{pre}.attn.scale"), vec![], &[scale]);
                s = b.node("Mul", &[&s, &sc], "scaled", vec![]);
            }
            // Normalized over keys (axis 2), per query and head.
            let a = match c.attention {
                AttentionKind::Softmax => b.node("Softmax", &[&s], "softmax", vec![int_attr("axis", 2)]),
                AttentionKind::Hardmax => {
                    let mx = b.node("ReduceMax", &[&s], "max", vec![ints_attr("axes", &[2]), int_attr("keepdims", 1)]);
                    let eq = b.node("Equal", &[&s, &mx], "ties", vec![]);
                    let ef = b.node("Cast", &[&eq], "tiesf", vec![int_attr("to", elem as i64)]);
                    let cnt = b.node("ReduceSum", &[&ef, &a2], "count", vec![int_attr("keepdims", 1)]);
                    b.node("Div", &[&ef, &cnt], "hardmax", vec![])
                }
            };
            // o[B, query, head, s] = Σ_key a[B, query, key, head] v[B, key, head, s]
            let a5 = b.node("Unsqueeze", &[&a, &a4], "a5", vec![]);
            let v5 = b.node("Unsqueeze", &[&v, &a1], "v5", vec![]);
            let av = b.node("Mul", &[&a5, &v5], "av", vec![]);
            let o = b.node("ReduceSum", &[&av, &a2], "o", vec![int_attr("keepdims", 0)]);
            let o = b.node("Reshape", &[&o, &merged_shape], "o_merged", vec![]);
            let wo = matrix_t(&mut b, &format!("{pre}.attn.o_proj.weight"))?;
            let o = b.matmul(&o, &wo);
            z = b.add(&z, &o);
        }
        let p = format!("{pre}.ffn");
        let w1 = matrix_t(&mut b, &format!("{p}.fc1.weight"))?;
        let b1 = as_is(&mut b, &format!("{p}.fc1.bias"))?;
        let w2 = matrix_t(&mut b, &format!("{p}.fc2.weight"))?;
        let b2 = as_is(&mut b, &format!("{p}.fc2.bias"))?;
        let hid = b.matmul(&z, &w1);
        let hid = b.add(&hid, &b1);
        let hid = b.node("Relu", &[&hid], "relu", vec![]);
        let f = b.matmul(&hid, &w2);
        let f = b.add(&f, &b2);
        z = b.add(&z, &f);
    }
    let ro = matrix_t(&mut b, "head.weight")?;
    let rb = as_is(&mut b, "head.bias")?;
    let o = b.matmul(&z, &ro);
    let o = b.add(&o, &rb);
    b.nodes.push(NodeProto {
        input: vec![o, a2],
        output: vec!["out".into()],
        name: "Squeeze_out".into(),
        op_type: "Squeeze".into(),
        ..Default::default()
    });

    let graph = GraphProto {
        node: b.nodes,
        name: "memcap".into(),
        initializer: b.inits,
        doc_string: "memcap model: out[b, j] = readout of token column j (next-token: j = n-1)".into(),
        input: vec![input_info],
        output: vec![tensor_info("out", elem, &[Err("batch"), Ok(n)])],
        value_info: vec![],
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "memcap".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        domain: "memcap".into(),
        model_version: 1,
        doc_string: format!("Exported by memcap export --format onnx ({} weights).", dtype.name()),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        metadata_props: metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: k.clone(), value: v.clone() })
            .collect(),
    })
}

/// `(name, PyTorch shape, values)` of every tensor, sorted by name.
pub type ForwardWeights = Vec<(String, Vec<usize>, Vec<f64>)>;

/// The weights memcap-train's forward pass runs for a constructed model
/// ([`memcap_train::model::Model::from_construction`] in `dtype`), with its
/// config: `(name, PyTorch shape, values)`, sorted by name. The values are
/// the `dtype` weights, widened to f64 without change. Both export formats
/// write these and nothing else.
///
/// # Errors
/// [`ExportError::Train`] when the model does not map onto the Transformer
/// (a block with some but not all heads).
pub fn forward_weights(model: &Model, dtype: FloatType) -> Result<(TransformerConfig, ForwardWeights), ExportError> {
    use memcap_train::model::{candle_dtype, construction_config, construction_tensors};
    // Built through `from_tensors`, so the tensors are checked against the config the forward runs.
    let cfg = construction_config(model)?;
    let m = memcap_train::model::Model::from_tensors(
        &ModelConfig::Transformer(cfg.clone()),
        &construction_tensors(model, candle_dtype(dtype))?,
    )?;
    let mut out = Vec::new();
    for (name, t) in m.tensors()? {
        let vals = t
            .to_dtype(DType::F64)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f64>())
            .map_err(memcap_train::TrainError::from)?;
        out.push((name, t.dims().to_vec(), vals));
    }
    Ok((cfg, out))
}

/// Serialized ONNX bytes (f64).
///
/// # Errors
/// As [`forward_weights`].
pub fn to_onnx(model: &Model, metadata: &[(String, String)]) -> Result<Vec<u8>, ExportError> {
    Ok(to_onnx_proto(model, metadata)?.encode_to_vec())
}

/// Serialized ONNX bytes with float tensors in `dtype`.
///
/// # Errors
/// As [`forward_weights`].
pub fn to_onnx_as(model: &Model, metadata: &[(String, String)], dtype: FloatType) -> Result<Vec<u8>, ExportError> {
    Ok(to_onnx_proto_as(model, metadata, dtype)?.encode_to_vec())
}
