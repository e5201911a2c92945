//! Sweep-config fuzzing: mutations of the shipped example configs must give
//! tasks or a typed `PlanError`, never a panic and never an unbounded
//! expansion. 256 cases with a fixed seed; `PROPTEST_CASES` /
//! `PROPTEST_RNG_SEED` explore further.

use memcap_sweep::plan::expand;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 256;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(0x0073_7765_6570);
    }
    c
}

const EXAMPLES: [&str; 2] =
    [include_str!("../../../examples/sweep/sweep.json"), include_str!("../../../examples/sweep/tiny.json")];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_sweep_configs_plan_or_fail_cleanly(
        which in 0usize..2,
        edits in prop::collection::vec((any::<usize>(), prop::sample::select(b"{}[]\":,-0123456789.e \n".to_vec()), 0u8..3), 1..6),
    ) {
        let mut v = EXAMPLES[which].as_bytes().to_vec();
        for (i, b, op) in edits {
            let at = i % (v.len() + 1);
            match op {
                0 if at < v.len() => v[at] = b,
                1 => v.insert(at, b),
                _ if at < v.len() => { v.remove(at); }
                _ => {}
            }
        }
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&v) {
            if let Ok(tasks) = expand(&value) {
                prop_assert!(tasks.len() <= memcap_sweep::plan::MAX_TASKS);
            }
        }
    }
}
