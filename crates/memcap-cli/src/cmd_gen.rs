//! `memcap gen`: a random consistent dataset, or next-token windows of a text.

use crate::args::*;
use crate::io::{write_atomic_with, InputError};
use anyhow::Result;
use clap::Args;
use memcap_core::gen::{self, GenConfig, GenKind};
use memcap_core::parse::{to_csv_lines, to_jsonl_lines};
use memcap_core::{Dedupe, Positional, Task};
use std::path::PathBuf;

#[derive(Args)]
pub struct GenArgs {
    /// Number of sequences N.
    #[arg(short = 'N', long = "n-seqs", default_value_t = 1000)]
    n_seqs: usize,
    /// Sequence length n (with --text: the window length).
    #[arg(short = 'n', long = "seq-len", default_value_t = 16)]
    seq_len: usize,
    /// Vocabulary size (ids), or size of the random vector pool (vectors).
    #[arg(long, default_value_t = 100)]
    vocab: usize,
    /// Number of classes C (labels 0..C-1).
    #[arg(long = "num-classes", visible_alias = "classes", default_value_t = 8)]
    classes: u32,
    /// Next-token prediction (one label per sequence) or sequence-to-sequence
    /// (one label per position).
    #[arg(long, value_enum, default_value = "next-token")]
    task: Task,
    /// Token ids, or token vectors drawn from a pool of --vocab random vectors.
    #[arg(long, value_enum, default_value = "ids")]
    kind: KindArg,
    /// Dimension d of vector tokens.
    #[arg(long, default_value_t = 8)]
    dim: usize,
    /// Draw contexts distinct for this model kind (learned: ordered sequences).
    #[arg(long, value_enum, default_value = "none")]
    positional: Positional,
    /// Random seed (the output is a pure function of the flags).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    text: TextOpts,
    /// With --text: what to do with contexts that occur with different next tokens.
    #[arg(long, value_enum, default_value = "majority")]
    dedupe: Dedupe,
    /// Output file: JSONL, or memcap's CSV format when the name ends in `.csv`
    /// (token ids only; a `# memcap_dataset` comment records V and C).
    #[arg(short, long)]
    out: PathBuf,
}

pub fn gen(a: GenArgs) -> Result<Outcome> {
    crate::io::check_output_file(&a.out, "-o")?;
    let ds = match &a.text.text {
        Some(path) => {
            let bytes = a.text.read(path)?;
            let td = gen::text_windows(&bytes, &a.text.spec(a.seq_len))
                .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
            // Conflicts in both model kinds: order-blind (no positions) and ordered.
            for (mode, pos) in [
                ("no positions (permutation-equivalent contexts)", Positional::None),
                ("learned positions (identical ordered contexts)", Positional::Learned),
            ] {
                let (_, rep) = td
                    .dataset
                    .resolve_conflicts(pos, Dedupe::Majority)
                    .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
                eprintln!(
                    "conflicts with {mode}: {} of {} windows, best achievable accuracy {:.2}%",
                    rep.labels_in_conflict,
                    rep.labels_total,
                    100.0 * rep.best_accuracy
                );
            }
            let (ds, rep) = td
                .dataset
                .resolve_conflicts(a.positional, a.dedupe)
                .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
            eprintln!(
                "wrote windows for {} mode: kept {} of {} (--dedupe {})",
                if a.positional == Positional::Learned { "learned-positions" } else { "no-positions" },
                ds.len(),
                rep.labels_total,
                if a.dedupe == Dedupe::Majority { "majority" } else { "error" }
            );
            ds
        }
        None => gen::generate(&GenConfig {
            n_seqs: a.n_seqs,
            seq_len: a.seq_len,
            vocab: a.vocab,
            num_classes: a.classes,
            task: a.task,
            kind: match a.kind {
                KindArg::Ids => GenKind::Ids,
                KindArg::Vectors => GenKind::Vectors { d: a.dim },
            },
            positional: a.positional,
            seed: a.seed,
        })
        .map_err(|e| InputError(e.to_string()))?,
    };
    // `.csv` gets memcap's CSV format (what `read_dataset` reads from a
    // `.csv` path), everything else JSONL.
    let lines: Box<dyn Iterator<Item = String>> = if crate::io::is_csv_path(&a.out) {
        Box::new(to_csv_lines(&ds).map_err(|e| InputError(format!("-o {}: {e}", a.out.display())))?)
    } else {
        Box::new(to_jsonl_lines(&ds))
    };
    write_atomic_with(&a.out, |w| {
        for line in lines {
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    eprintln!("wrote {} ({} sequences of length {})", a.out.display(), ds.len(), ds.seq_len());
    Ok(Outcome::Ok)
}
