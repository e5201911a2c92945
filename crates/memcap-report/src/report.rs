//! Reports from merged sweep results: the series behind each plot (with
//! fitted log-log slopes), the comparison table, and their renderings
//! (SVG via plotters, PNG via resvg, Markdown, HTML).
//!
//! Why here and not in the CLI: the numbers a report shows (slopes,
//! averages over seeds, which trained minimum belongs to which row) are the
//! claims, so they are computed once, as data ([`Report`], written as
//! `report.json`), and every rendering is drawn from that data. Tests check
//! the data and the SVG drawn from it.
//!
//! Input: the result records of `memcap sweep run`
//! (`{"id","task","result","timing"}`), in any order; output is sorted and
//! deterministic.

pub use crate::plot::{render_svg, svg_to_png, Plot, Series, PLOT_SIZE};
use memcap_core::model::{loglog_slope, lower_bound_params as lower_bound};
use memcap_sweep::plan::{canonical_json, Task};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One row of the comparison table (construction vs information limit vs
/// lower bound vs trained minimum), averaged over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Number of sequences N.
    #[serde(rename = "N")]
    pub n_seqs: usize,
    /// Sequence length n.
    #[serde(rename = "n")]
    pub seq_len: usize,
    /// Vocabulary size V.
    pub vocab: usize,
    /// Number of classes C.
    pub num_classes: u32,
    /// `next-token` or `seq2seq`.
    pub task: String,
    /// Construction variant (`ids/none/auto` = input/positional/map), or
    /// `-` for a row that only has training results.
    pub variant: String,
    /// Seeds averaged in the construction columns.
    pub seeds: usize,
    /// Construction: dense parameter count (seed mean).
    pub construct_params_dense: Option<f64>,
    /// Construction: nonzero parameter count (seed mean).
    pub construct_params_nonzero: Option<f64>,
    /// Construction: Σ bits of the stored weights (seed mean).
    pub construct_total_bits: Option<f64>,
    /// Construction: bits of the largest weight (seed mean).
    pub construct_max_weight_bits: Option<f64>,
    /// Examples memorized / examples by the exact verifier, when run.
    pub exact_verified: Option<String>,
    /// Label bits: N·log2 C (next-token), N·n·log2 C (seq2seq).
    pub information_limit_bits: f64,
    /// √(N / log2 N): the order of the lower bound (constants unknown).
    pub lower_bound: f64,
    /// Smallest memorizing trained model (min over capacity results for
    /// this data shape; None if none memorized or none ran).
    pub trained_min_params: Option<usize>,
    /// Family of that trained model.
    pub trained_family: Option<String>,
    /// information_limit_bits / trained_min_params.
    pub trained_bits_per_param: Option<f64>,
}

/// Everything a report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `memcap-report/1`.
    pub format: String,
    /// Result records read (construct, train, capacity).
    pub results: BTreeMap<String, usize>,
    /// Every figure, with the series drawn.
    pub plots: Vec<Plot>,
    /// The comparison table.
    pub table: Vec<Row>,
}

/// Building or drawing a report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A result record is malformed.
    #[error("result {id}: {reason}")]
    BadResult {
        /// Its id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// Drawing a plot failed.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
}

struct Rec {
    id: String,
    task: Task,
    result: Value,
}

