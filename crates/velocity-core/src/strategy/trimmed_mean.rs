//! TrimmedMean: the coordinate-wise β-trimmed mean.
//!
//! Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates
//! [Yin et al., 2018]. Paper: <https://arxiv.org/abs/1803.01498>

use super::columns::{reduce_sorted_columns, Need, STRIDE, SUB_TILE, TILE};
use super::{Aggregate, Inputs, KernelResult, SawNonFinite, Strategy, StrategySpec, Tolerance};
use crate::schema::ParamSpec;
use rayon::prelude::*;

/// TrimmedMean's registry entry.
pub(super) const SPEC: StrategySpec = StrategySpec::new(
    "TrimmedMean",
    "Coordinate-wise trimmed mean: drop the beta fraction at each tail, average the rest.",
    "Yin et al. 2018, https://arxiv.org/abs/1803.01498",
    run,
)
.params(&[ParamSpec::float(
    "beta",
    0.1,
    "fraction of values dropped at each tail per coordinate",
)
.min(0.0, true)
.max(0.5, false)])
.aliases(&["TrMean", "FedTrimmedAvg", "TrimmedAvg"]) // ByzFL, Flower
.param_hints(&[("f", "beta"), ("trim", "beta"), ("trim_ratio", "beta")])
.tolerance(Tolerance::Fraction("beta"));

fn run(s: &Strategy, input: &Inputs<'_>) -> KernelResult<Aggregate> {
    let k = trim_count(s.float("beta"), input.rows.len());
    trimmed_mean(input.rows, k).map(Aggregate::plain)
}

/// k = ⌊β·n⌋ values trimmed at each tail.
fn trim_count(beta: f64, n: usize) -> usize {
    ((beta * n as f64).floor() as usize).min(n.saturating_sub(1) / 2)
}

/// Largest k any [`column_block`] kernel is compiled for (see [`stream_k_max`]).
pub(crate) const STREAM_K_MAX: usize = 12;

/// Largest k trimmed by [`column_block`] on this CPU; larger k uses the sorting
/// network. Measured crossovers (n = 30–100, d = 10⁶): with AVX-512's 32
/// vector registers the streaming pass is faster up to k ≈ 12 (2× at k = 5)
/// and even with the network at k = 14–16; with AVX2's 16 it is faster up to
/// k = 8 (2.3× at k = 4) and slower from k = 12 on, where its tails spill.
fn stream_k_max() -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return STREAM_K_MAX;
    }
    8
}

/// The coordinate-wise trimmed mean (unweighted).
///
/// ```text
/// k     = ⌊β · n⌋
/// out_j = 1/(n − 2k) · Σ_{r = k+1}^{n−k} x_(r),j
/// ```
/// where n is the number of rows, β ∈ [0, 0.5) the trimmed fraction per tail
/// and x_(r),j the r-th smallest value of coordinate j: the k smallest and k
/// largest values of each coordinate are dropped and the remaining n − 2k
/// averaged (f64 accumulation, f32 output).
///
/// k ≤ [`stream_k_max`] selects the tails in registers in one pass over the
/// rows (see [`column_block`]); larger k sorts the columns' middle with the
/// pruned sorting network. Either way the operation order per column is fixed,
/// so the result does not depend on the thread count or instruction set.
///
/// Preconditions: n − 2k ≥ 1 (always true for β < 0.5; `k` is passed in).
/// Non-finite input: rejected.
pub(crate) fn trimmed_mean(rows: &[&[f32]], k: usize) -> KernelResult<Vec<f32>> {
    let n = rows.len();
    let kept = (n - 2 * k) as f64;
    let mut out = vec![0f32; rows[0].len()];
    if k <= stream_k_max() {
        streaming_trimmed_mean(rows, k, &mut out)?;
    } else {
        reduce_sorted_columns(rows, &Need::Middle { k }, &mut out, |tile, out| {
            let mut acc = [0f64; SUB_TILE];
            let acc = &mut acc[..out.len()];
            for r in k..n - k {
                for (a, &v) in acc.iter_mut().zip(&tile[r * STRIDE..]) {
                    *a += f64::from(v);
                }
            }
            for (o, a) in out.iter_mut().zip(acc.iter()) {
                *o = (a / kept) as f32;
            }
        })?;
    }
    Ok(out)
}

/// Writes the trimmed means of the `out.len()` columns from `j0`; `false` if
/// one of their input values is non-finite.
type TileKernel = fn(&[&[f32]], usize, &mut [f32], f64) -> bool;

