//! # memcap-train: what gradient descent finds
//!
//! The paper (Kajitsuka & Sato, ICLR 2025) proves which memorizing
//! Transformers *exist*; this crate measures which ones *training finds*.
//! It trains Transformer encoders (no positional encoding as in the paper,
//! or learned positions) and MLP baselines on CPU with candle, checks
//! memorization exactly (100% argmax training accuracy in a separate
//! evaluation pass) and searches for the smallest model that memorizes.
//!
//! Modules:
//! * [`data`]: the training data is memcap-core's [`Dataset`] (re-exported
//!   with its generator, text windows and consistency check), so a trained
//!   minimum and a construction are measured on the same dataset.
//! * [`config`]: model/training configs, `validate()`, closed-form
//!   parameter counts.
//! * [`model`]: the candle computations (differentiable softmax/LayerNorm).
//! * [`mod@train`]: AdamW loop, evaluation, metrics, safetensors bytes,
//!   parallel independent runs.
//! * [`capacity`]: smallest memorizing model, bits per parameter.
//! * [`repro`]: the paper's experiments as functions returning data; the
//!   `memcap-report` crate draws them.
//!
//! The crate does no file IO: results are values (and byte buffers); the
//! `memcap` CLI writes them.
//!
//! ```
//! use memcap_train::{capacity, data, train, ModelConfig, TrainConfig, TransformerConfig};
//! // 24 random next-token sequences (n = 4, V = 8, C = 4), memcap-core's generator.
//! let ds = data::generate(&data::GenConfig::random_ids(24, 4, 8, 4, 0)).unwrap();
//! // Train one Transformer and check memorization with the exact-argmax pass.
//! let model = ModelConfig::Transformer(TransformerConfig::for_data(&ds, 16, 1, 32, 1));
//! let cfg = TrainConfig { lr: 1e-2, max_steps: 400, eval_every: 20, ..TrainConfig::default() };
//! let run = train(&model, &cfg, &ds, &mut |_| {}).unwrap();
//! assert!(run.summary.final_acc > 0.5);
//! // Search the smallest width that memorizes (widths 2..16, one seed).
//! let spec = capacity::CapacitySpec {
//!     widths: vec![2, 4, 8, 16],
//!     lrs: vec![1e-2],
//!     train: TrainConfig { max_steps: 400, eval_every: 20, ..TrainConfig::default() },
//!     ..capacity::CapacitySpec::default()
//! };
//! let report = capacity::capacity_search(&spec, &ds, &mut |_| {}).unwrap();
//! println!("min params {:?}, bits/param {:?}", report.min_params, report.bits_per_param);
//! ```
//!
//! ## Threading
//! Independent trainings run in parallel on a dedicated rayon pool, one
//! training per thread. candle's CPU backend would otherwise parallelize
//! inside ops: matmuls go to `gemm` with `Parallelism::Rayon(n)` where `n`
//! is read from `RAYON_NUM_THREADS` at every call, and large elementwise ops
//! use a spinning barrier pool sized by `CANDLE_NUM_THREADS`. For our tiny
//! models that intra-op threading costs more than it gains and fights with
//! the run-level parallelism, so [`ensure_single_threaded_ops`] sets both
//! variables to `1` once per process (our own pools are sized explicitly
//! and ignore the variable).

#![warn(missing_docs)]

pub mod capacity;
pub mod config;
pub mod data;
pub mod error;
pub mod model;
pub mod repro;
pub mod train;

pub use config::{AttentionKind, MlpConfig, ModelConfig, Readout, Schedule, TrainConfig, TransformerConfig};
pub use data::Dataset;
pub use error::{Result, TrainError};
pub use train::{
    evaluate, gradient_norms, max_accuracy, memorized_bits_of, train, train_many, Evaluation, Job, Metric, Progress,
    RunResult, RunSummary, DIVERGENCE_FACTOR,
};

/// Make candle's CPU ops single-threaded for the rest of the process (see
/// the crate docs, "Threading"). Idempotent; every training entry point
/// calls it before touching candle. Callers that spawn their own threads
/// should call it first thing in `main`, because changing the environment
/// races with foreign (non-Rust) readers of it.
pub fn ensure_single_threaded_ops() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Safe in Rust 2021; std serializes its own env accesses and candle
        // reads these through std::env.
        std::env::set_var("RAYON_NUM_THREADS", "1");
        std::env::set_var("CANDLE_NUM_THREADS", "1");
        keep_freed_memory();
    });
}

/// candle allocates a fresh buffer for every op result. With glibc's
/// defaults, buffers above the (dynamic) mmap threshold are mmapped and
/// unmapped each time, and freed heap tops are trimmed back to the OS, so a
/// full-batch step on N = 3000 touched fresh pages millions of times (we
/// measured ~40% of the time in the kernel, 156 M minor page faults in one
/// capacity search). Raising both thresholds keeps freed memory for reuse.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tunables; it is called once,
    // before any training allocates.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Bits per parameter: `label_bits / params` (`N·log2(C)/P` for next-token).
/// Reference points: ≈2 bits/param (Allen-Zhu & Li 2024), ≈3.6 (Morris et
/// al. 2025).
pub fn bits_per_param(label_bits: f64, params: usize) -> f64 {
    label_bits / params.max(1) as f64
}
