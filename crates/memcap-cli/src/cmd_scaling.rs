//! `memcap scaling`: construction size over a grid of N and n, fitted log-log slopes.

use crate::args::*;
use anyhow::Result;
use clap::Args;
use memcap_core::model::loglog_slope;
use memcap_core::verify::Arith;
use serde_json::json;
use std::path::Path;

#[derive(Args)]
pub struct ScalingArgs {
    /// Dataset sizes N (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000,100000")]
    ns: Vec<usize>,
    /// Sequence length for the N sweep.
    #[arg(short = 'n', long = "seq-len", default_value_t = 64)]
    seq_len: usize,
    /// Sequence lengths compared at fixed N = --n-fixed (comma-separated; empty to skip).
    #[arg(long, value_delimiter = ',', default_value = "8,512")]
    seq_lens: Vec<usize>,
    /// N for the sequence-length comparison.
    #[arg(long, default_value_t = 10000)]
    n_fixed: usize,
    #[command(flatten)]
    data: RandomIdsArgs,
    /// Also verify every model exactly (slow for large N).
    #[arg(long)]
    verify: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn scaling(a: ScalingArgs) -> Result<Outcome> {
    let mut rows = Vec::new();
    let mut ok = true;
    let mut run = |n_seqs: usize, seq_len: usize| -> Result<serde_json::Value> {
        let ds = random_ids(n_seqs, seq_len, &a.data)?;
        let opts = BuildOpts::defaults(a.data.seed);
        let (built, secs) = build_model(&ds, &opts, Path::new("<generated>"), a.json)?;
        let acc = built.model.accounting();
        let ver = if a.verify { Some(verify_one(&built.model, &ds, Arith::Exact, a.json)?) } else { None };
        if let Some(v) = &ver {
            ok &= v.all_memorized();
        }
        let row = json!({
            "N": n_seqs, "n": seq_len, "map": built.info.map, "blocks": acc.blocks,
            "params_dense": acc.params_dense, "params_nonzero": acc.params_nonzero,
            "max_weight_bits": acc.max_weight_bits, "total_bits": acc.total_bits,
            "information_limit_bits": ds.label_bits(), "construct_seconds": secs,
            "memorized": ver.as_ref().map(|v| v.memorized), "verify_seconds": ver.as_ref().map(|v| v.seconds),
        });
        if !a.json {
            println!(
                "{:>8} {:>5} {:>4} {:>7} {:>11} {:>10} {:>9} {:>11} {:>11} {:>8.2} {:>10}",
                n_seqs,
                seq_len,
                built.info.map,
                acc.blocks,
                acc.params_dense,
                acc.params_nonzero,
                acc.max_weight_bits,
                acc.total_bits,
                format!("{:.0}", ds.label_bits()),
                secs,
                ver.as_ref().map_or("-".to_string(), |v| format!("{}/{} {:.1}s", v.memorized, v.examples, v.seconds))
            );
        }
        Ok(row)
    };
    if !a.json {
        println!(
            "{:>8} {:>5} {:>4} {:>7} {:>11} {:>10} {:>9} {:>11} {:>11} {:>8} {:>10}",
            "N", "n", "map", "blocks", "dense", "nonzero", "max bits", "total bits", "N·log2 C", "build s", "exact"
        );
    }
    for &n in &a.ns {
        rows.push(run(n, a.seq_len)?);
    }
    let pts = |key: &str, rows: &[serde_json::Value]| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r["N"].as_f64().unwrap_or(1.0), r[key].as_f64().unwrap_or(1.0))).collect()
    };
    let slope_nnz = loglog_slope(&pts("params_nonzero", &rows));
    let slope_dense = loglog_slope(&pts("params_dense", &rows));
    let slope_depth = loglog_slope(&pts("blocks", &rows));
    let mut n_rows = Vec::new();
    for &len in &a.seq_lens {
        n_rows.push(run(a.n_fixed, len)?);
    }
    let n_ratio = match (n_rows.first(), n_rows.last()) {
        (Some(f), Some(l)) if n_rows.len() > 1 => {
            Some(l["params_nonzero"].as_f64().unwrap_or(0.0) / f["params_nonzero"].as_f64().unwrap_or(1.0))
        }
        _ => None,
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "rows": rows, "length_rows": n_rows,
                "slope_nonzero_vs_N": slope_nnz, "slope_dense_vs_N": slope_dense, "slope_blocks_vs_N": slope_depth,
                "nonzero_ratio_longest_vs_shortest_n": n_ratio,
            }))?
        );
    } else {
        let f = |s: Option<f64>| s.map_or("-".into(), |v| format!("{v:.3}"));
        println!(
            "\nfitted log-log slope vs N: nonzero params {}, dense params {}, blocks {}  (√N = 0.5, N = 1.0)",
            f(slope_nnz),
            f(slope_dense),
            f(slope_depth)
        );
        if let Some(r) = n_ratio {
            println!(
                "nonzero params at n = {} vs n = {} (N = {}): ratio {r:.3}",
                a.seq_lens.last().unwrap_or(&0),
                a.seq_lens.first().unwrap_or(&0),
                a.n_fixed
            );
        }
    }
    Ok(if ok { Outcome::Ok } else { Outcome::NotMemorized })
}
