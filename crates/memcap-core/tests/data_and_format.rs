//! Datasets, consistency (permutation equivariance, docs/construction.md §4), the
//! model file format and the parameter accounting (§7.7).

use memcap_core::construct::{construct, ConstructConfig};
use memcap_core::data::{Dataset, Dedupe, Inputs, Labels, Positional, Task};
use memcap_core::error::{DataError, Origin};
use memcap_core::eval::NoProgress;
use memcap_core::gen::{generate, text_windows, GenConfig, GenKind, TextSpec, TextUnit};
use memcap_core::model::Model;
use memcap_core::parse::{parse_csv, parse_jsonl, to_csv_lines, to_jsonl, to_jsonl_lines, JsonlReader, ParseOptions};
use memcap_core::verify::{first_divergence, verify, Arith};
use memcap_core::{ConstructError, ModelError};

fn jsonl(s: &str) -> Result<Dataset, DataError> {
    parse_jsonl(s, ParseOptions::default())
}

#[test]
fn parse_errors_name_the_line() {
    let e = jsonl("{\"tokens\":[1,2],\"label\":0}\n\n{\"tokens\":[1],\"label\":1}\n").unwrap_err();
    assert_eq!(e, DataError::Ragged { at: Origin { index: 1, line: Some(3) }, expected: 2, got: 1 });
    assert!(e.to_string().starts_with("line 3:") && e.to_string().contains("-100"), "{e}");
    let e = jsonl("{\"tokens\":[1,2],\"label\":0}\n{\"tokens\":[1,2],\"label\":-1}\n").unwrap_err();
    assert!(matches!(e, DataError::Parse { line: 2, .. }), "{e}");
    let e = jsonl("{\"tokens\":[1,2],\"label\":0}\nnot json\n").unwrap_err();
    assert!(matches!(e, DataError::Parse { line: 2, .. }), "{e}");
    let e =
        parse_jsonl("{\"tokens\":[1,2],\"label\":5}\n", ParseOptions { num_classes: Some(3), ..Default::default() })
            .unwrap_err();
    assert!(matches!(e, DataError::LabelOutOfRange { label: 5, classes: 3, .. }), "{e}");
    let e = parse_jsonl("{\"tokens\":[1,9],\"label\":0}\n", ParseOptions { vocab: Some(5), ..Default::default() })
        .unwrap_err();
    assert!(matches!(e, DataError::TokenOutOfRange { token: 9, vocab: 5, .. }), "{e}");
    assert_eq!(jsonl("\n\n").unwrap_err(), DataError::Empty);
    let e = jsonl("{\"tokens\":[[0.5,1]],\"label\":0}\n{\"tokens\":[[0.5]],\"label\":0}\n").unwrap_err();
    assert!(matches!(e, DataError::DimMismatch { expected: 2, got: 1, .. }), "{e}");
    let e = jsonl("{\"tokens\":[1,2],\"label\":0}\n{\"tokens\":[1,2],\"labels\":[0,1]}\n").unwrap_err();
    assert!(matches!(e, DataError::MixedTask { .. }), "{e}");
}

#[test]
fn non_finite_vector_values_are_rejected() {
    let ds = Dataset {
        inputs: Inputs::Vectors { d: 1, seqs: vec![vec![vec![f64::NAN]]] },
        labels: Labels::NextToken(vec![0]),
        num_classes: 2,
        lines: Some(vec![7]),
        label_classes: None,
    };
    assert!(matches!(ds.validate().unwrap_err(), DataError::NonFinite { at: Origin { line: Some(7), .. }, .. }));
    // The verifier refuses it with a typed error instead of panicking.
    let good = Dataset { inputs: Inputs::Vectors { d: 1, seqs: vec![vec![vec![0.5]]] }, ..ds.clone() };
    let m = construct(&good, &ConstructConfig::default()).unwrap().model;
    assert!(
        matches!(verify(&m, &ds, Arith::Exact, &NoProgress), Err(ModelError::Mismatch(ref why)) if why.contains("non-finite"))
    );
}

#[test]
fn csv_reads_both_tasks_and_rejects_bad_headers() {
    let ds = parse_csv("# comment\ntok_0,tok_1,label\n3,1,2\n1,3,0\n", ParseOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.seq_len(), ds.task(), ds.input_dim()), (2, 2, Task::NextToken, 4));
    let ds = parse_csv("tok_0,tok_1,lab_0,lab_1\n3,1,2,0\n", ParseOptions::default()).unwrap();
    assert_eq!(ds.task(), Task::Seq2seq);
    let e = parse_csv("tok_0,tok_2,label\n3,1,2\n", ParseOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::Parse { line: 1, .. }), "{e}");
    let e = parse_csv("tok_0,label\n3,x\n", ParseOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::Parse { line: 2, .. }), "{e}");
}

