//! The sorted-column engine shared by the median, the trimmed mean and Bulyan.
//!
//! The coordinates are cut into tiles of [`TILE`] columns. For each tile the
//! n × w block is copied into a row-major buffer (4 KiB runs of each row, so
//! the copy streams; the buffer stays in L2) and, [`SUB_TILE`] columns at a
//! time (their n rows stay in L1), every column is sorted ascending:
//!
//! * n ≤ [`NETWORK_MAX`]: one Batcher odd–even merge sorting network applied
//!   to whole buffer rows at once, so each compare-exchange is a vectorised
//!   element-wise min/max over w columns;
//! * larger n: each column is gathered, sorted with `sort_unstable_by(total_cmp)`
//!   and scattered back.
//!
//! A reducer then reads the sorted sub-tile (row r = the r-th smallest value
//! of every column) and writes its outputs. Copy, network and reducer are
//! compiled together for the best instruction set (AVX-512F, AVX2, baseline);
//! they give the same bits on each. The work per column does not depend on
//! the thread count, so results are bit-identical.

use super::{all_finite, KernelResult, SawNonFinite};
use rayon::prelude::*;

/// Columns per tile: the unit of parallel work and of the copy from the input
/// rows (4 KiB of each row at a time, so the hardware prefetchers stream it).
pub(crate) const TILE: usize = 1024;

/// Columns per sub-tile: the network and the reducer run on SUB_TILE columns
/// of the copied tile at a time, so that their n rows stay in L1.
pub(crate) const SUB_TILE: usize = 64;

/// Row stride of the tile buffer: TILE plus one cache line, so rows are not
/// 4 KiB apart (which would make loads falsely wait on earlier stores).
pub(crate) const STRIDE: usize = TILE + 16;

/// Largest n sorted with the sorting network.
pub(crate) const NETWORK_MAX: usize = 128;

