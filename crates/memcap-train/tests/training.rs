//! Behaviour of training: memorization, gradients, determinism.

use memcap_train::data::{generate, GenConfig, Inputs, Labels, Positional, Task};
use memcap_train::*;

fn random(n_seqs: usize, seq_len: usize, vocab: usize, classes: u32, task: Task, seed: u64) -> Dataset {
    generate(&GenConfig { task, ..GenConfig::random_ids(n_seqs, seq_len, vocab, classes, seed) }).expect("valid spec")
}

fn tf(data: &Dataset, d: usize, heads: usize, ff: usize, blocks: usize) -> TransformerConfig {
    TransformerConfig::for_data(data, d, heads, ff, blocks)
}

#[test]
fn two_block_transformer_memorizes_32_random_sequences() {
    let data = random(32, 8, 16, 8, Task::NextToken, 1);
    let model = ModelConfig::Transformer(tf(&data, 16, 2, 32, 2));
    let cfg = TrainConfig { lr: 1e-2, max_steps: 600, eval_every: 20, seed: 3, ..TrainConfig::default() };
    let run = train(&model, &cfg, &data, &mut |_| {}).expect("training runs");
    assert!(run.summary.memorized, "final acc {} after {} steps", run.summary.final_acc, run.summary.steps);
    // The criterion is checked by a separate pass, independent of the loop.
    let model_again = run.summary.memorized;
    assert!(model_again);
    assert_eq!(run.metrics.last().map(|m| m.acc), Some(1.0));
}

#[test]
fn same_seed_same_metrics() {
    let data = random(48, 6, 12, 5, Task::NextToken, 9);
    let model = ModelConfig::Transformer(TransformerConfig {
        layer_norm: true,
        positional: Positional::Learned,
        ..tf(&data, 8, 2, 16, 2)
    });
    let cfg = TrainConfig {
        lr: 5e-3,
        max_steps: 40,
        eval_every: 10,
        batch_size: Some(16),
        seed: 7,
        stop_when_memorized: false,
        ..TrainConfig::default()
    };
    let a = train(&model, &cfg, &data, &mut |_| {}).expect("run a");
    let b = train(&model, &cfg, &data, &mut |_| {}).expect("run b");
    let strip =
        |r: &RunResult| r.metrics.iter().map(|m| (m.step, m.loss.to_bits(), m.acc.to_bits())).collect::<Vec<_>>();
    assert_eq!(strip(&a), strip(&b));
    assert_eq!(a.weights, b.weights);
    let c = train(&model, &TrainConfig { seed: 8, ..cfg }, &data, &mut |_| {}).expect("run c");
    assert_ne!(strip(&a), strip(&c), "a different seed must change the run");
}

#[test]
fn every_parameter_receives_a_gradient() {
    // LayerNorm and positional encoding on, seq2seq and next-token, MLP:
    // every variable must get a non-zero gradient (candle's fused softmax /
    // layer_norm have no backward, so a regression would show up here).
    for task in [Task::NextToken, Task::Seq2seq] {
        let data = random(8, 5, 7, 4, task, 2);
        let t = TransformerConfig { positional: Positional::Learned, layer_norm: true, ..tf(&data, 8, 2, 12, 2) };
        let cfgs = [ModelConfig::Transformer(t), ModelConfig::Mlp(MlpConfig::for_data(&data, 6, 3))];
        for cfg in &cfgs {
            let norms = gradient_norms(cfg, 0, &data).expect("backward");
            assert_eq!(
                norms.len(),
                match cfg {
                    ModelConfig::Transformer(_) => 2 + 2 * 12 + 2 + 2, // embed+pos, 2 blocks × (ln1, q,k,v,o, ln2, fc1, fc2), ln_f, head
                    ModelConfig::Mlp(_) => 2 * 4,
                }
            );
            for (name, g) in &norms {
                assert!(g.is_finite() && *g > 0.0, "{task:?} {}: parameter {name} has gradient norm {g}", cfg.family());
            }
        }
    }
}

#[test]
fn mlp_memorizes_small_random_data_and_eval_agrees() {
    let data = random(40, 4, 10, 6, Task::NextToken, 5);
    let model = ModelConfig::Mlp(MlpConfig::for_data(&data, 24, 1));
    let cfg = TrainConfig { lr: 3e-2, max_steps: 500, eval_every: 10, seed: 1, ..TrainConfig::default() };
    let run = train(&model, &cfg, &data, &mut |_| {}).expect("training runs");
    assert!(run.summary.memorized, "acc {}", run.summary.final_acc);
    assert!(run.summary.final_loss.is_finite());
    assert!(run.metrics.windows(2).all(|w| w[0].step < w[1].step));
}

