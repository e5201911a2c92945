//! memcap as a library, through the public API only:
//!
//! 1. generate → construct → verify exactly (memcap-core), then the f64
//!    float-exactness verdict and the safetensors/ONNX bytes (memcap-export),
//!    and an f32-exact construction with its certificate;
//! 2. the *same* dataset → train one Transformer → capacity search
//!    (memcap-train), and a figure of the search (memcap-report).
//!
//! `cargo run --release -p memcap-library-tour` (about 10 s). Writes nothing
//! but `library-tour.svg` in the current folder.

use memcap_core::certificate::{certify, FloatType};
use memcap_core::gen::{generate, GenConfig};
use memcap_core::verify::{verify, Arith};
use memcap_core::{construct, eval::NoProgress, ConstructConfig, Precision};
use memcap_report::plot::{render_svg, Plot, Series};
use memcap_train::capacity::{capacity_search, CapacitySpec};
use memcap_train::{train, ModelConfig, TrainConfig, TransformerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 200 random next-token sequences, n = 8 tokens over V = 32, C = 8 classes.
    let ds = generate(&GenConfig::random_ids(200, 8, 32, 8, 0))?;
    println!("dataset: N = {}, n = {}, {:.0} label bits", ds.len(), ds.seq_len(), ds.label_bits());

    // Path 1: explicit weights, checked in exact arithmetic on every example.
    let built = construct(&ds, &ConstructConfig::default())?;
    let acc = built.model.accounting();
    let exact = verify(&built.model, &ds, Arith::Exact, &NoProgress)?;
    println!(
        "construction: {} blocks, {} nonzero / {} dense params, max weight {} bits; exact {}/{}",
        acc.blocks,
        acc.params_nonzero,
        acc.params_dense,
        acc.max_weight_bits,
        exact.memorized,
        ds.len()
    );
    let fe = memcap_export::float_exactness(&built.model, Some(&ds), FloatType::F64)?;
    println!("f64 export float-exact: {:?} ({})", fe.float_exact, fe.basis);
    // The same data, constructed to be exact in f32 (more, smaller blocks), and its certificate.
    let f32_built = construct(&ds, &ConstructConfig { precision: Precision::F32, ..Default::default() })?;
    let cert = certify(&f32_built.model, &ds, FloatType::F32)?;
    println!(
        "f32 construction: {} nonzero params, certified exact in f32: {}",
        f32_built.model.accounting().params_nonzero,
        cert.certified
    );
    let st = memcap_export::to_safetensors(&built.model)?;
    println!("safetensors {} bytes, onnx {} bytes", st.len(), memcap_export::to_onnx(&built.model, &[])?.len());

    // Path 2: what gradient descent finds on the same dataset.
    memcap_train::ensure_single_threaded_ops();
    let model = ModelConfig::Transformer(TransformerConfig::for_data(&ds, 32, 1, 64, 1));
    let cfg = TrainConfig { lr: 1e-2, max_steps: 600, eval_every: 50, ..TrainConfig::default() };
    let run = train(&model, &cfg, &ds, &mut |_| {})?;
    println!(
        "trained d=32: {} params, accuracy {:.3}, memorized {}",
        run.summary.num_params, run.summary.final_acc, run.summary.memorized
    );
    let spec = CapacitySpec {
        widths: vec![4, 8, 16, 32],
        lrs: vec![1e-2],
        train: TrainConfig { max_steps: 600, eval_every: 50, ..TrainConfig::default() },
        ..CapacitySpec::default()
    };
    let cap = capacity_search(&spec, &ds, &mut |o| println!("  {} params: memorized {}", o.num_params, o.memorized))?;
    println!("capacity: min params {:?}, bits/param {:?}", cap.min_params, cap.bits_per_param);

    let mut points: Vec<(f64, f64)> = cap.tested.iter().map(|o| (o.num_params as f64, o.best_acc)).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let plot = Plot {
        name: "library-tour".into(),
        title: format!("capacity search, N = {}", ds.len()),
        x_label: "parameters".into(),
        y_label: "best training accuracy".into(),
        log_log: false,
        log_y: false,
        series: vec![Series::data("1-block Transformer", points)],
    };
    std::fs::write("library-tour.svg", render_svg(&plot)?)?;
    println!("wrote library-tour.svg");
    Ok(())
}
