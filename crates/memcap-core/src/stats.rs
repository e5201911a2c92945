//! Small statistics for the experiments: medians, percentile-bootstrap
//! intervals and log-log slopes with intervals, all seeded (ChaCha8), so the
//! same results give the same intervals.
//!
//! Written here rather than taken from a crate: the percentile bootstrap is a
//! dozen lines, and the established statistics crates (statrs, etc.) do not
//! provide it; keeping it on our seeded generator makes reports reproducible.

use crate::model::loglog_slope;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Median of `xs` (mean of the two middle values for even length); `None` if empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

/// The `q`-quantile (0 ≤ q ≤ 1) of sorted values, by linear interpolation.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 < sorted.len() {
        sorted[i] * (1.0 - f) + sorted[i + 1] * f
    } else {
        sorted[i]
    }
}

/// Percentile-bootstrap interval of `stat` over `xs`: `resamples` draws with
/// replacement (ChaCha8 seeded by `seed`), the `(1 − level)/2` and
/// `(1 + level)/2` quantiles of the statistic. `None` for an empty sample.
pub fn bootstrap_ci(
    xs: &[f64],
    stat: &dyn Fn(&[f64]) -> Option<f64>,
    resamples: usize,
    level: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    if xs.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stats: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            let r: Vec<f64> = (0..xs.len()).map(|_| xs[rng.gen_range(0..xs.len())]).collect();
            stat(&r)
        })
        .collect();
    if stats.is_empty() {
        return None;
    }
    stats.sort_by(f64::total_cmp);
    Some((quantile(&stats, (1.0 - level) / 2.0), quantile(&stats, (1.0 + level) / 2.0)))
}

/// A fitted log-log slope with a bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SlopeFit {
    /// Least-squares slope of log(median y) on log x.
    pub slope: f64,
    /// 95% percentile-bootstrap interval: replicates resample the y values
    /// (seeds) at every x and refit the slope of their medians.
    pub ci: Option<(f64, f64)>,
    /// x values with at least one y.
    pub points: usize,
}

/// Slope of log(median y) against log x over `groups` = (x, y values of the
/// replicates), with a bootstrap interval (`resamples` replicates, seeded).
/// `None` with fewer than two x values that have data.
pub fn loglog_slope_ci(groups: &[(f64, Vec<f64>)], resamples: usize, seed: u64) -> Option<SlopeFit> {
    let groups: Vec<&(f64, Vec<f64>)> = groups.iter().filter(|(x, ys)| *x > 0.0 && !ys.is_empty()).collect();
    let pts: Vec<(f64, f64)> = groups.iter().filter_map(|(x, ys)| Some((*x, median(ys)?))).collect();
    let slope = loglog_slope(&pts)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fits: Vec<f64> = (0..resamples)
        .filter_map(|_| {
            let p: Vec<(f64, f64)> = groups
                .iter()
                .filter_map(|(x, ys)| {
                    let r: Vec<f64> = (0..ys.len()).map(|_| ys[rng.gen_range(0..ys.len())]).collect();
                    Some((*x, median(&r)?))
                })
                .collect();
            loglog_slope(&p)
        })
        .collect();
    fits.sort_by(f64::total_cmp);
    let ci = (!fits.is_empty()).then(|| (quantile(&fits, 0.025), quantile(&fits, 0.975)));
    Some(SlopeFit { slope, ci, points: pts.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn bootstrap_interval_of_a_constant_sample_is_a_point_and_is_seeded() {
        let m = |x: &[f64]| median(x);
        assert_eq!(bootstrap_ci(&[5.0; 4], &m, 200, 0.95, 1), Some((5.0, 5.0)));
        let xs = [1.0, 2.0, 3.0, 10.0, 11.0];
        let a = bootstrap_ci(&xs, &m, 500, 0.95, 7).unwrap();
        assert_eq!(Some(a), bootstrap_ci(&xs, &m, 500, 0.95, 7));
        assert!(a.0 <= 3.0 && a.1 >= 3.0 && a.0 >= 1.0 && a.1 <= 11.0);
    }

    #[test]
    fn slope_of_exact_square_roots_is_one_half_with_a_point_interval() {
        let g: Vec<(f64, Vec<f64>)> = [100.0f64, 400.0, 1600.0].iter().map(|&x| (x, vec![x.sqrt(); 3])).collect();
        let f = loglog_slope_ci(&g, 200, 0).unwrap();
        assert!((f.slope - 0.5).abs() < 1e-12);
        let (lo, hi) = f.ci.unwrap();
        assert!((lo - 0.5).abs() < 1e-12 && (hi - 0.5).abs() < 1e-12);
    }
}