#[test]
fn seq2seq_transformer_with_positions_memorizes() {
    let data = random(16, 4, 8, 3, Task::Seq2seq, 4);
    let model =
        ModelConfig::Transformer(TransformerConfig { positional: Positional::Learned, ..tf(&data, 16, 2, 32, 2) });
    let cfg = TrainConfig { lr: 1e-2, max_steps: 800, eval_every: 20, seed: 0, ..TrainConfig::default() };
    let run = train(&model, &cfg, &data, &mut |_| {}).expect("training runs");
    assert!(run.summary.memorized, "acc {} seq_acc {}", run.summary.final_acc, run.summary.final_seq_acc);
    assert_eq!(run.summary.final_seq_acc, 1.0);
}

#[test]
fn data_parallel_steps_follow_the_single_thread_run_to_rounding_and_are_deterministic() {
    // Sharding the batch over threads computes the same mean-loss gradient
    // (each shard weighted by its size), so a run with 3 shards (uneven:
    // 37 rows) tracks the 1-thread run to float rounding, for both tasks.
    for task in [Task::NextToken, Task::Seq2seq] {
        let data = random(37, 6, 10, 5, task, 4);
        let model = ModelConfig::Transformer(TransformerConfig { layer_norm: true, ..tf(&data, 8, 2, 16, 2) });
        let cfg = TrainConfig {
            lr: 5e-3,
            max_steps: 20,
            eval_every: 5,
            stop_when_memorized: false,
            ..TrainConfig::default()
        };
        let one = train(&model, &cfg, &data, &mut |_| {}).expect("1 thread");
        let three = train(&model, &TrainConfig { threads: 3, ..cfg.clone() }, &data, &mut |_| {}).expect("3 threads");
        let again = train(&model, &TrainConfig { threads: 3, ..cfg.clone() }, &data, &mut |_| {}).expect("again");
        assert_eq!(three.weights, again.weights, "{task:?}: a fixed thread count must be deterministic");
        for (a, b) in one.metrics.iter().zip(&three.metrics) {
            assert!(
                (a.loss - b.loss).abs() < 1e-4 * a.loss.max(1.0),
                "{task:?} step {}: {} vs {}",
                a.step,
                a.loss,
                b.loss
            );
        }
        assert!(
            one.metrics.last().expect("metrics").loss < one.metrics[0].loss,
            "{task:?}: training must lower the loss"
        );
    }
    let data = random(8, 4, 6, 3, Task::NextToken, 0);
    let model = ModelConfig::Transformer(tf(&data, 4, 1, 8, 1));
    let bad = TrainConfig { threads: 0, ..TrainConfig::default() };
    let err = train(&model, &bad, &data, &mut |_| {}).expect_err("0 threads is invalid");
    assert!(err.to_string().contains("--threads"), "{err}");
}

#[test]
fn run_results_with_nan_losses_round_trip_through_json() {
    // Step 0 has no batch loss (NaN) and a diverged run has a NaN loss:
    // serde_json writes them as null, and reading them back must work (a
    // repro JSON with such a metric used to be unreadable by `memcap report`).
    let data = random(8, 4, 6, 3, Task::NextToken, 0);
    let model = ModelConfig::Transformer(tf(&data, 4, 1, 8, 1));
    let cfg = TrainConfig { max_steps: 2, eval_every: 1, stop_when_memorized: false, ..TrainConfig::default() };
    let mut run = train(&model, &cfg, &data, &mut |_| {}).expect("runs");
    assert!(run.metrics[0].batch_loss.is_nan(), "step 0 has no batch");
    run.summary.final_loss = f64::NAN;
    let json = serde_json::to_string(&(&run.metrics, &run.summary)).expect("serializes");
    assert!(json.contains("null"), "NaN is written as null: {json}");
    let (metrics, summary): (Vec<Metric>, RunSummary) = serde_json::from_str(&json).expect("reads back");
    assert!(metrics[0].batch_loss.is_nan() && summary.final_loss.is_nan());
    assert_eq!(metrics[1].loss.to_bits(), run.metrics[1].loss.to_bits());
}

#[test]
fn an_exploding_loss_is_flagged_diverged_and_gets_no_bits_per_param() {
    // lr 1e3 on small random data: the loss explodes (the field case reached
    // 7.9e16 and was reported "diverged": false).
    let data = random(64, 8, 16, 4, Task::NextToken, 3);
    let model = ModelConfig::Transformer(tf(&data, 16, 2, 32, 1));
    let cfg = TrainConfig {
        lr: 1e3,
        max_steps: 200,
        eval_every: 20,
        schedule: Schedule::Constant,
        grad_clip: None,
        ..TrainConfig::default()
    };
    let run = train(&model, &cfg, &data, &mut |_| {}).expect("runs");
    let s = &run.summary;
    assert!(s.diverged, "final loss {} after {} steps: {}", s.final_loss, s.steps, s.stop_reason);
    assert!(s.steps < 200 && s.stop_reason.starts_with("diverged at step"), "{}", s.stop_reason);
    assert!(!s.memorized && s.bits_per_param.is_none());
    // A healthy run is not flagged.
    let ok = train(&model, &TrainConfig { lr: 1e-2, ..cfg }, &data, &mut |_| {}).expect("runs");
    assert!(!ok.summary.diverged, "{}", ok.summary.stop_reason);
}

