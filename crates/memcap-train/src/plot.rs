//! Minimal SVG line charts (plotters, SVG backend, no font files needed).
//!
//! One figure = one or more panels side by side, each with named series of
//! `(x, y)` points. That is all the reproductions need.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::{Result, TrainError};

/// One named curve.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points, plotted in order.
    pub points: Vec<(f64, f64)>,
}

/// One chart of a figure.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the chart.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// Logarithmic y axis (non-positive values are dropped).
    pub log_y: bool,
    /// Curves.
    pub series: Vec<Series>,
}

fn perr<E: std::fmt::Display>(e: E) -> TrainError {
    TrainError::Plot(e.to_string())
}

fn bounds(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        vals.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    (lo, hi)
}

/// Render panels side by side as an SVG document.
pub fn svg(panels: &[Panel], panel_width: u32, height: u32) -> Result<String> {
    let mut out = String::new();
    {
        let width = panel_width * panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let keep = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!panel.log_y || y > 0.0);
            let pts = || panel.series.iter().flat_map(|s| s.points.iter().copied().filter(keep));
            let (x0, x1) = bounds(pts().map(|p| p.0));
            let (y0, y1) = bounds(pts().map(|p| p.1));
            let mut builder = ChartBuilder::on(area);
            builder.caption(&panel.title, ("sans-serif", 18)).margin(12).x_label_area_size(36).y_label_area_size(56);
            if panel.log_y {
                let chart = builder.build_cartesian_2d(x0..x1, (y0 * 0.9..y1 * 1.1).log_scale()).map_err(perr)?;
                draw_panel(chart, panel, &keep)?;
            } else {
                let pad = (y1 - y0) * 0.05;
                let chart = builder.build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad)).map_err(perr)?;
                draw_panel(chart, panel, &keep)?;
            }
        }
        root.present().map_err(perr)?;
    }
    Ok(out)
}

/// Mesh, one line per series and the legend, for either y axis (plotters gives
/// log and linear axes different chart types, hence the generic `Y`).
fn draw_panel<'a, Y>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    panel: &Panel,
    keep: &dyn Fn(&(f64, f64)) -> bool,
) -> Result<()>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart.configure_mesh().x_desc(&panel.x_label).y_desc(&panel.y_label).draw().map_err(perr)?;
    for (i, s) in panel.series.iter().enumerate() {
        let c = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(s.points.iter().copied().filter(|p| keep(p)), c.stroke_width(2)))
            .map_err(perr)?
            .label(&s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(perr)?;
    Ok(())
}
