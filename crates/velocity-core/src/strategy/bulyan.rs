//! Bulyan.
//!
//! The Hidden Vulnerability of Distributed Learning in Byzantium
//! [El Mhamdi et al., 2018]. Paper: <https://arxiv.org/abs/1802.07927>

use super::columns::{reduce_sorted_columns, Need, STRIDE, SUB_TILE};
use super::distances::pairwise_sq_distances;
use super::spec::{affine, at_least};
use super::{Aggregate, Inputs, KernelResult, Strategy, StrategySpec, Tolerance};
use crate::error::{CoreError, Result};
use crate::schema::ParamSpec;
use rayon::prelude::*;

/// Bulyan's registry entry.
pub(super) const SPEC: StrategySpec = StrategySpec::new(
    "Bulyan",
    "Bulyan: select θ updates by iterated Krum, then a trimmed mean around the median.",
    "El Mhamdi et al. 2018, https://arxiv.org/abs/1802.07927",
    run,
)
.params(&[
    ParamSpec::int(
        "f",
        1,
        "number of Byzantine clients tolerated (needs n >= 4f+3)",
    )
    .min(0.0, true),
    ParamSpec::int(
        "m",
        0,
        "selection set size theta, 2f+1..n; None gives n - 2f",
    )
    .nullable()
    .min(1.0, true),
])
.param_hints(&[
    ("num_malicious_clients", "f"), // Flower's Bulyan
    ("to_keep", "m"),
    ("theta", "m"),
])
.selection()
.tolerance(Tolerance::Count("f"))
.check(theta_at_least_2f_plus_1)
.check_clients(enough_clients);

fn run(s: &Strategy, input: &Inputs<'_>) -> KernelResult<Aggregate> {
    let (n, f) = (input.rows.len(), s.count("f"));
    // check_clients guarantees n ≥ 4f + 3: no underflow.
    let theta = s
        .opt_count("m")
        .unwrap_or(n.saturating_sub(f.saturating_mul(2)));
    bulyan(input.rows, f, theta)
}

/// θ = m ≥ 2f + 1 when given.
fn theta_at_least_2f_plus_1(s: &Strategy) -> Result<()> {
    let f = s.count("f");
    match s.opt_count("m") {
        Some(theta) if (theta as u128) < affine(2, f, 1) => Err(CoreError::invalid(
            format!("{}.m", s.name()),
            theta,
            format!("None or an integer ≥ 2f+1 = {} (f = {f})", affine(2, f, 1)),
        )),
        _ => Ok(()),
    }
}

/// n ≥ 4f + 3 and θ ≤ n.
fn enough_clients(s: &Strategy, n: usize) -> Result<()> {
    let f = s.count("f");
    at_least(s, n, 4, "f", 3)?;
    match s.opt_count("m") {
        Some(theta) if theta > n => Err(CoreError::invalid(
            "m",
            theta,
            format!(
                "None or an integer in [2f+1, n] = [{}, {n}] (f = {f}, n = {n})",
                affine(2, f, 1)
            ),
        )),
        _ => Ok(()),
    }
}

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
/// computed once, and each row's neighbours sorted once, for every Krum
/// iteration (see [`Neighbours`]). Unweighted.
/// `selected` = the sorted ids in S.
///
/// Preconditions: n ≥ 4f + 3 and 2f + 1 ≤ θ ≤ n (checked by the caller).
/// Non-finite input: rejected.
pub(crate) fn bulyan(rows: &[&[f32]], f: usize, theta: usize) -> KernelResult<Aggregate> {
    let n = rows.len();
    let dist = pairwise_sq_distances(rows)?;
    let mut neighbours = Neighbours::new(&dist, n);
    let mut removed = vec![false; n];
    let mut selected = Vec::with_capacity(theta);
    while selected.len() < theta && selected.len() < n {
        let r = n - selected.len();
        let k = (r.saturating_sub(f + 2)).max(1).min(r - 1);
        let Some((_, best)) = (0..n)
            .into_par_iter()
            .filter(|&i| !removed[i])
            .map(|i| (neighbours.score(i, k), i))
            .reduce_with(|a, b| if lower(b, a) { b } else { a })
        else {
            break; // unreachable: fewer than n rows are selected, so one remains
        };
        removed[best] = true;
        neighbours.remove(best);
        selected.push(best);
    }
    selected.sort_unstable();
    let subset: Vec<&[f32]> = selected.iter().map(|&i| rows[i]).collect();
    let beta = theta - 2 * f;
    let mut out = vec![0f32; rows[0].len()];
    reduce_sorted_columns(&subset, &Need::Sorted, &mut out, |tile, out| {
        window_means(tile, out, theta, beta);
    })?;
    Ok(Aggregate {
        value: out,
        selected: Some(selected),
    })
}

/// `(score, row)` order of the selection: lower score, then lower index.
fn lower(a: (f64, usize), b: (f64, usize)) -> bool {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).is_lt()
}

