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

use crate::sweep::{canonical_json, Task};
use memcap_core::model::{loglog_slope, lower_bound_params as lower_bound};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One curve of a plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend text (includes the fitted slope for data on log-log plots).
    pub label: String,
    /// `data` (measured), `reference` (a formula line) or `bound`.
    pub kind: String,
    /// Points sorted by x.
    pub points: Vec<(f64, f64)>,
    /// Least-squares slope of log y on log x (log-log plots, ≥ 2 points).
    pub slope: Option<f64>,
}

/// One figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plot {
    /// File stem: `NAME.svg`, `NAME.png`.
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Both axes logarithmic (else both linear).
    pub log_log: bool,
    pub series: Vec<Series>,
}

/// One row of the comparison table (construction vs information limit vs
/// lower bound vs trained minimum), averaged over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    #[serde(rename = "N")]
    pub n_seqs: usize,
    pub n: usize,
    pub vocab: usize,
    pub classes: u32,
    pub task: String,
    /// Construction variant (`ids/none/auto` = input/positional/map), or
    /// `-` for a row that only has training results.
    pub variant: String,
    /// Seeds averaged in the construction columns.
    pub seeds: usize,
    pub construct_params_dense: Option<f64>,
    pub construct_params_nonzero: Option<f64>,
    pub construct_total_bits: Option<f64>,
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
    pub format: String,
    /// Result records read (construct, train, capacity).
    pub results: BTreeMap<String, usize>,
    pub plots: Vec<Plot>,
    pub table: Vec<Row>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("result {id}: {reason}")]
    BadResult { id: String, reason: String },
    #[error("plot {plot}: {reason}")]
    Plot { plot: String, reason: String },
    #[error("png {plot}: {reason}")]
    Png { plot: String, reason: String },
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

fn task_name(t: crate::sweep::TaskHead) -> &'static str {
    match t {
        crate::sweep::TaskHead::NextToken => "next-token",
        crate::sweep::TaskHead::Seq2seq => "seq2seq",
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
    let d = &c.data;
    let mut parts = Vec::new();
    if swept != "n" {
        parts.push(format!("n={}", d.n));
    }
    if swept != "N" {
        parts.push(format!("N={}", d.n_seqs));
    }
    parts.push(format!("C={}", d.classes));
    if d.task != crate::sweep::TaskHead::NextToken {
        parts.push(task_name(d.task).into());
    }
    if c.input != "ids" || c.positional != "none" || c.map != "auto" {
        parts.push(format!("{}/{}/{}", c.input, c.positional, c.map));
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
        let x = if swept == "N" { d.n_seqs } else { d.n };
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
    Series { label: label.into(), kind: "reference".into(), points, slope: Some(p) }
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
                });
            }
        }
        // Trained minimum vs N: min over capacity results per (shape without N).
        let mut trained: BTreeMap<String, BTreeMap<usize, usize>> = BTreeMap::new();
        for r in &recs {
            let Task::Capacity(c) = &r.task else { continue };
            let Some(p) = r.result.get("min_params").and_then(Value::as_u64) else { continue };
            let d = &c.data;
            let fam = format!("{} n={} C={}", c.model, d.n, d.classes);
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
            });
            plots.push(Plot {
                name: "params_vs_N".into(),
                title: "parameters vs N".into(),
                x_label: "N (sequences)".into(),
                y_label: "parameters".into(),
                log_log: true,
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
            });
        }
        if !series.is_empty() {
            plots.push(Plot {
                name: "params_vs_n".into(),
                title: "parameters vs sequence length n".into(),
                x_label: "n (sequence length)".into(),
                y_label: "nonzero parameters".into(),
                log_log: true,
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
                    d.n,
                    t.lr,
                    t.train_seed,
                    &r.id[..6]
                ),
                kind: "data".into(),
                points: pts,
                slope: None,
            });
        }
        if !series.is_empty() {
            plots.push(Plot {
                name: "training_curves".into(),
                title: "training accuracy".into(),
                x_label: "step".into(),
                y_label: "training accuracy".into(),
                log_log: false,
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
        (d.n_seqs, d.n, d.vocab, d.classes, task_name(d.task).to_string())
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
            rows.entry((shape(&r.task), format!("{}/{}/{}", c.input, c.positional, c.map))).or_default().push(r);
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
            n: sh.1,
            vocab: sh.2,
            classes: sh.3,
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
            n: sh.1,
            vocab: sh.2,
            classes: sh.3,
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
        (a.n, a.n_seqs, a.vocab, a.classes, &a.task, &a.variant)
            .cmp(&(b.n, b.n_seqs, b.vocab, b.classes, &b.task, &b.variant))
    });
    out
}

