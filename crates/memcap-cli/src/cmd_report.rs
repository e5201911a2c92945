//! `memcap report RESULTS -o REPORT`: plots and tables of a sweep, or of
//! the paper's experiments that `memcap repro` wrote into a folder.
//!
//! Reads the result files of `memcap sweep run` (the same loader as
//! `sweep merge`, so a report never depends on a stale merged.jsonl), builds
//! the report data with `memcap_report::report::build` and writes, all
//! atomically: `report.json` (the series behind every plot, slopes, table),
//! `NAME.svg` + `NAME.png` per plot, `report.md` and `index.html`.

use crate::args::Outcome;
use crate::io::{write_atomic, InputError};
use anyhow::{Context, Result};
use clap::Args;
use memcap_report::report::{build, html, markdown, render_svg, svg_to_png};
use memcap_report::repro::{render_json, REPRO_NAMES};
use serde_json::Value;
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
    /// Results folder of `memcap sweep run` (or a merged.jsonl file), or an
    /// output folder of `memcap repro` (fig2.json, size_vs_N.json, …).
    results: PathBuf,
    /// Output folder.
    #[arg(short, long, default_value = "report")]
    out: PathBuf,
    /// Skip the PNG renderings (SVG only).
    #[arg(long)]
    no_png: bool,
}

pub fn report(a: ReportArgs) -> Result<Outcome> {
    crate::io::check_output_dir(&a.out, "-o")?;
    if a.results.is_dir() {
        let found: Vec<&str> =
            REPRO_NAMES.iter().copied().filter(|n| a.results.join(format!("{n}.json")).is_file()).collect();
        if !found.is_empty() {
            return repro_report(&a, &found);
        }
    }
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

/// Re-render the experiments `memcap repro` wrote (`NAME.json`): figures,
/// CSV, one `report.md` with every headline table, and `index.html`.
fn repro_report(a: &ReportArgs, names: &[&str]) -> Result<Outcome> {
    let mut md = String::from("# memcap: the paper's experiments\n\nRe-rendered from the JSON `memcap repro` wrote.\n");
    let mut files = Vec::new();
    let mut put = |name: String, bytes: &[u8]| -> Result<()> {
        write_atomic(&a.out.join(&name), bytes)?;
        files.push(name);
        Ok(())
    };
    for &name in names {
        let path = a.results.join(format!("{name}.json"));
        let json = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let r = render_json(name, &json).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
        put(format!("{name}.svg"), r.svg.as_bytes())?;
        if !a.no_png {
            put(format!("{name}.png"), &r.png)?;
        }
        put(format!("{name}.csv"), r.csv.as_bytes())?;
        let image = if a.no_png { format!("{name}.svg") } else { format!("{name}.png") };
        md.push_str(&format!("\n## {name}\n\n![{name}]({image})\n\n{}", r.markdown));
    }
    let mut body = String::new();
    pulldown_cmark::html::push_html(
        &mut body,
        pulldown_cmark::Parser::new_ext(&md, pulldown_cmark::Options::ENABLE_TABLES),
    );
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>memcap experiments</title>\n<style>\
         body{{font-family:sans-serif;margin:24px;color:#222;max-width:1300px}}\
         table{{border-collapse:collapse;font-size:13px}}th,td{{border:1px solid #bbb;padding:3px 6px}}\
         th{{background:#eee}}img{{max-width:100%;border:1px solid #ddd}}</style></head><body>\n{body}</body></html>\n"
    );
    put("report.md".into(), md.as_bytes())?;
    put("index.html".into(), page.as_bytes())?;
    println!("{md}");
    println!("wrote {} in {}", files.join(", "), a.out.display());
    Ok(Outcome::Ok)
}
