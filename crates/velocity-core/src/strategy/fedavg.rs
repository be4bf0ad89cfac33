//! FedAvg / FedProx: the sample-weighted mean.
//!
//! Communication-Efficient Learning of Deep Networks from Decentralized Data
//! [McMahan et al., 2017]. Paper: <https://arxiv.org/abs/1602.05629>
//!
//! Federated Optimization in Heterogeneous Networks (FedProx)
//! [Li et al., 2020]. Paper: <https://arxiv.org/abs/1812.06127> — same server
//! aggregation; its proximal weight μ only changes client training.

use super::{KernelResult, SawNonFinite};
use crate::parallel::CHUNK;
use rayon::prelude::*;

/// `acc_j += Σ_i c_i · x_ij` over one chunk, rows in order. Four rows are
/// fused per pass (`((acc + c₀x₀) + c₁x₁) + …`, the same order as one row at
/// a time) to cut accumulator traffic.
#[inline(always)]
fn accumulate(acc: &mut [f64], rows: &[&[f32]], coeffs: &[f64], start: usize) {
    let len = acc.len();
    let mut i = 0;
    while i + 4 <= rows.len() {
        let (c0, c1, c2, c3) = (coeffs[i], coeffs[i + 1], coeffs[i + 2], coeffs[i + 3]);
        let x0 = &rows[i][start..start + len];
        let x1 = &rows[i + 1][start..start + len];
        let x2 = &rows[i + 2][start..start + len];
        let x3 = &rows[i + 3][start..start + len];
        for j in 0..len {
            acc[j] = (((acc[j] + c0 * f64::from(x0[j])) + c1 * f64::from(x1[j]))
                + c2 * f64::from(x2[j]))
                + c3 * f64::from(x3[j]);
        }
        i += 4;
    }
    for (row, &c) in rows[i..].iter().zip(&coeffs[i..]) {
        for (a, &v) in acc.iter_mut().zip(&row[start..start + len]) {
            *a += c * f64::from(v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn accumulate_avx2(acc: &mut [f64], rows: &[&[f32]], coeffs: &[f64], start: usize) {
    accumulate(acc, rows, coeffs, start);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
/// # Safety
/// The CPU must support AVX-512F.
unsafe fn accumulate_avx512(acc: &mut [f64], rows: &[&[f32]], coeffs: &[f64], start: usize) {
    accumulate(acc, rows, coeffs, start);
}

/// [`accumulate`] for the best available instruction set (same bits on every
/// path: the operation order is fixed in the source and never contracted).
fn accumulate_dispatch(acc: &mut [f64], rows: &[&[f32]], coeffs: &[f64], start: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { accumulate_avx512(acc, rows, coeffs, start) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { accumulate_avx2(acc, rows, coeffs, start) };
        }
    }
    accumulate(acc, rows, coeffs, start);
}

/// Writes `out_j = Σ_i c_i · x_ij` for every coordinate, accumulating in f64
/// in row order inside fixed [`CHUNK`]s; `emit` converts the f64 accumulator.
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
        .map(|(c, out)| {
            let mut acc = [0f64; CHUNK];
            let acc = &mut acc[..out.len()];
            accumulate_dispatch(acc, rows, coeffs, c * CHUNK);
            let finite = acc.iter().all(|a| a.is_finite());
            for (o, &a) in out.iter_mut().zip(acc.iter()) {
                *o = emit(a);
            }
            finite
        })
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
    fn zero_weight_row_with_nan_is_still_detected() {
        let data = vec![vec![1.0, f32::NAN], vec![3.0, 4.0]];
        assert_eq!(weighted_mean(&rows(&data), &[0.0, 1.0]), Err(SawNonFinite));
    }
}
