//! Model → ONNX (opset 13, IR 8) with f64 weights, so that onnxruntime or
//! any other ONNX runtime can execute a memcap model without memcap.
//!
//! The graph is the forward pass of README "Model format" in row form
//! (tokens are rows, `Z: [batch, n, m]`):
//!
//! ```text
//! Z = Gather(W_Eᵀ, tokens) | x·W_Eᵀ,  + b_E (+ Pᵀ)
//! per block with heads:  Z += Σ_h softmax_k(Σ_s (Z W_Qᵀ)[j,s] (Z W_Kᵀ)[k,s]) (Z W_Vᵀ) W_Oᵀ
//!                        (hardmax: ties averaged, via ReduceMax/Equal/Cast/ReduceSum/Div)
//! per block:             Z += Relu(Z W_1ᵀ + b_1) W_2ᵀ + b_2
//! out = Z w_o + b_o  → [batch, n]   (next-token: read column n−1)
//! ```
//!
//! Attention is exported in its general form (every head's Q, K, V, O
//! matrices), so any model in the format runs, not only the constructed one
//! with W_Q = W_K = 0; blocks without heads are the identity and are
//! skipped. Weights are initializers under the same names as in the
//! safetensors export but stored **pre-transposed**, `[in, out]` (the
//! safetensors file holds PyTorch's `[out, in]`): the graph has no
//! `Transpose` feeding a `MatMul`, a pair onnxruntime fuses into
//! `FusedMatMul`, which lacks an f64 kernel in some versions. Attention
//! scores are a broadcast product summed over the head dimension for the
//! same reason.