/// Lane-wise (min, max) of `a` and `b`, by `<` (the inputs are finite, so
/// this is exact and compiles to packed min/max).
#[inline(always)]
fn min_max<const LANES: usize>(a: [f32; LANES], b: [f32; LANES]) -> ([f32; LANES], [f32; LANES]) {
    let mut lo = [0f32; LANES];
    let mut hi = [0f32; LANES];
    for l in 0..LANES {
        lo[l] = if a[l] < b[l] { a[l] } else { b[l] };
        hi[l] = if a[l] < b[l] { b[l] } else { a[l] };
    }
    (lo, hi)
}

/// Inserts `x` into the ascending `lo`, returning its largest value (`x`
/// itself if it is the largest).
#[inline(always)]
fn push_pop_max<const LANES: usize, const K: usize>(
    lo: &mut [[f32; LANES]; K],
    mut x: [f32; LANES],
) -> [f32; LANES] {
    for slot in lo.iter_mut() {
        (*slot, x) = min_max(*slot, x);
    }
    x
}

/// Inserts `x` into the ascending `hi`, returning its smallest value.
#[inline(always)]
fn push_pop_min<const LANES: usize, const K: usize>(
    hi: &mut [[f32; LANES]; K],
    mut x: [f32; LANES],
) -> [f32; LANES] {
    for slot in hi.iter_mut().rev() {
        (x, *slot) = min_max(*slot, x);
    }
    x
}

/// Floats ahead of the current column at which each row is prefetched.
const PREFETCH_AHEAD: usize = 64;

/// Trimmed means of the `LANES` columns `j` .. `j + LANES` in one pass over
/// the n rows, with the k = `K` smallest (`lo`) and largest (`hi`) values in
/// registers, both ascending:
///
/// * rows 0..K fill `lo` (its +∞ placeholders are pushed out);
/// * rows K..2K: each row enters `lo`, and what `lo` pushes out (its largest)
///   fills `hi` the same way, so `hi` ends with the K largest of the 2K;
/// * every later row x enters `lo`; `lo`'s largest e₁ enters `hi`; `hi`'s
///   smallest e₂ is a middle value (everything in `lo` ≤ e₂ ≤ everything in
///   `hi`) and is added, exactly, to the f64 sum.
///
/// So the sum holds exactly the n − 2K middle values, added in the order they
/// leave `hi` — the same for every lane width. Returns `false` if an input is
/// non-finite (`x − x` is 0 for finite x, NaN otherwise).
#[inline(always)]
fn column_block<const LANES: usize, const K: usize>(
    rows: &[&[f32]],
    j: usize,
    out: &mut [f32],
    kept: f64,
) -> bool {
    let mut check = [0f32; LANES];
    let mut row = |r: usize| -> [f32; LANES] {
        let x: [f32; LANES] = rows[r][j..j + LANES].try_into().expect("LANES values");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetching is a hint that never faults; the address is
        // formed with wrapping arithmetic and never dereferenced.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(rows[r].as_ptr().wrapping_add(j + PREFETCH_AHEAD).cast());
        }
        for l in 0..LANES {
            #[expect(clippy::eq_op, reason = "x − x is NaN exactly when x is NaN or ±Inf")]
            {
                check[l] += x[l] - x[l];
            }
        }
        x
    };
    let n = rows.len();
    let mut lo = [[f32::INFINITY; LANES]; K];
    let mut hi = [[f32::INFINITY; LANES]; K];
    for r in 0..K {
        push_pop_max(&mut lo, row(r));
    }
    for r in K..2 * K {
        let e1 = push_pop_max(&mut lo, row(r));
        push_pop_max(&mut hi, e1);
    }
    let mut acc = [0f64; LANES];
    for r in 2 * K..n {
        let e1 = push_pop_max(&mut lo, row(r));
        let e2 = push_pop_min(&mut hi, e1);
        for l in 0..LANES {
            acc[l] += f64::from(e2[l]);
        }
    }
    for l in 0..LANES {
        out[l] = (acc[l] / kept) as f32;
    }
    check.iter().all(|c| *c == 0.0)
}

