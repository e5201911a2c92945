//! # memcap-report: the one plot layer, reports and the drawing of experiments
//!
//! * [`plot`]: [`plot::Plot`] and [`plot::Series`], drawn to SVG (plotters)
//!   and PNG (resvg, pure Rust). Every figure memcap makes goes through it.
//! * [`report`]: the series and tables a sweep report shows (fitted log-log
//!   slopes, √N and N reference lines, comparison with the information
//!   limit, the lower bound and trained minima), rendered as SVG, PNG,
//!   Markdown and HTML.
//! * [`repro`]: the paper's experiments (results of `memcap_train::repro`)
//!   as JSON, CSV, SVG and PNG.
//! * [`tradeoff`]: the parameter–precision trade-off of the constructions
//!   (exact, f64, f32) beside the counting bound N·log2 C / B.
//!
//! Data flows down and drawing flows up: memcap-train and memcap-sweep
//! return results; this crate draws them. No file IO: the `memcap` CLI
//! writes what these functions return.
#![warn(missing_docs)]

pub mod plot;
pub mod report;
pub mod repro;
pub mod tradeoff;