/// Compare-exchange pairs (i < j) of Batcher's odd–even merge sort for `n`
/// inputs: the network for the next power of two with every comparator that
/// touches a padding index (≥ n) dropped. Padding acts as +∞, which a
/// standard network never moves, so the pruned network still sorts.
pub(crate) fn batcher_pairs(n: usize) -> Vec<(usize, usize)> {
    let size = n.next_power_of_two();
    let mut pairs = Vec::new();
    let mut p = 1;
    while p < size {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < size {
                for i in 0..k.min(size - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) && i + j + k < n {
                        pairs.push((i + j, i + j + k));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    pairs
}

/// Which rows of a column must be right after the network runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// Every row: the column fully sorted.
    Sorted,
    /// These ranks hold exactly the r-th smallest value (other rows: unspecified).
    Ranks(Vec<usize>),
    /// Rows k..n−k hold the n − 2k middle values in some order (for sums).
    Middle { k: usize },
}

/// Comparators of [`batcher_pairs`] that `need` depends on, found backwards:
/// a comparator is dropped when neither output is needed, or when both
/// outputs belong to the middle set of [`Need::Middle`] (it only permutes
/// values inside the set). Inputs of a kept comparator become exactly needed.
pub(crate) fn network(n: usize, need: &Need) -> Vec<(usize, usize)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Wire {
        Free,
        InSet,
        Exact,
    }
    let mut wires = vec![Wire::Free; n];
    match need {
        Need::Sorted => return batcher_pairs(n),
        Need::Ranks(ranks) => ranks
            .iter()
            .filter(|&&r| r < n)
            .for_each(|&r| wires[r] = Wire::Exact),
        Need::Middle { k } => wires
            .iter_mut()
            .skip(*k)
            .take(n.saturating_sub(2 * k))
            .for_each(|w| *w = Wire::InSet),
    }
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for (a, b) in batcher_pairs(n).into_iter().rev() {
        match (wires[a], wires[b]) {
            (Wire::Free, Wire::Free) | (Wire::InSet, Wire::InSet) => {}
            _ => {
                kept.push((a, b));
                wires[a] = Wire::Exact;
                wires[b] = Wire::Exact;
            }
        }
    }
    kept.reverse();
    kept
}

/// Compare-exchange of buffer rows `a < b` (`w` wide): min to `a`, max to `b`.
#[inline(always)]
fn compare_exchange<const LANES: usize>(tile: &mut [f32], w: usize, a: usize, b: usize) {
    let (lo, hi) = tile.split_at_mut(b * STRIDE);
    let ra = &mut lo[a * STRIDE..a * STRIDE + w];
    let rb = &mut hi[..w];
    // Fixed-width blocks so the select pattern becomes packed min/max
    // (inputs are known finite, so `<` picks a correct min and max).
    let mut xs = ra.chunks_exact_mut(LANES);
    let mut ys = rb.chunks_exact_mut(LANES);
    for (x, y) in (&mut xs).zip(&mut ys) {
        let mut lo = [0f32; LANES];
        let mut hi = [0f32; LANES];
        for k in 0..LANES {
            let (p, q) = (x[k], y[k]);
            lo[k] = if p < q { p } else { q };
            hi[k] = if p < q { q } else { p };
        }
        x.copy_from_slice(&lo);
        y.copy_from_slice(&hi);
    }
    for (x, y) in xs.into_remainder().iter_mut().zip(ys.into_remainder()) {
        let (p, q) = (*x, *y);
        *x = if p < q { p } else { q };
        *y = if p < q { q } else { p };
    }
}

/// Runs the comparator network (n ≤ [`NETWORK_MAX`]) or sorts every column
/// (larger n) over the first `w` columns of the `n × STRIDE` buffer.
#[inline(always)]
fn sort_columns<const LANES: usize>(
    tile: &mut [f32],
    n: usize,
    w: usize,
    pairs: &[(usize, usize)],
    col: &mut [f32],
) {
    if n <= NETWORK_MAX {
        for &(a, b) in pairs {
            compare_exchange::<LANES>(tile, w, a, b);
        }
    } else {
        for c in 0..w {
            for (r, v) in col.iter_mut().enumerate() {
                *v = tile[r * STRIDE + c];
            }
            col.sort_unstable_by(f32::total_cmp);
            for (r, v) in col.iter().enumerate() {
                tile[r * STRIDE + c] = *v;
            }
        }
    }
}

/// One tile: copy the `out.len()` columns from `j0` of every row into the
/// buffer, check them, sort them (see [`Need`]) and reduce. `false` if a
/// value is non-finite (then nothing is reduced).
#[inline(always)]
fn process_tile<const LANES: usize, F: Fn(&[f32], &mut [f32])>(
    rows: &[&[f32]],
    j0: usize,
    pairs: &[(usize, usize)],
    buf: &mut [f32],
    col: &mut [f32],
    out: &mut [f32],
    reduce: &F,
) -> bool {
    let w = out.len();
    let mut finite = true;
    for (dst, row) in buf.chunks_exact_mut(STRIDE).zip(rows) {
        let src = &row[j0..j0 + w];
        finite &= all_finite(src);
        dst[..w].copy_from_slice(src);
    }
    if finite {
        // The network and the reducer walk the copied tile in sub-tiles of
        // SUB_TILE columns, whose n rows stay in L1 (the whole tile: in L2).
        for (s, out) in out.chunks_mut(SUB_TILE).enumerate() {
            let sub = &mut buf[s * SUB_TILE..];
            sort_columns::<LANES>(sub, rows.len(), out.len(), pairs, col);
            reduce(sub, out);
        }
    }
    finite
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn process_tile_avx2<F: Fn(&[f32], &mut [f32])>(
    rows: &[&[f32]],
    j0: usize,
    pairs: &[(usize, usize)],
    buf: &mut [f32],
    col: &mut [f32],
    out: &mut [f32],
    reduce: &F,
) -> bool {
    process_tile::<8, F>(rows, j0, pairs, buf, col, out, reduce)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
/// # Safety
/// The CPU must support AVX-512F.
unsafe fn process_tile_avx512<F: Fn(&[f32], &mut [f32])>(
    rows: &[&[f32]],
    j0: usize,
    pairs: &[(usize, usize)],
    buf: &mut [f32],
    col: &mut [f32],
    out: &mut [f32],
    reduce: &F,
) -> bool {
    process_tile::<16, F>(rows, j0, pairs, buf, col, out, reduce)
}

/// [`process_tile`] compiled for the best available instruction set, the
/// copy, the network and the reducer alike. Min/max are exact and the
/// reducers fix their operation order, so every path gives the same bits.
fn process_tile_dispatch<F: Fn(&[f32], &mut [f32])>(
    rows: &[&[f32]],
    j0: usize,
    pairs: &[(usize, usize)],
    buf: &mut [f32],
    col: &mut [f32],
    out: &mut [f32],
    reduce: &F,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { process_tile_avx512(rows, j0, pairs, buf, col, out, reduce) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { process_tile_avx2(rows, j0, pairs, buf, col, out, reduce) };
        }
    }
    process_tile::<8, F>(rows, j0, pairs, buf, col, out, reduce)
}

/// Runs `reduce(sorted_tile, out_tile)` for every sub-tile of the columns of
/// `rows`, where `out_tile` holds the sub-tile's w ≤ [`SUB_TILE`] outputs and `sorted_tile` is
/// row-major with row stride [`STRIDE`]: `sorted_tile[r * STRIDE + c]` is the
/// r-th smallest value of the tile's column c (c < w) for the rows that
/// `need` asks for (see [`Need`]).
///
/// Fails (output unspecified) if any input value is NaN/±Inf.
pub(crate) fn reduce_sorted_columns(
    rows: &[&[f32]],
    need: &Need,
    out: &mut [f32],
    reduce: impl Fn(&[f32], &mut [f32]) + Sync,
) -> KernelResult<()> {
    let n = rows.len();
    let pairs = if n <= NETWORK_MAX {
        network(n, need)
    } else {
        Vec::new()
    };
    let finite = out
        .par_chunks_mut(TILE)
        .enumerate()
        .map_init(
            || (vec![0f32; n * STRIDE], vec![0f32; n]),
            |(buf, col), (t, out)| {
                process_tile_dispatch(rows, t * TILE, &pairs, buf, col, out, &reduce)
            },
        )
        .reduce(|| true, |a, b| a & b);
    finite.then_some(()).ok_or(SawNonFinite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_sorts_all_binary_inputs() {
        // 0-1 principle: a comparator network sorts everything iff it sorts 0/1 inputs.
        for n in 1..=14usize {
            let pairs = batcher_pairs(n);
            for bits in 0u32..(1 << n) {
                let mut v: Vec<u32> = (0..n).map(|i| (bits >> i) & 1).collect();
                for &(a, b) in &pairs {
                    assert!(a < b && b < n);
                    if v[a] > v[b] {
                        v.swap(a, b);
                    }
                }
                assert!(v.windows(2).all(|p| p[0] <= p[1]), "n={n} bits={bits:b}");
            }
        }
    }

    #[test]
    fn pruned_networks_keep_what_is_needed() {
        // 0-1 principle per needed rank / per middle-set count.
        for n in 1..=14usize {
            let mid = n / 2;
            let ranks = if n % 2 == 1 {
                vec![mid]
            } else {
                vec![mid - 1, mid]
            };
            let k = n / 4;
            let rank_net = network(n, &Need::Ranks(ranks.clone()));
            let mid_net = network(n, &Need::Middle { k });
            assert!(rank_net.len() <= batcher_pairs(n).len());
            for bits in 0u32..(1 << n) {
                let input: Vec<u32> = (0..n).map(|i| (bits >> i) & 1).collect();
                let mut sorted = input.clone();
                sorted.sort_unstable();
                let run = |net: &[(usize, usize)]| {
                    let mut v = input.clone();
                    for &(a, b) in net {
                        if v[a] > v[b] {
                            v.swap(a, b);
                        }
                    }
                    v
                };
                let v = run(&rank_net);
                for &r in &ranks {
                    assert_eq!(v[r], sorted[r], "n={n} bits={bits:b}");
                }
                let v = run(&mid_net);
                let ones: u32 = v[k..n - k].iter().sum();
                assert_eq!(ones, sorted[k..n - k].iter().sum::<u32>(), "n={n} k={k}");
            }
        }
        assert!(network(50, &Need::Ranks(vec![24, 25])).len() < batcher_pairs(50).len());
    }

    #[test]
    fn engine_sorts_columns_for_network_and_fallback_sizes() {
        for &n in &[1usize, 2, 3, 50, 127, 128, 129, 200] {
            let d = TILE + 7;
            let data = super::super::test_util::matrix(n, d, n as u64);
            let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
            let mut out = vec![0f32; d];
            // Output the column minimum and check it, plus sortedness via max.
            reduce_sorted_columns(&rows, &Need::Sorted, &mut out, |tile, out| {
                for c in 0..out.len() {
                    for r in 1..n {
                        assert!(tile[(r - 1) * STRIDE + c] <= tile[r * STRIDE + c]);
                    }
                    out[c] = tile[c];
                }
            })
            .unwrap();
            for (j, o) in out.iter().enumerate() {
                let min = data.iter().map(|r| r[j]).fold(f32::INFINITY, f32::min);
                assert_eq!(*o, min);
            }
        }
    }
}
