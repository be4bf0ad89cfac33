//! Bulyan.
//!
//! The Hidden Vulnerability of Distributed Learning in Byzantium
//! [El Mhamdi et al., 2018]. Paper: <https://arxiv.org/abs/1802.07927>

use super::columns::{reduce_sorted_columns, Need, STRIDE};
use super::distances::pairwise_sq_distances;
use super::krum::krum_score;
use super::{Aggregate, KernelResult};

/// Bulyan: iterative Krum selection, then a coordinate-wise trimmed average
/// around the median of the selected rows.
///
/// ```text
/// S_0 = ∅, R_0 = {1..n}
/// repeat θ times:  i* = argmin_{i∈R} Σ_{j ∈ N_i^R} ‖x_i − x_j‖²,  S ← S ∪ {i*},  R ← R \ {i*}
/// β     = θ − 2f
/// out_j = 1/β · Σ_{i ∈ B_j} x_ij
/// ```
/// where n is the number of rows, f the number of Byzantine rows tolerated,
/// θ the number of rows selected (default n − 2f), R the r remaining rows,
/// N_i^R the k = min(max(1, r − f − 2), r − 1) rows of R \ {i} closest to x_i
/// (ties → lowest index), and B_j the β values of coordinate j among the
/// selected rows closest to their median (numpy convention for even θ). B_j is
/// a contiguous window of the sorted values; when two candidates are equally
/// close the smaller value is taken first. The pairwise distance matrix is
/// computed once and reused by every Krum iteration. Unweighted.
/// `selected` = the sorted ids in S.
///
/// Preconditions: n ≥ 4f + 3 and 2f + 1 ≤ θ ≤ n (checked by the caller).
/// Non-finite input: rejected.
pub(crate) fn bulyan(rows: &[&[f32]], f: usize, theta: usize) -> KernelResult<Aggregate> {
    let n = rows.len();
    let dist = pairwise_sq_distances(rows)?;
    let mut remaining: Vec<usize> = (0..n).collect();
    let mut selected = Vec::with_capacity(theta);
    while selected.len() < theta && !remaining.is_empty() {
        let r = remaining.len();
        let k = (r.saturating_sub(f + 2)).max(1).min(r - 1);
        let mut best = (f64::INFINITY, usize::MAX, 0usize);
        for (pos, &i) in remaining.iter().enumerate() {
            let s = krum_score(&dist, n, i, &remaining, k);
            if s.total_cmp(&best.0).is_lt() || (s == best.0 && i < best.1) {
                best = (s, i, pos);
            }
        }
        selected.push(best.1);
        remaining.remove(best.2);
    }
    selected.sort_unstable();
    let subset: Vec<&[f32]> = selected.iter().map(|&i| rows[i]).collect();
    let beta = theta - 2 * f;
    let mut out = vec![0f32; rows[0].len()];
    reduce_sorted_columns(&subset, &Need::Sorted, &mut out, |tile, out| {
        for (c, o) in out.iter_mut().enumerate() {
            *o = closest_to_median_mean(|r| tile[r * STRIDE + c], theta, beta);
        }
    })?;
    Ok(Aggregate {
        value: out,
        selected: Some(selected),
    })
}

/// Mean of the `beta` values closest to the median of `len` sorted values
/// (`sorted(r)` = the r-th smallest), accumulated in f64 in sorted order.
#[inline]
fn closest_to_median_mean(sorted: impl Fn(usize) -> f32, len: usize, beta: usize) -> f32 {
    let mid = len / 2;
    let med = if len % 2 == 1 {
        f64::from(sorted(mid))
    } else {
        (f64::from(sorted(mid - 1)) + f64::from(sorted(mid))) * 0.5
    };
    // Window [lo, hi) grown one value at a time from the middle.
    let (mut lo, mut hi) = (mid, mid);
    while hi - lo < beta {
        let take_low = if lo == 0 {
            false
        } else if hi == len {
            true
        } else {
            med - f64::from(sorted(lo - 1)) <= f64::from(sorted(hi)) - med
        };
        if take_low {
            lo -= 1;
        } else {
            hi += 1;
        }
    }
    let sum: f64 = (lo..hi).map(|r| f64::from(sorted(r))).sum();
    (sum / beta as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::super::test_util::rows;
    use super::*;

    #[test]
    fn window_around_the_median() {
        let v = [1.0f32, 2.0, 3.0, 10.0, 11.0];
        let at = |r: usize| v[r];
        assert_eq!(closest_to_median_mean(at, 5, 1), 3.0);
        assert_eq!(closest_to_median_mean(at, 5, 3), 2.0);
        assert_eq!(closest_to_median_mean(at, 5, 5), 5.4);
        let v = [1.0f32, 2.0, 4.0, 5.0];
        let at = |r: usize| v[r];
        // median 3: 2 and 4 tie; the smaller is taken first.
        assert_eq!(closest_to_median_mean(at, 4, 1), 2.0);
        assert_eq!(closest_to_median_mean(at, 4, 2), 3.0);
    }

    #[test]
    fn bulyan_drops_the_outliers() {
        // n = 7, f = 1: θ = 5, β = 3.
        let data = vec![
            vec![0.0, 0.0],
            vec![1.0, 0.0],
            vec![0.0, 1.0],
            vec![1.0, 1.0],
            vec![0.4, 0.4],
            vec![100.0, 100.0],
            vec![-100.0, -100.0],
        ];
        let a = bulyan(&rows(&data), 1, 5).unwrap();
        assert_eq!(a.selected, Some(vec![0, 1, 2, 3, 4]));
        // Each coordinate of the selected rows: [0, 1, 0, 1, 0.4] -> sorted
        // [0, 0, 0.4, 1, 1], median 0.4, β = 3 closest: 0, 0, 0.4.
        let expected = (f64::from(0.4f32) / 3.0) as f32;
        assert_eq!(a.value, vec![expected, expected]);
    }
}
