//! `memcap report` on a tiny sweep: the series in report.json are the
//! seed-averaged numbers of the results with the fitted slopes, and the SVG,
//! PNG, Markdown and HTML are drawn from exactly those series.

mod common;
use common::*;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

const TINY: &str = r#"{"sweeps":[
  {"kind":"construct","grid":{"N":[50,100,200,400],"seed":[0,1]},"fixed":{"n":8,"vocab":100,"classes":4}},
  {"kind":"construct","grid":{"n":[4,8,16]},"fixed":{"N":100,"vocab":100,"classes":4,"verify":true}},
  {"kind":"train","fixed":{"N":16,"n":4,"vocab":12,"classes":4,"d_model":8,"steps":60,"eval_every":10}}
]}"#;

/// Plans, runs and reports TINY; returns (the temp folder that holds them, results dir, report dir).
fn tiny_report(name: &str) -> (Tmp, PathBuf, PathBuf) {
    let d = tmpdir(name);
    std::fs::write(d.join("sweep.json"), TINY).unwrap();
    let (tasks, res, rep) = (d.join("tasks.jsonl"), d.join("res"), d.join("rep"));
    ok(memcap(&["sweep", "plan", s(&d.join("sweep.json")), "-o", s(&tasks)]));
    ok(memcap(&["sweep", "run", s(&tasks), "-o", s(&res), "--jobs", "2"]));
    ok(memcap(&["report", s(&res), "-o", s(&rep)]));
    (d, res, rep)
}

fn slope(pts: &[(f64, f64)]) -> f64 {
    let l: Vec<(f64, f64)> = pts.iter().map(|(x, y)| (x.ln(), y.ln())).collect();
    let n = l.len() as f64;
    let mx = l.iter().map(|p| p.0).sum::<f64>() / n;
    let my = l.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = l.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = l.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

fn points(series: &Value) -> Vec<(f64, f64)> {
    series["points"].as_array().unwrap().iter().map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap())).collect()
}

fn find<'a>(plot: &'a Value, label_start: &str) -> &'a Value {
    plot["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"].as_str().unwrap().starts_with(label_start))
        .unwrap_or_else(|| panic!("no series {label_start:?} in {plot}"))
}

