//! `memcap verify`: run the stored weights on DATA in exact arithmetic (and f64/f32).

use crate::args::*;
use crate::io::{read_dataset, read_model, InputError};
use anyhow::{Context, Result};
use clap::Args;
use memcap_core::parse::ParseOptions;
use memcap_core::verify::{first_divergence, merge_shards, verify_shard, Arith, ShardReport};
use memcap_core::Dedupe;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct VerifyArgs {
    #[command(subcommand)]
    merge: Option<VerifyCmd>,
    /// Model JSON written by `memcap construct`.
    #[arg(required = true)]
    model: Option<PathBuf>,
    /// Dataset (.jsonl or .csv).
    #[arg(required = true)]
    data: Option<PathBuf>,
    /// Verify only shard I of K (examples i with i mod K = I) and write a
    /// partial result to -o; `memcap verify merge` combines the K files.
    /// Exact arithmetic only (or the one of --f64/--f32).
    #[arg(long, value_name = "I/K", requires = "out")]
    shard: Option<String>,
    /// Shard result file (with --shard).
    #[arg(short, long, requires = "shard")]
    out: Option<PathBuf>,
    #[command(flatten)]
    limits: crate::args::ModelLimitArgs,
    /// Exact arithmetic (big integers and rationals): the only basis for a "memorized" claim.
    #[arg(long)]
    exact: bool,
    /// f64 forward pass of the same weights.
    #[arg(long)]
    f64: bool,
    /// f32 forward pass of the same weights.
    #[arg(long)]
    f32: bool,
    /// Also run the weights through memcap-train's Transformer forward
    /// pass (candle; the one trained models, `memcap export` and
    /// python/memcap_ref.py run) in this dtype, and count the examples whose
    /// every output equals the label. A float run beside the exact one:
    /// only `--precision` constructions are certified to pass it.
    #[arg(long, value_enum, value_name = "DTYPE")]
    transformer_forward: Option<memcap_core::certificate::FloatType>,
    /// Apply the same dedupe policy as at construction.
    #[arg(long, value_enum, default_value = "error")]
    dedupe: Dedupe,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `memcap verify merge`.
#[derive(clap::Subcommand)]
enum VerifyCmd {
    /// Combine the shard results of one verification (all of 0..K, same model and data).
    Merge {
        /// Shard result files written by `memcap verify MODEL DATA --shard I/K -o FILE`.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || InputError(format!("--shard {s:?}: expected I/K with 0 <= I < K, e.g. 0/4"));
    let (i, k) = s.split_once('/').ok_or_else(bad)?;
    let (i, k): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, k.trim().parse().map_err(|_| bad())?);
    if k == 0 || i >= k {
        return Err(bad().into());
    }
    Ok((i, k))
}

fn merge(files: &[PathBuf], json_out: bool) -> Result<Outcome> {
    let mut parts = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read shard {}", f.display()))?;
        let bad = |e: serde_json::Error| InputError(format!("{}: not a memcap verify shard result: {e}", f.display()));
        let v: serde_json::Value = serde_json::from_str(&text).map_err(bad)?;
        // A `memcap sweep` record of a verify task carries the shard under
        // "result" and its wall time under "timing".
        let p: ShardReport = if v.get("memcap_sweep_result").is_some() {
            if v["task"]["kind"] != "verify" {
                return Err(InputError(format!(
                    "{}: a sweep record of kind {}, not a verify shard",
                    f.display(),
                    v["task"]["kind"]
                ))
                .into());
            }
            let mut p: ShardReport = serde_json::from_value(v["result"].clone()).map_err(bad)?;
            p.report.seconds = v["timing"]["verify_seconds"].as_f64().unwrap_or(0.0);
            p
        } else {
            serde_json::from_value(v).map_err(bad)?
        };
        parts.push(p);
    }
    let r = merge_shards(&parts).map_err(|e| {
        use memcap_core::verify::ShardError as E;
        let name = |i: &usize| files.get(*i).map_or_else(|| format!("result {i}"), |f| f.display().to_string());
        let at = match &e {
            E::Mismatch { index, .. } => format!("{}: ", name(index)),
            E::Format { index } | E::Inconsistent { index, .. } => format!("{}: ", name(index)),
            E::Duplicate { first, index, .. } => format!("{} and {}: ", name(first), name(index)),
            _ => String::new(),
        };
        let first = match &e {
            E::Mismatch { .. } => format!(" (the first is {})", name(&0)),
            _ => String::new(),
        };
        InputError(format!("{at}{e}{first}"))
    })?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({"report": r, "shards": parts.len()}))?);
    } else {
        println!("merged {} shard{}", parts.len(), if parts.len() == 1 { "" } else { "s" });
        print_verify(&r, None);
    }
    Ok(if r.arithmetic != Arith::Exact || r.all_memorized() { Outcome::Ok } else { Outcome::NotMemorized })
}