#[test]
fn jsonl_round_trip_keeps_the_dataset() {
    let ds = generate(&GenConfig {
        n_seqs: 30,
        seq_len: 3,
        vocab: 5,
        num_classes: 3,
        task: Task::Seq2seq,
        kind: GenKind::Vectors { d: 2 },
        positional: Positional::None,
        seed: 1,
    })
    .unwrap();
    let back = jsonl(&to_jsonl(&ds)).unwrap();
    assert_eq!(back.inputs, ds.inputs);
    assert_eq!(back.labels, ds.labels);
}

/// Permutation equivariance: same multiset and same last token ⇒ same output,
/// so different labels are an error that names both lines.
#[test]
fn permuted_sequences_with_different_labels_are_inconsistent() {
    let text = "{\"tokens\":[1,2,3],\"label\":0}\n{\"tokens\":[2,1,3],\"label\":1}\n{\"tokens\":[3,2,1],\"label\":1}\n";
    let ds = jsonl(text).unwrap();
    let e = ds.check_consistency(Positional::None).unwrap_err();
    match &e {
        DataError::Inconsistent { a, b, label_a, label_b, .. } => {
            assert_eq!((a.line, b.line, *label_a, *label_b), (Some(1), Some(2), 0, 1));
        }
        other => panic!("expected Inconsistent, got {other:?}"),
    }
    assert!(e.to_string().contains("line 1 and line 2"), "{e}");
    // (3,2,1) ends in a different token: no conflict with (1,2,3).
    // With positions, the two orders are different contexts.
    assert!(ds.check_consistency(Positional::Learned).is_ok());
    // The construction refuses with the same typed error.
    assert!(matches!(
        construct(&ds, &ConstructConfig::default()),
        Err(ConstructError::Data(DataError::Inconsistent { .. }))
    ));
}

#[test]
fn seq2seq_equal_tokens_in_one_multiset_need_equal_labels() {
    let ds = jsonl("{\"tokens\":[1,2,1],\"labels\":[0,1,2]}\n").unwrap();
    assert!(matches!(
        ds.check_consistency(Positional::None),
        Err(DataError::InconsistentWithin { pos_a: 1, pos_b: 3, label_a: 0, label_b: 2, .. })
    ));
    assert!(ds.check_consistency(Positional::Learned).is_ok());
}

#[test]
fn dedupe_majority_reports_the_best_achievable_accuracy() {
    // Context (multiset {1,2}, last 2) occurs 3 times with labels 0, 0, 1.
    let ds = jsonl(
        "{\"tokens\":[1,2],\"label\":0}\n{\"tokens\":[1,2],\"label\":0}\n{\"tokens\":[1,2],\"label\":1}\n{\"tokens\":[2,1],\"label\":1}\n",
    )
    .unwrap();
    let (kept, rep) = ds.resolve_conflicts(Positional::None, Dedupe::Majority).unwrap();
    assert_eq!((rep.labels_total, rep.labels_in_conflict, rep.labels_removed), (4, 3, 1));
    assert!((rep.best_accuracy - 0.75).abs() < 1e-12);
    assert_eq!(kept.len(), 3);
    let built = construct(&kept, &ConstructConfig::default()).unwrap();
    let r = verify(&built.model, &kept, Arith::Exact, &NoProgress).unwrap();
    assert_eq!(r.memorized, 3);
}

#[test]
fn text_windows_label_the_next_byte() {
    let td = text_windows(b"abcab", &TextSpec::new(2, TextUnit::Bytes)).unwrap();
    let ds = td.dataset;
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.inputs, Inputs::Ids { vocab: 256, seqs: vec![vec![97, 98], vec![98, 99], vec![99, 97]] });
    assert_eq!(ds.labels, Labels::NextToken(vec![99, 97, 98]));
    let td = text_windows(b"the cat the dog", &TextSpec::new(1, TextUnit::Words)).unwrap();
    assert_eq!(td.words, ["the", "cat", "dog"]);
    assert!(text_windows(b"ab", &TextSpec::new(2, TextUnit::Bytes)).is_err());
}