/// Every row's distances to the other rows, sorted ascending once.
///
/// A removed row's entry becomes +0.0 in place, so a Krum score among the
/// remaining rows is a plain ascending fold over a contiguous prefix of the
/// row's list: the entries up to its k-th remaining one. Adding +0.0 changes no
/// sum of non-negative distances, so the bits equal sorting the remaining
/// distances afresh at every step (the first version: O(θ·n²·log n)), at O(n)
/// per score with no branch or gather in the loop.
struct Neighbours {
    n: usize,
    /// `dist[i·(n−1) + q]`: row i's q-th smallest distance (+0.0 once removed).
    dist: Vec<f64>,
    /// `position[i·n + j]`: where row j sits in row i's list.
    position: Vec<u32>,
    /// Per row, the ascending positions of its removed entries.
    removed: Vec<Vec<u32>>,
}

impl Neighbours {
    fn new(dist: &[f64], n: usize) -> Self {
        let stride = n - 1;
        let mut sorted = vec![0f64; n * stride];
        let mut position = vec![0u32; n * n];
        sorted
            .par_chunks_mut(stride.max(1))
            .zip(position.par_chunks_mut(n))
            .enumerate()
            .for_each(|(i, (list, pos))| {
                let mut near: Vec<(f64, u32)> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| (dist[i * n + j], j as u32))
                    .collect();
                near.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                for (q, (d, j)) in near.into_iter().enumerate() {
                    list[q] = d;
                    pos[j as usize] = q as u32;
                }
            });
        Neighbours {
            n,
            dist: sorted,
            position,
            removed: vec![Vec::new(); n],
        }
    }

    /// Row i's Krum score among the remaining rows: its k nearest, summed ascending.
    fn score(&self, i: usize, k: usize) -> f64 {
        let stride = self.n - 1;
        if k == 0 {
            return -0.0; // one row left: nothing to compare it with
        }
        // The k-th remaining entry: each removed position at or before it moves it on.
        let mut last = k - 1;
        for &q in &self.removed[i] {
            if q as usize > last {
                break;
            }
            last += 1;
        }
        let mut sum = -0.0f64; // the additive identity, as in `Iterator::sum`
        for &d in &self.dist[i * stride..i * stride + last + 1] {
            sum += d;
        }
        sum
    }

    /// Take row `j` out of every other row's list.
    fn remove(&mut self, j: usize) {
        let (n, stride) = (self.n, self.n - 1);
        self.dist
            .par_chunks_mut(stride.max(1))
            .zip(self.removed.par_iter_mut())
            .enumerate()
            .filter(|(i, _)| *i != j)
            .for_each(|(i, (list, removed))| {
                let q = self.position[i * n + j];
                list[q as usize] = 0.0;
                let at = removed.partition_point(|&r| r < q);
                removed.insert(at, q);
            });
    }
}

