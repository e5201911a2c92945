//! The float-exactness verdict of an export: does the f64 model compute
//! exactly what the exact model computes, on the given data, in any runtime?
//! Decided by running memcap-core's exact and f64 engines side by side,
//! register by register.

use crate::ExportError;
use memcap_core::eval::{self, Engine, ExactEngine, FloatEngine, Prepared, TokenValue};
use memcap_core::model::{AttentionKind, InputSpec, Model};
use memcap_core::Dataset;
use serde::Serialize;
use serde_json::json;

/// Whether the f64 export computes exactly what the exact model computes.
#[derive(Debug, Clone, Serialize)]
pub struct FloatExactness {
    /// true: every weight is an f64, every exact intermediate on the checked
    /// examples is below 2^53 in magnitude and the f64 pass gives the exact
    /// outputs; false: one of these fails; None: weights are exact but no
    /// dataset was given to check intermediates on.
    pub float_exact: Option<bool>,
    /// Stored weights that f64 cannot hold exactly.
    pub weights_inexact_f64: u64,
    /// log2 of the largest |exact intermediate| seen (registers after every stage, every position).
    pub max_intermediate_log2: Option<f64>,
    /// Examples traced register by register.
    pub examples_traced: usize,
    /// Examples in the dataset.
    pub examples: usize,
    /// f64 outputs equal to the exact outputs, over the traced examples' claimed positions.
    pub outputs_equal: Option<(usize, usize)>,
    /// First stage where an f64 register differs from the exact value rounded to f64.
    pub first_state_divergence: Option<String>,
    /// The verdict's reason, in words.
    pub basis: String,
}

