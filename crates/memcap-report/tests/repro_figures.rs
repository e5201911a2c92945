//! The experiments' figures are drawn from their results: CSV rows match the
//! searches, the SVG has one curve per series, the PNG is a PNG, and the JSON
//! round-trips.

use memcap_train::capacity::{CapacitySpec, Family, Strategy};
use memcap_train::repro::{self, DataSource, SizeSweepResult, SizeSweepSpec, SweepVar};
use memcap_train::TrainConfig;

#[test]
fn size_sweep_figure_is_drawn_from_the_sweep_result() {
    let mlp = CapacitySpec {
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
    let spec = SizeSweepSpec {
        sweep: SweepVar::NSeqs,
        values: vec![12, 24],
        n_seqs: 12,
        seq_len: 3,
        vocab: 8,
        num_classes: 4,
        seeds: vec![0, 1],
        source: DataSource::Random,
        transformer: CapacitySpec { widths: vec![2, 4], ..mlp.clone() },
        mlp: None,
        jobs: 2,
    };
    let r = repro::size_sweep(&spec, None, &|_| {}).unwrap();
    let out = memcap_report::repro::size_sweep(&r).unwrap();
    assert_eq!(out.csv.lines().count(), 1 + r.rows.len());
    assert!(out.csv.starts_with("N,family,seed,status,min_params"));
    // Median, two interval lines and the construction: 4 series in the size panel, 2 in the bits panel.
    assert!(out.svg.matches("<polyline").count() >= 4, "{}", out.svg.matches("<polyline").count());
    assert!(out.svg.contains("memcap construction"));
    assert_eq!(&out.png[1..4], b"PNG");
    let back: SizeSweepResult = serde_json::from_str(&out.json).unwrap();
    assert_eq!(back.rows.len(), r.rows.len());
}
