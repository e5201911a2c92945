//! memcap-export as a library: the safetensors bytes hold every weight (f64,
//! PyTorch layout), equal models give identical bytes, and the float-exactness
//! verdict is true only with a reason a runtime can rely on.

use memcap_core::certificate::FloatType;
use memcap_core::gen::{generate, GenConfig};
use memcap_core::{construct, ConstructConfig};
use memcap_export::{float_exactness, to_onnx, to_safetensors};

fn toy() -> (memcap_core::Model, memcap_core::Dataset) {
    // n = 2 (a power of two: the 1/n attention weights are exact in f64) and
    // small codes: the intermediates stay far below 2^53.
    let ds = generate(&GenConfig::random_ids(6, 2, 4, 2, 0)).unwrap();
    let model = construct(&ds, &ConstructConfig { code_bits: Some(4), ..Default::default() }).unwrap().model;
    (model, ds)
}

#[test]
fn safetensors_hold_every_tensor_and_are_deterministic() {
    let (model, _) = toy();
    let bytes = to_safetensors(&model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.names().len(), model.tensors().len());
    for (name, t) in model.tensors() {
        let view = st.tensor(&name).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F64);
        assert_eq!(view.shape().iter().product::<usize>(), t.rows * t.cols, "{name}");
    }
    assert_eq!(to_onnx(&model, &[]), to_onnx(&model, &[]));
}

#[test]
fn a_small_power_of_two_model_is_float_exact_and_without_data_the_verdict_is_unknown() {
    let (model, ds) = toy();
    let fe = float_exactness(&model, Some(&ds), FloatType::F64).unwrap();
    assert_eq!(fe.float_exact, Some(true), "{}", fe.basis);
    let cert = fe.certificate.as_ref().expect("certified on the data");
    assert_eq!((cert.outputs_exact, cert.outputs), (6, 6));
    let none = float_exactness(&model, None, FloatType::F64).unwrap();
    assert_eq!(none.float_exact, None);
}

#[test]
fn odd_sequence_lengths_are_not_float_exact_because_one_third_rounds() {
    let ds = generate(&GenConfig::random_ids(6, 3, 4, 2, 0)).unwrap();
    let model = construct(&ds, &ConstructConfig { code_bits: Some(4), ..Default::default() }).unwrap().model;
    let fe = float_exactness(&model, Some(&ds), FloatType::F64).unwrap();
    assert_eq!(fe.float_exact, Some(false));
    assert!(fe.basis.contains("/3"), "{}", fe.basis);
}