fn small_model() -> (Model, Dataset) {
    let ds = generate(&GenConfig {
        n_seqs: 80,
        seq_len: 4,
        vocab: 12,
        num_classes: 5,
        task: Task::NextToken,
        kind: GenKind::Ids,
        positional: Positional::None,
        seed: 11,
    })
    .unwrap();
    (construct(&ds, &ConstructConfig::default()).unwrap().model, ds)
}

#[test]
fn model_json_round_trip_is_exact() {
    let (m, ds) = small_model();
    let back = Model::from_json(&m.to_json()).unwrap();
    assert_eq!(back, m);
    assert_eq!(verify(&back, &ds, Arith::Exact, &NoProgress).unwrap().memorized, ds.len());
    let bumped = m.to_json().replacen("\"version\":1", "\"version\":99", 1);
    assert_eq!(Model::from_json(&bumped).unwrap_err(), ModelError::Version { got: 99, supported: 1 });
    assert!(matches!(Model::from_json("{\"format\":\"other\"}"), Err(ModelError::Invalid(_))));
}

/// A model file that declares zero classes or an empty vocabulary, or has a
/// misspelt config key, is refused by the model reader, naming the field
/// (zero classes used to reach the data reader and be blamed on the data
/// file; unknown keys were ignored).
#[test]
fn model_json_with_zero_classes_or_vocab_is_refused_by_field() {
    let (m, _) = small_model();
    let mut zero_c = m.clone();
    zero_c.config.num_classes = 0;
    assert!(
        matches!(Model::from_json(&zero_c.to_json()), Err(ModelError::Invalid(e)) if e.contains("config.num_classes"))
    );
    let misspelt = m.to_json().replacen("\"num_classes\"", "\"numclasses\":3,\"num_classes\"", 1);
    assert!(matches!(Model::from_json(&misspelt), Err(ModelError::Invalid(e)) if e.contains("numclasses")));
    let mut zero_v = m.clone();
    zero_v.config.input = memcap_core::model::InputSpec::Ids { vocab: 0 };
    assert!(matches!(Model::from_json(&zero_v.to_json()), Err(ModelError::Invalid(e)) if e.contains("config.input")));
}

/// §7.7: P_dense = (m d + m) + L (4 m s H + 2 m q + q + m) + (m + 1), checked
/// against the shapes actually stored (zero-attention blocks store no heads
/// but the fixed-width architecture still has their 4 m s H entries).
#[test]
fn dense_parameter_formula_matches_the_stored_model() {
    let (m, _) = small_model();
    let c = &m.config;
    let stored: usize = m.tensors().iter().map(|(_, t)| t.rows * t.cols).sum();
    let zero_heads =
        m.weights.blocks.iter().filter(|b| b.heads.is_empty()).count() * 4 * c.width * c.head_dim * c.heads;
    assert_eq!(m.accounting().params_dense, (stored + zero_heads) as u64);
    let nnz: usize = m.tensors().iter().map(|(_, t)| t.entries.len()).sum();
    assert_eq!(m.accounting().params_nonzero, nnz as u64);
}

/// Floats never decide: a large model's f64 run loses examples and the
/// divergence trace names where f64 first leaves the exact value.
#[test]
fn f64_diverges_on_wide_weights_and_the_trace_finds_where() {
    let ds = generate(&GenConfig {
        n_seqs: 2000,
        seq_len: 8,
        vocab: 500,
        num_classes: 16,
        task: Task::NextToken,
        kind: GenKind::Ids,
        positional: Positional::None,
        seed: 0,
    })
    .unwrap();
    let m = construct(&ds, &ConstructConfig::default()).unwrap().model;
    assert!(m.accounting().weights_inexact_f64 > 0);
    let exact = verify(&m, &ds, Arith::Exact, &NoProgress).unwrap();
    let f64r = verify(&m, &ds, Arith::F64, &NoProgress).unwrap();
    assert_eq!(exact.memorized, ds.len());
    assert!(f64r.memorized < ds.len());
    let div = first_divergence(&m, &ds, f64r.failures[0].example, Arith::F64).unwrap().expect("diverges");
    assert!(div.stage.starts_with("block"), "{div:?}");
}

