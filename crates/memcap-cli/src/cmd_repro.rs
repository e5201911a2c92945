//! `memcap repro`: the paper's experiments (fig2, size-vs-N, size-vs-n,
//! mlp-vs-transformer). memcap-train returns the results as data;
//! memcap-report draws them; this file writes NAME.{json,csv,svg,png}.

use crate::args::Outcome;
use crate::io::{write_atomic, InputError};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use memcap_train::repro::{self, DataSource, SizeSweepSpec};
use std::path::{Path, PathBuf};

/// `memcap repro`.
#[derive(Args, Debug)]
pub struct ReproArgs {
    #[command(subcommand)]
    pub which: ReproKind,
    /// Output folder (NAME.json, NAME.csv, NAME.svg, NAME.png).
    #[arg(short, long, global = true, default_value = "runs/repro")]
    pub out: PathBuf,
    /// Trainings (fig2, mlp-vs-transformer) or capacity searches (size-vs-N/n) run at once.
    #[arg(long, global = true, default_value_t = 2)]
    pub threads: usize,
}

/// Flags of the two size sweeps.
#[derive(Args, Debug)]
pub struct SweepFlags {
    /// Values of the swept variable (comma-separated); default: the paper's.
    #[arg(long, value_delimiter = ',')]
    pub values: Vec<usize>,
    /// Replicate seeds (data and training), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    pub seeds: Vec<u64>,
    /// Step budget of a first try (doubled while the loss still falls, up to 4×).
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Next-byte windows of this text instead of random data (e.g. an English text a Debian package ships).
    #[arg(long, value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// Skip the MLP baseline.
    #[arg(long)]
    pub no_mlp: bool,
    /// Transformer widths d_model the capacity search tries (comma-separated;
    /// default 8,10,12,14,16,20,24). Go lower when minima sit at the grid floor.
    #[arg(long, value_delimiter = ',')]
    pub widths: Vec<usize>,
    /// MLP hidden widths the search tries (comma-separated; default 1..16).
    #[arg(long, value_delimiter = ',')]
    pub mlp_widths: Vec<usize>,
    /// Ignore the checkpoint (NAME.rows.jsonl in the output folder: one line
    /// per finished search) and start again. Without it a run with the same
    /// settings resumes from the checkpoint (after Ctrl-C, a crash or a Slurm
    /// requeue; a finished run just re-renders), and one with other settings is
    /// refused.
    #[arg(long)]
    pub fresh: bool,
}

#[derive(Subcommand, Debug)]
pub enum ReproKind {
    /// Loss/accuracy curves for #blocks ∈ {1,10,20,30,40}, N = 3000 (paper Fig. 2), pre-LN.
    Fig2 {
        /// Step budget per curve.
        #[arg(long, default_value_t = 1000)]
        steps: usize,
        /// Block counts (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,10,20,30,40")]
        blocks: Vec<usize>,
    },
    /// Smallest memorizing size vs N = 600..1700 step 100 (n = 8), Transformer and MLP, 3 seeds.
    #[command(name = "size-vs-N")]
    SizeVsNSeqs(SweepFlags),
    /// Smallest memorizing size vs n ∈ {4,…,128} at N = 1000, Transformer and MLP, 3 seeds.
    #[command(name = "size-vs-n")]
    SizeVsSeqLen(SweepFlags),
    /// Transformer vs MLP at equal parameters for n = 8, 32, 128, 3 seeds.
    MlpVsTransformer {
        /// Step budget per run.
        #[arg(long, default_value_t = 1500)]
        steps: usize,
        /// Parameter budget of both families.
        #[arg(long, default_value_t = 12_000)]
        params: usize,
        /// Replicate seeds, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
        seeds: Vec<u64>,
    },
}

fn write(out: &Path, name: &str, r: memcap_report::repro::Rendered) -> Result<()> {
    for (ext, bytes) in [
        ("csv", r.csv.as_bytes()),
        ("svg", r.svg.as_bytes()),
        ("png", &r.png[..]),
        ("md", r.markdown.as_bytes()),
        ("json", r.json.as_bytes()),
    ] {
        write_atomic(&out.join(format!("{name}.{ext}")), bytes)?;
    }
    println!("\n{}", r.markdown);
    println!("wrote {0}/{name}.json, .csv, .svg, .png and .md (`memcap report {0}` re-renders them)", out.display());
    Ok(())
}

