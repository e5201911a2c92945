//! `memcap scaling`: construction size over a grid of N and n, fitted log-log slopes.

use crate::args::*;
use anyhow::Result;
use clap::Args;
use memcap_core::model::loglog_slope;
use memcap_core::verify::Arith;
use memcap_core::Precision;
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
    /// Sequence lengths compared at fixed N = --n-fixed (comma-separated;
    /// `--seq-lens` with no value skips the comparison).
    #[arg(long, value_delimiter = ',', default_value = "8,512", num_args = 0..)]
    seq_lens: Vec<usize>,
    /// N for the sequence-length comparison.
    #[arg(long, default_value_t = 10000)]
    n_fixed: usize,
    #[command(flatten)]
    data: RandomIdsArgs,
    /// Precisions to build at (comma-separated: exact, f64, f32). Several give
    /// the parameter–precision trade-off (docs/construction.md §15); with -o
    /// its figure is written.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "exact")]
    precision: Vec<Precision>,
    /// Folder for precision_tradeoff.{svg,png,csv,json} (the rows and the
    /// trade-off figure: parameters and total bits vs N per precision, beside
    /// N·log2 C / B).
    #[arg(short, long)]
    out: Option<std::path::PathBuf>,
    /// Also verify every model exactly (slow for large N), and certify the
    /// float ones in their dtype.
    #[arg(long)]
    verify: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn scaling(a: ScalingArgs) -> Result<Outcome> {
    let mut rows = Vec::new();
    let mut ok = true;
    if a.precision.is_empty() {
        return Err(crate::io::InputError("--precision needs at least one of exact, f64, f32".into()).into());
    }
    if let Some(o) = &a.out {
        crate::io::check_output_dir(o, "-o")?;
    }
    let mut tradeoff = Vec::new();
    let mut run = |n_seqs: usize, seq_len: usize, precision: Precision| -> Result<serde_json::Value> {
        let ds = random_ids(n_seqs, seq_len, &a.data)?;
        let opts = BuildOpts { precision, ..BuildOpts::defaults(a.data.seed) };
        let at = format!("<generated N = {n_seqs}, n = {seq_len}, precision {precision:?}>");
        let (built, secs) = build_model(&ds, &opts, Path::new(&at), a.json)?;
        let acc = built.model.accounting();
        let ver = if a.verify { Some(verify_one(&built.model, &ds, Arith::Exact, a.json)?) } else { None };
        if let Some(v) = &ver {
            ok &= v.all_memorized();
        }
        let cert = match (a.verify, precision.float_type()) {
            (true, Some(ft)) => Some(memcap_core::certificate::certify(&built.model, &ds, ft)?),
            _ => None,
        };
        if let Some(c) = &cert {
            ok &= c.certified;
        }
        let pname = precision.name().to_string();
        tradeoff.push(memcap_report::tradeoff::TradeoffRow {
            n_seqs,
            seq_len,
            precision: pname.clone(),
            bits_per_weight: precision.float_type().map(|f| f.mantissa_bits()),
            params_nonzero: acc.params_nonzero,
            params_dense: acc.params_dense,
            blocks: acc.blocks,
            max_weight_bits: acc.max_weight_bits,
            total_bits: acc.total_bits,
            label_bits: ds.label_bits(),
        });
        let row = json!({
            "N": n_seqs, "n": seq_len, "precision": pname, "certified": cert.as_ref().map(|c| c.certified),
            "map": built.info.map, "blocks": acc.blocks,
            "params_dense": acc.params_dense, "params_nonzero": acc.params_nonzero,
            "max_weight_bits": acc.max_weight_bits, "total_bits": acc.total_bits,
            "information_limit_bits": ds.label_bits(), "construct_seconds": secs,
            "memorized": ver.as_ref().map(|v| v.memorized), "verify_seconds": ver.as_ref().map(|v| v.seconds),
        });
        if !a.json {
            println!(
                "{:>8} {:>5} {:>5} {:>10} {:>7} {:>11} {:>10} {:>9} {:>11} {:>11} {:>8.2} {:>10}",
                n_seqs,
                seq_len,
                pname,
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
            "{:>8} {:>5} {:>5} {:>10} {:>7} {:>11} {:>10} {:>9} {:>11} {:>11} {:>8} {:>10}",
            "N",
            "n",
            "prec",
            "map",
            "blocks",
            "dense",
            "nonzero",
            "max bits",
            "total bits",
            "N·log2 C",
            "build s",
            "exact"
        );
    }
    // A point that cannot be built (say, a precision that cannot serve that N)
    // is a row with its error: the other points are still measured, written
    // and fitted, and the exit code is 1.
    let mut failed = Vec::new();
    let mut point = |n_seqs: usize,
                     seq_len: usize,
                     p: Precision,
                     run: &mut dyn FnMut(usize, usize, Precision) -> Result<serde_json::Value>| {
        run(n_seqs, seq_len, p).unwrap_or_else(|e| {
            let pname = p.name();
            let msg = format!("{e:#}");
            if !a.json {
                println!("{n_seqs:>8} {seq_len:>5} {pname:>5}  failed: {msg}");
            }
            failed.push(format!("N = {n_seqs}, n = {seq_len}, {pname}: {msg}"));
            json!({"N": n_seqs, "n": seq_len, "precision": pname, "error": msg})
        })
    };
    for &p in &a.precision {
        for &n in &a.ns {
            rows.push(point(n, a.seq_len, p, &mut run));
        }
    }
    let mut n_rows = Vec::new();
    for &len in &a.seq_lens {
        n_rows.push(point(a.n_fixed, len, a.precision[0], &mut run));
    }
    let first = a.precision[0];
    let first_name = first.name();
    let rows_first: Vec<serde_json::Value> = rows.iter().filter(|r| r["precision"] == first_name).cloned().collect();
    // Fitted on the points that were built (a failed row has no sizes).
    let pts = |key: &str, rows: &[serde_json::Value]| -> Vec<(f64, f64)> {
        rows.iter().filter_map(|r| Some((r["N"].as_f64()?, r[key].as_f64()?))).collect()
    };
    let slope_nnz = loglog_slope(&pts("params_nonzero", &rows_first));
    let slope_dense = loglog_slope(&pts("params_dense", &rows_first));
    let slope_depth = loglog_slope(&pts("blocks", &rows_first));
    let slopes_by_precision: Vec<serde_json::Value> = a
        .precision
        .iter()
        .map(|p| {
            let name = p.name();
            let rs: Vec<serde_json::Value> = rows.iter().filter(|r| r["precision"] == name).cloned().collect();
            json!({"precision": name, "slope_nonzero_vs_N": loglog_slope(&pts("params_nonzero", &rs))})
        })
        .collect();
    if let Some(o) = &a.out {
        let only_n: Vec<_> = tradeoff.iter().filter(|r| r.seq_len == a.seq_len).cloned().collect();
        let r = memcap_report::tradeoff::render(&only_n)?;
        crate::io::write_atomic(&o.join("precision_tradeoff.svg"), r.svg.as_bytes())?;
        crate::io::write_atomic(&o.join("precision_tradeoff.png"), &r.png)?;
        crate::io::write_atomic(&o.join("precision_tradeoff.csv"), r.csv.as_bytes())?;
        crate::io::write_atomic(&o.join("precision_tradeoff.json"), serde_json::to_string_pretty(&only_n)?.as_bytes())?;
        if !a.json {
            println!("wrote {}/precision_tradeoff.{{svg,png,csv,json}}", o.display());
        }
    }
    let built_n: Vec<&serde_json::Value> = n_rows.iter().filter(|r| r.get("error").is_none()).collect();
    let n_ratio = match (built_n.first(), built_n.last()) {
        (Some(f), Some(l)) if built_n.len() > 1 => {
            Some(l["params_nonzero"].as_f64().unwrap_or(0.0) / f["params_nonzero"].as_f64().unwrap_or(1.0))
        }
        _ => None,
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "rows": rows, "length_rows": n_rows, "slopes_by_precision": slopes_by_precision,
                "slope_nonzero_vs_N": slope_nnz, "slope_dense_vs_N": slope_dense, "slope_blocks_vs_N": slope_depth,
                "nonzero_ratio_longest_vs_shortest_n": n_ratio,
            }))?
        );
    } else {
        let f = |s: Option<f64>| s.map_or("-".into(), |v| format!("{v:.3}"));
        println!(
            "\nfitted log-log slope vs N ({first_name}): nonzero params {}, dense params {}, blocks {}  (√N = 0.5, N = 1.0)",
            f(slope_nnz),
            f(slope_dense),
            f(slope_depth)
        );
        for s in slopes_by_precision.iter().skip(1) {
            println!(
                "fitted log-log slope vs N ({}): nonzero params {}",
                s["precision"].as_str().unwrap_or(""),
                f(s["slope_nonzero_vs_N"].as_f64())
            );
        }
        if let Some(r) = n_ratio {
            println!(
                "nonzero params at n = {} vs n = {} (N = {}): ratio {r:.3}",
                a.seq_lens.last().unwrap_or(&0),
                a.seq_lens.first().unwrap_or(&0),
                a.n_fixed
            );
        }
    }
    if !failed.is_empty() {
        eprintln!("{} of {} points failed (kept as rows with their error):", failed.len(), rows.len() + n_rows.len());
        for f in &failed {
            eprintln!("  {f}");
        }
    }
    Ok(if ok && failed.is_empty() { Outcome::Ok } else { Outcome::NotMemorized })
}