/// A tiny model whose weights and intermediates stay below 2^53 is
/// float-exact: f64 reproduces every label.
#[test]
fn small_models_are_float_exact() {
    let ds = generate(&GenConfig {
        n_seqs: 6,
        seq_len: 2,
        vocab: 4,
        num_classes: 2,
        task: Task::NextToken,
        kind: GenKind::Ids,
        positional: Positional::None,
        seed: 3,
    })
    .unwrap();
    let m = construct(&ds, &ConstructConfig { code_bits: Some(4), ..Default::default() }).unwrap().model;
    assert_eq!(m.accounting().weights_inexact_f64, 0);
    assert_eq!(verify(&m, &ds, Arith::F64, &NoProgress).unwrap().memorized, ds.len());
    assert!(first_divergence(&m, &ds, 0, Arith::F64).unwrap().is_none());
}

// ---- text windows and the consistency report (one data model for construct and train)

fn windows(text: &[u8], n: usize, unit: TextUnit) -> memcap_core::gen::TextData {
    text_windows(text, &TextSpec::new(n, unit)).expect("windows")
}

#[test]
fn word_windows_build_a_vocabulary_in_order_of_appearance() {
    let t = windows(b"the cat  the\ndog the cat", 2, TextUnit::Words);
    assert_eq!(t.words, vec!["the", "cat", "dog"]);
    // tokens: the cat the dog the cat -> 0 1 0 2 0 1
    assert_eq!(t.dataset.token_ids().unwrap().1, &[vec![0, 1], vec![1, 0], vec![0, 2], vec![2, 0]][..]);
    assert_eq!(t.dataset.labels, Labels::NextToken(vec![0, 2, 0, 1]));
}

#[test]
fn text_window_stride_and_cap_select_windows() {
    let spec = TextSpec { unit: TextUnit::Bytes, seq_len: 2, stride: 2, max_examples: Some(2) };
    let t = text_windows(b"abcdefg", &spec).unwrap();
    assert_eq!(t.dataset.token_ids().unwrap().1, &[vec![97, 98], vec![99, 100]][..]);
    assert_eq!(t.dataset.labels, Labels::NextToken(vec![99, 101]));
    let zero = TextSpec { stride: 0, ..spec };
    assert!(matches!(text_windows(b"abcdefg", &zero), Err(memcap_core::DataError::Param(_))));
    assert!(text_windows(b"   ", &TextSpec::new(1, TextUnit::Words)).is_err());
    assert!(text_windows(b"abc", &TextSpec::new(0, TextUnit::Bytes)).is_err());
}

#[test]
fn consistent_text_can_reach_full_accuracy() {
    let r = windows(b"abcdefgh", 2, TextUnit::Bytes).dataset.consistency();
    assert_eq!(r.conflicting_contexts, 0);
    assert_eq!(r.max_accuracy, 1.0);
    assert_eq!(r.accuracy_gap, 0.0);
}

#[test]
fn conflicting_contexts_cap_the_achievable_accuracy() {
    // Contexts with n = 1: "a" is followed by b, c, b, b (majority 3 of 4);
    // "b" -> a, a; "c" -> a. 7 targets, best = 3 + 2 + 1 = 6.
    let r = windows(b"abacabab", 1, TextUnit::Bytes).dataset.consistency();
    assert_eq!(r.targets, 7);
    assert_eq!(r.distinct_contexts, 3);
    assert_eq!(r.conflicting_contexts, 1);
    assert_eq!(r.targets_in_conflicts, 4);
    assert!((r.max_accuracy - 6.0 / 7.0).abs() < 1e-12);
    assert!((r.accuracy_gap - 1.0 / 7.0).abs() < 1e-12);
}

#[test]
fn no_positional_encoding_merges_permuted_contexts() {
    // "xab" and "axb" share the last token and the multiset {a, x}.
    let ds = Dataset {
        inputs: Inputs::Ids { vocab: 4, seqs: vec![vec![2, 0, 1], vec![0, 2, 1]] },
        labels: Labels::NextToken(vec![0, 1]),
        num_classes: 2,
        lines: None,
        label_classes: None,
    };
    let r = ds.consistency();
    assert_eq!(r.max_accuracy, 1.0);
    assert_eq!(r.max_accuracy_no_pos, 0.5);
}

#[test]
fn random_data_are_seeded_and_memorizable_without_positions_for_both_tasks() {
    for task in [Task::NextToken, Task::Seq2seq] {
        let cfg = GenConfig { task, ..GenConfig::random_ids(100, 3, 8, 4, 11) };
        let a = generate(&cfg).unwrap();
        assert_eq!(a, generate(&cfg).unwrap());
        assert_ne!(a, generate(&GenConfig { seed: 12, ..cfg }).unwrap());
        // Even a model without positional encoding can fit every label.
        assert_eq!(a.consistency().max_accuracy_no_pos, 1.0, "{task:?}");
    }
}

