//! `memcap verify`: run the stored weights on DATA in exact arithmetic (and f64/f32).

use crate::args::*;
use crate::io::{read_dataset, read_model, InputError};
use anyhow::Result;
use clap::Args;
use memcap_core::parse::ParseOptions;
use memcap_core::verify::{first_divergence, Arith};
use memcap_core::Dedupe;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct VerifyArgs {
    /// Model JSON written by `memcap construct`.
    model: PathBuf,
    /// Dataset (.jsonl or .csv).
    data: PathBuf,
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
    /// Apply the same dedupe policy as at construction.
    #[arg(long, value_enum, default_value = "error")]
    dedupe: Dedupe,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn verify(a: VerifyArgs) -> Result<Outcome> {
    let model = read_model(&a.model, &a.limits.limits())?;
    let opts = ParseOptions {
        vocab: match model.config.input {
            memcap_core::model::InputSpec::Ids { vocab } => Some(vocab),
            _ => None,
        },
        num_classes: Some(model.config.num_classes),
        // The model's vocabulary already passed the model's size limits.
        max_vocab: Some(usize::MAX),
    };
    let ds = read_dataset(&a.data, opts)?;
    let ds = resolve(ds, model.config.positional, a.dedupe, &a.data, a.json)?;
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
        let r = verify_one(&model, &ds, ar, a.json)?;
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
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"results": results, "accounting": accounting_json(&model, &ds)}))?
        );
    }
    Ok(if exact_ok { Outcome::Ok } else { Outcome::NotMemorized })
}