#[test]
fn conflicting_labels_are_memorized_at_the_ceiling_and_counted_by_what_is_achievable() {
    // 24 random rows plus 4 rows that repeat a row's tokens with another
    // label: no model can get both, so the ceiling is 24/28.
    let base = random(24, 4, 10, 4, Task::NextToken, 2);
    let (vocab, seqs) = base.token_ids().map(|(v, s)| (v, s.to_vec())).expect("ids");
    let Labels::NextToken(mut ys) = base.labels.clone() else { unreachable!() };
    let mut all = seqs.clone();
    for i in 0..4 {
        all.push(seqs[i].clone());
        ys.push((ys[i] + 1) % 4);
    }
    let data = Dataset {
        inputs: Inputs::Ids { vocab, seqs: all },
        labels: Labels::NextToken(ys),
        num_classes: 4,
        lines: None,
        label_classes: None,
    };
    let model =
        ModelConfig::Transformer(TransformerConfig { positional: Positional::Learned, ..tf(&data, 16, 2, 32, 1) });
    let cfg = TrainConfig { lr: 3e-2, max_steps: 1500, eval_every: 25, seed: 1, ..TrainConfig::default() };
    let run = train(&model, &cfg, &data, &mut |_| {}).expect("runs");
    let s = &run.summary;
    assert!((s.max_accuracy - 24.0 / 28.0).abs() < 1e-12, "{}", s.max_accuracy);
    assert!(s.memorized, "acc {} vs ceiling {}: {}", s.final_acc, s.max_accuracy, s.stop_reason);
    let bpp = s.bits_per_param.expect("memorized");
    let want = 24.0 * 2.0 / s.num_params as f64;
    assert!((bpp - want).abs() < 1e-12, "bits/param {bpp} vs achievable label bits {want}");
}

#[test]
fn ignored_seq2seq_positions_are_left_out_of_loss_and_accuracy() {
    use memcap_train::data::IGNORE;
    // Random seq2seq data with the first two positions ignored, and those
    // positions given contradictory "labels" underneath: training must
    // memorize the rest, and accuracy must count only the 2 kept positions.
    let base = random(24, 4, 8, 4, Task::Seq2seq, 6);
    let Labels::Seq2seq(mut rows) = base.labels.clone() else { unreachable!() };
    for r in &mut rows {
        r[0] = IGNORE;
        r[1] = IGNORE;
    }
    let data = Dataset { labels: Labels::Seq2seq(rows), ..base };
    assert_eq!(data.num_targets(), 48);
    let model =
        ModelConfig::Transformer(TransformerConfig { positional: Positional::Learned, ..tf(&data, 16, 2, 32, 1) });
    for threads in [1, 2] {
        let cfg = TrainConfig { lr: 3e-2, max_steps: 800, eval_every: 20, threads, ..TrainConfig::default() };
        let run = train(&model, &cfg, &data, &mut |_| {}).expect("runs");
        assert!(
            run.summary.memorized,
            "threads {threads}: acc {} ({})",
            run.summary.final_acc, run.summary.stop_reason
        );
        assert!(run.summary.final_loss.is_finite());
        let bits = run.summary.bits_per_param.expect("memorized") * run.summary.num_params as f64;
        assert!((bits - 48.0 * 2.0).abs() < 1e-9, "label bits of the kept positions: {bits}");
    }
}

#[test]
fn vector_tokens_are_trained_through_a_linear_input_projection() {
    // 40 sequences of 4 real-valued tokens drawn from 12 shared vectors in
    // dimension 3 (the kind of data attention-memorization experiments use).
    let data = generate(&GenConfig {
        kind: memcap_core::gen::GenKind::Vectors { d: 3 },
        ..GenConfig::random_ids(40, 4, 12, 4, 8)
    })
    .expect("vector data");
    let t = TransformerConfig::for_data(&data, 16, 2, 32, 1);
    assert!(t.vector_input && t.vocab == 3, "the projection maps d = 3 to d_model");
    let m = MlpConfig::for_data(&data, 32, 1);
    assert!(m.vector_input);
    for model in [ModelConfig::Transformer(t), ModelConfig::Mlp(m)] {
        let cfg = TrainConfig { lr: 3e-2, max_steps: 1500, eval_every: 25, ..TrainConfig::default() };
        let run = train(&model, &cfg, &data, &mut |_| {}).expect("trains on vectors");
        assert!(
            run.summary.memorized,
            "{}: acc {} ({})",
            model.family(),
            run.summary.final_acc,
            run.summary.stop_reason
        );
        assert_eq!(run.summary.num_params, model.num_params());
    }
}