#[test]
fn integral_float_labels_read_as_integers_and_fractions_stay_errors() {
    // What a float tensor's tolist() writes: 2.0 is the label 2.
    let ds = parse_jsonl("{\"tokens\":[1,2],\"label\":2.0}\n{\"tokens\":[2,1],\"label\":0}\n", ParseOptions::default())
        .expect("2.0 is an integer");
    assert_eq!(ds.label_rows()[0], vec![2]);
    let e = parse_jsonl("{\"tokens\":[1,2],\"label\":2.5}\n", ParseOptions::default()).expect_err("2.5 is not");
    assert!(e.to_string().contains("line 1") && e.to_string().contains("2.5"), "{e}");
    let e = parse_csv("tok_0,label\n1,1e40\n", ParseOptions::default()).expect_err("too large");
    assert!(e.to_string().contains("line 2"), "{e}");
}

#[test]
fn duplicate_examples_carry_no_information_and_merge_away() {
    // A bigram table of a text is mostly copies: 3 distinct rows, 7 lines.
    let text = "{\"tokens\":[1],\"label\":2}\n".repeat(4)
        + &"{\"tokens\":[2],\"label\":0}\n".repeat(2)
        + "{\"tokens\":[0],\"label\":1}\n";
    let ds = parse_jsonl(&text, ParseOptions { num_classes: Some(4), ..Default::default() }).expect("parses");
    assert_eq!(ds.len(), 7);
    assert_eq!(ds.duplicate_count(), 4);
    assert_eq!(ds.label_bits(), 3.0 * 2.0, "3 distinct examples × log2 4");
    let (merged, k) = ds.merge_duplicates();
    assert_eq!((merged.len(), k), (3, 4));
    assert_eq!(merged.lines, Some(vec![1, 5, 7]), "first occurrences keep their lines");
    assert_eq!(merged.label_bits(), ds.label_bits());
    // Same tokens with another label is a conflict, not a duplicate.
    let conflict =
        parse_jsonl("{\"tokens\":[1],\"label\":2}\n{\"tokens\":[1],\"label\":3}\n", ParseOptions::default()).unwrap();
    assert_eq!(conflict.duplicate_count(), 0);
}

#[test]
fn a_seq2seq_conflict_inside_one_row_names_its_positions() {
    // Token 5 at positions 1 and 3 with labels 0 and 1: without positions the
    // two outputs are equal, so the row cannot be memorized.
    let ds = parse_jsonl("{\"tokens\":[5,2,5],\"labels\":[0,1,1]}\n", ParseOptions::default()).unwrap();
    let e = ds.check_consistency(Positional::None).expect_err("conflict");
    let msg = e.to_string();
    assert!(msg.contains("line 1, positions 1 and 3") && !msg.contains("line 1 and line 1"), "{msg}");
    assert!(ds.check_consistency(Positional::Learned).is_ok(), "positions tell them apart");
}

#[test]
fn ignored_seq2seq_positions_count_nowhere_and_need_no_key() {
    use memcap_core::data::IGNORE;
    // Padded positions as PyTorch writes them (-100) and as JSON null; the
    // padded token 0 appears with different "labels" but they are ignored.
    let text = "{\"tokens\":[0,0,5,6],\"labels\":[-100,-100,7,8]}\n{\"tokens\":[0,5,6,7],\"labels\":[null,7,8,9]}\n";
    let ds = parse_jsonl(text, ParseOptions { num_classes: Some(10), ..Default::default() }).expect("parses");
    assert_eq!(ds.label_rows()[0], &[IGNORE, IGNORE, 7, 8]);
    assert_eq!(ds.num_targets(), 5);
    assert!((ds.label_bits() - 5.0 * 10f64.log2()).abs() < 1e-9);
    assert!(ds.check_consistency(Positional::Learned).is_ok());
    let built =
        construct(&ds, &ConstructConfig { positional: Positional::Learned, ..Default::default() }).expect("builds");
    let r = verify(&built.model, &ds, Arith::Exact, &NoProgress).expect("runs");
    assert_eq!((r.labels_correct, r.labels_total, r.memorized), (5, 5, 2));
    // Written back as -100, read back the same; CSV takes -100 or an empty field.
    assert_eq!(parse_jsonl(&to_jsonl(&ds), ParseOptions::default()).unwrap().labels, ds.labels);
    let csv = "tok_0,tok_1,lab_0,lab_1\n0,5,-100,7\n0,6,,8\n";
    let c = parse_csv(csv, ParseOptions::default()).expect("csv");
    assert_eq!(c.label_rows()[1], &[IGNORE, 8]);
    // Next-token labels cannot be ignored.
    assert!(parse_jsonl("{\"tokens\":[1,2],\"label\":-100}\n", ParseOptions::default()).is_err());
}

