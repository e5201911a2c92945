//! Closed-form parameter counts agree with the variables candle allocates.

use memcap_train::data::{Inputs, Positional, Task};
use memcap_train::model::Model;
use memcap_train::*;
use rand::SeedableRng;

fn allocated(cfg: &ModelConfig) -> usize {
    let model = Model::new(cfg, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0)).expect("valid config");
    model.varmap().all_vars().iter().map(|v| v.elem_count()).sum()
}

#[test]
fn param_count_matches_closed_form_transformer() {
    for &(vocab, n, c, d, h, dh, ff, blocks) in
        &[(16, 8, 16, 16, 2, 8, 48, 1), (7, 3, 5, 6, 3, 4, 10, 3), (50, 12, 2, 8, 1, 8, 8, 2)]
    {
        for (pos, ln) in [(false, false), (true, false), (false, true), (true, true)] {
            for task in [Task::NextToken, Task::Seq2seq] {
                let t = TransformerConfig {
                    vocab,
                    seq_len: n,
                    num_classes: c,
                    d_model: d,
                    heads: h,
                    head_dim: dh,
                    d_ff: ff,
                    blocks,
                    positional: if pos { Positional::Learned } else { Positional::None },
                    layer_norm: ln,
                    task,
                    vector_input: false,
                    ..TransformerConfig::trained()
                };
                // Formula written out independently of the library's.
                let expected = vocab * d
                    + if pos { n * d } else { 0 }
                    + blocks * (4 * d * h * dh + d * ff + ff + ff * d + d + if ln { 4 * d } else { 0 })
                    + if ln { 2 * d } else { 0 }
                    + c * d
                    + c;
                let cfg = ModelConfig::Transformer(t);
                assert_eq!(cfg.num_params(), expected);
                assert_eq!(allocated(&cfg), expected, "{cfg:?}");
            }
        }
    }
}

/// The parts a constructed model adds (embedding bias, heads only in some
/// blocks, a value readout) are counted by the closed form and allocated.
#[test]
fn param_count_matches_closed_form_constructed_form() {
    use memcap_train::config::Readout;
    let (vocab, n, c, d, h, dh, ff, blocks) = (9, 4, 5, 6, 2, 3, 7, 4);
    for attention_blocks in [None, Some(vec![]), Some(vec![0]), Some(vec![1, 3])] {
        for (embed_bias, readout) in [(false, Readout::Logits), (true, Readout::Value), (true, Readout::Logits)] {
            let a = attention_blocks.as_ref().map_or(blocks, Vec::len);
            let o = if readout == Readout::Value { 1 } else { c };
            let t = TransformerConfig {
                attention_blocks: attention_blocks.clone(),
                embed_bias,
                readout,
                attention_scale: Some(1.0),
                ..TransformerConfig::for_data(
                    &data::generate(&data::GenConfig::random_ids(4, n, vocab, c as u32, 0)).expect("data"),
                    d,
                    h,
                    ff,
                    blocks,
                )
            };
            let t = TransformerConfig { head_dim: dh, ..t };
            let expected = vocab * d
                + if embed_bias { d } else { 0 }
                + a * 4 * d * h * dh
                + blocks * (2 * d * ff + ff + d)
                + o * d
                + o;
            let cfg = ModelConfig::Transformer(t);
            assert_eq!(cfg.num_params(), expected);
            assert_eq!(allocated(&cfg), expected, "{cfg:?}");
        }
    }
}

#[test]
fn param_count_matches_closed_form_mlp() {
    for &(vocab, n, c, w, depth) in &[(16, 8, 16, 10, 1), (5, 4, 3, 7, 3), (30, 2, 9, 1, 2)] {
        for task in [Task::NextToken, Task::Seq2seq] {
            let cfg = ModelConfig::Mlp(MlpConfig {
                vocab,
                seq_len: n,
                num_classes: c,
                width: w,
                depth,
                task,
                vector_input: false,
            });
            let out = if task == Task::NextToken { c } else { n * c };
            let expected = n * vocab * w + w + (depth - 1) * (w * w + w) + w * out + out;
            assert_eq!(cfg.num_params(), expected);
            assert_eq!(allocated(&cfg), expected, "{cfg:?}");
        }
    }
}

#[test]
fn exported_weights_use_pytorch_names_and_layouts() {
    let data = data::generate(&data::GenConfig::random_ids(4, 3, 5, 4, 0)).expect("data");
    let cfg = ModelConfig::Mlp(MlpConfig::for_data(&data, 6, 2));
    let run = train(&cfg, &TrainConfig { max_steps: 1, eval_every: 1, ..TrainConfig::default() }, &data, &mut |_| {})
        .expect("run");
    let bytes = run.safetensors_bytes().expect("bytes");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    // nn.Linear layout [out, in]: the first layer sees the n·V one-hot.
    assert_eq!(st.tensor("layers.0.weight").expect("w0").shape(), &[6, 15]);
    assert_eq!(st.tensor("layers.2.weight").expect("w2").shape(), &[4, 6]);
    let tf = ModelConfig::Transformer(TransformerConfig::for_data(&data, 4, 2, 8, 1));
    let run = train(&tf, &TrainConfig { max_steps: 1, eval_every: 1, ..TrainConfig::default() }, &data, &mut |_| {})
        .expect("run");
    let bytes = run.safetensors_bytes().expect("bytes");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    assert_eq!(st.tensor("blocks.0.attn.q_proj.weight").expect("q").shape(), &[4, 4]);
    assert_eq!(st.tensor("blocks.0.ffn.fc1.weight").expect("fc1").shape(), &[8, 4]);
    assert_eq!(st.tensor("head.weight").expect("head").shape(), &[4, 4]);
    let total: usize = st.tensors().iter().map(|(_, t)| t.shape().iter().product::<usize>()).sum();
    assert_eq!(total, tf.num_params());
}

