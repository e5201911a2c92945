//! Parser fuzzing: arbitrary bytes and mutations of valid files, fed to the
//! JSONL and CSV dataset parsers and the model reader. Every input must give
//! `Ok` or a typed error — never a panic — and what parses must survive the
//! next step (the consistency check; verification of a parsed model).
//!
//! 256 cases per property with a fixed seed in CI; explore further with
//! `PROPTEST_CASES=20000 PROPTEST_RNG_SEED=9 cargo test --release -p memcap-core --test parser_fuzz`.

use memcap_core::eval::NoProgress;
use memcap_core::parse::{parse_csv, parse_jsonl, to_jsonl, ParseOptions};
use memcap_core::{construct, gen, verify, Arith, ConstructConfig, Model};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(0x6675_7a7a);
    }
    c
}

/// One edit of a byte string: flip, overwrite with a JSON/CSV-significant
/// byte, insert, delete, duplicate a slice, or truncate.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![any::<u8>(), prop::sample::select(b"{}[]\":,-0123456789.eE/\n\r\t #\xef\xbb\xbf".to_vec()),];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn mutate(mut v: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = v.len().max(1);
        match *e {
            Edit::Set(i, b) if !v.is_empty() => v[i % len] = b,
            Edit::Insert(i, b) => v.insert(i % (v.len() + 1), b),
            Edit::Delete(i) if !v.is_empty() => {
                v.remove(i % len);
            }
            Edit::Duplicate(i, n) if !v.is_empty() => {
                let start = i % len;
                let end = (start + n).min(v.len());
                let piece = v[start..end].to_vec();
                v.splice(start..start, piece);
            }
            Edit::Truncate(i) => v.truncate(i % (v.len() + 1)),
            _ => {}
        }
    }
    v
}

fn valid_dataset() -> memcap_core::Dataset {
    gen::generate(&gen::GenConfig::random_ids(12, 3, 6, 3, 5)).expect("valid spec")
}

fn valid_csv(ds: &memcap_core::Dataset) -> String {
    let mut s = String::from("tok_0,tok_1,tok_2,label\n");
    for (toks, y) in ds.token_ids().expect("ids").1.iter().zip(ds.label_rows()) {
        s.push_str(&format!("{},{},{},{}\n", toks[0], toks[1], toks[2], y[0]));
    }
    s
}

/// Parse `bytes` as a dataset both ways; run the consistency check on what parses.
fn exercise_dataset_parsers(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let parsed = [parse_jsonl(&text, ParseOptions::default()), parse_csv(&text, ParseOptions::default())];
    for ds in parsed.into_iter().flatten() {
        let _ = ds.consistency();
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_the_dataset_parsers(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        exercise_dataset_parsers(&bytes);
    }

    #[test]
    fn mutated_jsonl_and_csv_never_panic(edits in prop::collection::vec(edit(), 1..8)) {
        let ds = valid_dataset();
        exercise_dataset_parsers(&mutate(to_jsonl(&ds).into_bytes(), &edits));
        exercise_dataset_parsers(&mutate(valid_csv(&ds).into_bytes(), &edits));
    }

    #[test]
    fn mutated_model_files_never_panic_the_reader_or_the_verifier(edits in prop::collection::vec(edit(), 1..6)) {
        let ds = valid_dataset();
        let model = construct(&ds, &ConstructConfig::default()).expect("construct").model;
        let bytes = mutate(model.to_json().into_bytes(), &edits);
        if let Ok(m) = Model::from_json(&String::from_utf8_lossy(&bytes)) {
            let _ = verify(&m, &ds, Arith::Exact, &NoProgress);
            let _ = verify(&m, &ds, Arith::F64, &NoProgress);
        }
    }
}