#[test]
fn declared_label_alphabets_give_the_information_as_a_sum_of_log2_ci() {
    // (person, attribute) -> value facts whose attributes have 2 and 1000
    // values: N·log2 C with C = 1000 overcounts the binary attribute.
    let text = "{\"tokens\":[0,10],\"label\":1,\"classes\":2}\n{\"tokens\":[0,11],\"label\":999,\"classes\":1000}\n\
                {\"tokens\":[1,10],\"label\":0,\"classes\":2}\n{\"tokens\":[1,11],\"label\":5,\"classes\":1000}\n";
    let ds = parse_jsonl(text, ParseOptions::default()).expect("parses");
    assert_eq!(ds.num_classes, 1000, "C is the largest declared alphabet");
    let want = 2.0 * 1.0 + 2.0 * 1000f64.log2();
    assert!((ds.label_bits() - want).abs() < 1e-9, "{} vs {want}", ds.label_bits());
    assert!((ds.label_bits_upper() - 4.0 * 1000f64.log2()).abs() < 1e-9);
    assert_eq!(ds.labels_used(), 4);
    // Round trip, and a label outside its declared alphabet is an error with its line.
    assert_eq!(parse_jsonl(&to_jsonl(&ds), ParseOptions::default()).unwrap().label_classes, ds.label_classes);
    let e = parse_jsonl("{\"tokens\":[0],\"label\":3,\"classes\":2}\n", ParseOptions::default()).expect_err("3 ∉ 0..2");
    assert!(e.to_string().contains("line 1") && e.to_string().contains("classes 2"), "{e}");
    let e = parse_jsonl(
        "{\"tokens\":[0],\"label\":1,\"classes\":2}\n{\"tokens\":[1],\"label\":1}\n",
        ParseOptions::default(),
    )
    .expect_err("all or none");
    assert!(e.to_string().contains("every example or on none"), "{e}");
}

#[test]
fn sharded_verification_merges_to_the_single_run_and_refuses_foreign_or_missing_shards() {
    use memcap_core::verify::{merge_shards, verify_shard, ShardError};
    let good = generate(&GenConfig::random_ids(40, 4, 12, 5, 3)).unwrap();
    let built = construct(&good, &ConstructConfig::default()).unwrap();
    // Plant one wrong label: the model memorized the original.
    let mut bad = good.clone();
    if let Labels::NextToken(y) = &mut bad.labels {
        y[17] = (y[17] + 1) % 5;
    }
    let whole = verify(&built.model, &bad, Arith::Exact, &NoProgress).unwrap();
    assert_eq!(whole.memorized, 39);
    for k in [1, 3, 7] {
        let parts: Vec<_> = (0..k)
            .map(|i| verify_shard(&built.model, &bad, Arith::Exact, i, k, "m", "d", &NoProgress).unwrap())
            .collect();
        let merged = merge_shards(&parts).unwrap();
        assert_eq!(
            (merged.examples, merged.memorized, merged.labels_total, merged.labels_correct),
            (whole.examples, whole.memorized, whole.labels_total, whole.labels_correct),
            "K = {k}"
        );
        assert_eq!(merged.failures, whole.failures, "K = {k}: same failures, global indices");
        if k > 1 {
            assert_eq!(merge_shards(&parts[1..]), Err(ShardError::Missing { missing: vec![0], shards: k }));
            let twice = [parts.clone(), vec![parts[0].clone()]].concat();
            assert_eq!(merge_shards(&twice), Err(ShardError::Duplicate { shard: 0, first: 0, index: k }));
            let mut other = parts.clone();
            other[1].data_hash = "other data".into();
            assert!(matches!(merge_shards(&other), Err(ShardError::Mismatch { index: 1, field: "data hash", .. })));
            // A truncated or edited shard cannot fake a result: its counts
            // must fit its residue class and its failures must lie in it.
            let mut forged = parts.clone();
            forged[1].report.examples = 0;
            forged[1].report.memorized = 0;
            assert!(matches!(merge_shards(&forged), Err(ShardError::Inconsistent { index: 1, .. })));
            let mut forged = parts.clone();
            forged[0].report.memorized = forged[0].report.examples + 1;
            assert!(matches!(merge_shards(&forged), Err(ShardError::Inconsistent { index: 0, .. })));
            let holder = 17 % k;
            let mut forged = parts.clone();
            forged[holder].report.failures.clear();
            assert!(matches!(merge_shards(&forged), Err(ShardError::Inconsistent { .. })));
        }
    }
    assert!(verify_shard(&built.model, &bad, Arith::Exact, 3, 3, "m", "d", &NoProgress).is_err());
    // More shards than examples: refused before anything is allocated.
    assert!(verify_shard(&built.model, &bad, Arith::Exact, 0, 41, "m", "d", &NoProgress).is_err());
    let mut huge = verify_shard(&built.model, &bad, Arith::Exact, 0, 1, "m", "d", &NoProgress).unwrap();
    huge.shards = usize::MAX;
    assert!(matches!(merge_shards(&[huge]), Err(ShardError::Inconsistent { .. })));
    let missing: Vec<usize> = (1..100).collect();
    let msg = ShardError::Missing { missing, shards: 100 }.to_string();
    assert!(msg.starts_with("99 of 100 shards are missing: 1, 2") && msg.ends_with("and 89 more"), "{msg}");
}

