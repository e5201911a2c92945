//! The training recipe (warmup + cosine decay, clipping), the two capacity
//! metrics, and a budget-aware search that never returns a silent null.

use memcap_train::capacity::{capacity_search, CapacitySpec, Family, Strategy};
use memcap_train::data::{generate, GenConfig};
use memcap_train::model::Model;
use memcap_train::*;
use rand::SeedableRng;

#[test]
fn warmup_cosine_learning_rate_at_given_steps() {
    let c = TrainConfig { lr: 0.1, max_steps: 1000, warmup_frac: 0.05, ..TrainConfig::default() };
    // Warmup: 50 steps, linear from 0.
    assert!((c.lr_at(1) - 0.1 / 50.0).abs() < 1e-15);
    assert!((c.lr_at(25) - 0.05).abs() < 1e-15);
    assert!((c.lr_at(50) - 0.1).abs() < 1e-15);
    // Cosine: half-way through the remaining 950 steps the rate is lr/2; 0 at the end.
    assert!((c.lr_at(50 + 475) - 0.05).abs() < 1e-12);
    assert!(c.lr_at(1000).abs() < 1e-15);
    assert!(c.lr_at(600) < c.lr_at(400));
    let k = TrainConfig { schedule: Schedule::Constant, ..c };
    assert_eq!(k.lr_at(1), 0.1);
    assert_eq!(k.lr_at(1000), 0.1);
}

#[test]
fn memorized_bits_are_zero_for_uniform_and_log2_c_for_certain_predictions() {
    // Per target, by hand: C = 16, p = 1/16 → 4 + log2(1/16) = 0; p = 1 → 4 bits;
    // p = 1/2 → 4 − 1 = 3 bits; p = 1/32 → negative, clamped to 0.
    assert!(memorized_bits_of((1.0f64 / 16.0).ln(), 16).abs() < 1e-12);
    assert_eq!(memorized_bits_of(0.0, 16), 4.0);
    assert!((memorized_bits_of(0.5f64.ln(), 16) - 3.0).abs() < 1e-12);
    assert_eq!(memorized_bits_of((1.0f64 / 32.0).ln(), 16), 0.0);

    // A real model with all weights zero predicts uniformly: 0 memorized bits, 0 accuracy (ties never count).
    let ds = generate(&GenConfig::random_ids(40, 4, 10, 8, 0)).unwrap();
    let cfg = ModelConfig::Transformer(TransformerConfig::for_data(&ds, 8, 1, 16, 1));
    let model = Model::new(&cfg, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0)).unwrap();
    for v in model.vars() {
        v.var.set(&v.var.as_tensor().zeros_like().unwrap()).unwrap();
    }
    let e = evaluate(&model, &ds).unwrap();
    assert!(e.memorized_bits.abs() < 1e-6, "{}", e.memorized_bits);
    assert_eq!(e.acc, 0.0);
    assert!((e.loss - 8f64.ln()).abs() < 1e-5);

    // A memorizing run stores close to N·log2 C = 40·3 = 120 bits.
    let run =
        train(&cfg, &TrainConfig { lr: 0.05, max_steps: 3000, ..TrainConfig::default() }, &ds, &mut |_| {}).unwrap();
    assert!(run.summary.memorized, "{:?}", run.summary);
    assert!(run.summary.memorized_bits > 110.0 && run.summary.memorized_bits <= 120.0 + 1e-9);
}

#[test]
fn bits_per_param_is_null_for_a_run_that_did_not_memorize() {
    let ds = generate(&GenConfig::random_ids(200, 6, 20, 16, 1)).unwrap();
    let cfg = ModelConfig::Mlp(MlpConfig::for_data(&ds, 2, 1));
    let run = train(&cfg, &TrainConfig { max_steps: 20, eval_every: 10, ..TrainConfig::default() }, &ds, &mut |_| {})
        .unwrap();
    assert!(!run.summary.memorized);
    assert_eq!(run.summary.bits_per_param, None);
    assert!(run.summary.final_acc < 1.0);
    let json = serde_json::to_value(&run.summary).unwrap();
    assert!(json["bits_per_param"].is_null());
}

fn tiny_spec() -> CapacitySpec {
    CapacitySpec {
        family: Family::Mlp,
        blocks: vec![1],
        widths: vec![1, 2],
        lrs: vec![3e-2],
        seeds: vec![0],
        train: TrainConfig { max_steps: 300, eval_every: 20, ..TrainConfig::default() },
        strategy: Strategy::Bisect,
        threads: 2,
        max_steps_cap: 300,
        max_grow: 4,
        min_loss_drop: 0.5,
    }
}

