//! Every forward pass of a stored model agrees with the plain reference
//! (`memcap_core::reference::forward`: dense matrices, nothing shared), as
//! ripgrep runs every search strategy against one expected result:
//!
//! * the fast exact engine (sorted sweep + register-closure sharing),
//! * the exact engine with sharing off (compiled plans, one column at a time),
//! * the f64 engine (to rounding: compared against the exact value),
//! * the baselines' compiled FFN path against their own dense evaluator,
//!
//! on random small models (random sparse integer weights, hardmax attention
//! anywhere, tails that do and do not qualify for the sweep) and on
//! constructed models of every kind.

use dashu_ratio::RBig;
use memcap_core::construct::{construct, ConstructConfig};
use memcap_core::data::{Dataset, Inputs, Labels, Positional, Task};
use memcap_core::eval::{self, ExactEngine, FloatEngine, NoProgress, Pred, Prepared, RunOutput};
use memcap_core::gen::{generate, GenConfig, GenKind};
use memcap_core::model::{
    AttentionKind, Block, Ffn, Head, InputSpec, Model, ModelConfig, Sparse, Weights, FORMAT, FORMAT_VERSION,
};
use memcap_core::reference;
use memcap_core::verify::reference_outputs;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Runs every engine on every example of `ds` and asserts that they agree
/// with the reference at the claimed positions; returns the fast run. The
/// f64 engine is compared (to a relative 1e-9) only when `floats` is true:
/// constructed models carry weights and intermediates beyond 2^53, where f64
/// rounds (their float verdicts are `verify --f64`'s business).
fn assert_engines_agree(model: &Model, ds: &Dataset, floats: bool) -> RunOutput {
    let prep = Prepared::new(model, ds).expect("dataset fits the model");
    let fast = eval::run(&ExactEngine::new(model), model, &prep, &NoProgress).expect("fast exact run");
    let unshared = eval::run(&ExactEngine::without_sharing(model), model, &prep, &NoProgress).expect("unshared run");
    let float = eval::run(&FloatEngine::<f64>::new(model), model, &prep, &NoProgress).expect("f64 run");
    for i in 0..ds.len() {
        let all = reference_outputs(model, ds, i).expect("reference runs");
        let claimed: Vec<Pred> = prep.needed.iter().map(|&k| all[k].clone()).collect();
        assert_eq!(fast.preds[i], claimed, "fast exact engine vs reference, example {i}");
        assert_eq!(unshared.preds[i], claimed, "unshared exact engine vs reference, example {i}");
        for (f, e) in float.preds[i].iter().zip(&claimed).filter(|_| floats) {
            let exact = parse_exact(&e.value);
            let got: f64 = f.value.parse().expect("f64 value");
            assert!(
                (got - exact).abs() <= 1e-9 * exact.abs().max(1.0),
                "f64 engine {got} vs exact {} (example {i})",
                e.value
            );
        }
    }
    fast
}

/// "p" or "p/q" as f64.
fn parse_exact(s: &str) -> f64 {
    match s.split_once('/') {
        Some((p, q)) => p.parse::<f64>().unwrap() / q.parse::<f64>().unwrap(),
        None => s.parse().unwrap(),
    }
}

fn int(v: i64) -> RBig {
    RBig::from(v)
}

/// A rows×cols matrix with the given (row, col, value) entries.
fn sparse(rows: usize, cols: usize, entries: &[(usize, usize, i64)]) -> Sparse {
    let mut s = Sparse::zeros(rows, cols);
    for &(r, c, v) in entries {
        s.push(r, c, int(v));
    }
    s
}

/// A random sparse integer matrix with entries in -2..=2.
fn random_sparse(rng: &mut ChaCha8Rng, rows: usize, cols: usize, density: f64) -> Sparse {
    let mut s = Sparse::zeros(rows, cols);
    for r in 0..rows {
        for c in 0..cols {
            if rng.gen_bool(density) {
                s.push(r, c, int(rng.gen_range(-2..=2)));
            }
        }
    }
    s
}