pub fn verify(a: VerifyArgs) -> Result<Outcome> {
    if let Some(VerifyCmd::Merge { shards, json }) = &a.merge {
        return merge(shards, *json);
    }
    let (Some(model_path), Some(data_path)) = (&a.model, &a.data) else {
        return Err(InputError("give MODEL and DATA (or `memcap verify merge SHARDS…`)".into()).into());
    };
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    if shard.is_some() && [a.exact, a.f64, a.f32].iter().filter(|&&x| x).count() > 1 {
        return Err(InputError("--shard runs one arithmetic: give at most one of --exact, --f64, --f32".into()).into());
    }
    if let Some(out) = &a.out {
        crate::io::check_output_file(out, "-o")?;
        crate::io::check_not_input(out, &[model_path, data_path], "-o")?;
    }
    let model = read_model(model_path, &a.limits.limits())?;
    let opts = ParseOptions {
        vocab: match model.config.input {
            memcap_core::model::InputSpec::Ids { vocab } => Some(vocab),
            _ => None,
        },
        num_classes: Some(model.config.num_classes),
        // The model's vocabulary already passed the model's size limits.
        max_vocab: Some(usize::MAX),
    };
    let ds = read_dataset(data_path, opts)?;
    let ds = resolve(ds, model.config.positional, a.dedupe, data_path, a.json)?;
    if let (Some((i, k)), Some(out)) = (shard, &a.out) {
        let arith = if a.f64 {
            Arith::F64
        } else if a.f32 {
            Arith::F32
        } else {
            Arith::Exact
        };
        let (mh, dh) = (memcap_sweep::exec::model_digest(&model), memcap_sweep::exec::data_digest(&ds));
        let bars = crate::progress::Bars::new(!a.json);
        let r = verify_shard(&model, &ds, arith, i, k, &mh, &dh, &bars).map_err(|e| InputError(e.to_string()))?;
        bars.finish();
        crate::io::write_atomic(out, format!("{}\n", serde_json::to_string_pretty(&r)?).as_bytes())?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            println!("shard {i}/{k}: {} of {} examples", r.report.examples, r.examples_total);
            print_verify(&r.report, None);
            println!("wrote {}", out.display());
        }
        return Ok(if arith != Arith::Exact || r.report.all_memorized() { Outcome::Ok } else { Outcome::NotMemorized });
    }
    let mut ariths = Vec::new();
    if a.exact || (!a.f64 && !a.f32) {
        ariths.push(Arith::Exact);
    }
    if a.f64 {
        ariths.push(Arith::F64);
    }
    if a.f32 {
        ariths.push(Arith::F32);
    }
    let mut results = Vec::new();
    let mut exact_ok = true;
    for ar in ariths {
        let r = verify_one(&model, &ds, ar, a.json)
            .with_context(|| format!("model {} on data {}", model_path.display(), data_path.display()))?;
        if ar == Arith::Exact && !r.all_memorized() {
            exact_ok = false;
        }
        // For float runs: trace the first example whose float state leaves the exact one.
        let div = if ar != Arith::Exact {
            let probe = r.failures.first().map_or(0, |f| f.example);
            first_divergence(&model, &ds, probe, ar).map_err(|e| InputError(e.to_string()))?
        } else {
            None
        };
        if !a.json {
            print_verify(&r, div.as_ref());
        }
        results.push(json!({"report": r, "first_divergence": div}));
    }
    let forward = match a.transformer_forward {
        Some(dtype) => Some(transformer_forward(&model, &ds, dtype, a.json)?),
        None => None,
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "results": results,
                "transformer_forward": forward,
                "accounting": accounting_json(&model, &ds),
            }))?
        );
    }
    Ok(if exact_ok { Outcome::Ok } else { Outcome::NotMemorized })
}

/// `--transformer-forward`: the model in memcap-train's forward pass, every
/// example, outputs compared with the labels (ignored positions skipped).
fn transformer_forward(
    model: &memcap_core::Model,
    ds: &memcap_core::Dataset,
    dtype: memcap_core::certificate::FloatType,
    quiet: bool,
) -> Result<serde_json::Value> {
    let dt = memcap_train::model::candle_dtype(dtype);
    memcap_train::ensure_single_threaded_ops();
    let start = std::time::Instant::now();
    let bars = crate::progress::Bars::new(!quiet);
    memcap_core::eval::Progress::start(&bars, "transformer forward", ds.len() as u64);
    let mut done = 0;
    let outs = memcap_train::model::construction_outputs(model, ds, dt, 256, &mut |k| {
        memcap_core::eval::Progress::inc(&bars, (k - done) as u64);
        done = k;
    })
    .map_err(|e| InputError(format!("transformer forward: {e}")))?;
    bars.finish();
    let memorized = outs
        .iter()
        .zip(ds.label_rows())
        .filter(|(o, y)| o.iter().zip(y.iter()).all(|(&v, &l)| l == memcap_core::data::IGNORE || v == f64::from(l)))
        .count();
    let seconds = start.elapsed().as_secs_f64();
    if !quiet {
        println!(
            "transformer forward ({}, memcap-train/candle): {memorized}/{} examples with every output equal to the label ({seconds:.1} s)",
            dtype.name(),
            ds.len()
        );
    }
    Ok(json!({"dtype": dtype.name(), "examples": ds.len(), "memorized": memorized, "seconds": seconds}))
}
