//! Capacity search finds the smallest memorizing size of a grid.

use memcap_train::capacity::{capacity_search, CapacitySpec, Family, Strategy};
use memcap_train::*;

fn spec(strategy: Strategy) -> CapacitySpec {
    CapacitySpec {
        family: Family::Mlp,
        blocks: vec![1],
        widths: vec![1, 2, 4, 8, 16],
        lrs: vec![3e-2],
        seeds: vec![0, 1],
        train: TrainConfig { max_steps: 300, eval_every: 10, ..TrainConfig::default() },
        strategy,
        threads: 2,
        max_steps_cap: 300,
        max_grow: 0,
        min_loss_drop: 0.5,
    }
}

#[test]
fn ascending_search_stops_at_the_first_memorizing_size() {
    let data = data::generate(&data::GenConfig::random_ids(24, 3, 6, 4, 3)).expect("data");
    let mut seen = Vec::new();
    let r = capacity_search(&spec(Strategy::Ascending), &data, &mut |o| seen.push(o.num_params)).expect("search");
    let best = r.min_params.expect("the widest MLP memorizes 24 examples");
    assert_eq!(r.status, "found");
    // The largest size is tested first (an upper bound); then sizes smallest
    // first: every tested size below the winner failed.
    assert_eq!(r.tested[0].num_params, r.tested.iter().map(|o| o.num_params).max().unwrap());
    assert!(r.tested.iter().filter(|o| o.num_params < best).all(|o| !o.memorized));
    assert!(r.tested.iter().any(|o| o.num_params == best && o.memorized));
    assert_eq!(seen.len(), r.tested.len());
    assert_eq!(r.runs_used, r.tested.iter().map(|o| o.runs).sum::<usize>());
    let bits = r.bits_per_param.expect("bits");
    assert!((bits - 24.0 * 2.0 / best as f64).abs() < 1e-12);
}

#[test]
fn bisect_search_returns_a_memorizing_size_from_the_grid() {
    let data = data::generate(&data::GenConfig::random_ids(24, 3, 6, 4, 3)).expect("data");
    let r = capacity_search(&spec(Strategy::Bisect), &data, &mut |_| {}).expect("search");
    let best = r.best.expect("a size memorizes");
    assert!(best.memorized && best.winner.is_some());
    // Bisection tests at most 1 + ceil(log2(5)) sizes.
    assert!(r.tested.len() <= 4, "{} sizes tested", r.tested.len());
    // The next-smaller tested size (if any) failed.
    assert!(r.tested.iter().filter(|o| o.num_params < best.num_params).all(|o| !o.memorized));
}

#[test]
fn empty_grid_is_an_error() {
    let data = data::generate(&data::GenConfig::random_ids(4, 2, 6, 2, 0)).expect("data");
    let s = CapacitySpec { widths: vec![], ..spec(Strategy::Ascending) };
    assert!(matches!(capacity_search(&s, &data, &mut |_| {}), Err(TrainError::InvalidConfig(_))));
}

/// When the smallest size of the grid memorizes, the answer is only an upper
/// bound: the report says so (`at_grid_floor`, and the reason), instead of
/// "every smaller tested size plateaued" when no smaller size was tested.
#[test]
fn a_minimum_at_the_grid_floor_is_reported_as_an_upper_bound() {
    let data = data::generate(&data::GenConfig::random_ids(24, 3, 6, 4, 3)).expect("data");
    let s = CapacitySpec { widths: vec![16, 32], ..spec(Strategy::Ascending) };
    let r = capacity_search(&s, &data, &mut |_| {}).expect("search");
    assert_eq!(r.status, "found");
    assert!(r.at_grid_floor, "{}", r.reason);
    assert!(r.reason.contains("smallest size in the grid"), "{}", r.reason);
    let r = capacity_search(&spec(Strategy::Ascending), &data, &mut |_| {}).expect("search");
    assert!(!r.at_grid_floor || r.min_params == Some(r.tested.iter().map(|o| o.num_params).min().unwrap()));
}
