//! The parameter–precision trade-off (docs/construction.md §15): memcap's
//! constructions at B = exact, 53 (f64) and 24 (f32) bits per weight over N,
//! beside the counting bound N·log2 C / B (Vardi, Yehudai & Shamir 2022).

use crate::plot::{render_panels, svg_to_png, Plot, PlotError, Series};
use serde::{Deserialize, Serialize};

/// One construction of a trade-off sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeoffRow {
    /// Examples N.
    #[serde(rename = "N")]
    pub n_seqs: usize,
    /// Sequence length n.
    #[serde(rename = "n")]
    pub seq_len: usize,
    /// `exact`, `f64` or `f32`.
    pub precision: String,
    /// Mantissa bits B of the dtype (None for exact).
    pub bits_per_weight: Option<u32>,
    /// Nonzero parameters.
    pub params_nonzero: u64,
    /// Dense parameters of the fixed-width architecture.
    pub params_dense: u64,
    /// Blocks (depth).
    pub blocks: usize,
    /// Bits of the largest weight.
    pub max_weight_bits: usize,
    /// Σ bits over nonzero weights.
    pub total_bits: u64,
    /// Label bits N·log2 C (the information limit).
    pub label_bits: f64,
}

/// The drawn figure and its data.
pub struct Rendered {
    /// Two panels: nonzero parameters vs N with the counting bounds, and
    /// total bits vs N with the information limit.
    pub svg: String,
    /// The same as PNG.
    pub png: Vec<u8>,
    /// One row per construction.
    pub csv: String,
    /// The two panels as data (series, labels, colour slots), to redraw elsewhere.
    pub plots: Vec<Plot>,
}

/// Draws the trade-off (module docs).
///
/// # Errors
/// [`PlotError`] when drawing fails.
pub fn render(rows: &[TradeoffRow]) -> Result<Rendered, PlotError> {
    let mut precisions: Vec<(String, Option<u32>)> =
        rows.iter().map(|r| (r.precision.clone(), r.bits_per_weight)).collect();
    precisions.dedup();
    precisions.sort_by_key(|p| std::cmp::Reverse(p.1.unwrap_or(u32::MAX)));
    precisions.dedup();
    let curve = |prec: &str, y: &dyn Fn(&TradeoffRow) -> f64| -> Vec<(f64, f64)> {
        let mut pts: Vec<(f64, f64)> =
            rows.iter().filter(|r| r.precision == prec).map(|r| (r.n_seqs as f64, y(r))).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        pts
    };
    let with_slope = |label: String, kind: &str, points: Vec<(f64, f64)>| {
        let slope = memcap_core::model::loglog_slope(&points);
        let label = match slope {
            Some(s) if kind == "data" => format!("{label} (slope {s:.2})"),
            _ => label,
        };
        Series { label, kind: kind.into(), points, slope, color: None }
    };
    let mut params = Vec::new();
    let mut bits = Vec::new();
    // One palette slot per precision, in both panels; its counting bound is
    // drawn thin in the same colour.
    for (k, (prec, b)) in precisions.iter().enumerate() {
        let name = match b {
            Some(b) => format!("{prec} (B = {b})"),
            None => "exact (B ≈ √N bits)".to_string(),
        };
        let slot = |s: Series| Series { color: Some(k), ..s };
        params.push(slot(with_slope(
            format!("{name}: nonzero params"),
            "data",
            curve(prec, &|r| r.params_nonzero as f64),
        )));
        if let Some(b) = b {
            params.push(slot(with_slope(
                format!("{prec} counting bound N·log2 C / {b}"),
                "bound",
                curve(prec, &|r| r.label_bits / f64::from(*b)),
            )));
        }
        bits.push(slot(with_slope(format!("{name}: total bits"), "data", curve(prec, &|r| r.total_bits as f64))));
    }
    if let Some((prec, _)) = precisions.first() {
        bits.push(with_slope("information limit N·log2 C".into(), "bound", curve(prec, &|r| r.label_bits)));
    }
    let plots = [
        Plot {
            name: "precision_tradeoff".into(),
            title: "Parameters vs N at each precision (counting bound N·log2 C / B)".into(),
            x_label: "N (examples)".into(),
            y_label: "nonzero parameters".into(),
            log_log: true,
            log_y: false,
            series: params,
        },
        Plot {
            name: "precision_tradeoff_bits".into(),
            title: "Total bits stored vs the information limit".into(),
            x_label: "N (examples)".into(),
            y_label: "bits (Σ over nonzero weights)".into(),
            log_log: true,
            log_y: false,
            series: bits,
        },
    ];
    let svg = render_panels(&plots, (640, 440))?;
    let png = svg_to_png("precision_tradeoff", &svg)?;
    let plots = plots.to_vec();
    let mut csv = String::from(
        "N,n,precision,bits_per_weight,params_nonzero,params_dense,blocks,max_weight_bits,total_bits,label_bits,\
         counting_bound,ratio_to_counting_bound\n",
    );
    for r in rows {
        let bound = r.bits_per_weight.map(|b| r.label_bits / f64::from(b));
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{:.0},{},{}\n",
            r.n_seqs,
            r.seq_len,
            r.precision,
            r.bits_per_weight.map_or(String::new(), |b| b.to_string()),
            r.params_nonzero,
            r.params_dense,
            r.blocks,
            r.max_weight_bits,
            r.total_bits,
            r.label_bits,
            bound.map_or(String::new(), |b| format!("{b:.0}")),
            bound.map_or(String::new(), |b| format!("{:.2}", r.params_nonzero as f64 / b.max(1.0))),
        ));
    }
    Ok(Rendered { svg, png, csv, plots })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure carries one measured curve per precision and the counting
    /// bound for each float precision, computed from the rows.
    #[test]
    fn tradeoff_draws_every_precision_with_its_counting_bound() {
        let mut rows = Vec::new();
        for (p, b, k) in [("exact", None, 3.0), ("f64", Some(53), 20.0), ("f32", Some(24), 30.0)] {
            for n in [1000usize, 10_000] {
                rows.push(TradeoffRow {
                    n_seqs: n,
                    seq_len: 12,
                    precision: p.into(),
                    bits_per_weight: b,
                    params_nonzero: (k * n as f64 / 10.0) as u64,
                    params_dense: 0,
                    blocks: 1,
                    max_weight_bits: 1,
                    total_bits: 1,
                    label_bits: 4.0 * n as f64,
                });
            }
        }
        let r = render(&rows).unwrap();
        for needle in ["f64 (B = 53)", "f32 (B = 24)", "N·log2 C / 53", "N·log2 C / 24", "exact"] {
            assert!(r.svg.contains(needle), "{needle}");
        }
        assert!(r.png.starts_with(b"\x89PNG"));
        // 10,000 · 4 / 24 = 1667; 30,000 params → 18.00×.
        assert!(r.csv.contains("10000,12,f32,24,30000,0,1,1,1,40000,1667,18.00"), "{}", r.csv);
        // One colour per precision in both panels, shared by its counting bound.
        let slot = |plot: &Plot, needle: &str| {
            plot.series.iter().find(|s| s.label.contains(needle)).and_then(|s| s.color).expect(needle)
        };
        for (k, p) in ["exact", "f64", "f32"].iter().enumerate() {
            assert_eq!(slot(&r.plots[0], &format!("{p} (B")), k, "{p}");
            assert_eq!(slot(&r.plots[1], &format!("{p} (B")), k, "{p}");
        }
        assert_eq!(slot(&r.plots[0], "f64 counting bound"), 1);
        assert_eq!(slot(&r.plots[0], "f32 counting bound"), 2);
    }
}
