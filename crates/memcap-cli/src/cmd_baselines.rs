//! `memcap baselines`: lookup and flattened-input FFN memorizers (built and checked exactly),
//! bound formulas, memcap's construction and the trained minimum in one table.

use crate::args::Outcome;
use crate::io::{read_dataset, InputError};
use anyhow::{Context, Result};
use clap::Args;
use memcap_core::baselines::{self, BaselineNet, BaselineSize};
use memcap_core::model::lower_bound_params;
use memcap_core::parse::ParseOptions;
use memcap_core::{construct, ConstructConfig, Dataset};
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;

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
        let r = memcap_core::verify(&built.model, &ds, memcap_core::Arith::Exact, &memcap_core::eval::NoProgress)
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