/// For every column c < `out.len()` of a sorted tile (`tile[r * STRIDE + c]`
/// = the r-th smallest of `len` values), the mean of the `beta` values
/// closest to the column's median, accumulated in f64 in sorted order.
///
/// Those values are a window `[s, s + beta)` of the sorted column. Growing
/// the window from the middle, one value at a time, taking the lower value
/// when the two candidates are equally far from the median m, ends at the
/// smallest start s ∈ [max(0, mid − β), min(mid, len − β)] with
/// `m − x_s ≤ x_{s+β} − m`, or at the upper end if there is none. That test
/// is monotone in s (false, then true), so s is the lower end plus the
/// number of candidates where it fails: a fixed count of branch-free,
/// column-wise compares instead of β branchy steps per column.
#[inline(always)]
fn window_means(tile: &[f32], out: &mut [f32], len: usize, beta: usize) {
    let w = out.len();
    let mid = len / 2;
    let (s_lo, s_hi) = (mid.saturating_sub(beta), mid.min(len - beta));
    let row = |r: usize| &tile[r * STRIDE..r * STRIDE + w];
    let mut med = [0f64; SUB_TILE];
    let med = &mut med[..w];
    if len % 2 == 1 {
        for (m, &v) in med.iter_mut().zip(row(mid)) {
            *m = f64::from(v);
        }
    } else {
        for ((m, &a), &b) in med.iter_mut().zip(row(mid - 1)).zip(row(mid)) {
            *m = (f64::from(a) + f64::from(b)) * 0.5;
        }
    }
    let mut start = [s_lo as u32; SUB_TILE];
    let start = &mut start[..w];
    for s in s_lo..s_hi {
        for (((st, &m), &lo), &hi) in start
            .iter_mut()
            .zip(med.iter())
            .zip(row(s))
            .zip(row(s + beta))
        {
            *st += u32::from(m - f64::from(lo) > f64::from(hi) - m);
        }
    }
    // -0.0: the additive identity, as in `Iterator::sum`.
    let mut acc = [-0.0f64; SUB_TILE];
    let acc = &mut acc[..w];
    for r in s_lo..s_hi + beta {
        let r32 = r as u32;
        for ((a, &st), &v) in acc.iter_mut().zip(start.iter()).zip(row(r)) {
            let inside = r32 >= st && r32 < st + beta as u32;
            *a = if inside { *a + f64::from(v) } else { *a };
        }
    }
    for (o, &a) in out.iter_mut().zip(acc.iter()) {
        *o = (a / beta as f64) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{matrix, rows};
    use super::*;

    /// The definition: grow the window [lo, hi) from the middle one value at
    /// a time, the lower one first on a tie; sum it in sorted order.
    fn closest_to_median_mean(sorted: impl Fn(usize) -> f32, len: usize, beta: usize) -> f32 {
        let mid = len / 2;
        let med = if len % 2 == 1 {
            f64::from(sorted(mid))
        } else {
            (f64::from(sorted(mid - 1)) + f64::from(sorted(mid))) * 0.5
        };
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

    /// `window_means` on one sorted column.
    fn window_of(v: &[f32], beta: usize) -> f32 {
        let mut tile = vec![0f32; v.len() * STRIDE];
        for (r, &x) in v.iter().enumerate() {
            tile[r * STRIDE] = x;
        }
        let mut out = [0f32];
        window_means(&tile, &mut out, v.len(), beta);
        out[0]
    }

    #[test]
    fn vectorised_window_matches_the_greedy_definition() {
        let data = matrix(40, 70, 7);
        for len in 1..=40usize {
            for beta in 1..=len {
                let mut tile = vec![0f32; len * STRIDE];
                let mut cols = Vec::new();
                for c in 0..70 {
                    // Coarse values force ties and equal distances.
                    let mut v: Vec<f32> = (0..len).map(|r| (data[r][c] * 4.0).round()).collect();
                    v.sort_unstable_by(f32::total_cmp);
                    for (r, &x) in v.iter().enumerate() {
                        tile[r * STRIDE + c % SUB_TILE] = x;
                    }
                    cols.push(v);
                    if c % SUB_TILE == SUB_TILE - 1 || c == 69 {
                        let w = c % SUB_TILE + 1;
                        let mut out = vec![0f32; w];
                        window_means(&tile, &mut out, len, beta);
                        for (o, v) in out.iter().zip(&cols) {
                            let want = closest_to_median_mean(|r| v[r], len, beta);
                            assert_eq!(o.to_bits(), want.to_bits(), "len={len} beta={beta} {v:?}");
                        }
                        cols.clear();
                    }
                }
            }
        }
    }

    #[test]
    fn window_around_the_median() {
        let v = [1.0f32, 2.0, 3.0, 10.0, 11.0];
        assert_eq!(window_of(&v, 1), 3.0);
        assert_eq!(window_of(&v, 3), 2.0);
        assert_eq!(window_of(&v, 5), 5.4);
        let v = [1.0f32, 2.0, 4.0, 5.0];
        // median 3: 2 and 4 tie; the smaller is taken first.
        assert_eq!(window_of(&v, 1), 2.0);
        assert_eq!(window_of(&v, 2), 3.0);
    }

    /// The selection as first written: every candidate's distances re-sorted at
    /// every step (O(θ·n²·log n)).
    fn select_by_resorting(rows: &[&[f32]], f: usize, theta: usize) -> Vec<usize> {
        let n = rows.len();
        let dist = pairwise_sq_distances(rows).unwrap();
        let mut remaining: Vec<usize> = (0..n).collect();
        let mut selected = Vec::new();
        while selected.len() < theta && !remaining.is_empty() {
            let r = remaining.len();
            let k = (r.saturating_sub(f + 2)).max(1).min(r - 1);
            let mut best = (f64::INFINITY, usize::MAX, 0usize);
            for (pos, &i) in remaining.iter().enumerate() {
                let s = crate::strategy::krum::krum_score(&dist, n, i, &remaining, k);
                if s.total_cmp(&best.0).is_lt() || (s == best.0 && i < best.1) {
                    best = (s, i, pos);
                }
            }
            selected.push(best.1);
            remaining.remove(best.2);
        }
        selected.sort_unstable();
        selected
    }

    #[test]
    fn presorted_neighbours_select_exactly_what_resorting_does() {
        for (n, d, seed) in [(7, 3, 1), (19, 5, 2), (40, 16, 3), (63, 8, 4)] {
            let raw = matrix(n, d, seed);
            // Coarse copies force equal distances, so the tie rules are exercised.
            let coarse: Vec<Vec<f32>> = raw
                .iter()
                .map(|r| r.iter().map(|x| (x * 2.0).round()).collect())
                .collect();
            for data in [&raw, &coarse] {
                let rows = rows(data);
                for f in 0..=(n - 3) / 4 {
                    for theta in [2 * f + 1, n - 2 * f, n] {
                        let got = bulyan(&rows, f, theta).unwrap().selected.unwrap();
                        assert_eq!(got, select_by_resorting(&rows, f, theta), "n={n} f={f}");
                    }
                }
            }
        }
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