/// Decides float-exactness (see [`FloatExactness`]).
///
/// `limit` caps how many examples are traced register by register.
///
/// # Errors
/// [`ExportError::Model`] when the model cannot run on `ds` (shape mismatch).
pub fn float_exactness(model: &Model, ds: Option<&Dataset>, limit: usize) -> Result<FloatExactness, ExportError> {
    let bad = model.accounting().weights_inexact_f64;
    let mut r = FloatExactness {
        float_exact: if bad > 0 { Some(false) } else { None },
        weights_inexact_f64: bad,
        max_intermediate_log2: None,
        examples_traced: 0,
        examples: ds.map_or(0, |d| d.len()),
        outputs_equal: None,
        first_state_divergence: None,
        basis: if bad > 0 {
            format!("{bad} weights are not representable in f64")
        } else {
            "all weights are exact in f64; intermediates not checked (pass --data)".into()
        },
    };
    let Some(ds) = ds else { return Ok(r) };
    let prep = Prepared::new(model, ds)?;
    let ex = ExactEngine::new(model);
    let fl = FloatEngine::<f64>::new(model);
    let all: Vec<usize> = (0..ds.seq_len()).collect();
    let (mut max_abs, mut eq, mut tot) = (0f64, 0usize, 0usize);
    // Rationals that f64 cannot hold (e.g. an average over n = 3 tokens).
    let mut unrepresentable: Option<String> = None;
    // Attention probabilities are 1/n (uniform: W_Q or W_K zero) or irrational
    // (any other scores): exact in f64 only when uniform and n is a power of two.
    let n = model.config.seq_len;
    let softmax = model.config.attention == AttentionKind::Softmax;
    let mut irrational = None;
    let attn_problem = model.weights.blocks.iter().enumerate().find_map(|(l, b)| {
        let uniform = b.heads.iter().all(|h| h.wq.entries.is_empty() || h.wk.entries.is_empty());
        if b.heads.is_empty() || (uniform && n.is_power_of_two()) {
            None
        } else if uniform {
            Some(format!("block {l} averages over n = {n} tokens: weights 1/{n} are not exact in f64"))
        } else if softmax {
            irrational = Some(l);
            Some(format!(
                "block {l} has non-constant attention scores: its softmax weights are irrational, so no float pass \
                 is exact and there is no exact pass to compare with"
            ))
        } else {
            Some(format!(
                "block {l} has non-constant attention scores: under hardmax, rounded scores can tie or split \
                 differently from the exact ones"
            ))
        }
    });
    if irrational.is_some() {
        // The exact engine refuses such a model; the verdict needs no trace.
        r.float_exact = Some(false);
        r.basis = attn_problem.unwrap_or_default();
        return Ok(r);
    }
    let traced = ds.len().min(limit);
    for i in 0..traced {
        let toks: Vec<TokenValue> = prep.seqs[i].iter().map(|&t| prep.tokens[t as usize].clone()).collect();
        let es = eval::trace(&ex, model, &toks, &all)?;
        let fs = eval::trace(&fl, model, &toks, &all)?;
        for (stage, (ec, fc)) in es.iter().zip(&fs).enumerate() {
            for (j, (e, f)) in ec.iter().zip(fc).enumerate() {
                let (ev, fv) = (ex.to_f64(e), fl.to_f64(f));
                if let (eval::ExactCol::Rat(vals), None) = (e, &unrepresentable) {
                    if let Some(v) =
                        vals.iter().find(|v| dashu_ratio::RBig::try_from(v.to_f64().value()).ok().as_ref() != Some(*v))
                    {
                        let st = if stage == 0 { "embedding".to_string() } else { format!("block {}", stage - 1) };
                        unrepresentable = Some(format!(
                            "example {i}, {st}: intermediate {} is not an f64",
                            memcap_core::model::fmt_exact(v)
                        ));
                    }
                }
                for (reg, (a, b)) in ev.iter().zip(&fv).enumerate() {
                    max_abs = max_abs.max(a.abs());
                    if a != b && r.first_state_divergence.is_none() {
                        let st = if stage == 0 { "embedding".to_string() } else { format!("block {}", stage - 1) };
                        let name = model.config.registers.get(reg).cloned().unwrap_or_default();
                        r.first_state_divergence = Some(format!(
                            "example {i}, {st}, register {name}, position {}: exact {a:e} vs f64 {b:e}",
                            j + 1
                        ));
                    }
                }
            }
        }
        let last = (es.last(), fs.last());
        if let (Some(ec), Some(fc)) = last {
            for &k in &prep.needed {
                tot += 1;
                let (pe, pf) = (ex.readout(&ec[k]), fl.readout(&fc[k]));
                let exact_f = memcap_core::model::parse_exact(&pe.value).map(|q| q.to_f64().value()).ok();
                if exact_f.is_some() && exact_f == pf.value.parse::<f64>().ok() && pe.class.is_some() {
                    eq += 1;
                }
            }
        }
    }
    r.examples_traced = traced;
    r.max_intermediate_log2 = Some(if max_abs > 0.0 { max_abs.log2() } else { f64::NEG_INFINITY });
    r.outputs_equal = Some((eq, tot));
    let small = max_abs < 9007199254740992.0;
    let ok = bad == 0 && small && eq == tot && attn_problem.is_none() && unrepresentable.is_none();
    r.float_exact = Some(ok);
    let scope = if traced < ds.len() {
        format!("the first {traced} of {} examples", ds.len())
    } else {
        format!("all {} examples", ds.len())
    };
    r.basis = if ok {
        format!("weights exact in f64; on {scope} every intermediate is below 2^53 and the f64 outputs equal the exact outputs")
    } else if bad > 0 {
        format!("{bad} weights are not representable in f64")
    } else if let Some(p) = attn_problem.as_ref().or(unrepresentable.as_ref()) {
        format!("{p} (runtimes may round differently; f64 outputs equal the exact ones at {eq} of {tot} positions on {scope})")
    } else if !small {
        format!("an exact intermediate reaches 2^{:.1} ≥ 2^53 on {scope}", max_abs.log2())
    } else {
        format!("f64 outputs equal the exact outputs at {eq} of {tot} positions on {scope}")
    };
    Ok(r)
}

/// HF-style config.json for an exported constructed model.
pub fn hf_config(model: &Model, fe: &FloatExactness) -> serde_json::Value {
    let c = &model.config;
    let (kind, dim) = match c.input {
        InputSpec::Ids { vocab } => ("ids", vocab),
        InputSpec::Vectors { d } => ("vectors", d),
    };
    json!({
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
        "torch_dtype": "float64",
        "memcap_config": c,
    })
}
