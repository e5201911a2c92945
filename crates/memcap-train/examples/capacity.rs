//! Capacity search on random data, timed: the target is
//! `memcap capacity` for N = 3000, n = 8 in < 10 minutes on 2 cores.
//!
//! `cargo run --release -p memcap-train --example capacity -- [transformer|mlp] [N] [n] [V] [C] [max_steps]`
//! prints progress per tested size and the final report as JSON.

use memcap_train::capacity::{capacity_search, CapacitySpec, Family, Strategy};
use memcap_train::*;

fn main() -> Result<()> {
    memcap_train::ensure_single_threaded_ops();
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: usize| a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let family = a.get(1).map_or("transformer", String::as_str);
    let (n_seqs, seq_len, vocab, classes, steps) = (arg(2, 3000), arg(3, 8), arg(4, 64), arg(5, 16), arg(6, 3000));
    let data = data::generate(&data::GenConfig::random_ids(n_seqs, seq_len, vocab, classes as u32, 0))?;
    let (fam, widths) = match family {
        "mlp" => (Family::Mlp, vec![2, 4, 6, 8, 10, 12, 16, 20, 24, 32]),
        _ => (
            Family::Transformer { heads: 1, ff_mult: 2.0, positional: data::Positional::None, layer_norm: false },
            vec![8, 12, 16, 20, 24, 28, 32, 40, 48],
        ),
    };
    let spec = CapacitySpec {
        family: fam,
        blocks: vec![1],
        widths,
        lrs: vec![1e-2, 3e-3],
        seeds: vec![0],
        train: TrainConfig { max_steps: steps, eval_every: 100, ..TrainConfig::default() },
        strategy: Strategy::Bisect,
        threads: 2,
        max_steps_cap: 4 * steps,
        max_grow: 2,
        min_loss_drop: 0.5,
    };
    let t = std::time::Instant::now();
    let report = capacity_search(&spec, &data, &mut |o| {
        eprintln!(
            "[{:7.1}s] params {:6} memorized {:5} best_acc {:.4} runs {} winner {:?}",
            t.elapsed().as_secs_f64(),
            o.num_params,
            o.memorized,
            o.best_acc,
            o.runs,
            o.winner
        )
    })?;
    eprintln!(
        "min_params {:?} bits/param {:?} runs {} sizes {} of {} elapsed {:.1}s",
        report.min_params,
        report.bits_per_param,
        report.runs_used,
        report.tested.len(),
        report.candidates,
        report.elapsed_s
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
