//! `memcap demo`: gen → construct → verify on a built-in default.

use crate::args::*;
use crate::io::InputError;
use anyhow::{Context, Result};
use clap::Args;
use memcap_core::model::Model;
use memcap_core::verify::{first_divergence, Arith, VerifyReport};
use serde_json::json;
use std::path::Path;

#[derive(Args)]
pub struct DemoArgs {
    /// Number of sequences N.
    #[arg(short = 'N', long = "n-seqs", default_value_t = 2000)]
    n_seqs: usize,
    /// Sequence length n.
    #[arg(short = 'n', long = "seq-len", default_value_t = 16)]
    seq_len: usize,
    #[command(flatten)]
    data: RandomIdsArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn demo(a: DemoArgs) -> Result<Outcome> {
    let ds = random_ids(a.n_seqs, a.seq_len, &a.data)?;
    let opts = BuildOpts::defaults(a.data.seed);
    let (built, secs) = build_model(&ds, &opts, Path::new("<generated>"), a.json)?;
    // Round-trip through the file format so the verifier runs what a user would load.
    let model = Model::from_json(&built.model.to_json()).context("model JSON round-trip")?;
    let reports: Vec<VerifyReport> = [Arith::Exact, Arith::F64, Arith::F32]
        .into_iter()
        .map(|ar| verify_one(&model, &ds, ar, a.json))
        .collect::<Result<_>>()?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dataset": dataset_json(&ds), "construction": built.info,
                "accounting": accounting_json(&model, &ds), "construct_seconds": secs, "verify": reports,
            }))?
        );
    } else {
        println!("memcap demo: random next-token data, built-in default (seed {})\n", a.data.seed);
        print_construction(&built, &ds, secs);
        println!();
        for r in &reports {
            let div = match (r.arithmetic, r.failures.first()) {
                (Arith::Exact, _) | (_, None) => None,
                (ar, Some(f)) => first_divergence(&model, &ds, f.example, ar).map_err(|e| InputError(e.to_string()))?,
            };
            print_verify(r, div.as_ref());
        }
        println!("\nOnly the exact run decides memorization; f64/f32 show what rounding the same weights does.");
    }
    Ok(if reports[0].all_memorized() { Outcome::Ok } else { Outcome::NotMemorized })
}
