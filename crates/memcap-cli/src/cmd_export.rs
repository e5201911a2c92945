//! `memcap export` (a model as safetensors + HF-style config.json, or as
//! ONNX, for PyTorch/onnxruntime) and `memcap baselines` (the paper's
//! comparison: lookup and flattened-input FFN memorizers, published bound
//! formulas, memcap's construction and the trained minimum in one table).
//!
//! Glue only: the float-exactness decision runs memcap-core's exact and f64
//! engines side by side; the baselines are built and checked by
//! `memcap_core::baselines`.

use crate::commands::{DedupeArg, Outcome};
use crate::io::{read_dataset, read_model, write_atomic, InputError};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use memcap_core::baselines::{self, BaselineNet, BaselineSize};
use memcap_core::eval::{self, Engine, ExactEngine, FloatEngine, Prepared, TokenValue};
use memcap_core::model::{lower_bound_params, InputSpec, Model};
use memcap_core::parse::ParseOptions;
use memcap_core::{construct, ConstructConfig, Dataset, Dedupe};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum, PartialEq, Debug)]
pub enum ExportFormat {
    /// DIR/model.safetensors (f64, PyTorch layout) + DIR/config.json.
    Safetensors,
    /// DIR/model.onnx (opset 13, f64) + DIR/config.json.
    Onnx,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Model JSON written by `memcap construct`, or a `memcap train` run folder
    /// (safetensors only: copies its weights and config; with --data also writes
    /// logits.json, memcap's own logits, for the PyTorch comparison).
    model: PathBuf,
    #[arg(long, value_enum, default_value = "safetensors")]
    format: ExportFormat,
    /// Output directory (created; files are written atomically).
    #[arg(short, long)]
    out: PathBuf,
    /// Dataset to decide float-exactness on (f64 forward pass vs exact, all intermediates).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Inconsistent labels in --data: error, or keep the majority label.
    #[arg(long, value_enum, default_value = "error")]
    dedupe: DedupeArg,
    /// Trace at most this many examples of --data register by register (exact vs f64).
    #[arg(long, default_value_t = 1000)]
    check_limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Whether the f64 export computes exactly what the exact model computes.
#[derive(Debug, Clone, Serialize)]
pub struct FloatExactness {
    /// true: every weight is an f64, every exact intermediate on the checked
    /// examples is below 2^53 in magnitude and the f64 pass gives the exact
    /// outputs; false: one of these fails; None: weights are exact but no
    /// dataset was given to check intermediates on.
    pub float_exact: Option<bool>,
    pub weights_inexact_f64: u64,
    /// log2 of the largest |exact intermediate| seen (registers after every stage, every position).
    pub max_intermediate_log2: Option<f64>,
    pub examples_traced: usize,
    pub examples: usize,
    /// f64 outputs equal to the exact outputs, over the traced examples' claimed positions.
    pub outputs_equal: Option<(usize, usize)>,
    /// First stage where an f64 register differs from the exact value rounded to f64.
    pub first_state_divergence: Option<String>,
    pub basis: String,
}

/// Decides float-exactness (see [`FloatExactness`]).
pub fn float_exactness(model: &Model, ds: Option<&Dataset>, limit: usize) -> Result<FloatExactness> {
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
    let prep = Prepared::new(model, ds).map_err(|e| InputError(e.to_string()))?;
    let ex = ExactEngine::new(model);
    let fl = FloatEngine::<f64>::new(model);
    let all: Vec<usize> = (0..ds.seq_len()).collect();
    let (mut max_abs, mut eq, mut tot) = (0f64, 0usize, 0usize);
    // Rationals that f64 cannot hold (e.g. an average over n = 3 tokens).
    let mut unrepresentable: Option<String> = None;
    // Attention probabilities are 1/n (uniform: W_Q or W_K zero) or irrational
    // (any other scores): exact in f64 only when uniform and n is a power of two.
    let n = model.config.seq_len;
    let attn_problem = model.weights.blocks.iter().enumerate().find_map(|(l, b)| {
        let uniform = b.heads.iter().all(|h| h.wq.entries.is_empty() || h.wk.entries.is_empty());
        if b.heads.is_empty() || (uniform && n.is_power_of_two()) {
            None
        } else if uniform {
            Some(format!("block {l} averages over n = {n} tokens: weights 1/{n} are not exact in f64"))
        } else {
            Some(format!("block {l} has non-constant attention scores: softmax weights are not exact in f64"))
        }
    });
    let traced = ds.len().min(limit);
    for i in 0..traced {
        let toks: Vec<TokenValue> = prep.seqs[i].iter().map(|&t| prep.tokens[t as usize].clone()).collect();
        let es = eval::trace(&ex, model, &toks, &all).map_err(|e| InputError(e.to_string()))?;
        let fs = eval::trace(&fl, model, &toks, &all).map_err(|e| InputError(e.to_string()))?;
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

fn read_data_for(model: &Model, path: &Path, dedupe: DedupeArg) -> Result<Dataset> {
    let opts = ParseOptions {
        vocab: match model.config.input {
            InputSpec::Ids { vocab } => Some(vocab),
            InputSpec::Vectors { .. } => None,
        },
        num_classes: Some(model.config.num_classes),
    };
    let ds = read_dataset(path, opts)?;
    let policy = if dedupe == DedupeArg::Majority { Dedupe::Majority } else { Dedupe::Error };
    let (ds, _) = ds
        .resolve_conflicts(model.config.positional, policy)
        .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
    Ok(ds)
}

pub fn export(a: ExportArgs) -> Result<Outcome> {
    if a.model.is_dir() {
        return export_trained(&a);
    }
    let model = read_model(&a.model)?;
    let ds = a.data.as_deref().map(|p| read_data_for(&model, p, a.dedupe)).transpose()?;
    let fe = float_exactness(&model, ds.as_ref(), a.check_limit)?;
    let cfg = hf_config(&model, &fe);
    let weights = match a.format {
        ExportFormat::Safetensors => a.out.join("model.safetensors"),
        ExportFormat::Onnx => a.out.join("model.onnx"),
    };
    let bytes = match a.format {
        ExportFormat::Safetensors => crate::export::to_safetensors(&model)?,
        ExportFormat::Onnx => {
            let meta = vec![
                ("float_exact".to_string(), json!(fe.float_exact).to_string()),
                ("memcap_config".to_string(), serde_json::to_string(&model.config)?),
            ];
            crate::onnx::to_onnx(&model, &meta)
        }
    };
    write_atomic(&weights, &bytes).with_context(|| format!("writing {}", weights.display()))?;
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
        println!("float exactness  {verdict}: {}", fe.basis);
        if let Some(l) = fe.max_intermediate_log2 {
            println!(
                "                 largest exact intermediate 2^{l:.1}; weights inexact in f64: {}",
                fe.weights_inexact_f64
            );
        }
        if let Some(d) = &fe.first_state_divergence {
            println!("                 first f64 state divergence: {d}");
        }
    }
    Ok(Outcome::Ok)
}

/// A training run folder: copy `config.json` + `model.safetensors` and, with
/// `--data`, write `logits.json` computed by memcap-train's candle forward
/// pass with the stored weights loaded into its variables.
fn export_trained(a: &ExportArgs) -> Result<Outcome> {
    use candle_core::{Device, Tensor};
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
    let st_bytes = std::fs::read(a.model.join("model.safetensors"))
        .with_context(|| format!("cannot read {}/model.safetensors", a.model.display()))?;
    write_atomic(&a.out.join("model.safetensors"), &st_bytes)?;
    write_atomic(&a.out.join("config.json"), cfg_text.as_bytes())?;
    let mut files = vec![a.out.join("model.safetensors"), a.out.join("config.json")];
    if let Some(data) = &a.data {
        memcap_train::ensure_single_threaded_ops();
        let st = safetensors::SafeTensors::deserialize(&st_bytes)
            .map_err(|e| InputError(format!("{}/model.safetensors: {e}", a.model.display())))?;
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        let model = memcap_train::model::Model::new(&mcfg, &mut rng).map_err(|e| InputError(e.to_string()))?;
        for v in model.vars() {
            let t = st
                .tensor(&v.name)
                .map_err(|e| InputError(format!("{}/model.safetensors: {}: {e}", a.model.display(), v.name)))?;
            let vals: Vec<f32> =
                t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let mut tensor = Tensor::from_vec(vals, t.shape(), &Device::Cpu)?;
            if v.transposed {
                tensor = tensor.t()?.contiguous()?;
            }
            v.var.set(&tensor).with_context(|| format!("loading {}", v.name))?;
        }
        let ds = read_dataset(data, ParseOptions::default())?;
        let seqs = match &ds.inputs {
            memcap_core::Inputs::Ids { seqs, .. } => seqs,
            _ => return Err(InputError(format!("{}: trained models take token ids", data.display())).into()),
        };
        let flat: Vec<u32> = seqs.iter().flatten().copied().collect();
        let tokens = Tensor::from_vec(flat, (seqs.len(), ds.seq_len()), &Device::Cpu)?;
        let logits: Vec<Vec<f32>> = model.logits(&tokens, true).map_err(|e| InputError(e.to_string()))?.to_vec2()?;
        let path = a.out.join("logits.json");
        write_atomic(&path, serde_json::to_string(&json!({"data": data, "logits": logits}))?.as_bytes())?;
        println!("memcap logits for {} examples ({} rows) -> {}", ds.len(), logits.len(), path.display());
        files.push(path);
    }
    println!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(Outcome::Ok)
}

// ------------------------------------------------------------------------
// baselines

#[derive(Args)]
pub struct BaselinesArgs {
    /// Dataset (.jsonl or .csv; token ids, next-token for the built baselines).
    data: PathBuf,
    /// Seed of the random projections and of memcap's construction.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Smallest trained model that memorized DATA (parameters), e.g. from `memcap capacity`.
    #[arg(long)]
    trained_min: Option<u64>,
    /// Read the trained minimum from a capacity report (capacity.json, field min_params).
    #[arg(long)]
    capacity: Option<PathBuf>,
    /// Skip the exact check of the built networks.
    #[arg(long)]
    no_verify: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    model: String,
    kind: &'static str,
    params_dense: Option<u64>,
    params_nonzero: Option<u64>,
    /// Order value of a bound formula (no constants or logs).
    order: Option<f64>,
    depth: Option<usize>,
    max_weight_bits: Option<usize>,
    memorized: Option<String>,
}

fn built_row(net: &BaselineNet, s: BaselineSize, ds: &Dataset, verify: bool) -> Row {
    let memorized = verify.then(|| format!("{}/{}", net.count_memorized(ds), ds.len()));
    Row {
        model: s.name,
        kind: "built",
        params_dense: Some(s.params_dense),
        params_nonzero: Some(s.params_nonzero),
        order: None,
        depth: Some(s.depth),
        max_weight_bits: Some(s.max_weight_bits),
        memorized,
    }
}

pub fn baselines(a: BaselinesArgs) -> Result<Outcome> {
    let ds = read_dataset(&a.data, ParseOptions::default())?;
    let (big_n, n, d) = (ds.len(), ds.seq_len(), ds.input_dim());
    let mut rows = Vec::new();
    let mut all_ok = true;
    // memcap's construction (the paper's, reconstructed).
    let built = construct(&ds, &ConstructConfig { seed: a.seed, ..Default::default() })
        .map_err(|e| InputError(format!("{}: {e}", a.data.display())))?;
    let acc = built.model.accounting();
    let memorized = if a.no_verify {
        None
    } else {
        let r = memcap_core::verify(&built.model, &ds, memcap_core::Arith::Exact, &eval::NoProgress)
            .map_err(|e| InputError(e.to_string()))?;
        all_ok &= r.all_memorized();
        Some(format!("{}/{}", r.memorized, r.examples))
    };
    rows.push(Row {
        model: format!("memcap construction ({}, one attention layer)", built.info.map),
        kind: "built",
        params_dense: Some(acc.params_dense),
        params_nonzero: Some(acc.params_nonzero),
        order: None,
        depth: Some(acc.blocks),
        max_weight_bits: Some(acc.max_weight_bits),
        memorized,
    });
    let mut notes = Vec::new();
    for which in ["lookup", "flat"] {
        let net = match which {
            "lookup" => baselines::lookup_memorizer(&ds, a.seed),
            _ => baselines::flat_ffn_memorizer(&ds, a.seed),
        };
        match net {
            Ok(net) => {
                let s = net.size();
                let row = built_row(&net, s, &ds, !a.no_verify);
                if let Some(m) = &row.memorized {
                    all_ok &= *m == format!("{big_n}/{big_n}");
                }
                rows.push(row);
            }
            Err(e) => notes.push(format!("{which} baseline not built: {e}")),
        }
    }
    let b = baselines::bounds(big_n, n, d);
    for (name, v) in [
        ("Kim et al. 2023 bound  d + n + √(nN)", b.kim2023),
        ("this paper, next-token  d + √N", b.ks_next_token),
        ("this paper, seq2seq  d + √(nN)", b.ks_seq2seq),
        ("lower bound order  √(N / log2 N)", lower_bound_params(big_n)),
    ] {
        rows.push(Row {
            model: name.into(),
            kind: "formula",
            params_dense: None,
            params_nonzero: None,
            order: Some(v),
            depth: None,
            max_weight_bits: None,
            memorized: None,
        });
    }
    let trained = match (&a.capacity, a.trained_min) {
        (_, Some(p)) => Some(p),
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
            let p = v.get("min_params").and_then(|p| p.as_u64());
            if p.is_none() {
                notes.push(format!("{}: no memorizing size found (min_params is null)", path.display()));
            }
            p
        }
        _ => None,
    };
    match trained {
        Some(p) => rows.push(Row {
            model: "trained minimum (gradient descent)".into(),
            kind: "trained",
            params_dense: Some(p),
            params_nonzero: None,
            order: None,
            depth: None,
            max_weight_bits: None,
            memorized: None,
        }),
        None => notes.push(
            "trained minimum: not given (pass --trained-min P or --capacity capacity.json from `memcap capacity`)"
                .into(),
        ),
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"N": big_n, "n": n, "d": d, "rows": rows, "notes": notes}))?
        );
    } else {
        println!(
            "dataset N = {big_n}, n = {n}, d = {d} (d = vocabulary for token ids; flattened input n·d = {})",
            n * d
        );
        println!(
            "{:<58} {:>8} {:>12} {:>10} {:>7} {:>6} {:>12}",
            "model", "kind", "dense", "nonzero", "depth", "bits", "exact"
        );
        let f = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        for r in &rows {
            let dense = match r.order {
                Some(o) => format!("~{o:.0}"),
                None => f(r.params_dense),
            };
            println!(
                "{:<58} {:>8} {:>12} {:>10} {:>7} {:>6} {:>12}",
                r.model,
                r.kind,
                dense,
                f(r.params_nonzero),
                r.depth.map_or("-".into(), |v| v.to_string()),
                r.max_weight_bits.map_or("-".into(), |v| v.to_string()),
                r.memorized.clone().unwrap_or_else(|| "-".into())
            );
        }
        println!("formula rows are orders (no constants, no log factors), to compare growth, not exact counts");
        for note in &notes {
            println!("note: {note}");
        }
    }
    Ok(if all_ok { Outcome::Ok } else { Outcome::NotMemorized })
}