/// The streaming reader (one line at a time, as `memcap` reads files) gives
/// the same dataset as the in-memory parser, for every task and input kind,
/// with a byte-order mark, CRLF ends, blank lines, ignore labels and declared
/// classes; its errors name the same line; `to_jsonl_lines` is `to_jsonl`.
#[test]
fn streaming_reader_equals_the_in_memory_parser() {
    let mut texts: Vec<String> = Vec::new();
    for (task, kind) in
        [(Task::NextToken, GenKind::Ids), (Task::Seq2seq, GenKind::Ids), (Task::NextToken, GenKind::Vectors { d: 3 })]
    {
        let ds = generate(&GenConfig {
            n_seqs: 50,
            seq_len: 4,
            vocab: 9,
            num_classes: 5,
            task,
            kind,
            positional: Positional::None,
            seed: 2,
        })
        .unwrap();
        let text = to_jsonl(&ds);
        let lines: Vec<String> = to_jsonl_lines(&ds).collect();
        assert_eq!(text, lines.iter().map(|l| format!("{l}\n")).collect::<String>());
        texts.push(text);
    }
    texts.push("\u{feff}{\"tokens\":[1,2],\"labels\":[0,-100],\"classes\":[2,3]}\r\n\r\n{\"tokens\":[2,1],\"labels\":[null,1],\"classes\":[2,3]}\r\n".into());
    for text in &texts {
        let whole = parse_jsonl(text, ParseOptions::default()).unwrap();
        let mut r = JsonlReader::new(ParseOptions::default());
        for line in text.split('\n') {
            r.push_line(line.trim_end_matches('\r')).unwrap();
        }
        assert_eq!(r.finish().unwrap(), whole);
    }
    let bad = "{\"tokens\":[1],\"label\":0}\n\n{\"tokens\":[1],\"label\":\"x\"}\n";
    let mut r = JsonlReader::new(ParseOptions::default());
    let streamed = bad.lines().try_for_each(|l| r.push_line(l)).unwrap_err();
    assert_eq!(streamed.to_string(), parse_jsonl(bad, ParseOptions::default()).unwrap_err().to_string());
    assert!(streamed.to_string().contains("line 3"), "{streamed}");
}

/// 2^32 − 1 is the ignore marker inside a dataset: a literal 4294967295 in a
/// file is refused (JSONL and CSV) instead of being read as an ignored
/// position, and the error says how to write one.
#[test]
fn the_ignore_marker_value_is_refused_as_a_literal_label() {
    let e = jsonl("{\"tokens\":[1,2],\"labels\":[0,4294967295]}\n").unwrap_err();
    assert!(e.to_string().contains("ignored position") && e.to_string().contains("line 1"), "{e}");
    let e = parse_csv("tok_0,tok_1,lab_0,lab_1\n3,1,2,4294967295\n", ParseOptions::default()).unwrap_err();
    assert!(e.to_string().contains("lab_1") && e.to_string().contains("ignored position"), "{e}");
    // The ways to write an ignored position still work.
    let ds = jsonl("{\"tokens\":[1,2],\"labels\":[0,-100]}\n{\"tokens\":[2,2],\"labels\":[null,1]}\n").unwrap();
    let Labels::Seq2seq(y) = &ds.labels else { panic!("seq2seq") };
    assert_eq!(y, &vec![vec![0, memcap_core::data::IGNORE], vec![memcap_core::data::IGNORE, 1]]);
}

