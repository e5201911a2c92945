//! The one plot layer of memcap: every figure (sweep reports, the paper's
//! experiments) is a [`Plot`] of named [`Series`], drawn to SVG by plotters
//! and to PNG by resvg (pure Rust, no C libraries).
//!
//! A plot is data first: `report.json` and the `repro` JSON files hold the
//! same series that are drawn, so a figure can always be re-checked against
//! the numbers behind it.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One curve of a plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend text (includes the fitted slope for data on log-log plots).
    pub label: String,
    /// `data` (measured: thick line with markers), `reference` (a formula
    /// line: thin) or `bound` (a lower-bound order: thin, amber).
    pub kind: String,
    /// Points `(x, y)` in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Least-squares slope of log y on log x (log-log plots, ≥ 2 points).
    pub slope: Option<f64>,
    /// Palette slot to draw in, whatever the kind (e.g. a bound drawn in the
    /// colour of the data it bounds). `None`: data series take the palette in
    /// order (bounds and references do not use up slots), the others their
    /// kind's colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<usize>,
}

impl Series {
    /// A measured curve without a fitted slope.
    pub fn data(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series { label: label.into(), kind: "data".into(), points, slope: None, color: None }
    }
}

/// One figure (one chart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plot {
    /// File stem: `NAME.svg`, `NAME.png`.
    pub name: String,
    /// Caption above the chart.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// Both axes logarithmic.
    pub log_log: bool,
    /// Only the y axis logarithmic (ignored when `log_log`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_y: bool,
    /// The curves.
    pub series: Vec<Series>,
}

/// A drawing failure (plotters or resvg), naming the plot.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlotError {
    /// plotters could not draw the SVG.
    #[error("plot {plot}: {reason}")]
    Svg {
        /// Plot name.
        plot: String,
        /// What plotters said.
        reason: String,
    },
    /// resvg could not render the PNG.
    #[error("png {plot}: {reason}")]
    Png {
        /// Plot name.
        plot: String,
        /// What resvg said.
        reason: String,
    },
}

/// Size of one chart in pixels (SVG user units; the PNG has the same size).
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

