//! FedAvg / FedProx: the sample-weighted mean.
//!
//! Communication-Efficient Learning of Deep Networks from Decentralized Data
//! [McMahan et al., 2017]. Paper: <https://arxiv.org/abs/1602.05629>
//!
//! Federated Optimization in Heterogeneous Networks (FedProx)
//! [Li et al., 2020]. Paper: <https://arxiv.org/abs/1812.06127> — same server
//! aggregation; its proximal weight μ only changes client training.

use super::{Aggregate, Inputs, KernelResult, SawNonFinite, Strategy, StrategySpec};
use crate::parallel::CHUNK;
use crate::schema::ParamSpec;
use rayon::prelude::*;

/// FedAvg's registry entry.
pub(super) const FEDAVG: StrategySpec = StrategySpec::new(
    "FedAvg",
    "Federated averaging: the sample-weighted mean of the client updates.",
    "McMahan et al. 2017, https://arxiv.org/abs/1602.05629",
    run,
)
.not_robust()
// ByzFL's Average is unweighted, FedAvg weights by samples; FedAvgM adds server momentum.
.suggested_for(&["Average", "Mean", "FedAvgM", "FedAverage"]);

/// FedProx's registry entry: FedAvg's kernel; its clients add the proximal term.
pub(super) const FEDPROX: StrategySpec = StrategySpec::new(
    "FedProx",
    "FedProx: FedAvg aggregation; clients add a proximal term to their local loss.",
    "Li et al. 2020, https://arxiv.org/abs/1812.06127",
    run,
)
.params(&[ParamSpec::float(
    "mu",
    0.01,
    "proximal term strength added to each client's loss",
)
.min(0.0, true)])
.param_hints(&[("proximal_mu", "mu")]) // Flower's FedProx
.not_robust()
.proximal("mu");

fn run(_: &Strategy, input: &Inputs<'_>) -> KernelResult<Aggregate> {
    weighted_mean(input.rows, input.weights).map(Aggregate::plain)
}

/// Coordinates whose f64 accumulators stay in registers while every row goes by
/// (8 f64: two AVX2 registers; 16 measured the same or slower, 32 spills).
const LANES: usize = 8;

/// Floats ahead of the current block at which each row is prefetched (2 KiB:
/// measured best among 64–1024 floats on 2 EPYC cores; without it the kernel is
/// 2.4× slower).
const PREFETCH_AHEAD: usize = 512;

/// `Σ_i c_i · x_ij` for the `LANES` coordinates `j..j + LANES`, rows in order
/// (`((0 + c₀x₀) + c₁x₁) + …`, never contracted to an FMA), accumulated in
/// registers: each row's 64 bytes are read once and nothing is written back
/// until the block is done. Each row is prefetched [`PREFETCH_AHEAD`] floats
/// ahead: the n rows are n concurrent streams, more than the hardware
/// prefetcher follows (the main cause of FedAvg reading at 22–33 GB/s where a
/// BLAS sgemv reads at 35–50 GB/s on 2 EPYC cores, bench/README.md).
#[inline(always)]
fn block_sums(rows: &[&[f32]], coeffs: &[f64], j: usize) -> [f64; LANES] {
    let mut acc = [0f64; LANES];
    for (row, &c) in rows.iter().zip(coeffs) {
        assert!(j + LANES <= row.len(), "block inside the row");
        // SAFETY: the LANES floats at j are inside `row` (asserted just above).
        let x: &[f32; LANES] = unsafe { &*row.as_ptr().add(j).cast::<[f32; LANES]>() };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetching is a hint that never faults; the address is
        // formed with wrapping arithmetic and never dereferenced.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().wrapping_add(j + PREFETCH_AHEAD).cast());
        }
        for l in 0..LANES {
            acc[l] += c * f64::from(x[l]);
        }
    }
    acc
}