use crate::onnx_proto::{
    attribute_type, data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use memcap_core::certificate::FloatType;
use memcap_core::model::{AttentionKind, InputSpec, Model, Sparse};
use memcap_core::Positional;
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
    /// A weight matrix stored pre-transposed, `[cols, rows]` = `[in, out]`,
    /// the layout `MatMul` takes. No runtime `Transpose` feeds a `MatMul`:
    /// onnxruntime fuses such pairs into `FusedMatMul`, which has no f64
    /// kernel in some versions (1.22 refuses to open the session).
    fn matrix_t(&mut self, name: &str, s: &Sparse) -> String {
        let dense = s.to_dense_f64();
        let mut t = vec![0.0; dense.len()];
        for r in 0..s.rows {
            for c in 0..s.cols {
                t[c * s.rows + r] = dense[r * s.cols + c];
            }
        }
        self.init_f64(name, vec![s.cols as i64, s.rows as i64], &t)
    }
    /// A bias (an n×1 matrix) as a 1-D initializer.
    fn vector(&mut self, name: &str, s: &Sparse) -> String {
        self.init_f64(name, vec![(s.rows * s.cols) as i64], &s.to_dense_f64())
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
pub fn to_onnx_proto(model: &Model, metadata: &[(String, String)]) -> ModelProto {
    to_onnx_proto_as(model, metadata, FloatType::F64)
}

/// [`to_onnx_proto`] with every float tensor (weights, vector inputs,
/// output) in `dtype`.
pub fn to_onnx_proto_as(model: &Model, metadata: &[(String, String)], dtype: FloatType) -> ModelProto {
    let c = &model.config;
    let w = &model.weights;
    let n = c.seq_len as i64;
    let elem = match dtype {
        FloatType::F64 => data_type::DOUBLE,
        FloatType::F32 => data_type::FLOAT,
    };
    let mut b = Builder { elem, nodes: Vec::new(), inits: Vec::new(), next: 0 };

    // Embedding.
    let input = input_name(model);
    let embed_t = b.matrix_t("embed.weight", &w.embed);
    let (mut z, input_info) = match c.input {
        InputSpec::Ids { .. } => {
            let g = b.node("Gather", &[&embed_t, input], "embed", vec![int_attr("axis", 0)]);
            (g, tensor_info(input, data_type::INT64, &[Err("batch"), Ok(n)]))
        }
        InputSpec::Vectors { d } => {
            (b.matmul(input, &embed_t), tensor_info(input, elem, &[Err("batch"), Ok(n), Ok(d as i64)]))
        }
    };
    let eb = b.vector("embed.bias", &w.embed_bias);
    z = b.add(&z, &eb);
    if let (Some(p), Positional::Learned) = (&w.pos, c.positional) {
        let pt = b.matrix_t("pos.weight", p);
        z = b.add(&z, &pt);
    }

    let any_heads = w.blocks.iter().any(|blk| !blk.heads.is_empty());
    let (axes1, axes2, axes_last) = if any_heads {
        (b.init_i64("const.axes_1", &[1]), b.init_i64("const.axes_2", &[2]), b.init_i64("const.axes_last", &[-1]))
    } else {
        Default::default()
    };
    let minus_one = axes_last.clone();
    for (l, blk) in w.blocks.iter().enumerate() {
        if !blk.heads.is_empty() {
            let mut attn: Option<String> = None;
            for (h, hd) in blk.heads.iter().enumerate() {
                let p = format!("blocks.{l}.attn.{h}");
                let (wq, wk, wv, wo) = (
                    b.matrix_t(&format!("{p}.q.weight"), &hd.wq),
                    b.matrix_t(&format!("{p}.k.weight"), &hd.wk),
                    b.matrix_t(&format!("{p}.v.weight"), &hd.wv),
                    b.matrix_t(&format!("{p}.o.weight"), &hd.wo),
                );
                let q = b.matmul(&z, &wq);
                let k = b.matmul(&z, &wk);
                let v = b.matmul(&z, &wv);
                // scores[b, query j, key k] = Q_j · K_k, as a broadcast product summed over the head
                // dimension (no Transpose→MatMul pair for a runtime to fuse); the model's column-wise σ
                // over keys is a row softmax here.
                let q4 = b.node("Unsqueeze", &[&q, &axes2], "q4", vec![]);
                let k4 = b.node("Unsqueeze", &[&k, &axes1], "k4", vec![]);
                let qk = b.node("Mul", &[&q4, &k4], "qk", vec![]);
                let s = b.node("ReduceSum", &[&qk, &axes_last], "scores", vec![int_attr("keepdims", 0)]);
                let a = match c.attention {
                    AttentionKind::Softmax => b.node("Softmax", &[&s], "softmax", vec![int_attr("axis", -1)]),
                    AttentionKind::Hardmax => {
                        let mx =
                            b.node("ReduceMax", &[&s], "max", vec![ints_attr("axes", &[-1]), int_attr("keepdims", 1)]);
                        let eq = b.node("Equal", &[&s, &mx], "ties", vec![]);
                        let ef = b.node("Cast", &[&eq], "tiesf", vec![int_attr("to", elem as i64)]);
                        let cnt = b.node("ReduceSum", &[&ef, &minus_one], "count", vec![int_attr("keepdims", 1)]);
                        b.node("Div", &[&ef, &cnt], "hardmax", vec![])
                    }
                };
                let o = b.matmul(&a, &v);
                let o = b.matmul(&o, &wo);
                attn = Some(match attn {
                    None => o,
                    Some(acc) => b.add(&acc, &o),
                });
            }
            if let Some(a) = attn {
                z = b.add(&z, &a);
            }
        }
        let p = format!("blocks.{l}.ffn");
        let w1 = b.matrix_t(&format!("{p}.w1.weight"), &blk.ffn.w1);
        let b1 = b.vector(&format!("{p}.w1.bias"), &blk.ffn.b1);
        let w2 = b.matrix_t(&format!("{p}.w2.weight"), &blk.ffn.w2);
        let b2 = b.vector(&format!("{p}.w2.bias"), &blk.ffn.b2);
        let h = b.matmul(&z, &w1);
        let h = b.add(&h, &b1);
        let h = b.node("Relu", &[&h], "relu", vec![]);
        let f = b.matmul(&h, &w2);
        let f = b.add(&f, &b2);
        z = b.add(&z, &f);
    }
    let ro = b.matrix_t("readout.weight", &w.readout);
    let rb = b.vector("readout.bias", &w.readout_bias);
    let o = b.matmul(&z, &ro);
    let o = b.add(&o, &rb);
    let axes = if any_heads { axes2 } else { b.init_i64("const.axes_2", &[2]) };
    b.nodes.push(NodeProto {
        input: vec![o, axes],
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
    ModelProto {
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
    }
}

/// Serialized ONNX bytes (f64).
pub fn to_onnx(model: &Model, metadata: &[(String, String)]) -> Vec<u8> {
    to_onnx_proto(model, metadata).encode_to_vec()
}

/// Serialized ONNX bytes with float tensors in `dtype`.
pub fn to_onnx_as(model: &Model, metadata: &[(String, String)], dtype: FloatType) -> Vec<u8> {
    to_onnx_proto_as(model, metadata, dtype).encode_to_vec()
}