#[test]
fn invalid_configs_are_errors_not_panics() {
    let data = data::generate(&data::GenConfig::random_ids(4, 3, 5, 4, 0)).expect("data");
    let bad =
        ModelConfig::Transformer(TransformerConfig { heads: 0, ..TransformerConfig::for_data(&data, 4, 1, 8, 1) });
    assert!(matches!(train(&bad, &TrainConfig::default(), &data, &mut |_| {}), Err(TrainError::InvalidConfig(_))));
    let wrong_vocab = ModelConfig::Mlp(MlpConfig { vocab: 6, ..MlpConfig::for_data(&data, 3, 1) });
    assert!(matches!(
        train(&wrong_vocab, &TrainConfig::default(), &data, &mut |_| {}),
        Err(TrainError::InvalidConfig(_))
    ));
    let ok = ModelConfig::Mlp(MlpConfig::for_data(&data, 3, 1));
    assert!(matches!(
        train(&ok, &TrainConfig { lr: -1.0, ..TrainConfig::default() }, &data, &mut |_| {}),
        Err(TrainError::InvalidConfig(_))
    ));
    let mut broken = data.clone();
    if let Inputs::Ids { seqs, .. } = &mut broken.inputs {
        seqs[1].push(0);
    }
    assert!(matches!(train(&ok, &TrainConfig::default(), &broken, &mut |_| {}), Err(TrainError::Data(_))));
    let vectors = data::generate(&data::GenConfig {
        kind: memcap_core::gen::GenKind::Vectors { d: 2 },
        ..data::GenConfig::random_ids(4, 3, 5, 4, 0)
    })
    .expect("vector data");
    // An id model on vector tokens is a config error naming both kinds.
    let e = train(&ok, &TrainConfig::default(), &vectors, &mut |_| {}).expect_err("kind mismatch");
    assert!(e.to_string().contains("takes token ids, data has vector tokens"), "{e}");
    let impossible = data::GenConfig::random_ids(100, 2, 2, 2, 0);
    assert!(matches!(data::generate(&impossible), Err(memcap_core::DataError::Param(_))));
}

/// Sizes from a config file that would overflow the parameter count are
/// refused by the size guard (the count saturates instead of wrapping to a
/// small number and reaching an allocation).
#[test]
fn absurd_sizes_are_refused_not_wrapped() {
    let data = data::generate(&data::GenConfig::random_ids(4, 3, 5, 4, 0)).expect("data");
    let base = TransformerConfig::for_data(&data, 8, 1, 16, 1);
    for t in [
        TransformerConfig { blocks: 1 << 62, ..base.clone() },
        TransformerConfig { heads: 1 << 62, head_dim: 4, ..base.clone() },
        TransformerConfig { d_model: usize::MAX / 3, ..base.clone() },
    ] {
        let cfg = ModelConfig::Transformer(t);
        assert_eq!(cfg.num_params(), usize::MAX);
        assert!(matches!(cfg.validate(), Err(TrainError::InvalidConfig(m)) if m.contains("5e8")));
    }
    let mlp = ModelConfig::Mlp(MlpConfig { depth: 1 << 62, ..MlpConfig::for_data(&data, 4, 1) });
    assert!(matches!(mlp.validate(), Err(TrainError::InvalidConfig(m)) if m.contains("5e8")));
}

/// A run's model config with a misspelt key, or an attention scale that
/// f32 cannot hold, is refused rather than silently ignored or run to NaN.
#[test]
fn unknown_config_keys_and_unrepresentable_attention_scales_are_refused() {
    let data = data::generate(&data::GenConfig::random_ids(4, 3, 5, 4, 0)).expect("data");
    let mut v =
        serde_json::to_value(ModelConfig::Transformer(TransformerConfig::for_data(&data, 8, 1, 16, 1))).unwrap();
    v["d_modle"] = serde_json::json!(9);
    let e = serde_json::from_value::<ModelConfig>(v).unwrap_err().to_string();
    assert!(e.contains("unknown field `d_modle`"), "{e}");
    let mut m = serde_json::to_value(ModelConfig::Mlp(MlpConfig::for_data(&data, 4, 1))).unwrap();
    m["widht"] = serde_json::json!(4);
    assert!(serde_json::from_value::<ModelConfig>(m).is_err());
    for ok in [0.0, -2.0, 0.125] {
        let t = TransformerConfig { attention_scale: Some(ok), ..TransformerConfig::for_data(&data, 8, 1, 16, 1) };
        assert!(ModelConfig::Transformer(t).validate().is_ok(), "{ok}");
    }
    for s in [-1e308, 1e39, -3e38, 1e-50, f64::NAN] {
        let t = TransformerConfig { attention_scale: Some(s), ..TransformerConfig::for_data(&data, 8, 1, 16, 1) };
        assert!(
            matches!(ModelConfig::Transformer(t).validate(), Err(TrainError::InvalidConfig(m)) if m.contains("attention_scale"))
        );
    }
}
