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

/// f32 lanes of the fast kernel.
const LANES: usize = 16;
/// Terms per lane summed in f32 before they are added to the f64 lanes.
const RUN_TERMS: usize = 4;
/// Coordinates per f32 run: RUN_TERMS terms per lane are summed in f32, then the run
/// is added to the f64 lanes.
const RUN: usize = RUN_TERMS * LANES;

/// Σ_k (a_p,k − b_q,k)² for every pair of a `TI × TJ` register tile of rows:
/// the difference, square and runs of [`RUN`] coordinates in f32 (16 lanes,
/// [`RUN_TERMS`] terms per lane per run), each run then added to f64 lanes; the last
/// `len % RUN` coordinates in f64; the lanes reduced by a fixed tree.
///
/// Each pair's operations and their order do not depend on the tile shape or on the
/// other rows of the tile, so a pair gives the same bits in any tile (1 × 1
/// is the plain two-row kernel). Loading each row once per tile instead of
/// once per pair cuts the cache traffic (TI·TJ pairs from TI + TJ rows; the
/// f32 runs and f64 lanes of a 4 × 2 tile fit AVX-512's 32 registers). Fast; may overflow to +∞
/// for |a_k − b_k| ≳ 1.8e19, which the caller detects and redoes with
/// [`sq_dist_wide`].
#[inline(always)]
fn tile_sq_dist<const TI: usize, const TJ: usize>(
    a: [&[f32]; TI],
    b: [&[f32]; TJ],
) -> [[f64; TJ]; TI] {
    let len = a[0].len();
    let full = len - len % RUN;
    let mut acc = [[[0f64; LANES]; TJ]; TI];
    for base in (0..full).step_by(RUN) {
        let mut run = [[[0f32; LANES]; TJ]; TI];
        for r in 0..RUN_TERMS {
            let at = base + r * LANES;
            let xa: [[f32; LANES]; TI] =
                std::array::from_fn(|p| a[p][at..at + LANES].try_into().expect("LANES values"));
            let xb: [[f32; LANES]; TJ] =
                std::array::from_fn(|q| b[q][at..at + LANES].try_into().expect("LANES values"));
            for p in 0..TI {
                for q in 0..TJ {
                    for k in 0..LANES {
                        let t = xa[p][k] - xb[q][k];
                        run[p][q][k] += t * t;
                    }
                }
            }
        }
        for p in 0..TI {
            for q in 0..TJ {
                for k in 0..LANES {
                    acc[p][q][k] += f64::from(run[p][q][k]);
                }
            }
        }
    }
    std::array::from_fn(|p| {
        std::array::from_fn(|q| {
            let mut tail = 0f64;
            for (x, y) in a[p][full..].iter().zip(&b[q][full..]) {
                let t = f64::from(*x) - f64::from(*y);
                tail += t * t;
            }
            let lanes = &acc[p][q];
            let mut half = [0f64; 8];
            for k in 0..8 {
                half[k] = lanes[k] + lanes[k + 8];
            }
            ((half[0] + half[4]) + (half[1] + half[5]))
                + ((half[2] + half[6]) + (half[3] + half[7]))
                + tail
        })
    })
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

/// Upper-triangle partial sums of one chunk, blocked for cache reuse: per
/// block of [`BLOCK`] coordinates, `TI × TJ` tiles of row pairs (rows past n
/// repeat row n − 1 and are dropped, as are pairs on or below the diagonal).
/// Every pair i < j is summed exactly once.
#[inline(always)]
fn chunk_pairwise<const TI: usize, const TJ: usize>(
    rows: &[&[f32]],
    range: std::ops::Range<usize>,
    wide: bool,
) -> Vec<f64> {
    let n = rows.len();
    let mut partial = vec![0f64; n * n];
    let mut start = range.start;
    while start < range.end {
        let end = (start + BLOCK).min(range.end);
        if wide {
            for i in 0..n {
                let a = &rows[i][start..end];
                for j in i + 1..n {
                    partial[i * n + j] += sq_dist_wide(a, &rows[j][start..end]);
                }
            }
        } else {
            let block = |i: usize| &rows[i.min(n - 1)][start..end];
            for i0 in (0..n).step_by(TI) {
                // j tiles are aligned to TJ; the first one may hold rows ≤ i0 (dropped).
                for j0 in (i0 / TJ * TJ..n).step_by(TJ) {
                    let a: [&[f32]; TI] = std::array::from_fn(|p| block(i0 + p));
                    let b: [&[f32]; TJ] = std::array::from_fn(|q| block(j0 + q));
                    let tile = tile_sq_dist(a, b);
                    for (p, row) in tile.iter().enumerate() {
                        for (q, d) in row.iter().enumerate() {
                            let (i, j) = (i0 + p, j0 + q);
                            if i < j && j < n {
                                partial[i * n + j] += d;
                            }
                        }
                    }
                }
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
    chunk_pairwise::<1, 2>(rows, range, wide)
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
    chunk_pairwise::<4, 2>(rows, range, wide)
}

/// [`chunk_pairwise`] compiled for the best available instruction set, with
/// the tile its registers hold (4 × 2 pairs with AVX-512, 1 × 2 with AVX2). The lanes and their order are fixed in the source (no
/// reassociation, no FMA contraction) and a pair's sum does not depend on the
/// tile, so every path gives the same bits.
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
    chunk_pairwise::<1, 1>(rows, range, wide)
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
    let finite = dist.iter().all(|v| v.is_finite());
    finite.then_some(dist).ok_or(SawNonFinite)
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
    let finite = dist.iter().all(|v| v.is_finite());
    finite.then_some(dist).ok_or(SawNonFinite)
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
    fn every_tile_shape_gives_the_same_bits() {
        for n in [2usize, 3, 5, 7, 9, 12] {
            let data = matrix(n, BLOCK + RUN + 37, n as u64);
            let r = rows(&data);
            let range = 0..BLOCK + RUN + 37;
            let plain = chunk_pairwise::<1, 1>(&r, range.clone(), false);
            assert_eq!(
                plain,
                chunk_pairwise::<1, 2>(&r, range.clone(), false),
                "n={n}"
            );
            assert_eq!(
                plain,
                chunk_pairwise::<4, 2>(&r, range.clone(), false),
                "n={n}"
            );
            assert_eq!(
                plain,
                chunk_pairwise::<2, 4>(&r, range.clone(), false),
                "n={n}"
            );
            for i in 0..n {
                for j in 0..n {
                    assert_eq!(plain[i * n + j] > 0.0, i < j, "n={n}: each pair i < j once");
                }
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
