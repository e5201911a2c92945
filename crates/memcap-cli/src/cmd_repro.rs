//! `memcap repro`: the paper's experiments (fig2, size-vs-n, mlp-vs-transformer); results drawn by memcap-report.

use crate::args::Outcome;
use crate::io::write_atomic;
use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use memcap_train::repro;
use std::path::{Path, PathBuf};

/// `memcap repro`.
#[derive(Args, Debug)]
pub struct ReproArgs {
    #[command(subcommand)]
    pub which: ReproKind,
    /// Output folder (NAME.json, NAME.csv, NAME.svg).
    #[arg(short, long, global = true, default_value = "runs/repro")]
    pub out: PathBuf,
    /// Parallel trainings.
    #[arg(long, global = true, default_value_t = 2)]
    pub threads: usize,
}

#[derive(Subcommand, Debug)]
pub enum ReproKind {
    /// Loss/accuracy curves for #blocks ∈ {1,10,20,30,40}, N = 3000 (paper Fig. 2).
    Fig2 {
        /// Step budget per curve.
        #[arg(long, default_value_t = 1000)]
        steps: usize,
    },
    /// Smallest memorizing size vs N = 600..1700 (n = 8), Transformer vs MLP.
    SizeVsN {
        /// Step budget per run.
        #[arg(long, default_value_t = 1500)]
        steps: usize,
        /// Dataset sizes N (comma-separated); default 600..1700 step 100 as in the paper.
        #[arg(long, value_delimiter = ',')]
        ns: Vec<usize>,
    },
    /// Transformer vs MLP at equal parameters for n = 8, 32, 128.
    MlpVsTransformer {
        /// Step budget per run.
        #[arg(long, default_value_t = 1500)]
        steps: usize,
        /// Parameter budget of both families.
        #[arg(long, default_value_t = 12_000)]
        params: usize,
    },
}

fn write(out: &Path, name: &str, r: memcap_report::repro::Rendered) -> Result<()> {
    for (ext, bytes) in
        [("csv", r.csv.as_bytes()), ("svg", r.svg.as_bytes()), ("png", &r.png[..]), ("json", r.json.as_bytes())]
    {
        write_atomic(&out.join(format!("{name}.{ext}")), bytes)?;
    }
    println!("wrote {0}/{name}.json, .csv, .svg and .png", out.display());
    Ok(())
}

/// `memcap repro …`.
pub fn repro(a: ReproArgs) -> Result<Outcome> {
    memcap_train::ensure_single_threaded_ops();
    match a.which {
        ReproKind::Fig2 { steps } => {
            let mut spec = repro::Fig2Spec { threads: a.threads, ..Default::default() };
            spec.train.max_steps = steps;
            let sp = ProgressBar::new_spinner();
            sp.set_message(format!("training {} Transformers for {steps} steps", spec.blocks.len()));
            sp.enable_steady_tick(std::time::Duration::from_millis(200));
            let r = repro::fig2(&spec)?;
            sp.finish_and_clear();
            write(&a.out, "fig2", memcap_report::repro::fig2(&r)?)?;
        }
        ReproKind::SizeVsN { steps, ns } => {
            let mut spec = repro::SizeVsNSpec::default();
            if !ns.is_empty() {
                spec.n_seqs = ns;
            }
            spec.transformer.train.max_steps = steps;
            spec.mlp.train.max_steps = steps;
            spec.transformer.threads = a.threads;
            spec.mlp.threads = a.threads;
            let r = repro::size_vs_examples(&spec, &mut |row| {
                eprintln!("N = {:5} {:12} min params {:?}", row.n_seqs, row.family, row.report.min_params)
            })?;
            write(&a.out, "size_vs_n", memcap_report::repro::size_vs_n(&r)?)?;
        }
        ReproKind::MlpVsTransformer { steps, params } => {
            let mut spec =
                repro::MlpVsTransformerSpec { param_budget: params, threads: a.threads, ..Default::default() };
            spec.train.max_steps = steps;
            let r = repro::mlp_vs_transformer(&spec, &mut |row| {
                eprintln!("n = {:4} {:12} {} params acc {:.4}", row.seq_len, row.family, row.num_params, row.best_acc)
            })?;
            write(&a.out, "mlp_vs_transformer", memcap_report::repro::mlp_vs_transformer(&r)?)?;
        }
    }
    Ok(Outcome::Ok)
}
