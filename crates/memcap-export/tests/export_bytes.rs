//! memcap-export as a library: the safetensors bytes hold every weight (f64,
//! PyTorch layout), equal models give identical bytes, and the float-exactness
//! verdict is true only with a reason a runtime can rely on.

use memcap_core::certificate::FloatType;
use memcap_core::gen::{generate, GenConfig};
use memcap_core::{construct, ConstructConfig};
use memcap_export::onnx::forward_weights;
use memcap_export::{float_exactness, to_onnx, to_safetensors};

fn toy() -> (memcap_core::Model, memcap_core::Dataset) {
    // n = 2 (a power of two: the 1/n attention weights are exact in f64) and
    // small codes: the intermediates stay far below 2^53.
    let ds = generate(&GenConfig::random_ids(6, 2, 4, 2, 0)).unwrap();
    let model = construct(&ds, &ConstructConfig { code_bits: Some(4), ..Default::default() }).unwrap().model;
    (model, ds)
}

/// The safetensors file holds exactly the weights memcap-train's forward
/// pass runs (PyTorch names and layouts), every nonzero of the exact model
/// is in it, and equal models give equal bytes.
#[test]
fn safetensors_hold_the_forward_pass_weights_and_are_deterministic() {
    let (model, _) = toy();
    let bytes = to_safetensors(&model).unwrap();
    assert_eq!(bytes, to_safetensors(&model).unwrap());
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, forward) = forward_weights(&model, FloatType::F64).unwrap();
    assert_eq!(st.names().len(), forward.len());
    let mut nonzero = 0;
    for (name, shape, vals) in &forward {
        let view = st.tensor(name).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F64);
        assert_eq!(view.shape(), shape.as_slice(), "{name}");
        let stored: Vec<f64> = view.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(&stored, vals, "{name}");
        nonzero += vals.iter().filter(|v| **v != 0.0).count();
    }
    assert_eq!(nonzero as u64, model.accounting().params_nonzero);
    // The embedding is the lookup table [V, m], the transpose of W_E [m, V].
    assert_eq!(st.tensor("embed.weight").unwrap().shape(), &[model.weights.embed.cols, model.weights.embed.rows]);
    assert_eq!(to_onnx(&model, &[]).unwrap(), to_onnx(&model, &[]).unwrap());
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
