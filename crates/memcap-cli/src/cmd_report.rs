//! `memcap report RESULTS -o REPORT`: plots and tables of a sweep.
//!
//! Reads the result files of `memcap sweep run` (the same loader as
//! `sweep merge`, so a report never depends on a stale merged.jsonl), builds
//! the report data with `memcap_report::report::build` and writes, all
//! atomically: `report.json` (the series behind every plot, slopes, table),
//! `NAME.svg` + `NAME.png` per plot, `report.md` and `index.html`.

use crate::args::Outcome;
use crate::io::{write_atomic, InputError};
use anyhow::Result;
use clap::Args;
use memcap_report::report::{build, html, markdown, render_svg, svg_to_png};
use serde_json::Value;
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
    /// Results folder of `memcap sweep run` (or a merged.jsonl file).
    results: PathBuf,
    /// Output folder.
    #[arg(short, long, default_value = "report")]
    out: PathBuf,
    /// Skip the PNG renderings (SVG only).
    #[arg(long)]
    no_png: bool,
}

pub fn report(a: ReportArgs) -> Result<Outcome> {
    let records: Vec<Value> = if a.results.is_file() {
        let text = std::fs::read_to_string(&a.results)?;
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            v.push(
                serde_json::from_str(line)
                    .map_err(|e| InputError(format!("{}: line {}: {e}", a.results.display(), i + 1)))?,
            );
        }
        v
    } else {
        crate::cmd_sweep::load_results(&a.results)?.0
    };
    if records.is_empty() {
        return Err(InputError(format!("{}: no results to report on", a.results.display())).into());
    }
    let rep = build(&records).map_err(|e| InputError(format!("{}: {e}", a.results.display())))?;
    let mut files = Vec::new();
    let mut put = |name: String, bytes: &[u8]| -> Result<()> {
        write_atomic(&a.out.join(&name), bytes)?;
        files.push(name);
        Ok(())
    };
    for p in &rep.plots {
        let svg = render_svg(p)?;
        put(format!("{}.svg", p.name), svg.as_bytes())?;
        if !a.no_png {
            put(format!("{}.png", p.name), &svg_to_png(&p.name, &svg)?)?;
        }
    }
    put("report.json".into(), format!("{}\n", serde_json::to_string_pretty(&rep)?).as_bytes())?;
    put("report.md".into(), markdown(&rep).as_bytes())?;
    put("index.html".into(), html(&rep).as_bytes())?;
    for p in &rep.plots {
        for s in p.series.iter().filter(|s| s.kind == "data") {
            if let Some(sl) = s.slope {
                println!("{:<16} slope {sl:.3}  {}", p.name, s.label.split(" (slope").next().unwrap_or(&s.label));
            }
        }
    }
    println!("wrote {} in {}", files.join(", "), a.out.display());
    Ok(Outcome::Ok)
}
