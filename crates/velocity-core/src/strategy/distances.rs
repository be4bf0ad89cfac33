//! Deterministic distance kernels.
//!
//! Distances are sums of squared differences (no Gram-matrix shortcut, so no
//! cancellation) per fixed [`CHUNK`] of coordinates, in fixed lanes; chunk
//! partials are summed in f64 in chunk order, so results do not depend on the
//! thread count.

use super::{KernelResult, SawNonFinite};
use crate::parallel::{chunk_range, num_chunks, CHUNK};
use rayon::prelude::*;

/// Coordinates per cache block inside a chunk for the pairwise kernel
/// (n rows × BLOCK f32 stay in L1/L2 while every pair is visited).
const BLOCK: usize = 1024;

/// Σ_k (a_k − b_k)² with the difference, square and short runs of the sum in
/// f32 (16 lanes, 4 terms per lane per run), each run then added to f64
/// lanes. Fast; may overflow to +∞ for |a_k − b_k| ≳ 1.8e19, which the
/// caller detects and redoes with [`sq_dist_wide`].
#[inline(always)]
fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    const LANES: usize = 16;
    const RUN: usize = 4 * LANES;
    let mut acc = [0f64; LANES];
    let (ca, cb) = (a.chunks_exact(RUN), b.chunks_exact(RUN));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let mut run = [0f32; LANES];
        for r in 0..4 {
            for k in 0..LANES {
                let t = x[r * LANES + k] - y[r * LANES + k];
                run[k] += t * t;
            }
        }
        for k in 0..LANES {
            acc[k] += f64::from(run[k]);
        }
    }
    let mut tail = 0f64;
    for (x, y) in ra.iter().zip(rb) {
        let t = f64::from(*x) - f64::from(*y);
        tail += t * t;
    }
    let mut half = [0f64; 8];
    for k in 0..8 {
        half[k] = acc[k] + acc[k + 8];
    }
    ((half[0] + half[4]) + (half[1] + half[5])) + ((half[2] + half[6]) + (half[3] + half[7])) + tail
}

