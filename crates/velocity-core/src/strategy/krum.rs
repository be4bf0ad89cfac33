//! Krum and Multi-Krum.
//!
//! Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent
//! [Blanchard et al., 2017]. Paper: <https://papers.nips.cc/paper/6617>

use super::distances::pairwise_sq_distances;
use super::fedavg::{normalised, weighted_sum_into};
use super::spec::at_least;
use super::{Aggregate, Inputs, KernelResult, SawNonFinite, Strategy, StrategySpec, Tolerance};
use crate::error::{CoreError, Result};
use crate::schema::ParamSpec;

/// f, the Byzantine clients Krum and Multi-Krum tolerate.
const F: ParamSpec = ParamSpec::int(
    "f",
    1,
    "number of Byzantine clients tolerated (needs n >= 2f+3)",
)
.min(0.0, true);

/// Krum's registry entry.
pub(super) const KRUM: StrategySpec = StrategySpec::new(
    "Krum",
    "Krum: pick the one update closest to its n − f − 2 nearest neighbours.",
    "Blanchard et al. 2017, https://papers.nips.cc/paper/6617",
    run_krum,
)
.params(&[F])
.param_hints(&[
    ("num_malicious_clients", "f"), // Flower's Krum
    ("num_byzantine", "f"),
    ("byzantine", "f"),
])
.selection()
.tolerance(Tolerance::Count("f"))
.check_clients(krum_clients);

/// Multi-Krum's registry entry.
pub(super) const MULTI_KRUM: StrategySpec = StrategySpec::new(
    "MultiKrum",
    "Multi-Krum: the sample-weighted mean of the m updates with the best Krum scores.",
    "Blanchard et al. 2017, https://papers.nips.cc/paper/6617",
    run_multi_krum,
)
.params(&[
    F,
    ParamSpec::int(
        "m",
        0,
        "updates kept and averaged (at most n); None keeps n - f",
    )
    .nullable()
    .min(1.0, true),
])
.param_hints(&[
    ("num_malicious_clients", "f"), // Flower's Krum
    ("num_clients_to_keep", "m"),
    ("num_byzantine", "f"),
])
.selection()
.tolerance(Tolerance::Count("f"))
.check_clients(multi_krum_clients);

fn run_krum(s: &Strategy, input: &Inputs<'_>) -> KernelResult<Aggregate> {
    krum(input.rows, s.count("f"))
}

fn run_multi_krum(s: &Strategy, input: &Inputs<'_>) -> KernelResult<Aggregate> {
    let (n, f) = (input.rows.len(), s.count("f"));
    // check_clients guarantees n ≥ 2f + 3: no underflow.
    let m = s.opt_count("m").unwrap_or(n.saturating_sub(f));
    multi_krum(input.rows, input.weights, f, m)
}

/// n ≥ 2f + 3.
fn krum_clients(s: &Strategy, n: usize) -> Result<()> {
    at_least(s, n, 2, "f", 3)
}

/// n ≥ 2f + 3 and m ≤ n.
fn multi_krum_clients(s: &Strategy, n: usize) -> Result<()> {
    at_least(s, n, 2, "f", 3)?;
    match s.opt_count("m") {
        Some(m) if m > n => Err(CoreError::invalid(
            "m",
            m,
            format!("None or an integer in [1, n] with n = {n} clients"),
        )),
        _ => Ok(()),
    }
}

/// Krum score of row `i` among `candidates`: the sum of the `k` smallest
/// squared distances from `i` to the other candidates (summed in ascending order).
pub(crate) fn krum_score(dist: &[f64], n: usize, i: usize, candidates: &[usize], k: usize) -> f64 {
    let mut near: Vec<f64> = candidates
        .iter()
        .filter(|&&j| j != i)
        .map(|&j| dist[i * n + j])
        .collect();
    near.sort_unstable_by(f64::total_cmp);
    near.iter().take(k).sum()
}

/// All rows ordered by (Krum score, index), with k = n − f − 2 neighbours.
fn ranked(dist: &[f64], n: usize, f: usize) -> Vec<usize> {
    let all: Vec<usize> = (0..n).collect();
    let k = n - f - 2;
    let scores: Vec<f64> = (0..n).map(|i| krum_score(dist, n, i, &all, k)).collect();
    let mut order = all;
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    order
}