#[test]
fn the_search_grows_its_grid_when_the_largest_size_fails() {
    let ds = generate(&GenConfig::random_ids(48, 3, 8, 4, 2)).unwrap();
    let r = capacity_search(&tiny_spec(), &ds, &mut |_| {}).unwrap();
    assert_eq!(r.status, "found", "{}", r.reason);
    // Widths 1 and 2 cannot hold 48·2 label bits; the search doubled beyond them.
    let best = r.best.as_ref().unwrap();
    let ModelConfig::Mlp(m) = &best.model else { panic!("mlp") };
    assert!(m.width > 2, "found width {}", m.width);
    assert!(r.reason.contains("grown"), "{}", r.reason);
    assert!(r.bits_per_param.is_some());
}

#[test]
fn a_cut_budget_is_reported_as_under_trained_not_as_a_silent_null() {
    let ds = generate(&GenConfig::random_ids(300, 8, 64, 16, 3)).unwrap();
    let spec = CapacitySpec {
        family: Family::Transformer {
            heads: 1,
            ff_mult: 2.0,
            positional: memcap_core::Positional::None,
            layer_norm: false,
        },
        widths: vec![16],
        lrs: vec![0.03],
        train: TrainConfig { max_steps: 30, eval_every: 10, ..TrainConfig::default() },
        max_steps_cap: 60,
        max_grow: 0,
        ..tiny_spec()
    };
    let r = capacity_search(&spec, &ds, &mut |_| {}).unwrap();
    assert_eq!(r.status, "not_found");
    assert_eq!(r.min_params, None);
    assert!(r.under_trained, "{}", r.reason);
    assert!(r.tested[0].under_trained && r.tested[0].max_steps_used == 60, "{:?}", r.tested[0]);
    assert!(r.reason.contains("no size up to"), "{}", r.reason);
    assert!(r.best_acc > 0.0 && r.best_acc < 1.0);
}

#[test]
fn the_same_seed_gives_the_same_capacity_report() {
    let ds = generate(&GenConfig::random_ids(32, 3, 8, 4, 4)).unwrap();
    let strip = |mut v: serde_json::Value| {
        fn walk(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.remove("elapsed_s");
                    m.values_mut().for_each(walk);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        v
    };
    let a = capacity_search(&tiny_spec(), &ds, &mut |_| {}).unwrap();
    let b = capacity_search(&tiny_spec(), &ds, &mut |_| {}).unwrap();
    assert_eq!(strip(serde_json::to_value(&a).unwrap()), strip(serde_json::to_value(&b).unwrap()));
}

#[test]
fn memorized_bits_capacity_is_the_maximum_over_growing_datasets() {
    use memcap_train::capacity::{bits_capacity, BitsSpec};
    let ds = generate(&GenConfig::random_ids(256, 4, 12, 8, 5)).unwrap();
    let spec = BitsSpec {
        model: ModelConfig::Mlp(MlpConfig::for_data(&ds, 3, 1)),
        train: TrainConfig { max_steps: 300, eval_every: 50, ..TrainConfig::default() },
        lrs: vec![0.03],
        sizes: vec![16, 32, 64, 128, 256],
        plateau_gain: 0.02,
        threads: 2,
    };
    let r = bits_capacity(&spec, &ds, &mut |_| {}).unwrap();
    let max = r.points.iter().map(|p| p.memorized_bits).fold(0.0, f64::max);
    assert_eq!(r.capacity_bits, max);
    assert!((r.bits_per_param - max / r.num_params as f64).abs() < 1e-12);
    assert!(r.points.iter().zip(&spec.sizes).all(|(p, &n)| p.n_seqs == n));
    // Memorized bits never exceed the labels' bits.
    assert!(r.points.iter().all(|p| p.memorized_bits <= p.label_bits + 1e-9));
    assert_eq!(r.plateaued, r.reason.starts_with("plateau"));
    let bad = BitsSpec { sizes: vec![64, 32], ..spec.clone() };
    assert!(matches!(bits_capacity(&bad, &ds, &mut |_| {}), Err(TrainError::InvalidConfig(_))));
    let too_big = BitsSpec { sizes: vec![512], ..spec };
    assert!(bits_capacity(&too_big, &ds, &mut |_| {}).is_err());
}