/// `to_csv_lines` is the inverse of `parse_csv`, V and C included (its
/// `# memcap_dataset` comment), for both tasks and ignored positions; flags
/// take precedence over the comment; a bad comment names its line; token
/// vectors are refused, not written half.
#[test]
fn csv_writer_round_trips_through_the_csv_reader() {
    for task in [Task::NextToken, Task::Seq2seq] {
        // V = 500 and C = 90 exceed what 30 sequences use, so max + 1 would differ.
        let mut ds = generate(&GenConfig { task, ..GenConfig::random_ids(30, 3, 500, 90, 4) }).unwrap();
        if let Labels::Seq2seq(l) = &mut ds.labels {
            l[0][1] = memcap_core::data::IGNORE;
        }
        let text: String = to_csv_lines(&ds).unwrap().map(|l| l + "\n").collect();
        assert!(text.starts_with("# memcap_dataset"), "{text}");
        let back = parse_csv(&text, ParseOptions::default()).unwrap();
        assert_eq!(Dataset { lines: None, ..back }, ds, "{task:?}");
        let flagged = parse_csv(&text, ParseOptions { num_classes: Some(120), ..ParseOptions::default() }).unwrap();
        assert_eq!(flagged.num_classes, 120);
    }
    let e = parse_csv("# memcap_dataset {\"vocab\":0}\ntok_0,label\n1,1\n", ParseOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::Parse { line: 1, ref reason } if reason.contains("vocab")), "{e}");
    let e = parse_csv("#\n# memcap_dataset {\"vocb\":3}\ntok_0,label\n1,1\n", ParseOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::Parse { line: 2, ref reason } if reason.contains("vocb")), "{e}");
    // The comment must come first, once, with each key once; other words are comments.
    for (text, line, what) in [
        ("tok_0,label\n# memcap_dataset {\"vocab\":9}\n1,1\n", 2, "before the header"),
        ("# memcap_dataset {\"vocab\":9}\n# memcap_dataset {}\ntok_0,label\n1,1\n", 2, "second"),
        ("# memcap_dataset {\"vocab\":9,\"vocab\":3}\ntok_0,label\n1,1\n", 1, "duplicate field"),
    ] {
        let e = parse_csv(text, ParseOptions::default()).unwrap_err();
        assert!(matches!(&e, DataError::Parse { line: l, reason } if *l == line && reason.contains(what)), "{e}");
    }
    let notes = parse_csv("# memcap_dataset_notes: x\ntok_0,label\n1,1\n2,0\n", ParseOptions::default()).unwrap();
    assert_eq!(notes.num_classes, 2);
    let vectors = generate(&GenConfig { kind: GenKind::Vectors { d: 2 }, ..GenConfig::random_ids(5, 3, 8, 4, 0) });
    assert!(matches!(to_csv_lines(&vectors.unwrap()), Err(DataError::Param(_))));
}

/// CSV errors name the file's own line: after comments and blank lines,
/// with CRLF line ends, and with a byte-order mark (the `csv` crate's line
/// count is off in each of these).
#[test]
fn csv_errors_name_the_true_line_after_comments_blank_lines_and_crlf() {
    for (text, line) in [
        ("tok_0,tok_1,label\n1,2,0\n\n\n# note\n1,x,0\n", 6),
        ("tok_0,tok_1,label\r\n1,2,0\r\n1,2,0\r\n1,x,0\r\n", 4),
        ("tok_0,tok_1,label\r\n1,2,0\r\n\r\n1,2\r\n", 4),
        ("\u{feff}# memcap_dataset {\"vocab\":10}\ntok_0,tok_1,label\n1,2,0\n1,x,1\n", 4),
        ("# c\n\ntok_0,tok_9,label\n1,2,0\n", 3),
    ] {
        let e = parse_csv(text, ParseOptions::default()).unwrap_err();
        assert!(matches!(e, DataError::Parse { line: l, .. } if l == line), "{text:?}: {e}");
    }
    let ds = parse_csv("# c\ntok_0,label\r\n\r\n1,0\r\n2,1\r\n", ParseOptions::default()).unwrap();
    assert_eq!(ds.lines, Some(vec![4, 5]));
}