/// Polylines of one stroke colour in an SVG, as point lists.
fn polylines(svg: &str, stroke: &str) -> Vec<Vec<(f64, f64)>> {
    svg.lines()
        .filter(|l| l.starts_with("<polyline") && l.contains(&format!("stroke=\"{stroke}\"")))
        .map(|l| {
            let pts = l.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
            pts.split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

#[test]
fn report_series_are_seed_averaged_results_with_fitted_slopes() {
    let (_tmp, res, rep) = tiny_report("series");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(rep.join("report.json")).unwrap()).unwrap();
    // Expected: nonzero params of the N sweep (n = 8), averaged over seeds 0 and 1.
    let mut by_n: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for e in std::fs::read_dir(&res).unwrap() {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
        let t = &v["task"];
        if t["kind"] == "construct" && t["n"] == 8 && t["verify"] == false {
            by_n.entry(t["N"].as_u64().unwrap()).or_default().push(v["result"]["params_nonzero"].as_f64().unwrap());
        }
    }
    let want: Vec<(f64, f64)> =
        by_n.iter().map(|(n, ys)| (*n as f64, ys.iter().sum::<f64>() / ys.len() as f64)).collect();
    assert_eq!(want.len(), 4);

    let plots = report["plots"].as_array().unwrap();
    let names: Vec<&str> = plots.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["params_vs_N", "params_vs_n", "training_curves"]);
    let vs_n = &plots[0];
    assert_eq!(vs_n["log_log"], true);
    // The n = 8 series has N = 50..400; the verified N = 100 row (n = 8) joins the same
    // seed-0 slot, so it changes nothing.
    let nz = find(vs_n, "construction nonzero, n=8");
    assert_eq!(points(nz), want);
    let fitted = nz["slope"].as_f64().unwrap();
    assert!((fitted - slope(&want)).abs() < 1e-12);
    assert!(nz["label"].as_str().unwrap().ends_with(&format!("(slope {fitted:.3})")));
    assert!((0.3..0.8).contains(&fitted), "nonzero params should grow like √N, slope {fitted}");
    // Reference lines √N and N through the first data point, over every x.
    let sqrt = find(vs_n, "√N reference");
    let lin = find(vs_n, "N reference");
    assert_eq!(sqrt["slope"], 0.5);
    assert_eq!(lin["slope"], 1.0);
    let (x0, y0) = want[0];
    for &(x, y) in &points(sqrt) {
        assert!((y - y0 * (x / x0).sqrt()).abs() < 1e-9 * y);
    }
    assert_eq!(points(lin).len(), 4);
    assert!(find(vs_n, "lower bound")["points"].as_array().unwrap().len() == 4);

    // Parameters vs n at N = 100: x = 4, 8, 16.
    let nn = find(&plots[1], "construction nonzero, N=100");
    let xs: Vec<f64> = points(nn).iter().map(|p| p.0).collect();
    assert_eq!(xs, [4.0, 8.0, 16.0]);

    // Training curve: the metrics of the one train task, accuracy in [0, 1].
    let curves = plots[2]["series"].as_array().unwrap();
    assert_eq!(curves.len(), 1);
    let tr = points(&curves[0]);
    assert_eq!(tr[0].0, 0.0);
    assert!(tr.iter().all(|p| (0.0..=1.0).contains(&p.1)));

    // Table: one row per (N, n) point; lower bound √(N/log2 N); information limit N·log2 C.
    let table = report["table"].as_array().unwrap();
    let row = table.iter().find(|r| r["N"] == 100 && r["n"] == 8).unwrap();
    assert_eq!(row["seeds"], 2);
    assert_eq!(row["exact_verified"], "100/100");
    assert_eq!(row["information_limit_bits"], 200.0);
    assert!((row["lower_bound"].as_f64().unwrap() - (100f64 / 100f64.log2()).sqrt()).abs() < 1e-12);
    assert_eq!(table.len(), 6); // N = 50, 100, 200, 400 at n = 8; n = 4, 16 at N = 100
}

#[test]
fn svg_png_markdown_and_html_are_drawn_from_the_report_series() {
    let (_tmp, _, rep) = tiny_report("render");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(rep.join("report.json")).unwrap()).unwrap();
    let vs_n = &report["plots"][0];
    let svg = std::fs::read_to_string(rep.join("params_vs_N.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // Every series label (with its slope) is in the legend.
    for sr in vs_n["series"].as_array().unwrap() {
        assert!(svg.contains(sr["label"].as_str().unwrap()), "legend lacks {}", sr["label"]);
    }
    // The first data series is drawn in the first palette colour with one
    // vertex per point, x increasing (log-log: equal ratios → equal spacing).
    let lines = polylines(&svg, "#1F77B4");
    let curve = lines.iter().find(|l| l.len() == 4).expect("a 4-point polyline for the nonzero series");
    let dx: Vec<f64> = curve.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(dx.iter().all(|d| *d > 0.0));
    assert!((dx[0] - dx[1]).abs() <= 1.0 && (dx[1] - dx[2]).abs() <= 1.0, "N doubles each step, spacing {dx:?}");
    // y decreases upward in SVG: more parameters at larger N.
    assert!(curve[3].1 < curve[0].1);

    // PNG: valid signature and the plot size from the IHDR chunk.
    for name in ["params_vs_N", "params_vs_n", "training_curves"] {
        let png = std::fs::read(rep.join(format!("{name}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((w, h), (900, 600), "{name}");
    }

    // HTML and Markdown: one table row per report row, every plot linked.
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    let rows = report["table"].as_array().unwrap().len();
    assert_eq!(html.matches("<tr>").count(), rows + 1);
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    for p in report["plots"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        assert!(html.contains(&format!("<img src=\"{name}.svg\"")), "{name}");
        assert!(md.contains(&format!("({name}.svg)")), "{name}");
    }
    let slope = vs_n["series"][0]["slope"].as_f64().unwrap();
    assert!(md.contains(&format!("slope {slope:.3}")) && html.contains(&format!("slope {slope:.3}")));

    // Deterministic: a second report over the same results is byte-identical.
    let again = rep.with_file_name("rep2");
    ok(memcap(&["report", s(&rep.with_file_name("res")), "-o", s(&again)]));
    for f in ["report.json", "report.md", "index.html", "params_vs_N.svg", "params_vs_N.png"] {
        assert_eq!(std::fs::read(rep.join(f)).unwrap(), std::fs::read(again.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn report_on_a_folder_without_results_exits_2() {
    let d = tmpdir("empty");
    let o = memcap(&["report", s(&d), "-o", s(&d.join("rep"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no results to report on"));
    assert!(!d.join("rep").exists(), "nothing written on error");
}

/// `memcap repro` writes JSON that `memcap report` re-renders: a two-depth
/// fig2 of a few steps (its step-0 batch loss is NaN, written as null) comes
/// back as a figure, a CSV and a report.md row per depth.
#[test]
fn report_re_renders_a_repro_folder() {
    let d = tmpdir("reprorep");
    let (out, rep) = (d.join("repro"), d.join("rep"));
    ok(memcap(&["repro", "-o", s(&out), "fig2", "--steps", "4", "--blocks", "1,2"]));
    for ext in ["json", "csv", "svg", "png", "md"] {
        assert!(out.join(format!("fig2.{ext}")).is_file(), "fig2.{ext}");
    }
    ok(memcap(&["report", s(&out), "-o", s(&rep)]));
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| 1 |") || l.starts_with("| 2 |")).collect();
    assert_eq!(rows.len(), 2, "one row per depth in\n{md}");
    assert!(rep.join("fig2.png").is_file() && rep.join("index.html").is_file());
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    assert!(html.contains("<table>") && html.contains("fig2.png"), "{html}");
}

/// A size sweep keeps one checkpoint line per finished search: a re-run with
/// the same settings reuses those lines instead of training again (an edited
/// line shows up in the result), a torn last line is redone, and a run with
/// other settings is refused (exit 2) unless `--fresh`.
#[test]
fn repro_size_sweep_resumes_from_its_checkpoint() {
    let d = tmpdir("reprockpt");
    let out = d.join("r");
    let args =
        ["repro", "-o", s(&out), "--threads", "1", "size-vs-n", "--values", "4,6", "--seeds", "0", "--steps", "4"];
    ok(memcap(&args));
    let ckpt = out.join("size_vs_n.rows.jsonl");
    let body = std::fs::read_to_string(&ckpt).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 1 + 4, "header + 2 values × 2 families");
    // Mark every finished search; the re-run must report the marks, not retrain.
    let marked: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                return l.to_string();
            }
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["report"]["reason"] = Value::from(format!("from the checkpoint {i}"));
            v.to_string()
        })
        .collect();
    // The last search torn mid-write: it is redone.
    let last = marked.last().unwrap();
    let torn = format!("{}\n{}", marked[..marked.len() - 1].join("\n"), &last[..last.len() / 2]);
    std::fs::write(&ckpt, torn).unwrap();
    let o = ok(memcap(&args));
    assert!(stdout(&o).contains("3 of 4 searches already done"), "{}", stdout(&o));
    let res: Value = serde_json::from_slice(&std::fs::read(out.join("size_vs_n.json")).unwrap()).unwrap();
    let reasons: Vec<&str> =
        res["rows"].as_array().unwrap().iter().map(|r| r["report"]["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.iter().filter(|r| r.starts_with("from the checkpoint")).count(), 3, "{reasons:?}");
    // Other settings: refused, then --fresh starts again.
    let mut other = args.to_vec();
    *other.last_mut().unwrap() = "5";
    let o = memcap(&other);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--fresh"), "{}", stderr(&o));
    other.push("--fresh");
    ok(memcap(&other));
    let again = std::fs::read_to_string(&ckpt).unwrap();
    assert!(!again.contains("from the checkpoint"));
}

/// `memcap scaling --precision exact,f64,f32 -o DIR` builds every size at
/// every precision and writes the trade-off figure and rows; with --verify
/// every float model is also certified in its dtype.
#[test]
fn scaling_over_precisions_writes_the_tradeoff_figure() {
    let d = tmpdir("tradeoff");
    let out = d.join("t");
    let o = ok(memcap(&[
        "scaling",
        "--ns",
        "60,120",
        "-n",
        "3",
        "--seq-lens",
        "--vocab",
        "20",
        "--precision",
        "exact,f64,f32",
        "--verify",
        "--json",
        "-o",
        s(&out),
    ]));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for r in rows {
        assert_eq!(r["memorized"], r["N"], "{r}");
        if r["precision"] != "exact" {
            assert_eq!(r["certified"], true, "{r}");
        }
    }
    let csv = std::fs::read_to_string(out.join("precision_tradeoff.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("120,3,f32,24,")), "{csv}");
    assert!(std::fs::read(out.join("precision_tradeoff.png")).unwrap().starts_with(b"\x89PNG"));
}

/// A grid point that cannot be built is a row with its error, not the end of
/// the run: the other points are built, written and fitted, and the exit code
/// is 1.
#[test]
fn scaling_keeps_the_other_points_when_one_fails() {
    let d = tmpdir("scalefail");
    let out = d.join("t");
    // 10² = 100 distinct contexts of length 2: N = 200 cannot be drawn.
    let o =
        memcap(&["scaling", "--ns", "20,50,200", "-n", "2", "--vocab", "10", "--seq-lens", "--json", "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[2]["error"].as_str().unwrap().contains("distinct contexts"), "{}", rows[2]);
    assert!(rows[..2].iter().all(|r| r["params_nonzero"].as_u64().is_some()));
    assert!(v["slope_nonzero_vs_N"].as_f64().is_some());
    assert!(stderr(&o).contains("1 of 3 points failed"), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("precision_tradeoff.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
}

/// A size sweep with a bad width grid is refused with the flag named, exit
/// 2, before the checkpoint file is created (no partial output).
#[test]
fn repro_refuses_a_bad_width_grid_before_writing_anything() {
    let d = tmpdir("badwidths");
    let out = d.join("r");
    let o =
        memcap(&["repro", "-o", s(&out), "size-vs-n", "--widths", "0", "--no-mlp", "--values", "8", "--seeds", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--widths"), "{}", stderr(&o));
    assert!(!out.join("size_vs_n.rows.jsonl").exists(), "a checkpoint was written for a refused run");
}
