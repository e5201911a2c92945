//! The paper's experiments as library calls, on tiny settings: size sweeps
//! over N (random data and text windows) with seeds, medians, intervals,
//! slopes and the construction on the same data; MLP vs Transformer with
//! intervals.

use memcap_train::capacity::{CapacitySpec, Family, Strategy};
use memcap_train::repro::{self, DataSource, SizeSweepSpec, SweepVar};
use memcap_train::TrainConfig;

fn tiny_sweep() -> SizeSweepSpec {
    let search = CapacitySpec {
        family: Family::Mlp,
        blocks: vec![1],
        widths: vec![1, 2, 4, 8],
        lrs: vec![0.03],
        seeds: vec![0],
        train: TrainConfig { max_steps: 300, eval_every: 20, ..TrainConfig::default() },
        strategy: Strategy::Bisect,
        threads: 1,
        max_steps_cap: 600,
        max_grow: 2,
        min_loss_drop: 0.5,
    };
    SizeSweepSpec {
        sweep: SweepVar::NSeqs,
        values: vec![16, 32],
        n_seqs: 16,
        seq_len: 3,
        vocab: 8,
        num_classes: 4,
        seeds: vec![0, 1, 2],
        source: DataSource::Random,
        transformer: CapacitySpec {
            family: Family::Transformer {
                heads: 1,
                ff_mult: 2.0,
                positional: memcap_core::Positional::None,
                layer_norm: false,
            },
            widths: vec![4, 8, 16],
            lrs: vec![0.05],
            ..search.clone()
        },
        mlp: Some(search),
        jobs: 2,
    }
}

#[test]
fn a_size_sweep_pools_seeds_into_medians_intervals_and_slopes() {
    let spec = tiny_sweep();
    let r = repro::size_sweep(&spec, None, &|_| {}).unwrap();
    assert_eq!(r.rows.len(), 2 * 2 * 3);
    assert_eq!(r.summary.len(), 4);
    for s in &r.summary {
        assert_eq!(s.seeds, 3);
        if let (Some(m), Some((lo, hi))) = (s.median_min_params, s.ci_min_params) {
            assert!(lo <= m && m <= hi, "{s:?}");
        }
        // Every search says what happened: found, or not_found with a reason.
        assert_eq!(
            s.found,
            r.rows.iter().filter(|x| x.family == s.family && x.value == s.value && x.report.status == "found").count()
        );
    }
    assert_eq!(r.slopes.len(), 2);
    // The construction ran on the same datasets (first seed), one per N.
    assert_eq!(r.construction.iter().map(|c| c.value).collect::<Vec<_>>(), vec![16, 32]);
    // Same spec → same result (up to wall-clock fields).
    let again = repro::size_sweep(&spec, None, &|_| {}).unwrap();
    assert_eq!(
        r.rows.iter().map(|x| x.report.min_params).collect::<Vec<_>>(),
        again.rows.iter().map(|x| x.report.min_params).collect::<Vec<_>>()
    );
}

#[test]
fn a_text_sweep_draws_distinct_consistent_windows() {
    let text = b"the quick brown fox jumps over the lazy dog; the dog sleeps and the fox runs far away.".repeat(3);
    let spec = SizeSweepSpec {
        source: DataSource::Text { name: "fox".into() },
        vocab: 256,
        num_classes: 256,
        values: vec![20],
        seeds: vec![0],
        mlp: None,
        ..tiny_sweep()
    };
    let r = repro::size_sweep(&spec, Some(&text), &|_| {}).unwrap();
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0].report.data.n_seqs, 20);
    // Asking for more distinct windows than the text has is an error, not a hang.
    let too_many = SizeSweepSpec { values: vec![100_000], ..spec.clone() };
    assert!(repro::size_sweep(&too_many, Some(&text), &|_| {}).is_err());
    // A text source without text is an error.
    assert!(repro::size_sweep(&spec, None, &|_| {}).is_err());
}

#[test]
fn mlp_vs_transformer_reports_medians_with_intervals_per_n() {
    let spec = repro::MlpVsTransformerSpec {
        seq_lens: vec![2, 4],
        n_seqs: 24,
        vocab: 6,
        num_classes: 3,
        param_budget: 400,
        lrs: vec![0.03],
        seeds: vec![0, 1, 2],
        train: TrainConfig { max_steps: 200, eval_every: 50, ..TrainConfig::default() },
        threads: 2,
        ..Default::default()
    };
    let r = repro::mlp_vs_transformer(&spec, &mut |_| {}).unwrap();
    assert_eq!(r.rows.len(), 2 * 3 * 2);
    assert_eq!(r.summary.len(), 2);
    for s in &r.summary {
        assert_eq!(s.seeds, 3);
        let (m, (lo, hi)) = (s.transformer_median_acc.unwrap(), s.transformer_ci.unwrap());
        assert!(lo <= m && m <= hi);
        assert!(["transformer", "mlp", "tie"].contains(&s.ahead.as_str()));
        assert!(s.transformer_params <= 400 && s.mlp_params <= 400);
    }
}