fn sweep(mut spec: SizeSweepSpec, f: &SweepFlags, jobs: usize, out: &Path, name: &str) -> Result<()> {
    if !f.values.is_empty() {
        spec.values = f.values.clone();
    }
    spec.seeds = f.seeds.clone();
    spec.jobs = jobs;
    spec.transformer.train.max_steps = f.steps;
    spec.transformer.max_steps_cap = f.steps.saturating_mul(4);
    if let Some(m) = &mut spec.mlp {
        m.train.max_steps = f.steps;
        m.max_steps_cap = f.steps.saturating_mul(4);
    }
    if f.no_mlp {
        spec.mlp = None;
    }
    if !f.widths.is_empty() {
        spec.transformer.widths = f.widths.clone();
    }
    if let (Some(m), false) = (&mut spec.mlp, f.mlp_widths.is_empty()) {
        m.widths = f.mlp_widths.clone();
    }
    let text = match &f.text {
        Some(p) => {
            spec.source = DataSource::Text { name: p.display().to_string() };
            (spec.vocab, spec.num_classes) = (256, 256);
            Some(std::fs::read(p).with_context(|| format!("cannot read text {}", p.display()))?)
        }
        None => None,
    };
    // Refused before the checkpoint file exists: no partial output.
    spec.validate()?;
    let total = spec.values.len() * spec.seeds.len() * (1 + usize::from(spec.mlp.is_some()));
    let ckpt = Checkpoint::open(&out.join(format!("{name}.rows.jsonl")), &spec, text.as_deref(), f.fresh)?;
    if !ckpt.done.is_empty() {
        println!(
            "resuming from {}: {} of {total} searches already done",
            ckpt.path.display(),
            ckpt.done.len().min(total)
        );
    }
    let pb = ProgressBar::new(total as u64);
    pb.inc(ckpt.done.len().min(total) as u64);
    let r = repro::size_sweep_resume(&spec, text.as_deref(), &ckpt.done, &|row| {
        ckpt.append(row);
        let line = format!(
            "{} = {:5} {:12} seed {} → {} ({}){}",
            if name.starts_with("size_vs_N") { "N" } else { "n" },
            row.value,
            row.family,
            row.seed,
            row.report.min_params.map_or("not found".into(), |p| format!("{p} params")),
            row.report.reason,
            if row.report.under_trained { " [under_trained]" } else { "" }
        );
        crate::progress::log_line(&pb, line);
        pb.inc(1);
    })
    .map_err(|e| InputError(e.to_string()))?;
    pb.finish_and_clear();
    for s in &r.slopes {
        match s.fit {
            Some(f) => println!(
                "{}: log-log slope of the median minimum size {:.3}{}",
                s.family,
                f.slope,
                f.ci.map_or(String::new(), |(lo, hi)| format!(" (95% CI [{lo:.3}, {hi:.3}])"))
            ),
            None => println!("{}: too few memorizing sizes for a slope", s.family),
        }
    }
    drop(ckpt);
    write(out, name, memcap_report::repro::size_sweep(&r)?)
}

/// The searches a size sweep has finished, one JSON line each after a header
/// line that pins the settings (and the text's SHA-256), so an interrupted or
/// preempted run (Slurm requeue, Ctrl-C) resumes where it stopped. Every
/// search is a pure function of its settings, so a resumed run writes what an
/// uninterrupted one would. It is kept after the run (re-running re-renders).
struct Checkpoint {
    path: PathBuf,
    done: Vec<repro::SizeSweepRow>,
    file: std::sync::Mutex<Option<std::fs::File>>,
}

impl Checkpoint {
    fn header(spec: &SizeSweepSpec, text: Option<&[u8]>) -> serde_json::Value {
        // How many searches run at once does not change any result.
        let spec = SizeSweepSpec { jobs: 0, ..spec.clone() };
        serde_json::json!({
            "memcap_repro_checkpoint": 1,
            "spec": spec,
            "text_sha256": text.map(memcap_sweep::exec::sha256_hex),
        })
    }