/// Σ_k (a_k − b_k)² entirely in f64: exact squares, no overflow for finite f32.
#[inline(always)]
fn sq_dist_wide(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            let t = f64::from(x[k]) - f64::from(y[k]);
            acc[k] += t * t;
        }
    }
    let mut tail = 0f64;
    for (x, y) in ra.iter().zip(rb) {
        let t = f64::from(*x) - f64::from(*y);
        tail += t * t;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Upper-triangle partial sums of one chunk, blocked for cache reuse.
#[inline(always)]
fn chunk_pairwise(rows: &[&[f32]], range: std::ops::Range<usize>, wide: bool) -> Vec<f64> {
    let n = rows.len();
    let mut partial = vec![0f64; n * n];
    let mut start = range.start;
    while start < range.end {
        let end = (start + BLOCK).min(range.end);
        for i in 0..n {
            let a = &rows[i][start..end];
            for j in i + 1..n {
                let b = &rows[j][start..end];
                partial[i * n + j] += if wide {
                    sq_dist_wide(a, b)
                } else {
                    sq_dist(a, b)
                };
            }
        }
        start = end;
    }
    partial
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn chunk_pairwise_avx2(
    rows: &[&[f32]],
    range: std::ops::Range<usize>,
    wide: bool,
) -> Vec<f64> {
    chunk_pairwise(rows, range, wide)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
/// # Safety
/// The CPU must support AVX-512F.
unsafe fn chunk_pairwise_avx512(
    rows: &[&[f32]],
    range: std::ops::Range<usize>,
    wide: bool,
) -> Vec<f64> {
    chunk_pairwise(rows, range, wide)
}

/// [`chunk_pairwise`] compiled for the best available instruction set. The
/// lanes and their order are fixed in the source (no reassociation, no FMA
/// contraction), so every path gives the same bits.
fn chunk_pairwise_dispatch(rows: &[&[f32]], range: std::ops::Range<usize>, wide: bool) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { chunk_pairwise_avx512(rows, range, wide) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { chunk_pairwise_avx2(rows, range, wide) };
        }
    }
    chunk_pairwise(rows, range, wide)
}

/// The full symmetric n × n matrix of squared Euclidean distances
/// `D[i·n + j] = ‖x_i − x_j‖²` (zero diagonal), computed once.
///
/// The fast kernel squares in f32 (relative error ~1e-7); if that overflows
/// on finite input (differences ≳ 1.8e19) the matrix is recomputed entirely
/// in f64. Fails iff a row holds NaN/±Inf (for n ≥ 2).
pub(crate) fn pairwise_sq_distances(rows: &[&[f32]]) -> KernelResult<Vec<f64>> {
    let dist = pairwise_with(rows, false);
    if dist.iter().all(|v| v.is_finite()) {
        return Ok(dist);
    }
    if !rows.par_iter().all(|r| super::all_finite(r)) {
        return Err(SawNonFinite);
    }
    let dist = pairwise_with(rows, true);
    if dist.iter().all(|v| v.is_finite()) {
        Ok(dist)
    } else {
        Err(SawNonFinite)
    }
}

fn pairwise_with(rows: &[&[f32]], wide: bool) -> Vec<f64> {
    let n = rows.len();
    let d = rows[0].len();
    let partials: Vec<Vec<f64>> = (0..num_chunks(d))
        .into_par_iter()
        .map(|c| chunk_pairwise_dispatch(rows, chunk_range(c, d), wide))
        .collect();
    let mut dist = vec![0f64; n * n];
    for partial in &partials {
        for (t, p) in dist.iter_mut().zip(partial) {
            *t += p;
        }
    }
    for i in 0..n {
        for j in 0..i {
            dist[i * n + j] = dist[j * n + i];
        }
    }
    dist
}

/// Euclidean distances ‖x_i − z‖ from every row to the point `z` (f64).
///
/// Fails if a distance is non-finite (with finite `z`: a row holds NaN/±Inf).
pub(crate) fn distances_to(rows: &[&[f32]], z: &[f64]) -> KernelResult<Vec<f64>> {
    let n = rows.len();
    let d = z.len();
    let partials: Vec<Vec<f64>> = (0..num_chunks(d))
        .into_par_iter()
        .map(|c| {
            let range = chunk_range(c, d);
            let zc = &z[range.clone()];
            rows.iter()
                .map(|row| {
                    let mut acc = [0f64; 4];
                    let x = &row[range.clone()];
                    let (cx, cz) = (x.chunks_exact(4), zc.chunks_exact(4));
                    let (rx, rz) = (cx.remainder(), cz.remainder());
                    for (a, b) in cx.zip(cz) {
                        for k in 0..4 {
                            let t = f64::from(a[k]) - b[k];
                            acc[k] += t * t;
                        }
                    }
                    let tail: f64 = rx
                        .iter()
                        .zip(rz)
                        .map(|(a, b)| (f64::from(*a) - b).powi(2))
                        .sum();
                    (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
                })
                .collect()
        })
        .collect();
    let mut sq = vec![0f64; n];
    for partial in &partials {
        for (t, p) in sq.iter_mut().zip(partial) {
            *t += p;
        }
    }
    let dist: Vec<f64> = sq.into_iter().map(f64::sqrt).collect();
    if dist.iter().all(|v| v.is_finite()) {
        Ok(dist)
    } else {
        Err(SawNonFinite)
    }
}

// Keep CHUNK a multiple of BLOCK so blocks never straddle chunks unevenly.
const _: () = assert!(CHUNK % BLOCK == 0);

#[cfg(test)]
mod tests {
    use super::super::test_util::{matrix, rows};
    use super::*;

    #[test]
    fn pairwise_matches_naive() {
        let data = matrix(6, CHUNK + 37, 11);
        let r = rows(&data);
        let dist = pairwise_sq_distances(&r).unwrap();
        for i in 0..6 {
            for j in 0..6 {
                let naive: f64 = data[i]
                    .iter()
                    .zip(&data[j])
                    .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                    .sum();
                assert!((dist[i * 6 + j] - naive).abs() <= 1e-6 * naive.max(1.0));
            }
        }
    }

    #[test]
    fn hand_computed_distances() {
        let data = vec![vec![0.0, 0.0], vec![3.0, 4.0], vec![0.0, 1.0]];
        let dist = pairwise_sq_distances(&rows(&data)).unwrap();
        assert_eq!(dist, vec![0.0, 25.0, 1.0, 25.0, 0.0, 18.0, 1.0, 18.0, 0.0]);
        let to = distances_to(&rows(&data), &[0.0, 0.0]).unwrap();
        assert_eq!(to, vec![0.0, 5.0, 1.0]);
    }

    #[test]
    fn huge_finite_values_do_not_overflow() {
        let data = vec![
            vec![f32::MAX, -f32::MAX],
            vec![-f32::MAX, f32::MAX],
            vec![1e20, 0.0],
        ];
        let dist = pairwise_sq_distances(&rows(&data)).unwrap();
        let m = f64::from(f32::MAX);
        assert_eq!(dist[1], 2.0 * (2.0 * m).powi(2));
        assert_eq!(dist[2 * 3], (m - 1e20f32 as f64).powi(2) + m * m);
    }
}