// ------------------------------------------------------------------------
// rendering

/// Plot size in pixels (SVG user units; the PNG has the same size).
pub const PLOT_SIZE: (u32, u32) = (900, 600);

/// Data colours (Tableau 10, readable on white); references are slate blue (√N) and dark grey (N).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

fn color(s: &Series, i: usize) -> RGBColor {
    match (s.kind.as_str(), s.slope) {
        // √N in slate blue, N in dark grey: two references must be told apart at a glance.
        ("reference", Some(p)) if p < 0.75 => RGBColor(90, 110, 200),
        ("reference", _) => RGBColor(60, 60, 60),
        ("bound", _) => RGBColor(188, 143, 0),
        _ => PALETTE[i % PALETTE.len()],
    }
}

fn bounds(vals: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = vals
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (lo, hi) = if hi / lo < 1.01 { (lo / 2.0, hi * 2.0) } else { (lo, hi) };
        (lo / 1.25, hi * 1.25)
    } else {
        let pad = if hi - lo < 1e-12 { 0.5 } else { (hi - lo) * 0.05 };
        (lo - pad, hi + pad)
    }
}

macro_rules! draw_chart {
    ($builder:expr, $xr:expr, $yr:expr, $plot:expr, $err:expr) => {{
        let plot: &Plot = $plot;
        let mut chart = $builder.build_cartesian_2d($xr, $yr).map_err($err)?;
        chart
            .configure_mesh()
            .x_desc(plot.x_label.as_str())
            .y_desc(plot.y_label.as_str())
            .label_style(("sans-serif", 14))
            .draw()
            .map_err($err)?;
        for (i, s) in plot.series.iter().enumerate() {
            let c = color(s, i);
            let keep =
                |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!plot.log_log || (p.0 > 0.0 && p.1 > 0.0));
            let pts: Vec<(f64, f64)> = s.points.iter().filter(keep).copied().collect();
            let style = if s.kind == "data" { c.stroke_width(2) } else { c.stroke_width(1) };
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err($err)?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            if s.kind == "data" {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err($err)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err($err)?;
    }};
}

/// The plot as an SVG document (text as `<text>`, curves as `<polyline>`).
pub fn render_svg(plot: &Plot) -> Result<String, ReportError> {
    let err = |e: DrawingAreaErrorKind<_>| ReportError::Plot { plot: plot.name.clone(), reason: e.to_string() };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, PLOT_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let pts = || plot.series.iter().flat_map(|s| s.points.iter().copied());
        let (x0, x1) = bounds(pts().map(|p| p.0), plot.log_log);
        let (y0, y1) = bounds(pts().map(|p| p.1), plot.log_log);
        let mut builder = ChartBuilder::on(&root);
        builder.caption(plot.title.as_str(), ("sans-serif", 22)).margin(16).x_label_area_size(48).y_label_area_size(72);
        if plot.log_log {
            draw_chart!(builder, (x0..x1).log_scale(), (y0..y1).log_scale(), plot, err);
        } else {
            draw_chart!(builder, x0..x1, y0..y1, plot, err);
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Renders an SVG document to PNG with resvg. Text needs a system font
/// (fontdb scans the usual font folders; DejaVu Sans is preferred as
/// `sans-serif`); with no font at all the PNG is drawn without text.
pub fn svg_to_png(name: &str, svg: &str) -> Result<Vec<u8>, ReportError> {
    let err = |reason: String| ReportError::Png { plot: name.into(), reason };
    let mut opt = resvg::usvg::Options::default();
    {
        let db = opt.fontdb_mut();
        db.load_system_fonts();
        if db.faces().any(|f| f.families.iter().any(|(n, _)| n == "DejaVu Sans")) {
            db.set_sans_serif_family("DejaVu Sans");
        }
    }
    let tree = resvg::usvg::Tree::from_str(svg, &opt).map_err(|e| err(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| err("empty image".into()))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| err(e.to_string()))
}

fn opt_f(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn table_cells(r: &Row) -> Vec<String> {
    vec![
        r.n_seqs.to_string(),
        r.n.to_string(),
        r.classes.to_string(),
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
         \"trained minimum\" is the smallest model a capacity search drove to 100% training accuracy on a dataset \
         of the same shape (memcap-train's own generator, same N, n, vocab, C, seed).\n",
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