    fn open(path: &Path, spec: &SizeSweepSpec, text: Option<&[u8]>, fresh: bool) -> Result<Self> {
        use std::io::Write;
        let header = Self::header(spec, text);
        let mut done = Vec::new();
        if !fresh && path.exists() {
            let body = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let lines: Vec<&str> = body.lines().collect();
            let first: Option<serde_json::Value> = lines.first().and_then(|l| serde_json::from_str(l).ok());
            if first.as_ref() != Some(&header) {
                return Err(InputError(format!(
                    "{}: a checkpoint of a run with other settings (or not a checkpoint); \
                     pass --fresh to start again, or another -o",
                    path.display()
                ))
                .into());
            }
            for (i, line) in lines.iter().enumerate().skip(1) {
                match serde_json::from_str::<repro::SizeSweepRow>(line) {
                    Ok(row) => done.push(row),
                    // A run killed mid-write leaves a torn last line: that search is redone.
                    Err(_) if i + 1 == lines.len() && !body.ends_with('\n') => {}
                    Err(e) => {
                        return Err(
                            InputError(format!("{}: line {}: not a search result: {e}", path.display(), i + 1)).into()
                        )
                    }
                }
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        // Rewrite header + the rows kept (drops a torn line), then append.
        let mut text_out = format!("{header}\n");
        for r in &done {
            text_out.push_str(&serde_json::to_string(r)?);
            text_out.push('\n');
        }
        write_atomic(path, text_out.as_bytes())?;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.flush()?;
        Ok(Checkpoint { path: path.to_path_buf(), done, file: std::sync::Mutex::new(Some(file)) })
    }

    /// Appends one finished search. A failed write only costs a redo on resume,
    /// so it is reported, not fatal.
    fn append(&self, row: &repro::SizeSweepRow) {
        use std::io::Write;
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = guard.as_mut() {
            let line = serde_json::to_string(row).map(|l| l + "\n");
            if let Err(e) = line.map_err(std::io::Error::other).and_then(|l| f.write_all(l.as_bytes())) {
                eprintln!("warning: cannot append to checkpoint {}: {e}", self.path.display());
                *guard = None;
            }
        }
    }
}

/// `memcap repro …`.
pub fn repro(a: ReproArgs) -> Result<Outcome> {
    crate::io::check_output_dir(&a.out, "-o")?;
    memcap_train::ensure_single_threaded_ops();
    if a.threads == 0 {
        return Err(InputError("--threads must be at least 1".into()).into());
    }
    match a.which {
        ReproKind::Fig2 { steps, blocks } => {
            let mut spec = repro::Fig2Spec { threads: a.threads, blocks, ..Default::default() };
            spec.train.max_steps = steps;
            let sp = ProgressBar::new_spinner();
            sp.set_message(format!("training {} Transformers for {steps} steps", spec.blocks.len()));
            sp.enable_steady_tick(std::time::Duration::from_millis(200));
            let r = repro::fig2(&spec).map_err(|e| InputError(e.to_string()))?;
            sp.finish_and_clear();
            for c in &r.curves {
                println!(
                    "{:3} blocks: {} params, final loss {:.4}, accuracy {:.4}",
                    c.blocks, c.summary.num_params, c.summary.final_loss, c.summary.final_acc
                );
            }
            write(&a.out, "fig2", memcap_report::repro::fig2(&r)?)?;
        }
        ReproKind::SizeVsNSeqs(f) => {
            let name = if f.text.is_some() { "size_vs_N_text" } else { "size_vs_N" };
            sweep(SizeSweepSpec::paper_size_vs_n_seqs(), &f, a.threads, &a.out, name)?;
        }
        ReproKind::SizeVsSeqLen(f) => {
            sweep(SizeSweepSpec::paper_size_vs_seq_len(), &f, a.threads, &a.out, "size_vs_n")?;
        }
        ReproKind::MlpVsTransformer { steps, params, seeds } => {
            let mut spec =
                repro::MlpVsTransformerSpec { param_budget: params, threads: a.threads, seeds, ..Default::default() };
            spec.train.max_steps = steps;
            let r = repro::mlp_vs_transformer(&spec, &mut |row| {
                eprintln!(
                    "n = {:4} {:12} seed {} {} params acc {:.4}",
                    row.seq_len, row.family, row.seed, row.num_params, row.best_acc
                )
            })
            .map_err(|e| InputError(e.to_string()))?;
            for s in &r.summary {
                println!(
                    "n = {:4}: transformer {:.4} vs mlp {:.4} (medians of {} seeds) → ahead: {}",
                    s.seq_len,
                    s.transformer_median_acc.unwrap_or(f64::NAN),
                    s.mlp_median_acc.unwrap_or(f64::NAN),
                    s.seeds,
                    s.ahead
                );
            }
            write(&a.out, "mlp_vs_transformer", memcap_report::repro::mlp_vs_transformer(&r)?)?;
        }
    }
    Ok(Outcome::Ok)
}
