//! `memcap`: construct Transformers that provably memorize a dataset, verify
//! them in exact arithmetic, and measure their size.
//!
//! This crate is glue: argument parsing, files, progress bars and tables.
//! All mathematics lives in `memcap-core`.

mod cmd_export;
mod cmd_report;
mod cmd_sweep;
mod commands;
mod export;
mod io;
mod onnx;
mod onnx_proto;
mod progress;
mod train_cmd;

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
    Gen(commands::GenArgs),
    /// Build a model that memorizes DATA exactly; writes MODEL.json (+ .safetensors).
    Construct(commands::ConstructArgs),
    /// Run MODEL on DATA in exact arithmetic (and/or f64, f32); report k/N.
    Verify(commands::VerifyArgs),
    /// Print a model's architecture, parameter and bit accounting.
    Inspect(commands::InspectArgs),
    /// gen → construct → verify on a built-in default, with a short table.
    Demo(commands::DemoArgs),
    /// Construction size over a grid of N (and n); fitted log-log slopes.
    Scaling(commands::ScalingArgs),
    /// Sweeps: plan a grid into tasks.jsonl, run shards (Slurm/K8s/parallel), merge results.
    Sweep(cmd_sweep::SweepArgs),
    /// Plots (SVG, PNG), report.json, report.md and index.html from sweep results.
    Report(cmd_report::ReportArgs),
    /// Write MODEL as safetensors + config.json, or ONNX, and say whether it is float-exact.
    Export(cmd_export::ExportArgs),
    /// Lookup and flattened-input FFN memorizers, bound formulas, memcap and the trained minimum in one table.
    Baselines(cmd_export::BaselinesArgs),
    /// Train a Transformer or MLP on DATA with AdamW (candle, CPU); write a run folder.
    Train(train_cmd::TrainArgs),
    /// Smallest model that gradient descent drives to 100% training accuracy.
    Capacity(train_cmd::CapacityArgs),
    /// Reproductions: fig2, size-vs-n, mlp-vs-transformer (JSON + CSV + SVG).
    Repro(train_cmd::ReproArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Gen(a) => commands::gen(a),
        Cmd::Construct(a) => commands::construct(a),
        Cmd::Verify(a) => commands::verify(a),
        Cmd::Inspect(a) => commands::inspect(a),
        Cmd::Demo(a) => commands::demo(a),
        Cmd::Scaling(a) => commands::scaling(a),
        Cmd::Sweep(a) => cmd_sweep::sweep(a),
        Cmd::Report(a) => cmd_report::report(a),
        Cmd::Export(a) => cmd_export::export(a),
        Cmd::Baselines(a) => cmd_export::baselines(a),
        Cmd::Train(a) => train_cmd::train(a),
        Cmd::Capacity(a) => train_cmd::capacity(a),
        Cmd::Repro(a) => train_cmd::repro(a),
    };
    match result {
        Ok(commands::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(commands::Outcome::NotMemorized) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