/// [`column_block`] over the columns of `out` from `j0`: `LANES` at a time,
/// then the remainder one column at a time (the same per-column operations).
#[inline(always)]
fn tile<const LANES: usize, const K: usize>(
    rows: &[&[f32]],
    j0: usize,
    out: &mut [f32],
    kept: f64,
) -> bool {
    let mut finite = true;
    let j_rest = j0 + out.len() / LANES * LANES;
    let mut blocks = out.chunks_exact_mut(LANES);
    for (b, out) in (&mut blocks).enumerate() {
        finite &= column_block::<LANES, K>(rows, j0 + b * LANES, out, kept);
    }
    let rest = blocks.into_remainder();
    for (c, out) in rest.chunks_exact_mut(1).enumerate() {
        finite &= column_block::<1, K>(rows, j_rest + c, out, kept);
    }
    finite
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
/// # Safety
/// The CPU must support AVX-512F.
unsafe fn tile_avx512<const K: usize>(
    rows: &[&[f32]],
    j0: usize,
    out: &mut [f32],
    kept: f64,
) -> bool {
    tile::<16, K>(rows, j0, out, kept)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn tile_avx2<const K: usize>(
    rows: &[&[f32]],
    j0: usize,
    out: &mut [f32],
    kept: f64,
) -> bool {
    tile::<8, K>(rows, j0, out, kept)
}

/// [`tile`] for `K` compiled for the best available instruction set.
fn tile_dispatch<const K: usize>(rows: &[&[f32]], j0: usize, out: &mut [f32], kept: f64) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { tile_avx512::<K>(rows, j0, out, kept) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { tile_avx2::<K>(rows, j0, out, kept) };
        }
    }
    tile::<4, K>(rows, j0, out, kept)
}

/// The streaming kernel for trimming `k` ≤ [`STREAM_K_MAX`] values per tail
/// (k is a compile-time constant in each, so the tails stay in registers).
fn streaming_kernel(k: usize) -> TileKernel {
    match k {
        0 => tile_dispatch::<0>,
        1 => tile_dispatch::<1>,
        2 => tile_dispatch::<2>,
        3 => tile_dispatch::<3>,
        4 => tile_dispatch::<4>,
        5 => tile_dispatch::<5>,
        6 => tile_dispatch::<6>,
        7 => tile_dispatch::<7>,
        8 => tile_dispatch::<8>,
        9 => tile_dispatch::<9>,
        10 => tile_dispatch::<10>,
        11 => tile_dispatch::<11>,
        12 => tile_dispatch::<12>,
        _ => unreachable!("k ≤ STREAM_K_MAX is checked by the caller"),
    }
}

/// [`trimmed_mean`] for k ≤ [`STREAM_K_MAX`]: tiles of [`TILE`] columns in
/// parallel, each column's result independent of the split.
fn streaming_trimmed_mean(rows: &[&[f32]], k: usize, out: &mut [f32]) -> KernelResult<()> {
    let kernel = streaming_kernel(k);
    let kept = (rows.len() - 2 * k) as f64;
    let finite = out
        .par_chunks_mut(TILE)
        .enumerate()
        .map(|(t, out)| kernel(rows, t * TILE, out, kept))
        .reduce(|| true, |a, b| a & b);
    finite.then_some(()).ok_or(SawNonFinite)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{matrix, rows};
    use super::*;

    #[test]
    fn trim_count_is_floor_of_beta_n() {
        assert_eq!(trim_count(0.2, 10), 2);
        assert_eq!(trim_count(0.29, 10), 2);
        assert_eq!(trim_count(0.0, 10), 0);
        assert_eq!(trim_count(0.49, 2), 0);
        assert_eq!(trim_count(0.49, 1), 0);
    }

    #[test]
    fn trims_k_per_tail() {
        let data = vec![
            vec![1.0, 10.0],
            vec![100.0, 20.0],
            vec![2.0, -50.0],
            vec![3.0, 30.0],
            vec![-100.0, 40.0],
        ];
        assert_eq!(trimmed_mean(&rows(&data), 1).unwrap(), vec![2.0, 20.0]);
        assert_eq!(trimmed_mean(&rows(&data), 2).unwrap(), vec![2.0, 20.0]);
        assert_eq!(trimmed_mean(&rows(&data), 0).unwrap(), vec![1.2, 10.0]);
    }

    #[test]
    fn streaming_and_network_paths_agree_with_a_sort() {
        // Both sides of STREAM_K_MAX, widths with a remainder, repeated values.
        for &(n, d) in &[(3usize, 5usize), (17, 1031), (50, 2100), (40, 77)] {
            let mut data = matrix(n, d, (n * d) as u64);
            for row in data.iter_mut().step_by(3) {
                row[1] = 0.5; // ties in column 1
            }
            for k in 0..=((n - 1) / 2).min(STREAM_K_MAX + 3) {
                let got = trimmed_mean(&rows(&data), k).unwrap();
                for (j, g) in got.iter().enumerate() {
                    let mut col: Vec<f32> = data.iter().map(|r| r[j]).collect();
                    col.sort_unstable_by(f32::total_cmp);
                    let mid = &col[k..n - k];
                    let want = mid.iter().map(|&v| f64::from(v)).sum::<f64>() / mid.len() as f64;
                    assert!(
                        (f64::from(*g) - want).abs() <= 1e-6 * (1.0 + want.abs()),
                        "n={n} k={k} j={j}: {g} vs {want}"
                    );
                }
            }
        }
    }
}
