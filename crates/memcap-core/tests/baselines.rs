//! The baseline memorizers are real networks: they memorize every example
//! in exact arithmetic, and their parameter counts follow the closed forms.

use memcap_core::baselines::{
    bounds, flat_ffn_memorizer, flat_ffn_params_dense, lookup_memorizer, lookup_params_dense, memorizer_depth,
};
use memcap_core::data::Task;
use memcap_core::gen::{generate, GenConfig, GenKind};
use memcap_core::{Dataset, Positional};

fn data(n_seqs: usize, seq_len: usize, vocab: usize, seed: u64) -> Dataset {
    generate(&GenConfig {
        n_seqs,
        seq_len,
        vocab,
        num_classes: 5,
        task: Task::NextToken,
        kind: GenKind::Ids,
        positional: Positional::Learned,
        seed,
    })
    .unwrap()
}

#[test]
fn lookup_memorizer_memorizes_every_example_exactly() {
    for (n, seed) in [(1, 0), (2, 1), (50, 2), (300, 3)] {
        let ds = data(n, 5, 12, seed);
        let net = lookup_memorizer(&ds, seed).unwrap();
        assert_eq!(net.count_memorized(&ds), n, "N = {n}");
    }
}

#[test]
fn lookup_memorizer_dense_count_is_nd_plus_5p_plus_1() {
    let ds = data(200, 5, 12, 7);
    let net = lookup_memorizer(&ds, 7).unwrap();
    assert_eq!(net.layers[0].w1.rows + 1, 200, "one hidden unit per example but the first");
    assert_eq!(net.params_dense(), lookup_params_dense(5, 12, 200));
    assert_eq!(lookup_params_dense(5, 12, 200), 5 * 12 + 5 * 200 + 1);
}

#[test]
fn flat_ffn_memorizer_memorizes_every_example_exactly() {
    for (n, seed) in [(1, 0), (40, 1), (400, 2)] {
        let ds = data(n, 6, 20, seed);
        let net = flat_ffn_memorizer(&ds, seed).unwrap();
        assert_eq!(net.count_memorized(&ds), n, "N = {n}");
    }
}

#[test]
fn flat_ffn_dense_count_follows_depth_formula() {
    let ds = data(400, 6, 20, 5);
    let net = flat_ffn_memorizer(&ds, 5).unwrap();
    assert_eq!(net.params_dense(), flat_ffn_params_dense(6, 20, net.layers.len()));
    // The depth is the §7.4 formula at the memorizer's chosen ρ and bit widths.
    let info = net.memorizer.as_ref().unwrap();
    assert_eq!(info.points, 400);
    assert_eq!(net.layers.len(), memorizer_depth(400, info.rho, 4, info.b_u.max(info.b_y)));
    assert_eq!(net.layers.len(), info.depth);
}

#[test]
fn memorizer_depth_formula_matches_paper_notes() {
    // G = ⌈P/ρ⌉; max(1, ⌈(G−1)/p_A⌉) + ρ(B_max+1) + 1.
    assert_eq!(memorizer_depth(4, 2, 4, 9), 1 + 2 * 10 + 1);
    assert_eq!(memorizer_depth(100, 1, 4, 26), 25 + 27 + 1);
    assert_eq!(memorizer_depth(1, 1, 4, 3), 1 + 4 + 1);
}

#[test]
fn repeated_sequence_with_two_labels_is_an_error() {
    let mut ds = data(3, 4, 6, 0);
    if let memcap_core::Inputs::Ids { seqs, .. } = &mut ds.inputs {
        seqs[1] = seqs[0].clone();
    }
    if let memcap_core::Labels::NextToken(y) = &mut ds.labels {
        y[1] = (y[0] + 1) % 5;
    }
    assert!(lookup_memorizer(&ds, 0).is_err());
}

#[test]
fn bound_formulas_evaluate_as_written() {
    let b = bounds(10_000, 64, 1000);
    assert_eq!(b.kim2023, 1000.0 + 64.0 + 800.0);
    assert_eq!(b.ks_next_token, 1000.0 + 100.0);
    assert_eq!(b.ks_seq2seq, 1000.0 + 800.0);
}