/// The colour of `s`, the `i`-th data series of its chart (see [`Series::color`]).
fn color(s: &Series, i: usize) -> RGBColor {
    if let Some(k) = s.color {
        return PALETTE[k % PALETTE.len()];
    }
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

impl Plot {
    fn x_log(&self) -> bool {
        self.log_log
    }
    fn y_log(&self) -> bool {
        self.log_log || self.log_y
    }
    fn keep(&self, p: &(f64, f64)) -> bool {
        p.0.is_finite() && p.1.is_finite() && (!self.x_log() || p.0 > 0.0) && (!self.y_log() || p.1 > 0.0)
    }
}

/// A tick label with no more digits than it needs: `1000`, `2.5`, `0.05`,
/// `1e-4`, `2.5e6` (plotters' default prints `100.0` and `0.0010000`).
pub fn tick_label(v: &f64) -> String {
    let v = *v;
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Tick values of a log axis over `[lo, hi]`: powers of ten over three
/// decades or more, `1, 2, 5 × 10^k` over more than 1.2, `1, 2, 3, 5, 7 ×
/// 10^k` over more than 0.6 (all nine crowd the top of a decade), `1…9 ×
/// 10^k` inside that (plotters' own log ticks skip ranges inside a decade).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let span = (hi / lo).log10();
    let mantissas: &[f64] = if span >= 3.0 {
        &[1.0]
    } else if span > 1.2 {
        &[1.0, 2.0, 5.0]
    } else if span > 0.6 {
        &[1.0, 2.0, 3.0, 5.0, 7.0]
    } else {
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    };
    let mut out = Vec::new();
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    for k in k0..=k1 {
        for &m in mantissas {
            let v = m * 10f64.powi(k);
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
    }
    out
}

/// Where the legend goes: the corner of the chart with the fewest data
/// points under the legend box, so it covers as little data as it can.
/// Returns the corner, how many points it still covers and the box's share
/// of the height. The box is estimated from the longest label (about 7 px
/// per character at the 13 px legend font, plus the line sample) on a chart
/// `width_px` wide, and 7% of the height per series.
fn legend_corner(plot: &Plot, width_px: u32) -> (SeriesLabelPosition, usize, f64) {
    let pts: Vec<(f64, f64)> =
        plot.series.iter().flat_map(|s| s.points.iter().copied()).filter(|p| plot.keep(p)).collect();
    let axis = |log: bool| move |v: f64| if log { v.ln() } else { v };
    let (fx, fy) = (axis(plot.x_log()), axis(plot.y_log()));
    let (x0, x1) = bounds(pts.iter().map(|p| p.0), plot.x_log());
    let (y0, y1) = bounds(pts.iter().map(|p| p.1), plot.y_log());
    let norm = |v: f64, lo: f64, hi: f64, f: &dyn Fn(f64) -> f64| (f(v) - f(lo)) / (f(hi) - f(lo)).max(1e-300);
    let longest = plot.series.iter().map(|s| s.label.chars().count()).max().unwrap_or(0);
    let w = ((longest as f64 * 7.0 + 50.0) / f64::from(width_px.max(1))).clamp(0.2, 0.95);
    let h = (0.07 * plot.series.len() as f64 + 0.04).min(0.9);
    let count = |left: bool, bottom: bool| {
        pts.iter()
            .filter(|p| {
                let (u, v) = (norm(p.0, x0, x1, &fx), norm(p.1, y0, y1, &fy));
                (if left { u <= w } else { u >= 1.0 - w }) && (if bottom { v <= h } else { v >= 1.0 - h })
            })
            .count()
    };
    let corners = [
        (SeriesLabelPosition::LowerRight, false, true),
        (SeriesLabelPosition::UpperRight, false, false),
        (SeriesLabelPosition::UpperLeft, true, false),
        (SeriesLabelPosition::LowerLeft, true, true),
    ];
    let mut best = (usize::MAX, SeriesLabelPosition::LowerRight);
    let mut best_upper = (usize::MAX, SeriesLabelPosition::UpperRight);
    for (pos, left, bottom) in corners {
        let c = count(left, bottom);
        if !bottom && c < best_upper.0 {
            best_upper = (c, pos.clone());
        }
        if c < best.0 {
            best = (c, pos);
        }
    }
    // No free corner: an upper one, as the range then grows upwards (a
    // bits-per-parameter axis should not grow below 0 to make room).
    let (covered, pos) = if best.0 == 0 { best } else { best_upper };
    (pos, covered, h)
}

/// The y range widened on the legend's side when the legend would cover
/// data anyway, so that it sits in an empty band of its own height.
fn make_room_for_legend((y0, y1): (f64, f64), log: bool, legend: &(SeriesLabelPosition, usize, f64)) -> (f64, f64) {
    let (corner, covered, h) = legend;
    if *covered == 0 {
        return (y0, y1);
    }
    let bottom = matches!(corner, SeriesLabelPosition::LowerLeft | SeriesLabelPosition::LowerRight);
    let grow = h / (1.0 - h).max(0.1);
    if log {
        let f = ((y1 / y0).ln() * grow).exp();
        if bottom {
            (y0 / f, y1)
        } else {
            (y0, y1 * f)
        }
    } else {
        let d = (y1 - y0) * grow;
        if bottom {
            (y0 - d, y1)
        } else {
            (y0, y1 + d)
        }
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Mesh, curves (markers on data) and legend, for any pair of axis kinds
/// (plotters types log and linear axes differently, hence the generics).
fn draw_on<'a, X, Y>(area: &Area<'a>, plot: &Plot, xr: X, yr: Y, legend: SeriesLabelPosition) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let e = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
    let mut builder = ChartBuilder::on(area);
    builder.caption(plot.title.as_str(), ("sans-serif", 22)).margin(16).x_label_area_size(48).y_label_area_size(72);
    let mut chart = builder.build_cartesian_2d(xr, yr).map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(plot.x_label.as_str())
        .y_desc(plot.y_label.as_str())
        .x_labels(10)
        .y_labels(10)
        .x_label_formatter(&tick_label)
        .y_label_formatter(&tick_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    let mut data_index = 0;
    for s in &plot.series {
        let c = color(s, data_index);
        data_index += usize::from(s.kind == "data");
        let pts: Vec<(f64, f64)> = s.points.iter().filter(|p| plot.keep(p)).copied().collect();
        let style = if s.kind == "data" { c.stroke_width(2) } else { c.stroke_width(1) };
        chart
            .draw_series(LineSeries::new(pts.clone(), style))
            .map_err(e)?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        if s.kind == "data" {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(e)?;
        }
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    Ok(())
}

fn draw(area: &Area<'_>, plot: &Plot) -> Result<(), PlotError> {
    let pts = || plot.series.iter().flat_map(|s| s.points.iter().copied()).filter(|p| plot.keep(p));
    let (x0, x1) = bounds(pts().map(|p| p.0), plot.x_log());
    let legend = legend_corner(plot, area.dim_in_pixel().0);
    let (y0, y1) = make_room_for_legend(bounds(pts().map(|p| p.1), plot.y_log()), plot.y_log(), &legend);
    let log = |lo: f64, hi: f64| (lo..hi).log_scale().with_key_points(log_ticks(lo, hi));
    let r = match (plot.x_log(), plot.y_log()) {
        (true, _) => draw_on(area, plot, log(x0, x1), log(y0, y1), legend.0),
        (false, true) => draw_on(area, plot, x0..x1, log(y0, y1), legend.0),
        (false, false) => draw_on(area, plot, x0..x1, y0..y1, legend.0),
    };
    r.map_err(|reason| PlotError::Svg { plot: plot.name.clone(), reason })
}

/// One plot as an SVG document of [`PLOT_SIZE`] (text as `<text>`, curves as `<polyline>`).
///
/// # Errors
/// [`PlotError::Svg`] when plotters fails.
pub fn render_svg(plot: &Plot) -> Result<String, PlotError> {
    render_panels(std::slice::from_ref(plot), PLOT_SIZE)
}

/// Several plots side by side in one SVG document, each `panel` pixels.
///
/// # Errors
/// [`PlotError::Svg`] when plotters fails.
pub fn render_panels(plots: &[Plot], panel: (u32, u32)) -> Result<String, PlotError> {
    let name = plots.first().map_or_else(String::new, |p| p.name.clone());
    let err = |e: DrawingAreaErrorKind<std::io::Error>| PlotError::Svg { plot: name.clone(), reason: e.to_string() };
    let mut out = String::new();
    {
        let cols = plots.len().max(1);
        let root = SVGBackend::with_string(&mut out, (panel.0 * cols as u32, panel.1)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        for (plot, area) in plots.iter().zip(root.split_evenly((1, cols)).iter()) {
            draw(area, plot)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Renders an SVG document to PNG with resvg. Text needs a system font
/// (fontdb scans the usual font folders; DejaVu Sans is preferred as
/// `sans-serif`); with no font at all the PNG is drawn without text.
///
/// # Errors
/// [`PlotError::Png`] when the SVG does not parse or the image is empty.
pub fn svg_to_png(name: &str, svg: &str) -> Result<Vec<u8>, PlotError> {
    let err = |reason: String| PlotError::Png { plot: name.into(), reason };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_print_no_more_digits_than_needed() {
        let cases =
            [(100.0, "100"), (2.5, "2.5"), (0.05, "0.05"), (0.0, "0"), (1e-4, "1e-4"), (2.5e6, "2.5e6"), (-3.0, "-3")];
        for (v, want) in cases {
            assert_eq!(tick_label(&v), want, "{v}");
        }
    }

    /// When every corner holds data, the y range grows on the legend's side
    /// by the legend's height, so the legend sits in an empty band.
    #[test]
    fn a_legend_that_would_cover_data_gets_an_empty_band() {
        let lower = |covered| (SeriesLabelPosition::LowerRight, covered, 0.2);
        assert_eq!(make_room_for_legend((0.0, 8.0), false, &lower(0)), (0.0, 8.0));
        assert_eq!(make_room_for_legend((0.0, 8.0), false, &lower(3)), (-2.0, 8.0));
        let (lo, hi) = make_room_for_legend((10.0, 1000.0), true, &(SeriesLabelPosition::UpperLeft, 1, 0.2));
        assert_eq!(lo, 10.0);
        assert!((hi - 1000.0 * 100f64.powf(0.25)).abs() < 1e-6, "{hi}");
    }

    #[test]
    fn legend_goes_to_the_corner_without_data() {
        // A loss curve falling from upper left to lower right: the default
        // corner (lower right) holds data, the upper right does not.
        let pts: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 2.0 - 0.1 * i as f64)).collect();
        let plot = Plot {
            name: "p".into(),
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_log: false,
            log_y: false,
            series: vec![Series::data("falling", pts)],
        };
        assert!(matches!(legend_corner(&plot, 900), (SeriesLabelPosition::UpperRight, 0, _)));
    }

    #[test]
    fn a_log_range_of_about_one_decade_gets_uncrowded_ticks() {
        // 800..11,000 (one decade and a bit): 1, 2, 3, 5, 7 × 10^k, not 8000 and 9000 squeezed below 10^4.
        assert_eq!(log_ticks(800.0, 11_000.0), vec![1000.0, 2000.0, 3000.0, 5000.0, 7000.0, 10_000.0]);
    }

    #[test]
    fn narrow_log_range_still_gets_numbered_ticks() {
        // Parameter counts 2,164..6,616 span half a decade: the y axis must
        // still carry several numbers, not just one power of ten.
        let pts = vec![(600.0, 2164.0), (1000.0, 3500.0), (1700.0, 6616.0)];
        let plot = Plot {
            name: "p".into(),
            title: "t".into(),
            x_label: "N".into(),
            y_label: "params".into(),
            log_log: true,
            log_y: false,
            series: vec![Series::data("min size", pts)],
        };
        let svg = render_svg(&plot).expect("renders");
        let numbers: Vec<f64> = svg
            .split('>')
            .filter_map(|t| t.split('<').next())
            .filter_map(|t| t.trim().parse::<f64>().ok())
            .filter(|v| (1000.0..10000.0).contains(v))
            .collect();
        assert!(numbers.len() >= 3, "tick labels between 1e3 and 1e4 in {numbers:?}");
    }
}