/// `out_j = emit(Σ_i c_i · x_ij)` for the coordinates `start..start + out.len()`;
/// whether every sum is finite.
#[inline(always)]
fn chunk_sums<T>(
    rows: &[&[f32]],
    coeffs: &[f64],
    start: usize,
    out: &mut [T],
    emit: &impl Fn(f64) -> T,
) -> bool {
    let mut finite = true;
    let first = start + out.len() / LANES * LANES;
    let mut blocks = out.chunks_exact_mut(LANES);
    for (b, o) in blocks.by_ref().enumerate() {
        let acc = block_sums(rows, coeffs, start + b * LANES);
        finite &= acc.iter().all(|a| a.is_finite());
        for (o, &a) in o.iter_mut().zip(&acc) {
            *o = emit(a);
        }
    }
    for (k, o) in blocks.into_remainder().iter_mut().enumerate() {
        let mut acc = 0f64;
        for (row, &c) in rows.iter().zip(coeffs) {
            acc += c * f64::from(row[first + k]);
        }
        finite &= acc.is_finite();
        *o = emit(acc);
    }
    finite
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn chunk_sums_avx2<T>(
    rows: &[&[f32]],
    coeffs: &[f64],
    start: usize,
    out: &mut [T],
    emit: &impl Fn(f64) -> T,
) -> bool {
    chunk_sums(rows, coeffs, start, out, emit)
}

/// [`chunk_sums`] with AVX2 where the CPU has it (same bits on every path: the
/// operation order is fixed in the source and never contracted). Not AVX-512:
/// on 2 Zen 4 cores the AVX-512 build of this loop (a 512-bit widening is two
/// 256-bit halves plus an extract) read 10–15% slower with two threads and no
/// faster with one (bench/README.md).
fn chunk_sums_dispatch<T>(
    rows: &[&[f32]],
    coeffs: &[f64],
    start: usize,
    out: &mut [T],
    emit: &impl Fn(f64) -> T,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { chunk_sums_avx2(rows, coeffs, start, out, emit) };
        }
    }
    chunk_sums(rows, coeffs, start, out, emit)
}

/// Writes `out_j = Σ_i c_i · x_ij` for every coordinate, accumulating in f64
/// in row order (parallel over fixed [`CHUNK`]s of coordinates, which cannot
/// change a coordinate's sum); `emit` converts the f64 accumulator.
///
/// Returns `false` if an accumulator is non-finite. With coefficients in
/// [0, 1] (normalised weights) that happens iff a row holds NaN/±Inf in that
/// coordinate, since `0 · ±Inf = NaN` and finite f32 sums cannot overflow f64.
pub(crate) fn weighted_sum_into<T: Send>(
    rows: &[&[f32]],
    coeffs: &[f64],
    out: &mut [T],
    emit: impl Fn(f64) -> T + Sync,
) -> bool {
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(c, out)| chunk_sums_dispatch(rows, coeffs, c * CHUNK, out, &emit))
        .reduce(|| true, |a, b| a & b)
}

/// Weights normalised to sum to one (the caller guarantees Σw > 0).
pub(crate) fn normalised(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// FedAvg: the sample-weighted mean of the rows.
///
/// ```text
/// out_j = Σ_i w_i · x_ij / Σ_i w_i
/// ```
/// where n is the number of rows (clients), x_ij the j-th coordinate of
/// client i's update and w_i ≥ 0 its sample count (Σ w_i > 0). Accumulated in
/// f64, returned as f32.
///
/// Preconditions: n ≥ 1, finite non-negative weights with a positive sum.
/// Non-finite input: detected from the accumulators and rejected.
pub(crate) fn weighted_mean(rows: &[&[f32]], weights: &[f64]) -> KernelResult<Vec<f32>> {
    let d = rows[0].len();
    let coeffs = normalised(weights);
    let mut out = vec![0f32; d];
    let finite = weighted_sum_into(rows, &coeffs, &mut out, |a| a as f32);
    finite.then_some(out).ok_or(SawNonFinite)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::rows;
    use super::*;

    #[test]
    fn hand_computed_weighted_mean() {
        let data = vec![
            vec![1.0, 2.0, 3.0],
            vec![3.0, 4.0, 5.0],
            vec![5.0, 0.0, -1.0],
        ];
        let out = weighted_mean(&rows(&data), &[1.0, 1.0, 2.0]).unwrap();
        assert_eq!(out, vec![3.5, 1.5, 1.5]);
        let out = weighted_mean(&rows(&data), &[0.0, 3.0, 0.0]).unwrap();
        assert_eq!(out, vec![3.0, 4.0, 5.0]);
    }

    #[test]
    fn register_blocks_give_the_row_order_sum_bit_for_bit() {
        use super::super::test_util::matrix;
        for (n, d) in [(1, 3), (3, 8), (5, 17), (50, 4096 + 9), (7, 3 * 4096 - 1)] {
            let data = matrix(n, d, (n * 31 + d) as u64);
            let weights: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64).collect();
            let coeffs = normalised(&weights);
            let mut out = vec![0f64; d];
            assert!(weighted_sum_into(&rows(&data), &coeffs, &mut out, |a| a));
            for (j, &o) in out.iter().enumerate() {
                let mut want = 0f64;
                for (row, &c) in data.iter().zip(&coeffs) {
                    want += c * f64::from(row[j]);
                }
                assert_eq!(o.to_bits(), want.to_bits(), "n={n} d={d} j={j}");
            }
        }
    }

    #[test]
    fn zero_weight_row_with_nan_is_still_detected() {
        let data = vec![vec![1.0, f32::NAN], vec![3.0, 4.0]];
        assert_eq!(weighted_mean(&rows(&data), &[0.0, 1.0]), Err(SawNonFinite));
    }
}