/// A random FFN; `sweep_x = Some(r)`: every unit reads only register r and
/// nothing writes r (a run the sorted sweep evaluates).
fn random_ffn(rng: &mut ChaCha8Rng, m: usize, q: usize, sweep_x: Option<usize>) -> Ffn {
    let w1 = match sweep_x {
        Some(x) => {
            let mut w1 = Sparse::zeros(q, m);
            for k in 0..q {
                w1.push(k, x, int(rng.gen_range(-2..=2)));
            }
            w1
        }
        None => random_sparse(rng, q, m, 0.4),
    };
    let mut w2 = random_sparse(rng, m, q, 0.5);
    let mut b2 = random_sparse(rng, m, 1, 0.3);
    if let Some(x) = sweep_x {
        w2.entries.retain(|(r, _, _)| *r as usize != x);
        b2.entries.retain(|(r, _, _)| *r as usize != x);
    }
    let mut b1 = Sparse::zeros(q, 1);
    for k in 0..q {
        b1.push(k, 0, int(rng.gen_range(-4..=4)));
    }
    Ffn { w1, b1, w2, b2 }
}

/// A random token-id model: m registers, L blocks, attention (hardmax, 1–2
/// heads) in block 0 and sometimes later, then a tail whose first layers
/// read one register (sweep) or not.
fn random_model(seed: u64, m: usize, vocab: usize, seq_len: usize, blocks: usize, task: Task) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (q, s, heads) = (3, 2, 2);
    let x = rng.gen_range(0..m);
    let sweep_layers = rng.gen_range(0..=blocks);
    let mut attention_blocks = Vec::new();
    let mut bs = Vec::new();
    for b in 0..blocks {
        let attends = b == 0 || rng.gen_bool(0.2);
        let hs: Vec<Head> = if attends {
            attention_blocks.push(b);
            (0..rng.gen_range(1..=heads))
                .map(|_| Head {
                    wq: random_sparse(&mut rng, s, m, 0.5),
                    wk: random_sparse(&mut rng, s, m, 0.5),
                    wv: random_sparse(&mut rng, s, m, 0.5),
                    wo: random_sparse(&mut rng, m, s, 0.5),
                })
                .collect()
        } else {
            Vec::new()
        };
        let last_attn = *attention_blocks.last().unwrap_or(&0);
        let sweepable = b > last_attn && b <= last_attn + sweep_layers;
        bs.push(Block { heads: hs, ffn: random_ffn(&mut rng, m, q, sweepable.then_some(x)) });
    }
    Model {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        config: ModelConfig {
            input: InputSpec::Ids { vocab },
            seq_len,
            positional: Positional::None,
            task,
            num_classes: 4,
            width: m,
            ffn_width: q,
            blocks,
            heads,
            head_dim: s,
            attention: AttentionKind::Hardmax,
            attention_blocks,
            registers: (0..m).map(|r| format!("r{r}")).collect(),
        },
        weights: Weights {
            embed: random_sparse(&mut rng, m, vocab, 0.7),
            embed_bias: random_sparse(&mut rng, m, 1, 0.5),
            pos: None,
            blocks: bs,
            readout: random_sparse(&mut rng, 1, m, 0.8),
            readout_bias: random_sparse(&mut rng, 1, 1, 0.5),
        },
        construction: serde_json::Value::Null,
    }
}

/// Random sequences (repeats allowed: the engines deduplicate) with labels.
fn random_data(seed: u64, n_seqs: usize, seq_len: usize, vocab: usize, task: Task) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let seqs: Vec<Vec<u32>> =
        (0..n_seqs).map(|_| (0..seq_len).map(|_| rng.gen_range(0..vocab as u32)).collect()).collect();
    let labels = match task {
        Task::NextToken => Labels::NextToken((0..n_seqs).map(|_| rng.gen_range(0..4)).collect()),
        Task::Seq2seq => {
            Labels::Seq2seq((0..n_seqs).map(|_| (0..seq_len).map(|_| rng.gen_range(0..4)).collect()).collect())
        }
    };
    Dataset { inputs: Inputs::Ids { vocab, seqs }, labels, num_classes: 4, lines: None, label_classes: None }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, rng_seed: proptest::test_runner::RngSeed::Fixed(0x656e67), ..ProptestConfig::default() })]

    /// Random models: fast exact, unshared exact, reference and f64 agree on
    /// every example.
    #[test]
    fn every_engine_agrees_with_the_reference_on_random_models(
        seed in any::<u64>(), m in 2usize..6, vocab in 2usize..5, seq_len in 1usize..5, blocks in 1usize..6,
        n_seqs in 1usize..30, s2s in any::<bool>(),
    ) {
        let task = if s2s { Task::Seq2seq } else { Task::NextToken };
        let model = random_model(seed, m, vocab, seq_len, blocks, task);
        let ds = random_data(seed, n_seqs, seq_len, vocab, task);
        assert_engines_agree(&model, &ds, true);
    }
}

