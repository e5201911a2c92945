//! Drawing the paper's experiments (`memcap_train::repro`): the training
//! crate returns results as data; this module renders each as JSON, a flat
//! CSV, and a multi-panel SVG + PNG through the one plot layer
//! ([`crate::plot`]).

use crate::plot::{render_panels, svg_to_png, Plot, PlotError, Series};
use memcap_train::repro::{AccuracySummary, Fig2Curve, Fig2Result, MlpVsTransformerResult, SizeSweepResult, SweepVar};

/// The renderings of a reproduction.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Full result as pretty JSON.
    pub json: String,
    /// Flat table.
    pub csv: String,
    /// Figure (SVG document).
    pub svg: String,
    /// The same figure as PNG.
    pub png: Vec<u8>,
    /// Headline table (Markdown), as the README and `report.md` show it.
    pub markdown: String,
}

/// Rendering a reproduction failed.
#[derive(Debug, thiserror::Error)]
pub enum ReproRenderError {
    /// Serializing the result failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Size of each panel in pixels.
const PANEL: (u32, u32) = (640, 440);

fn finish<T: serde::Serialize>(
    this: &T,
    csv: String,
    panels: &[Plot],
    markdown: String,
) -> Result<Rendered, ReproRenderError> {
    let svg = render_panels(panels, PANEL)?;
    let png = svg_to_png("repro", &svg)?;
    Ok(Rendered { json: serde_json::to_string_pretty(this)?, csv, svg, png, markdown })
}

/// The file stems `memcap repro` writes (`NAME.json` …), in report order.
pub const REPRO_NAMES: [&str; 5] = ["size_vs_N", "size_vs_N_text", "size_vs_n", "mlp_vs_transformer", "fig2"];

/// Re-render a reproduction from the JSON `memcap repro` wrote as
/// `NAME.json` (`NAME` one of [`REPRO_NAMES`]; `size_vs_*` files are size
/// sweeps, whatever their suffix).
///
/// # Errors
/// [`ReproRenderError::Json`] when the JSON is not that result;
/// [`ReproRenderError::Plot`] when drawing fails.
pub fn render_json(name: &str, json: &str) -> Result<Rendered, ReproRenderError> {
    if name.starts_with("fig2") {
        fig2(&serde_json::from_str(json)?)
    } else if name.starts_with("mlp_vs_transformer") {
        mlp_vs_transformer(&serde_json::from_str(json)?)
    } else {
        size_sweep(&serde_json::from_str(json)?)
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |a| format!("{:.1}%", 100.0 * a))
}

fn interval(ci: Option<(f64, f64)>, f: impl Fn(f64) -> String) -> String {
    ci.map_or(String::new(), |(lo, hi)| format!(" [{}, {}]", f(lo), f(hi)))
}

/// Headline table of [`memcap_train::repro::fig2`]: one row per depth.
pub fn fig2_markdown(this: &Fig2Result) -> String {
    let mut md = String::from(
        "| blocks | params | final loss | final accuracy | memorized at step | under-trained | wall s |\n|---:|---:|---:|---:|---:|:---|---:|\n",
    );
    for c in &this.curves {
        let s = &c.summary;
        md.push_str(&format!(
            "| {} | {} | {:.4} | {:.2}% | {} | {} | {:.0} |\n",
            c.blocks,
            s.num_params,
            s.final_loss,
            100.0 * s.final_acc,
            s.first_memorized_step.map_or("–".into(), |v| v.to_string()),
            if s.under_trained { "yes" } else { "no" },
            s.elapsed_s
        ));
    }
    md
}

/// Headline table of [`memcap_train::repro::size_sweep`]: slopes with
/// intervals per family, then the median minimum size per value.
pub fn size_sweep_markdown(this: &SizeSweepResult) -> String {
    let var = match this.spec.sweep {
        SweepVar::NSeqs => "N",
        SweepVar::SeqLen => "n",
    };
    let mut md = format!("| family | log-log slope of minimum size vs {var} | 95% interval | values with a size |\n|---|---:|---|---:|\n");
    for s in &this.slopes {
        match s.fit {
            Some(f) => md.push_str(&format!(
                "| {} | {:.2} | {} | {} |\n",
                s.family,
                f.slope,
                f.ci.map_or("–".into(), |(lo, hi)| format!("[{lo:.2}, {hi:.2}]")),
                f.points
            )),
            None => md.push_str(&format!("| {} | – | – | fewer than 2 |\n", s.family)),
        }
    }
    if !this.construction.is_empty() {
        let pts: Vec<(f64, f64)> =
            this.construction.iter().map(|c| (c.value as f64, c.params_nonzero as f64)).collect();
        let slope = memcap_core::model::loglog_slope(&pts).map_or("–".into(), |s| format!("{s:.2}"));
        md.push_str(&format!("| construction (nonzero) | {slope} | exact, one dataset | {} |\n", pts.len()));
    }
    md.push_str(&format!(
        "\n| {var} | family | found / seeds | under-trained | median min params [95%] | bits/param (exact) | memorized bits/param |\n|---:|---|---:|---:|---:|---:|---:|\n"
    ));
    for c in &this.summary {
        md.push_str(&format!(
            "| {} | {} | {}/{} | {} | {}{} | {} | {} |\n",
            c.value,
            c.family,
            c.found,
            c.seeds,
            c.under_trained,
            c.median_min_params.map_or("–".into(), |v| format!("{v:.0}")),
            interval(c.ci_min_params, |v| format!("{v:.0}")),
            c.median_bits_per_param.map_or("–".into(), |v| format!("{v:.2}")),
            c.median_memorized_bits_per_param.map_or("–".into(), |v| format!("{v:.2}")),
        ));
    }
    md
}

/// Headline table of [`memcap_train::repro::mlp_vs_transformer`]: per n,
/// both families' median best accuracy with intervals and who is ahead.
pub fn mlp_vs_transformer_markdown(this: &MlpVsTransformerResult) -> String {
    let mut md = String::from(
        "| n | Transformer params | Transformer accuracy [95%] | memorized | MLP params | MLP accuracy [95%] | memorized | ahead |\n|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for c in &this.summary {
        md.push_str(&format!(
            "| {} | {} | {}{} | {}/{} | {} | {}{} | {}/{} | {} |\n",
            c.seq_len,
            c.transformer_params,
            pct(c.transformer_median_acc),
            interval(c.transformer_ci, |v| format!("{:.1}%", 100.0 * v)),
            c.transformer_memorized,
            c.seeds,
            c.mlp_params,
            pct(c.mlp_median_acc),
            interval(c.mlp_ci, |v| format!("{:.1}%", 100.0 * v)),
            c.mlp_memorized,
            c.seeds,
            c.ahead
        ));
    }
    md
}

/// [`memcap_train::repro::fig2`]: JSON, CSV (`blocks,params,step,loss,acc,elapsed_s`) and a two-panel
/// figure (loss on a log axis, exact-argmax accuracy).
///
/// # Errors
/// [`ReproRenderError`] when JSON or drawing fails.
pub fn fig2(this: &Fig2Result) -> Result<Rendered, ReproRenderError> {
    {
        let mut csv = String::from("blocks,params,step,loss,acc,elapsed_s\n");
        for c in &this.curves {
            for m in &c.metrics {
                csv.push_str(&format!(
                    "{},{},{},{},{},{:.3}\n",
                    c.blocks, c.summary.num_params, m.step, m.loss, m.acc, m.elapsed_s
                ));
            }
        }
        let d = &this.spec.data;
        let name = |c: &Fig2Curve| format!("{} blocks ({} params)", c.blocks, c.summary.num_params);
        let setting =
            format!("N={} n={} V={} C={} d={}", d.n_seqs, d.seq_len, d.vocab, d.num_classes, this.spec.d_model);
        let panels = [
            Plot {
                name: String::new(),
                title: format!("training loss, {setting}"),
                x_label: "step".into(),
                y_label: "cross-entropy".into(),
                log_log: false,
                log_y: true,
                series: this
                    .curves
                    .iter()
                    .map(|c| Series::data(name(c), c.metrics.iter().map(|m| (m.step as f64, m.loss)).collect()))
                    .collect(),
            },
            Plot {
                name: String::new(),
                title: "training accuracy (exact argmax)".into(),
                x_label: "step".into(),
                y_label: "accuracy".into(),
                log_log: false,
                log_y: false,
                series: this
                    .curves
                    .iter()
                    .map(|c| Series::data(name(c), c.metrics.iter().map(|m| (m.step as f64, m.acc)).collect()))
                    .collect(),
            },
        ];
        finish(this, csv, &panels, fig2_markdown(this))
    }
}

/// [`memcap_train::repro::size_sweep`]: JSON, CSV (one row per search) and
/// a two-panel figure: median minimum parameters (log-log, with the 95%
/// bootstrap interval as thin lines and the explicit construction's nonzero
/// parameters on the same datasets), and bits per parameter (exact threshold
/// and memorized bits).
///
/// # Errors
/// [`ReproRenderError`] when JSON or drawing fails.
pub fn size_sweep(this: &SizeSweepResult) -> Result<Rendered, ReproRenderError> {
    let var = match this.spec.sweep {
        SweepVar::NSeqs => "N",
        SweepVar::SeqLen => "n",
    };
    let mut csv = format!(
        "{var},family,seed,status,min_params,bits_per_param,memorized_bits_per_param,best_acc,under_trained,runs_used,elapsed_s\n"
    );
    for r in &this.rows {
        let rep = &r.report;
        csv.push_str(&format!(
            "{},{},{},{},{},{},{:.4},{:.4},{},{},{:.1}\n",
            r.value,
            r.family,
            r.seed,
            rep.status,
            rep.min_params.map_or(String::new(), |p| p.to_string()),
            rep.bits_per_param.map_or(String::new(), |b| format!("{b:.4}")),
            rep.memorized_bits_per_param,
            rep.best_acc,
            rep.under_trained,
            rep.runs_used,
            rep.elapsed_s
        ));
    }
    let fit_label = |family: &str| -> String {
        match this.slopes.iter().find(|s| s.family == family).and_then(|s| s.fit) {
            Some(f) => match f.ci {
                Some((lo, hi)) => format!("slope {:.2} [{lo:.2}, {hi:.2}]", f.slope),
                None => format!("slope {:.2}", f.slope),
            },
            None => "no slope".into(),
        }
    };
    let mut size_series = Vec::new();
    let mut bits_series = Vec::new();
    let mut families: Vec<&str> = this.summary.iter().map(|s| s.family.as_str()).collect();
    families.dedup();
    for f in families {
        let cells: Vec<_> = this.summary.iter().filter(|s| s.family == f).collect();
        let pts = |g: &dyn Fn(&memcap_train::repro::SizeSummary) -> Option<f64>| -> Vec<(f64, f64)> {
            cells.iter().filter_map(|c| Some((c.value as f64, g(c)?))).collect()
        };
        size_series.push(Series {
            label: format!("trained minimum, {f} (median of {} seeds; {})", this.spec.seeds.len(), fit_label(f)),
            kind: "data".into(),
            points: pts(&|c| c.median_min_params),
            slope: None,
            color: None,
        });
        for (i, end) in ["2.5%", "97.5%"].iter().enumerate() {
            size_series.push(Series {
                label: format!("{f} 95% interval ({end})"),
                kind: "reference".into(),
                points: pts(&|c| c.ci_min_params.map(|ci| if i == 0 { ci.0 } else { ci.1 })),
                slope: Some(1.0),
                color: None,
            });
        }
        bits_series.push(Series::data(format!("{f}: exact threshold"), pts(&|c| c.median_bits_per_param)));
        bits_series.push(Series::data(format!("{f}: memorized bits"), pts(&|c| c.median_memorized_bits_per_param)));
    }
    if !this.construction.is_empty() {
        let pts: Vec<(f64, f64)> =
            this.construction.iter().map(|c| (c.value as f64, c.params_nonzero as f64)).collect();
        let slope = memcap_core::model::loglog_slope(&pts);
        size_series.push(Series {
            label: format!(
                "memcap construction, nonzero (same data; slope {})",
                slope.map_or("-".into(), |s| format!("{s:.2}"))
            ),
            kind: "data".into(),
            points: pts,
            slope,
            color: None,
        });
    }
    let s = &this.spec;
    let setting = match s.sweep {
        SweepVar::NSeqs => format!("n={} V={} C={}", s.seq_len, s.vocab, s.num_classes),
        SweepVar::SeqLen => format!("N={} V={} C={}", s.n_seqs, s.vocab, s.num_classes),
    };
    let panels = [
        Plot {
            name: String::new(),
            title: format!("smallest memorizing model vs {var}, {setting}"),
            x_label: format!("{var} (log)"),
            y_label: "parameters (log)".into(),
            log_log: true,
            log_y: false,
            series: size_series,
        },
        Plot {
            name: String::new(),
            title: "bits per parameter at the smallest size (median)".into(),
            x_label: var.into(),
            y_label: "bits / parameter".into(),
            log_log: false,
            log_y: false,
            series: bits_series,
        },
    ];
    finish(this, csv, &panels, size_sweep_markdown(this))
}

/// [`memcap_train::repro::mlp_vs_transformer`]: JSON, CSV and a two-panel figure:
/// median best training accuracy vs log2 n per family with its 95% interval,
/// and the parameters used.
///
/// # Errors
/// [`ReproRenderError`] when JSON or drawing fails.
pub fn mlp_vs_transformer(this: &MlpVsTransformerResult) -> Result<Rendered, ReproRenderError> {
    let mut csv = String::from("n,family,seed,width,params,best_acc,memorized,memorized_bits,runs\n");
    for r in &this.rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{:.2},{}\n",
            r.seq_len, r.family, r.seed, r.width, r.num_params, r.best_acc, r.memorized, r.memorized_bits, r.runs
        ));
    }
    let x = |n: usize| (n as f64).log2();
    let mut acc = Vec::new();
    for (f, med, ci) in [
        (
            "transformer",
            (|c: &AccuracySummary| c.transformer_median_acc) as fn(&AccuracySummary) -> Option<f64>,
            (|c: &AccuracySummary| c.transformer_ci) as fn(&AccuracySummary) -> Option<(f64, f64)>,
        ),
        ("mlp", |c: &AccuracySummary| c.mlp_median_acc, |c: &AccuracySummary| c.mlp_ci),
    ] {
        acc.push(Series::data(
            format!("{f} (median of {} seeds)", this.spec.seeds.len()),
            this.summary.iter().filter_map(|c| Some((x(c.seq_len), med(c)?))).collect(),
        ));
        for (i, end) in ["2.5%", "97.5%"].iter().enumerate() {
            acc.push(Series {
                label: format!("{f} 95% interval ({end})"),
                kind: "reference".into(),
                points: this
                    .summary
                    .iter()
                    .filter_map(|c| ci(c).map(|v| (x(c.seq_len), if i == 0 { v.0 } else { v.1 })))
                    .collect(),
                slope: Some(1.0),
                color: None,
            });
        }
    }
    let params = vec![
        Series::data("transformer", this.summary.iter().map(|c| (x(c.seq_len), c.transformer_params as f64)).collect()),
        Series::data("mlp", this.summary.iter().map(|c| (x(c.seq_len), c.mlp_params as f64)).collect()),
    ];
    let s = &this.spec;
    let panels = [
        Plot {
            name: String::new(),
            title: format!("training accuracy at <= {} params, N={} C={}", s.param_budget, s.n_seqs, s.num_classes),
            x_label: "log2 n".into(),
            y_label: "best training accuracy".into(),
            log_log: false,
            log_y: false,
            series: acc,
        },
        Plot {
            name: String::new(),
            title: "parameters used".into(),
            x_label: "log2 n".into(),
            y_label: "parameters".into(),
            log_log: false,
            log_y: false,
            series: params,
        },
    ];
    finish(this, csv, &panels, mlp_vs_transformer_markdown(this))
}
