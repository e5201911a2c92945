//! `memcap construct`: explicit weights that memorize DATA exactly.

use crate::args::*;
use crate::io::{read_dataset, write_atomic};
use anyhow::Result;
use clap::Args;
use memcap_core::verify::Arith;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct ConstructArgs {
    /// Dataset (.jsonl, or .csv of token ids).
    data: PathBuf,
    /// Output model (JSON with exact weights); MODEL.safetensors is written beside it.
    #[arg(short, long)]
    out: PathBuf,
    #[command(flatten)]
    opts: BuildOpts,
    /// Do not write the f64 safetensors file.
    #[arg(long)]
    no_safetensors: bool,
    /// Also verify the written model exactly on the dataset.
    #[arg(long)]
    verify: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn construct(a: ConstructArgs) -> Result<Outcome> {
    crate::io::check_output_file(&a.out, "-o")?;
    if !a.no_safetensors && a.out.with_extension("safetensors") == a.out {
        return Err(crate::io::InputError(format!(
            "-o {}: the model JSON and its .safetensors would be the same file; name the model *.json \
             (or pass --no-safetensors)",
            a.out.display()
        ))
        .into());
    }
    crate::io::check_output_file(&a.out.with_extension("safetensors"), "-o (its .safetensors)")?;
    crate::io::check_not_input(&a.out, &[&a.data], "-o")?;
    crate::io::check_not_input(&a.out.with_extension("safetensors"), &[&a.data], "-o (its .safetensors)")?;
    let ds = read_dataset(&a.data, a.opts.parse_opts())?;
    let ds = resolve(ds, a.opts.positional, a.opts.dedupe, &a.data, a.json)?;
    let (built, secs) = build_model(&ds, &a.opts, &a.data, a.json)?;
    let model = &built.model;
    // Streamed: the JSON of a 10⁷-example model is ~1 GB.
    crate::io::write_atomic_with(&a.out, |w| Ok(serde_json::to_writer(w, model)?))?;
    let mut files = vec![a.out.display().to_string()];
    if !a.no_safetensors {
        let st = a.out.with_extension("safetensors");
        write_atomic(&st, &memcap_export::to_safetensors(model)?)?;
        files.push(st.display().to_string());
    }
    let report = if a.verify { Some(verify_one(model, &ds, Arith::Exact, a.json)?) } else { None };
    // A float-exact construction is only claimed with its certificate.
    let cert = match a.opts.precision.float_type() {
        Some(ft) => {
            let t0 = std::time::Instant::now();
            let c = memcap_core::certificate::certify(model, &ds, ft)?;
            Some((c, t0.elapsed().as_secs_f64()))
        }
        None => None,
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "dataset": dataset_json(&ds),
                "construction": built.info,
                "accounting": accounting_json(model, &ds),
                "construct_seconds": secs,
                "verify": report,
                "certificate": cert.as_ref().map(|(c, _)| c),
                "certificate_seconds": cert.as_ref().map(|(_, s)| s),
                "files": files,
            }))?
        );
    } else {
        print_construction(&built, &ds, secs);
        if let Some((c, s)) = &cert {
            print_certificate(c, model, &ds, *s);
        }
        if let Some(r) = &report {
            print_verify(r, None);
        }
        println!("wrote {}", files.join(", "));
    }
    if let Some((c, _)) = &cert {
        if !c.certified {
            anyhow::bail!("internal: the {} construction was not certified: {}", c.dtype.name(), c.reason);
        }
    }
    Ok(match report {
        Some(r) if !r.all_memorized() => Outcome::NotMemorized,
        _ => Outcome::Ok,
    })
}
