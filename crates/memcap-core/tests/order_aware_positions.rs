//! Issue 5: order-aware memorization. Without positional encoding a
//! Transformer is permutation-equivariant and cannot tell "dog bites man"
//! from "man bites dog"; with learned positions every (token, position) pair
//! is its own unit, hashed by memorizer #1 so that sums see order.

use memcap_core::construct::{construct, ConstructConfig};
use memcap_core::data::{Dedupe, Positional};
use memcap_core::error::DataError;
use memcap_core::eval::NoProgress;
use memcap_core::gen::{text_windows, TextSpec, TextUnit};
use memcap_core::parse::{parse_jsonl, ParseOptions};
use memcap_core::verify::{verify, Arith};
use memcap_core::{ConstructError, MapChoice};

// dog=0 bites=1 man=2 ; label: 3 = "hard", 4 = "soft" … any two different labels.
const DOG_BITES_MAN: &str = "{\"tokens\":[0,1,2,1],\"label\":3}\n{\"tokens\":[2,1,0,1],\"label\":4}\n";

#[test]
fn dog_bites_man_fails_the_permutation_free_check_naming_both_lines() {
    let ds = parse_jsonl(DOG_BITES_MAN, ParseOptions::default()).unwrap();
    let e = construct(&ds, &ConstructConfig::default()).unwrap_err();
    match e {
        ConstructError::Data(DataError::Inconsistent { a, b, .. }) => assert_eq!((a.line, b.line), (Some(1), Some(2))),
        other => panic!("expected an inconsistency error, got {other:?}"),
    }
}

#[test]
fn dog_bites_man_is_memorized_with_learned_positions() {
    let ds = parse_jsonl(DOG_BITES_MAN, ParseOptions::default()).unwrap();
    let built = construct(&ds, &ConstructConfig { positional: Positional::Learned, ..Default::default() }).unwrap();
    assert!(built.model.weights.pos.is_some());
    let r = verify(&built.model, &ds, Arith::Exact, &NoProgress).unwrap();
    assert_eq!(r.memorized, 2);
    // The position table counts in the dense parameters: n·m entries.
    let c = &built.model.config;
    let without = built.model.dense_param_formula() - (c.seq_len * c.width) as u64;
    assert!(built.model.accounting().params_dense > without);
}

#[test]
fn m1_is_refused_with_positions() {
    let ds = parse_jsonl(DOG_BITES_MAN, ParseOptions::default()).unwrap();
    let e =
        construct(&ds, &ConstructConfig { positional: Positional::Learned, map: MapChoice::M1, ..Default::default() });
    assert!(matches!(e, Err(ConstructError::M1Violated(_))));
}

/// Real text: byte windows have repeated contexts with different next bytes;
/// the majority policy keeps the best achievable subset, which the
/// positional construction then memorizes exactly.
#[test]
fn text_windows_are_memorized_after_majority_dedupe() {
    let text = b"the cat sat on the mat. the cat ate the rat. the dog sat on the log.";
    let ds = text_windows(text, &TextSpec::new(4, TextUnit::Bytes)).unwrap().dataset;
    assert!(ds.check_consistency(Positional::Learned).is_err(), "\"the \" continues differently");
    let (kept, rep) = ds.resolve_conflicts(Positional::Learned, Dedupe::Majority).unwrap();
    assert!(rep.best_accuracy < 1.0 && rep.labels_removed > 0);
    let built = construct(&kept, &ConstructConfig { positional: Positional::Learned, ..Default::default() }).unwrap();
    let r = verify(&built.model, &kept, Arith::Exact, &NoProgress).unwrap();
    assert_eq!(r.memorized, kept.len());
    // Permutation-free mode has more conflicts (order is invisible).
    let (_, rep_free) = ds.resolve_conflicts(Positional::None, Dedupe::Majority).unwrap();
    assert!(rep_free.labels_removed >= rep.labels_removed);
}