/// Krum: the single row with the lowest Krum score.
///
/// ```text
/// s(i) = Σ_{j ∈ N_i} ‖x_i − x_j‖²,    out = x_{i*},  i* = argmin_i s(i)
/// ```
/// where n is the number of rows, f the number of Byzantine rows tolerated,
/// and N_i the n − f − 2 rows closest to x_i (excluding i). Ties go to the
/// lowest index. Weights are ignored. `selected = [i*]`. Squared distances
/// are computed once (f32 squares summed in f64, relative error ~1e-7; exact
/// f64 if f32 would overflow).
///
/// Preconditions: n ≥ 2f + 3 (checked by the caller). Non-finite input: rejected.
pub(crate) fn krum(rows: &[&[f32]], f: usize) -> KernelResult<Aggregate> {
    let n = rows.len();
    let dist = pairwise_sq_distances(rows)?;
    let best = ranked(&dist, n, f)[0];
    Ok(Aggregate {
        value: rows[best].to_vec(),
        selected: Some(vec![best]),
    })
}

/// Sample-weighted mean of the rows `ids` (uniform if their weights sum to 0).
pub(crate) fn weighted_mean_of(
    rows: &[&[f32]],
    weights: &[f64],
    ids: &[usize],
) -> KernelResult<Vec<f32>> {
    let subset: Vec<&[f32]> = ids.iter().map(|&i| rows[i]).collect();
    let w: Vec<f64> = ids.iter().map(|&i| weights[i]).collect();
    let coeffs = if w.iter().sum::<f64>() > 0.0 {
        normalised(&w)
    } else {
        vec![1.0 / ids.len() as f64; ids.len()]
    };
    let mut out = vec![0f32; rows[0].len()];
    let finite = weighted_sum_into(&subset, &coeffs, &mut out, |a| a as f32);
    finite.then_some(out).ok_or(SawNonFinite)
}

/// Multi-Krum: the sample-weighted mean of the m rows with the lowest Krum scores.
///
/// ```text
/// S = the m rows with the smallest s(i),    out = Σ_{i∈S} w_i x_i / Σ_{i∈S} w_i
/// ```
/// with s(i) as in [`krum`] (n − f − 2 neighbours, ties by lowest index) and
/// w_i the sample counts (a uniform mean if the kept rows' weights sum to 0).
/// `selected` = the sorted ids in S.
///
/// Preconditions: n ≥ 2f + 3 and 1 ≤ m ≤ n (checked by the caller).
/// Non-finite input: rejected.
pub(crate) fn multi_krum(
    rows: &[&[f32]],
    weights: &[f64],
    f: usize,
    m: usize,
) -> KernelResult<Aggregate> {
    let n = rows.len();
    let dist = pairwise_sq_distances(rows)?;
    let mut keep: Vec<usize> = ranked(&dist, n, f).into_iter().take(m).collect();
    keep.sort_unstable();
    Ok(Aggregate {
        value: weighted_mean_of(rows, weights, &keep)?,
        selected: Some(keep),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::rows;
    use super::*;

    fn example() -> Vec<Vec<f32>> {
        vec![
            vec![0.0, 0.0],
            vec![1.0, 0.0],
            vec![0.0, 1.0],
            vec![1.0, 1.0],
            vec![100.0, 100.0],
        ]
    }

    #[test]
    fn krum_picks_the_central_row() {
        // f = 1: k = 2 neighbours. Scores: row0: 1+1=2, row1: 1+1=2, row2: 2, row3: 2,
        // row4: huge. Tie -> lowest index 0.
        let data = example();
        let a = krum(&rows(&data), 1).unwrap();
        assert_eq!(a.selected, Some(vec![0]));
        assert_eq!(a.value, vec![0.0, 0.0]);
    }

    #[test]
    fn multi_krum_averages_the_best_m() {
        let data = example();
        let a = multi_krum(&rows(&data), &[1.0, 1.0, 1.0, 1.0, 1.0], 1, 4).unwrap();
        assert_eq!(a.selected, Some(vec![0, 1, 2, 3]));
        assert_eq!(a.value, vec![0.5, 0.5]);
        let a = multi_krum(&rows(&data), &[3.0, 1.0, 0.0, 0.0, 1.0], 1, 4).unwrap();
        assert_eq!(a.value, vec![0.25, 0.0]);
        let a = multi_krum(&rows(&data), &[0.0, 0.0, 0.0, 0.0, 1.0], 1, 2).unwrap();
        assert_eq!(a.selected, Some(vec![0, 1]));
        assert_eq!(a.value, vec![0.5, 0.0]);
    }
}
