//! Time one training step of the tiny benchmark Transformer
//! (V = C = 16, n = 8, d = 16, 2 heads × 8, d_ff = 48, 1 block: 3152
//! parameters; batch 64, AdamW), the same model as
//! `scripts/train/bench_step.py` builds in PyTorch.
//!
//! `cargo run --release -p memcap-train --example bench_step -- [steps]`
//! prints one JSON line: seconds per step (mean over `steps` after warm-up).

use memcap_train::*;

fn main() -> Result<()> {
    let steps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let data = data::generate(&data::GenConfig::random_ids(64, 8, 16, 16, 0))?;
    let model = ModelConfig::Transformer(TransformerConfig::for_data(&data, 16, 2, 48, 1));
    let cfg = |max_steps| TrainConfig {
        lr: 1e-3,
        max_steps,
        eval_every: max_steps,
        stop_when_memorized: false,
        ..TrainConfig::default()
    };
    // Warm-up (allocator, page faults), then time: the difference of two
    // runs removes the fixed cost (init + the two evaluation passes).
    train(&model, &cfg(50), &data, &mut |_| {})?;
    let t0 = std::time::Instant::now();
    train(&model, &cfg(10), &data, &mut |_| {})?;
    let short = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    train(&model, &cfg(steps + 10), &data, &mut |_| {})?;
    let long = t1.elapsed().as_secs_f64();
    let per_step = (long - short) / steps as f64;
    println!(
        "{{\"impl\":\"memcap-train (candle 0.11.1)\",\"params\":{},\"batch\":64,\"seq_len\":8,\"steps\":{},\"sec_per_step\":{:.3e}}}",
        model.num_params(),
        steps,
        per_step
    );
    Ok(())
}