/// One sequence per position is integral after attention (n = 1), so the
/// integer tail runs and its sweepable layers go through the sorted sweep,
/// which the sharing note names; the outputs still equal the reference.
#[test]
fn sorted_sweep_runs_on_integer_tails_and_matches_the_reference() {
    let mut swept = 0;
    for seed in 0..40 {
        let model = random_model(seed, 4, 4, 1, 5, Task::NextToken);
        let ds = random_data(seed, 4, 1, 4, Task::NextToken);
        let run = assert_engines_agree(&model, &ds, true);
        if run.sharing.as_deref().is_some_and(|n| n.contains("sorted sweep")) {
            swept += 1;
        }
    }
    assert!(swept >= 10, "the sweep ran on only {swept} of 40 models");
}

/// Constructed models of every kind (M1 and M2, both tasks, vectors, learned
/// positions): every engine agrees with the reference on every example, and
/// the label memorizer's phase A runs as a sorted sweep.
#[test]
fn every_engine_agrees_with_the_reference_on_constructed_models() {
    let cases = [
        (Task::NextToken, GenKind::Ids, Positional::None),
        (Task::Seq2seq, GenKind::Ids, Positional::None),
        (Task::NextToken, GenKind::Vectors { d: 3 }, Positional::None),
        (Task::Seq2seq, GenKind::Vectors { d: 2 }, Positional::None),
        (Task::NextToken, GenKind::Ids, Positional::Learned),
    ];
    for (task, kind, positional) in cases {
        let ds =
            generate(&GenConfig { n_seqs: 60, seq_len: 4, vocab: 9, num_classes: 5, task, kind, positional, seed: 11 })
                .expect("generator");
        let model = construct(&ds, &ConstructConfig { positional, ..Default::default() }).expect("construct").model;
        let run = assert_engines_agree(&model, &ds, false);
        let note = run.sharing.unwrap_or_default();
        assert!(note.contains("sorted sweep"), "{task:?} {kind:?} {positional:?}: {note}");
    }
}

/// The baselines (the flattened-input lookup and 1-D memorizer networks):
/// their compiled fast path (`eval_fast`, step pairs and grouping included)
/// equals their dense reference (`eval_exact`) on the training sequences and
/// on random other sequences, and both memorize every training example.
#[test]
fn baseline_fast_plans_agree_with_their_dense_reference() {
    use memcap_core::baselines::{flat_ffn_memorizer, lookup_memorizer};
    let ds = generate(&GenConfig {
        n_seqs: 80,
        seq_len: 5,
        vocab: 12,
        num_classes: 6,
        task: Task::NextToken,
        kind: GenKind::Ids,
        positional: Positional::None,
        seed: 4,
    })
    .expect("generator");
    let Inputs::Ids { seqs, .. } = &ds.inputs else { unreachable!("ids") };
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let others: Vec<Vec<u32>> = (0..40).map(|_| (0..5).map(|_| rng.gen_range(0..12)).collect()).collect();
    for net in [lookup_memorizer(&ds, 1).unwrap(), flat_ffn_memorizer(&ds, 1).unwrap()] {
        let stack = net.compile();
        for s in seqs.iter().chain(&others) {
            assert_eq!(net.eval_fast(&stack, s), net.eval_exact(s), "{}: {s:?}", net.name);
        }
        assert_eq!(net.count_memorized(&ds), ds.len(), "{}", net.name);
    }
}

/// The reference refuses what it cannot compute exactly rather than guess:
/// softmax with unequal scores.
#[test]
fn reference_refuses_softmax_with_unequal_scores() {
    let mut model = random_model(3, 3, 3, 2, 1, Task::NextToken);
    model.config.attention = AttentionKind::Softmax;
    model.weights.blocks[0].heads = vec![Head {
        wq: sparse(2, 3, &[(0, 0, 1)]),
        wk: sparse(2, 3, &[(0, 0, 1)]),
        wv: sparse(2, 3, &[(0, 0, 1)]),
        wo: sparse(3, 2, &[(1, 0, 1)]),
    }];
    model.weights.embed = sparse(3, 3, &[(0, 0, 1), (0, 1, 2)]);
    let toks = [eval::TokenValue::Id(0), eval::TokenValue::Id(1)];
    assert!(matches!(
        reference::forward(&model, &toks),
        Err(memcap_core::error::ModelError::InexactSoftmax { block: 0 })
    ));
}
