//! Time one training step of a benchmark Transformer, the same model as
//! `scripts/train/bench_step.py` builds in PyTorch (V = C = 16, n = 8, one
//! block, no positional encoding, no LayerNorm, AdamW, full-batch steps on
//! `batch` random sequences):
//!
//! | size   | d_model | heads × d_h | d_ff | parameters |
//! |--------|---------|-------------|------|------------|
//! | `3k`   | 16      | 2 × 8       | 48   | 3,152      |
//! | `30k`  | 48      | 4 × 12      | 192  | 29,440     |
//! | `300k` | 160     | 8 × 20      | 640  | 313,136    |
//!
//! `cargo run --release -p memcap-train --example bench_step -- [size] [batch] [threads] [steps]`
//! (defaults `3k 64 1 2000`) prints one JSON line: seconds per step (the
//! difference of a long and a short run, divided by the extra steps, so init
//! and evaluation passes cancel). `threads` is [`TrainConfig::threads`]:
//! data-parallel shards per step.

use memcap_train::*;

fn main() -> Result<()> {
    let arg = |i: usize| std::env::args().nth(i);
    let size = arg(1).unwrap_or_else(|| "3k".into());
    let batch: usize = arg(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let threads: usize = arg(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let steps: usize = arg(4).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let (d, heads, d_ff) = match size.as_str() {
        "3k" => (16, 2, 48),
        "30k" => (48, 4, 192),
        "300k" => (160, 8, 640),
        other => {
            eprintln!("bench_step: size must be 3k, 30k or 300k, got {other:?}");
            std::process::exit(2);
        }
    };
    let data = data::generate(&data::GenConfig::random_ids(batch, 8, 16, 16, 0))?;
    let model = ModelConfig::Transformer(TransformerConfig::for_data(&data, d, heads, d_ff, 1));
    let cfg = |max_steps| TrainConfig {
        lr: 1e-3,
        max_steps,
        eval_every: max_steps,
        stop_when_memorized: false,
        threads,
        ..TrainConfig::default()
    };
    // Warm-up (allocator, page faults), then time: the difference of two
    // runs removes the fixed cost (init + the two evaluation passes).
    train(&model, &cfg(20), &data, &mut |_| {})?;
    let t0 = std::time::Instant::now();
    train(&model, &cfg(10), &data, &mut |_| {})?;
    let short = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    train(&model, &cfg(steps + 10), &data, &mut |_| {})?;
    let long = t1.elapsed().as_secs_f64();
    let per_step = (long - short) / steps as f64;
    println!(
        "{{\"impl\":\"memcap-train (candle 0.11.1)\",\"size\":\"{size}\",\"threads\":{threads},\"params\":{},\"batch\":{batch},\"seq_len\":8,\"steps\":{steps},\"sec_per_step\":{per_step:.3e}}}",
        model.num_params(),
    );
    Ok(())
}
