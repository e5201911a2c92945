//! Drawing the paper's experiments (`memcap_train::repro`): the training
//! crate returns results as data; this module renders each as JSON, a flat
//! CSV, and a multi-panel SVG + PNG through the one plot layer
//! ([`crate::plot`]).

use crate::plot::{render_panels, svg_to_png, Plot, PlotError, Series};
use memcap_train::capacity::CapacityReport;
use memcap_train::repro::{Fig2Curve, Fig2Result, MlpVsTransformerResult, MlpVsTransformerRow, SizeVsNResult};

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

fn finish<T: serde::Serialize>(this: &T, csv: String, panels: &[Plot]) -> Result<Rendered, ReproRenderError> {
    let svg = render_panels(panels, PANEL)?;
    let png = svg_to_png("repro", &svg)?;
    Ok(Rendered { json: serde_json::to_string_pretty(this)?, csv, svg, png })
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
        finish(this, csv, &panels)
    }
}

/// [`memcap_train::repro::size_vs_examples`]: JSON, CSV (`N,family,min_params,bits_per_param,…`) and a
/// two-panel figure.
///
/// # Errors
/// [`ReproRenderError`] when JSON or drawing fails.
pub fn size_vs_n(this: &SizeVsNResult) -> Result<Rendered, ReproRenderError> {
    {
        let mut csv = String::from("N,family,min_params,bits_per_param,runs_used,sizes_tested,elapsed_s\n");
        for r in &this.rows {
            let rep = &r.report;
            csv.push_str(&format!(
                "{},{},{},{},{},{},{:.1}\n",
                r.n_seqs,
                r.family,
                rep.min_params.map_or(String::new(), |p| p.to_string()),
                rep.bits_per_param.map_or(String::new(), |b| format!("{b:.4}")),
                rep.runs_used,
                rep.tested.len(),
                rep.elapsed_s
            ));
        }
        let series = |f: &str, y: &dyn Fn(&CapacityReport) -> Option<f64>| {
            Series::data(
                f,
                this.rows
                    .iter()
                    .filter(|r| r.family == f)
                    .filter_map(|r| y(&r.report).map(|v| (r.n_seqs as f64, v)))
                    .collect(),
            )
        };
        let s = &this.spec;
        let panels = [
            Plot {
                name: String::new(),
                title: format!("smallest memorizing model, n={} V={} C={}", s.seq_len, s.vocab, s.num_classes),
                x_label: "N (examples)".into(),
                y_label: "parameters".into(),
                log_log: false,
                log_y: false,
                series: vec![
                    series("transformer", &|r| r.min_params.map(|p| p as f64)),
                    series("mlp", &|r| r.min_params.map(|p| p as f64)),
                ],
            },
            Plot {
                name: String::new(),
                title: "bits per parameter at the smallest size".into(),
                x_label: "N (examples)".into(),
                y_label: "N log2(C) / params".into(),
                log_log: false,
                log_y: false,
                series: vec![series("transformer", &|r| r.bits_per_param), series("mlp", &|r| r.bits_per_param)],
            },
        ];
        finish(this, csv, &panels)
    }
}

/// [`memcap_train::repro::mlp_vs_transformer`]: JSON, CSV and a two-panel figure (accuracy and
/// parameters vs log2 n per family).
///
/// # Errors
/// [`ReproRenderError`] when JSON or drawing fails.
pub fn mlp_vs_transformer(this: &MlpVsTransformerResult) -> Result<Rendered, ReproRenderError> {
    {
        let mut csv = String::from("n,family,width,params,best_acc,memorized,runs\n");
        for r in &this.rows {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                r.seq_len, r.family, r.width, r.num_params, r.best_acc, r.memorized, r.runs
            ));
        }
        let series = |f: &str, y: &dyn Fn(&MlpVsTransformerRow) -> f64| {
            Series::data(
                f,
                this.rows.iter().filter(|r| r.family == f).map(|r| ((r.seq_len as f64).log2(), y(r))).collect(),
            )
        };
        let s = &this.spec;
        let panels = [
            Plot {
                name: String::new(),
                title: format!("train accuracy at <= {} params, N={} C={}", s.param_budget, s.n_seqs, s.num_classes),
                x_label: "log2 n".into(),
                y_label: "best training accuracy".into(),
                log_log: false,
                log_y: false,
                series: vec![series("transformer", &|r| r.best_acc), series("mlp", &|r| r.best_acc)],
            },
            Plot {
                name: String::new(),
                title: "parameters used".into(),
                x_label: "log2 n".into(),
                y_label: "parameters".into(),
                log_log: false,
                log_y: false,
                series: vec![series("transformer", &|r| r.num_params as f64), series("mlp", &|r| r.num_params as f64)],
            },
        ];
        finish(this, csv, &panels)
    }
}