fn parse_records(records: &[Value]) -> Result<Vec<Rec>, ReportError> {
    let mut out = Vec::new();
    for r in records {
        let id = r.get("id").and_then(Value::as_str).unwrap_or("?").to_string();
        let bad = |reason: String| ReportError::BadResult { id: id.clone(), reason };
        let task =
            Task::from_value(r.get("task").ok_or_else(|| bad("no task".into()))?).map_err(|e| bad(e.to_string()))?;
        if task.id() != id {
            return Err(bad(format!("id does not match the task's hash {}", task.id())));
        }
        let result = r.get("result").cloned().ok_or_else(|| bad("no result".into()))?;
        out.push(Rec { id, task, result });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

fn task_name(t: memcap_core::Task) -> &'static str {
    match t {
        memcap_core::Task::NextToken => "next-token",
        memcap_core::Task::Seq2seq => "seq2seq",
    }
}

/// A construction "family": everything but the swept variable and the seed.
fn construct_family(t: &Task, drop: &str) -> Option<String> {
    let Task::Construct(_) = t else { return None };
    let mut v = t.to_value();
    let m = v.as_object_mut()?;
    m.remove(drop);
    m.remove("seed");
    m.remove("verify");
    Some(canonical_json(&v))
}

fn short_family(t: &Task, swept: &str) -> String {
    let Task::Construct(c) = t else { return String::new() };
    let c = &c.build;
    let d = &c.data;
    let mut parts = Vec::new();
    if swept != "n" {
        parts.push(format!("n={}", d.seq_len));
    }
    if swept != "N" {
        parts.push(format!("N={}", d.n_seqs));
    }
    parts.push(format!("C={}", d.num_classes));
    if d.task != memcap_core::Task::NextToken {
        parts.push(task_name(d.task).into());
    }
    let positional = match c.positional {
        memcap_core::Positional::None => "none",
        memcap_core::Positional::Learned => "learned",
    };
    if c.input != "ids" || positional != "none" || c.map != "auto" {
        parts.push(format!("{}/{positional}/{}", c.input, c.map));
    }
    parts.join(" ")
}

/// Construct results grouped by family (everything except `swept` and the
/// seed); each group's points are seed-averaged, sorted by the swept value.
fn construct_groups(recs: &[Rec], swept: &str, key: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    // family → x → seed → y (a task that differs only in `verify` has the
    // same accounting, so it lands on the same seed slot).
    type Points = BTreeMap<usize, BTreeMap<u64, f64>>;
    let mut groups: BTreeMap<String, (String, Points)> = BTreeMap::new();
    for r in recs {
        let Some(fam) = construct_family(&r.task, swept) else { continue };
        let Some(y) = num(&r.result, key) else { continue };
        let d = r.task.data();
        let x = if swept == "N" { d.n_seqs } else { d.seq_len };
        let e = groups.entry(fam).or_insert_with(|| (short_family(&r.task, swept), BTreeMap::new()));
        e.1.entry(x).or_default().insert(d.seed, y);
    }
    groups
        .into_values()
        .filter(|(_, pts)| pts.len() >= 2)
        .map(|(label, pts)| {
            (label, pts.into_iter().map(|(x, ys)| (x as f64, mean(&ys.into_values().collect::<Vec<_>>()))).collect())
        })
        .collect()
}

fn fmt_slope(s: Option<f64>) -> String {
    s.map_or("-".into(), |v| format!("{v:.3}"))
}

/// Reference line c·x^p through `anchor`, over the x values of `xs`.
fn reference(label: &str, anchor: (f64, f64), p: f64, xs: &[f64]) -> Series {
    let points = xs.iter().map(|&x| (x, anchor.1 * (x / anchor.0).powf(p))).collect();
    Series { label: label.into(), kind: "reference".into(), points, slope: Some(p), color: None }
}

/// Builds the report data from result records.
pub fn build(records: &[Value]) -> Result<Report, ReportError> {
    let recs = parse_records(records)?;
    let mut counts = BTreeMap::new();
    for r in &recs {
        *counts.entry(r.task.kind().to_string()).or_insert(0) += 1;
    }
    let mut plots = Vec::new();

    // ---- parameters vs N (log-log), slopes, √N and N references, trained minimum.
    {
        let mut series = Vec::new();
        for (key, what) in [("params_nonzero", "nonzero"), ("params_dense", "dense")] {
            for (fam, pts) in construct_groups(&recs, "N", key) {
                let slope = loglog_slope(&pts);
                series.push(Series {
                    label: format!("construction {what}, {fam} (slope {})", fmt_slope(slope)),
                    kind: "data".into(),
                    points: pts,
                    slope,
                    color: None,
                });
            }
        }
        // Trained minimum vs N: min over capacity results per (shape without N).
        let mut trained: BTreeMap<String, BTreeMap<usize, usize>> = BTreeMap::new();
        for r in &recs {
            let Task::Capacity(c) = &r.task else { continue };
            let Some(p) = r.result.get("min_params").and_then(Value::as_u64) else { continue };
            let d = &c.data;
            let fam = format!("{} n={} C={}", c.model, d.seq_len, d.num_classes);
            let e = trained.entry(fam).or_default().entry(d.n_seqs).or_insert(usize::MAX);
            *e = (*e).min(p as usize);
        }
        for (fam, pts) in trained {
            if pts.is_empty() {
                continue;
            }
            let pts: Vec<(f64, f64)> = pts.into_iter().map(|(x, y)| (x as f64, y as f64)).collect();
            let slope = loglog_slope(&pts);
            series.push(Series {
                label: format!("trained minimum, {fam} (slope {})", fmt_slope(slope)),
                kind: "data".into(),
                points: pts,
                slope,
                color: None,
            });
        }
        if let Some(first) = series.first().cloned() {
            let mut xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
            xs.sort_by(f64::total_cmp);
            xs.dedup();
            let anchor = first.points[0];
            series.push(reference("√N reference (slope 0.5)", anchor, 0.5, &xs));
            series.push(reference("N reference (slope 1)", anchor, 1.0, &xs));
            series.push(Series {
                label: "lower bound order √(N/log2 N)".into(),
                kind: "bound".into(),
                points: xs.iter().map(|&x| (x, lower_bound(x as usize))).collect(),
                slope: None,
                color: None,
            });
            plots.push(Plot {
                name: "params_vs_N".into(),
                title: "parameters vs N".into(),
                x_label: "N (sequences)".into(),
                y_label: "parameters".into(),
                log_log: true,
                log_y: false,
                series,
            });
        }
    }

    // ---- parameters vs n (log-log) at fixed N.
    {
        let mut series = Vec::new();
        for (fam, pts) in construct_groups(&recs, "n", "params_nonzero") {
            let slope = loglog_slope(&pts);
            series.push(Series {
                label: format!("construction nonzero, {fam} (slope {})", fmt_slope(slope)),
                kind: "data".into(),
                points: pts,
                slope,
                color: None,
            });
        }
        if !series.is_empty() {
            plots.push(Plot {
                name: "params_vs_n".into(),
                title: "parameters vs sequence length n".into(),
                x_label: "n (sequence length)".into(),
                y_label: "nonzero parameters".into(),
                log_log: true,
                log_y: false,
                series,
            });
        }
    }

    // ---- training curves (accuracy vs step), one series per train result.
    {
        let mut series = Vec::new();
        for r in &recs {
            let Task::Train(t) = &r.task else { continue };
            let Some(ms) = r.result.get("metrics").and_then(Value::as_array) else { continue };
            let pts: Vec<(f64, f64)> = ms.iter().filter_map(|m| Some((num(m, "step")?, num(m, "acc")?))).collect();
            let d = &t.data;
            let size = if t.model == "mlp" {
                format!("w={} depth={}", t.width, t.depth)
            } else {
                format!("d={} blocks={}", t.d_model, t.blocks)
            };
            series.push(Series {
                label: format!(
                    "{} {size}, N={} n={} lr={} seed={} [{}]",
                    t.model,
                    d.n_seqs,
                    d.seq_len,
                    t.lr,
                    t.train_seed,
                    &r.id[..6]
                ),
                kind: "data".into(),
                points: pts,
                slope: None,
                color: None,
            });
        }
        if !series.is_empty() {
            plots.push(Plot {
                name: "training_curves".into(),
                title: "training accuracy".into(),
                x_label: "step".into(),
                y_label: "training accuracy".into(),
                log_log: false,
                log_y: false,
                series,
            });
        }
    }

    Ok(Report { format: "memcap-report/1".into(), results: counts, plots, table: table(&recs) })
}

fn table(recs: &[Rec]) -> Vec<Row> {
    type Shape = (usize, usize, usize, u32, String);
    let shape = |t: &Task| -> Shape {
        let d = t.data();
        (d.n_seqs, d.seq_len, d.vocab, d.num_classes, task_name(d.task).to_string())
    };
    // Trained minimum per data shape.
    let mut trained: BTreeMap<Shape, (usize, String, f64)> = BTreeMap::new();
    for r in recs {
        let Task::Capacity(c) = &r.task else { continue };
        let Some(p) = r.result.get("min_params").and_then(Value::as_u64) else { continue };
        let bits = num(&r.result, "label_bits").unwrap_or(0.0);
        let e = trained.entry(shape(&r.task)).or_insert((usize::MAX, String::new(), bits));
        if (p as usize) < e.0 {
            *e = (p as usize, c.model.clone(), bits);
        }
    }
    let mut rows: BTreeMap<(Shape, String), Vec<&Rec>> = BTreeMap::new();
    for r in recs {
        if let Task::Construct(c) = &r.task {
            rows.entry((shape(&r.task), format!("{}/{}/{}", c.build.input, c.build.positional, c.build.map)))
                .or_default()
                .push(r);
        }
    }
    let mut out = Vec::new();
    let mut shapes_with_rows = std::collections::BTreeSet::new();
    for ((sh, variant), all) in &rows {
        shapes_with_rows.insert(sh.clone());
        // One record per seed (tasks differing only in `verify` share a seed;
        // prefer the verified one).
        let mut by_seed: BTreeMap<u64, &Rec> = BTreeMap::new();
        for r in all {
            let e = by_seed.entry(r.task.data().seed).or_insert(r);
            if e.result.get("memorized").is_none_or(Value::is_null) {
                *e = r;
            }
        }
        let rs: Vec<&Rec> = by_seed.into_values().collect();
        let avg = |k: &str| -> Option<f64> {
            let v: Vec<f64> = rs.iter().filter_map(|r| num(&r.result, k)).collect();
            (!v.is_empty()).then(|| mean(&v))
        };
        let verified: Vec<(u64, u64)> = rs
            .iter()
            .filter_map(|r| Some((r.result.get("memorized")?.as_u64()?, r.result.get("examples")?.as_u64()?)))
            .collect();
        let exact_verified = (!verified.is_empty()).then(|| {
            let (m, e) = verified.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            format!("{m}/{e}")
        });
        let info = avg("information_limit_bits").unwrap_or(0.0);
        let tr = trained.get(sh);
        out.push(Row {
            n_seqs: sh.0,
            seq_len: sh.1,
            vocab: sh.2,
            num_classes: sh.3,
            task: sh.4.clone(),
            variant: variant.clone(),
            seeds: rs.len(),
            construct_params_dense: avg("params_dense"),
            construct_params_nonzero: avg("params_nonzero"),
            construct_total_bits: avg("total_bits"),
            construct_max_weight_bits: avg("max_weight_bits"),
            exact_verified,
            information_limit_bits: info,
            lower_bound: lower_bound(sh.0),
            trained_min_params: tr.map(|t| t.0),
            trained_family: tr.map(|t| t.1.clone()),
            trained_bits_per_param: tr.map(|t| if info > 0.0 { info } else { t.2 } / t.0 as f64),
        });
    }
    for (sh, (p, fam, bits)) in &trained {
        if shapes_with_rows.contains(sh) {
            continue;
        }
        out.push(Row {
            n_seqs: sh.0,
            seq_len: sh.1,
            vocab: sh.2,
            num_classes: sh.3,
            task: sh.4.clone(),
            variant: "-".into(),
            seeds: 0,
            construct_params_dense: None,
            construct_params_nonzero: None,
            construct_total_bits: None,
            construct_max_weight_bits: None,
            exact_verified: None,
            information_limit_bits: *bits,
            lower_bound: lower_bound(sh.0),
            trained_min_params: Some(*p),
            trained_family: Some(fam.clone()),
            trained_bits_per_param: Some(bits / *p as f64),
        });
    }
    out.sort_by(|a, b| {
        (a.seq_len, a.n_seqs, a.vocab, a.num_classes, &a.task, &a.variant).cmp(&(
            b.seq_len,
            b.n_seqs,
            b.vocab,
            b.num_classes,
            &b.task,
            &b.variant,
        ))
    });
    out
}

fn opt_f(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn table_cells(r: &Row) -> Vec<String> {
    vec![
        r.n_seqs.to_string(),
        r.seq_len.to_string(),
        r.num_classes.to_string(),
        r.task.clone(),
        r.variant.clone(),
        r.seeds.to_string(),
        opt_f(r.construct_params_dense, 0),
        opt_f(r.construct_params_nonzero, 0),
        opt_f(r.construct_total_bits, 0),
        opt_f(r.construct_max_weight_bits, 0),
        r.exact_verified.clone().unwrap_or_else(|| "–".into()),
        format!("{:.0}", r.information_limit_bits),
        format!("{:.1}", r.lower_bound),
        r.trained_min_params.map_or("–".into(), |p| format!("{p} ({})", r.trained_family.as_deref().unwrap_or("?"))),
        opt_f(r.trained_bits_per_param, 2),
    ]
}

const HEADERS: [&str; 15] = [
    "N",
    "n",
    "C",
    "task",
    "variant",
    "seeds",
    "construction dense",
    "construction nonzero",
    "total bits",
    "max weight bits",
    "exact verify",
    "info limit N·log2 C (bits)",
    "lower bound √(N/log2 N)",
    "trained minimum",
    "trained bits/param",
];

fn slopes_text(rep: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for p in &rep.plots {
        for s in &p.series {
            if s.kind == "data" {
                if let Some(sl) = s.slope {
                    out.push(format!(
                        "{}: {} — slope {sl:.3}",
                        p.title,
                        s.label.split(" (slope").next().unwrap_or(&s.label)
                    ));
                }
            }
        }
    }
    out
}

/// `report.md`: slopes, plots (as image links) and the comparison table.
pub fn markdown(rep: &Report) -> String {
    let mut s = String::from("# memcap sweep report\n\n");
    let counts: Vec<String> = rep.results.iter().map(|(k, v)| format!("{v} {k}")).collect();
    s.push_str(&format!("Results: {}.\n\n", counts.join(", ")));
    s.push_str("## Fitted log-log slopes\n\n");
    s.push_str("Reference: √N has slope 0.5, N has slope 1 (the paper: Õ(√N) parameters for next-token).\n\n");
    for line in slopes_text(rep) {
        s.push_str(&format!("- {line}\n"));
    }
    s.push_str("\n## Plots\n\n");
    for p in &rep.plots {
        s.push_str(&format!("### {}\n\n![{}]({}.svg) ([PNG]({}.png))\n\n", p.title, p.title, p.name, p.name));
    }
    s.push_str("## Comparison\n\n");
    s.push_str(&format!(
        "| {} |\n|{}|\n",
        HEADERS.join(" | "),
        HEADERS.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    ));
    for r in &rep.table {
        s.push_str(&format!("| {} |\n", table_cells(r).join(" | ")));
    }
    s.push_str(
        "\nConstruction columns are averages over seeds. The lower bound is an order (constants unknown). \
         \"trained minimum\" is the smallest model a capacity search drove to 100% training accuracy on the same \
         dataset as the construction (one generator: same N, n, vocab, C, task and seed give the same data).\n",
    );
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `index.html`: a self-contained page (inline CSS) showing the SVG plots
/// as images next to it, the slopes and the comparison table.
pub fn html(rep: &Report) -> String {
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>memcap sweep report</title>\n<style>\
         body{font-family:sans-serif;margin:24px;color:#222;max-width:1150px}\
         table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #bbb;padding:3px 6px;text-align:right}\
         th{background:#eee}td.l{text-align:left}img{max-width:100%;border:1px solid #ddd;margin:6px 0}\
         figure{margin:0 0 18px 0}</style></head><body>\n<h1>memcap sweep report</h1>\n",
    );
    let counts: Vec<String> = rep.results.iter().map(|(k, v)| format!("{v} {k}")).collect();
    s.push_str(&format!(
        "<p>Results: {}.</p>\n<h2>Fitted log-log slopes</h2>\n<p>√N has slope 0.5, N has slope 1.</p>\n<ul>\n",
        esc(&counts.join(", "))
    ));
    for line in slopes_text(rep) {
        s.push_str(&format!("<li>{}</li>\n", esc(&line)));
    }
    s.push_str("</ul>\n<h2>Comparison</h2>\n<table id=\"comparison\">\n<tr>");
    for h in HEADERS {
        s.push_str(&format!("<th>{}</th>", esc(h)));
    }
    s.push_str("</tr>\n");
    for r in &rep.table {
        s.push_str("<tr>");
        for (i, c) in table_cells(r).into_iter().enumerate() {
            let cls = if i == 3 || i == 4 { " class=\"l\"" } else { "" };
            s.push_str(&format!("<td{cls}>{}</td>", esc(&c)));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n<h2>Plots</h2>\n");
    for p in &rep.plots {
        s.push_str(&format!(
            "<figure><img src=\"{n}.svg\" alt=\"{t}\" width=\"{w}\" height=\"{h}\"><figcaption>{t} (<a href=\"{n}.png\">PNG</a>, series in <a href=\"report.json\">report.json</a>)</figcaption></figure>\n",
            n = esc(&p.name),
            t = esc(&p.title),
            w = PLOT_SIZE.0,
            h = PLOT_SIZE.1
        ));
    }
    s.push_str("</body></html>\n");
    s
}
