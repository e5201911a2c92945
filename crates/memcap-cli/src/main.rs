//! `memcap`: construct Transformers that provably memorize a dataset, verify
//! them in exact arithmetic, and measure their size.
//!
//! This crate is glue: one file per subcommand (`cmd_*.rs`) that parses
//! flags, calls one library function, prints and writes files. The
//! construction and exact evaluator live in `memcap-core`, training in
//! `memcap-train`, export in `memcap-export`, sweeps in `memcap-sweep`, and
//! every plot in `memcap-report`.

// Doc comments on clap structs are `--help` text (plain text with JSON and
// <placeholders>), not rustdoc markup.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod args;
mod cmd_baselines;
mod cmd_capacity;
mod cmd_construct;
mod cmd_demo;
mod cmd_export;
mod cmd_gen;
mod cmd_inspect;
mod cmd_report;
mod cmd_repro;
mod cmd_scaling;
mod cmd_sweep;
mod cmd_train;
mod cmd_verify;
mod io;
mod progress;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Transformer memorization capacity, made executable.
///
/// Builds explicit weights of a Transformer that memorizes a labelled
/// sequence dataset (the Kajitsuka–Sato construction: one averaging
/// attention layer gives every sequence an ID, a deep narrow ReLU stack maps
/// IDs to labels) and checks them by running the stored model in exact
/// big-integer/rational arithmetic.
///
/// Typical session:
///   memcap gen -N 1000 -n 16 --vocab 100 --classes 8 -o data.jsonl
///   memcap construct data.jsonl -o model.json
///   memcap verify model.json data.jsonl --exact --f64
///
/// Exit codes: 0 success, 1 verification found wrong outputs, 2 error
/// (bad input, inconsistent data, IO).
#[derive(Parser)]
#[command(name = "memcap", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a random consistent dataset, or next-token windows of a text file.
    Gen(cmd_gen::GenArgs),
    /// Build a model that memorizes DATA exactly; writes MODEL.json (+ .safetensors).
    Construct(cmd_construct::ConstructArgs),
    /// Run MODEL on DATA in exact arithmetic (and/or f64, f32); report k/N.
    Verify(cmd_verify::VerifyArgs),
    /// Print a model's architecture, parameter and bit accounting.
    Inspect(cmd_inspect::InspectArgs),
    /// gen → construct → verify on a built-in default, with a short table.
    Demo(cmd_demo::DemoArgs),
    /// Construction size over a grid of N (and n); fitted log-log slopes.
    ///
    /// A point that cannot be built (e.g. more contexts asked than the
    /// vocabulary allows) is printed and kept as a row with its error; the
    /// other points are still built, fitted and written, and the exit code is 1.
    Scaling(cmd_scaling::ScalingArgs),
    /// Sweeps: plan a grid into tasks.jsonl, run shards (Slurm/K8s/parallel), merge results.
    Sweep(cmd_sweep::SweepArgs),
    /// Plots (SVG, PNG), report.json, report.md and index.html from sweep results.
    Report(cmd_report::ReportArgs),
    /// Write MODEL as safetensors + config.json, or ONNX, and say whether it is float-exact.
    Export(cmd_export::ExportArgs),
    /// Lookup and flattened-input FFN memorizers, bound formulas, memcap and the trained minimum in one table.
    Baselines(cmd_baselines::BaselinesArgs),
    /// Train a Transformer or MLP on DATA with AdamW (candle, CPU); write a run folder.
    ///
    /// Exit code 0 when the run memorized (100% strict-argmax accuracy in the
    /// separate evaluation pass), 1 when it did not (the run folder is still
    /// written, with the reason in summary.json), 2 on bad input.
    Train(cmd_train::TrainArgs),
    /// Smallest model that gradient descent drives to 100% training accuracy.
    Capacity(cmd_capacity::CapacityArgs),
    /// The paper's experiments: fig2, size-vs-N, size-vs-n, mlp-vs-transformer (JSON, CSV, SVG, PNG, Markdown table).
    Repro(cmd_repro::ReproArgs),
}

fn main() -> ExitCode {
    // Like other Unix filters: writing into a closed pipe (`memcap … | head`)
    // ends the process quietly instead of panicking in println!.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread
    // starts; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Gen(a) => cmd_gen::gen(a),
        Cmd::Construct(a) => cmd_construct::construct(a),
        Cmd::Verify(a) => cmd_verify::verify(a),
        Cmd::Inspect(a) => cmd_inspect::inspect(a),
        Cmd::Demo(a) => cmd_demo::demo(a),
        Cmd::Scaling(a) => cmd_scaling::scaling(a),
        Cmd::Sweep(a) => cmd_sweep::sweep(a),
        Cmd::Report(a) => cmd_report::report(a),
        Cmd::Export(a) => cmd_export::export(a),
        Cmd::Baselines(a) => cmd_baselines::baselines(a),
        Cmd::Train(a) => cmd_train::train(a),
        Cmd::Capacity(a) => cmd_capacity::capacity(a),
        Cmd::Repro(a) => cmd_repro::repro(a),
    };
    match result {
        Ok(args::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(args::Outcome::NotMemorized) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", io::error_chain(&e));
            ExitCode::from(2)
        }
    }
}
