//! One float forward (issue 11, item 5): a constructed model enters the
//! trained Transformer through `Model::from_construction` (given weights,
//! attention scale 1, the construction's softmax or hardmax, blocks without heads, an embedding bias, a
//! value readout) and runs the same candle forward pass as a trained one.
//! The exact engine (`memcap_core::reference::forward`) is the oracle.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use memcap_core::eval::TokenValue;
use memcap_core::gen::{generate, GenConfig, GenKind};
use memcap_core::model::AttentionKind;
use memcap_core::{construct, ConstructConfig, Dataset, Inputs, Labels, Positional, Precision, Task};
use memcap_train::data::input_tensor;
use memcap_train::model::{construction_config, Model};
use memcap_train::{ModelConfig, TrainConfig, TrainError};
use rand::SeedableRng;

fn dataset(n_seqs: usize, n: usize, vocab: usize, classes: u32, task: Task, seed: u64) -> Dataset {
    let mut g = GenConfig::random_ids(n_seqs, n, vocab, classes, seed);
    g.task = task;
    g.kind = GenKind::Ids;
    generate(&g).expect("data")
}

/// The exact output at every read position (next-token: the last; seq2seq:
/// every position, row-major), as f64 (the exact values here are integers
/// or small rationals).
fn exact_outputs(model: &memcap_core::Model, ds: &Dataset) -> Vec<f64> {
    let seqs: Vec<Vec<TokenValue>> = match &ds.inputs {
        Inputs::Ids { seqs, .. } => seqs.iter().map(|s| s.iter().map(|&t| TokenValue::Id(t)).collect()).collect(),
        Inputs::Vectors { seqs, .. } => {
            seqs.iter().map(|s| s.iter().map(|v| TokenValue::Vector(v.clone())).collect()).collect()
        }
    };
    let mut out = Vec::new();
    for s in &seqs {
        let z = memcap_core::reference::forward(model, s).expect("exact forward");
        let vals: Vec<f64> = z.iter().map(|q| q.to_f64().value()).collect();
        match ds.task() {
            Task::NextToken => out.push(vals[vals.len() - 1]),
            Task::Seq2seq => out.extend(vals),
        }
    }
    out
}

fn labels(ds: &Dataset) -> Vec<f64> {
    match &ds.labels {
        Labels::NextToken(y) => y.iter().map(|&v| f64::from(v)).collect(),
        Labels::Seq2seq(y) => y.iter().flatten().map(|&v| f64::from(v)).collect(),
    }
}

/// The candle forward pass of `model` on every example: one value per read position.
fn candle_outputs(model: &Model, ds: &Dataset) -> Vec<f64> {
    let out = model.logits(&input_tensor(ds).expect("inputs"), true).expect("forward");
    assert_eq!(out.dim(1).expect("dims"), 1, "a value readout has one output per position");
    out.to_dtype(DType::F64).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1::<f64>()).expect("values")
}

/// Float-exact constructions (f32 and f64, n = 3 where 1/3 rounds, n a
/// power of two, next-token and seq2seq) run through the trained
/// Transformer's forward pass in their dtype and return every exact output
/// and every label, bit for bit.
#[test]
fn float_construction_in_the_trained_forward_equals_the_exact_engine() {
    for (i, &(n_seqs, n, vocab, classes)) in [(50, 3, 12, 4), (80, 5, 20, 16), (40, 8, 6, 2)].iter().enumerate() {
        for task in [Task::NextToken, Task::Seq2seq] {
            let ds = dataset(n_seqs, n, vocab, classes, task, i as u64);
            for (precision, dtype) in [(Precision::F32, DType::F32), (Precision::F64, DType::F64)] {
                let what = format!("N = {n_seqs}, n = {n}, {task:?}, {dtype:?}");
                let built = construct(&ds, &ConstructConfig { precision, ..Default::default() }).expect("construct");
                let model = Model::from_construction(&built.model, dtype).expect("from_construction");
                assert_eq!(model.dtype(), dtype, "{what}");
                let got = candle_outputs(&model, &ds);
                assert_eq!(got, exact_outputs(&built.model, &ds), "{what}: float forward != exact engine");
                assert_eq!(got, labels(&ds), "{what}: not every label");
            }
        }
    }
}

