//! # memcap-report: sweeps and reports, as data
//!
//! * [`sweep`]: sweep configs (JSON grids) expanded into a deterministic list
//!   of complete tasks, each identified by the hash of its canonical JSON.
//! * [`report`]: the series and tables a report shows (fitted log-log
//!   slopes, √N and N reference lines, comparison with the information limit,
//!   the lower bound and trained minima), rendered as SVG (plotters), PNG
//!   (resvg, pure Rust), Markdown and HTML.
//!
//! No IO and no CLI: the `memcap` binary reads and writes the files and runs
//! the tasks (it owns the dependencies on memcap-core and memcap-train).

pub mod report;
pub mod sweep;