/// The default (exact) construction, whose weights are not all floats,
/// still runs in the same forward: in f64 it tracks the exact engine on a
/// small dataset whose weights stay small (hardmax, learned positions and
/// vector tokens included), so the layouts and the hardmax are the exact
/// engine's.
#[test]
fn exact_construction_in_f64_tracks_the_exact_engine() {
    let mut cases = Vec::new();
    for task in [Task::NextToken, Task::Seq2seq] {
        cases.push((dataset(12, 4, 6, 3, task, 1), Positional::None));
        cases.push((dataset(12, 4, 6, 3, task, 2), Positional::Learned));
    }
    let mut g = GenConfig::random_ids(10, 3, 5, 3, 4);
    g.kind = GenKind::Vectors { d: 2 };
    cases.push((generate(&g).expect("vector data"), Positional::None));
    let mut ran = Vec::new();
    for (ds, positional) in &cases {
        for attention in [AttentionKind::Hardmax, AttentionKind::Softmax] {
            let cfg = ConstructConfig { positional: *positional, attention, ..Default::default() };
            let Ok(built) = construct(ds, &cfg) else { continue };
            let what = format!("{:?}, {positional:?}, {attention:?}", ds.task());
            ran.push(what.clone());
            let model = Model::from_construction(&built.model, DType::F64).expect("from_construction");
            let exact = exact_outputs(&built.model, ds);
            let got = candle_outputs(&model, ds);
            assert_eq!(got.len(), exact.len());
            for (k, (g, e)) in got.iter().zip(&exact).enumerate() {
                assert!((g - e).abs() <= 1e-6 * e.abs().max(1.0), "{what}: output {k}: f64 {g} vs exact {e}");
            }
        }
    }
    // Every case builds under at least one attention kind.
    assert!(ran.len() >= cases.len(), "only {ran:?} were constructed");
}

/// `Model::tensors` is what the forward runs and `Model::from_tensors` takes
/// back: the round trip gives bit-identical outputs, for a constructed and
/// for a randomly initialized trained model. Bad tensor sets are refused
/// with the tensor's name.
#[test]
fn given_weights_round_trip_and_bad_tensor_sets_are_refused() {
    let ds = dataset(30, 3, 8, 4, Task::NextToken, 5);
    let built = construct(&ds, &ConstructConfig { precision: Precision::F32, ..Default::default() }).expect("c");
    let model = Model::from_construction(&built.model, DType::F32).expect("model");
    let tensors: BTreeMap<String, Tensor> = model.tensors().expect("tensors").into_iter().collect();
    let cfg = model.config().clone();
    let again = Model::from_tensors(&cfg, &tensors).expect("round trip");
    assert_eq!(candle_outputs(&again, &ds), candle_outputs(&model, &ds));

    let trained_cfg = ModelConfig::Transformer(memcap_train::TransformerConfig::for_data(&ds, 8, 2, 16, 2));
    let trained = Model::new(&trained_cfg, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1)).expect("trained");
    let t2: BTreeMap<String, Tensor> = trained.tensors().expect("t").into_iter().collect();
    let back = Model::from_tensors(&trained_cfg, &t2).expect("trained round trip");
    let tokens = input_tensor(&ds).expect("tokens");
    let a = trained.logits(&tokens, true).and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?)).expect("a");
    let b = back.logits(&tokens, true).and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?)).expect("b");
    assert_eq!(a, b);

    let err = |t: &BTreeMap<String, Tensor>| match Model::from_tensors(&cfg, t) {
        Err(TrainError::InvalidConfig(m)) => m,
        Err(e) => panic!("wrong error kind: {e}"),
        Ok(_) => panic!("a bad tensor set was accepted"),
    };
    let mut missing = tensors.clone();
    missing.remove("head.bias");
    assert!(err(&missing).contains("missing tensor head.bias"), "{}", err(&missing));
    let mut extra = tensors.clone();
    extra.insert(
        "blocks.0.attn.z_proj.weight".into(),
        Tensor::zeros(2, DType::F32, &candle_core::Device::Cpu).expect("z"),
    );
    assert!(err(&extra).contains("blocks.0.attn.z_proj.weight"), "{}", err(&extra));
    let mut shape = tensors.clone();
    shape.insert("head.bias".into(), Tensor::zeros(2, DType::F32, &candle_core::Device::Cpu).expect("z"));
    assert!(err(&shape).contains("tensor head.bias: shape [2]"), "{}", err(&shape));
    let mut mixed = tensors.clone();
    mixed.insert("head.bias".into(), Tensor::zeros(1, DType::F64, &candle_core::Device::Cpu).expect("z"));
    assert!(err(&mixed).contains("mix dtypes"), "{}", err(&mixed));
}

/// A value readout is the constructed model's; training it with
/// cross-entropy is refused before any work, naming the field.
#[test]
fn a_value_readout_is_refused_by_training() {
    let ds = dataset(20, 3, 8, 4, Task::NextToken, 6);
    let built = construct(&ds, &ConstructConfig::default()).expect("c");
    let cfg = ModelConfig::Transformer(construction_config(&built.model).expect("cfg"));
    let r = memcap_train::train(&cfg, &TrainConfig { max_steps: 1, ..TrainConfig::default() }, &ds, &mut |_| {});
    match r {
        Err(TrainError::InvalidConfig(m)) => assert!(m.contains("readout"), "{m}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("trained a value readout"),
    }
}
