//! TrimmedMean: the coordinate-wise β-trimmed mean.
//!
//! Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates
//! [Yin et al., 2018]. Paper: <https://arxiv.org/abs/1803.01498>

use super::columns::{reduce_sorted_columns, Need, STRIDE, SUB_TILE};
use super::KernelResult;

/// The coordinate-wise trimmed mean (unweighted).
///
/// ```text
/// k     = ⌊β · n⌋
/// out_j = 1/(n − 2k) · Σ_{r = k+1}^{n−k} x_(r),j
/// ```
/// where n is the number of rows, β ∈ [0, 0.5) the trimmed fraction per tail
/// and x_(r),j the r-th smallest value of coordinate j: the k smallest and k
/// largest values of each coordinate are dropped and the remaining n − 2k
/// averaged (f64 accumulation in sorted order, f32 output).
///
/// Preconditions: n − 2k ≥ 1 (always true for β < 0.5; `k` is passed in).
/// Non-finite input: rejected.
pub(crate) fn trimmed_mean(rows: &[&[f32]], k: usize) -> KernelResult<Vec<f32>> {
    let n = rows.len();
    let kept = n - 2 * k;
    let mut out = vec![0f32; rows[0].len()];
    reduce_sorted_columns(rows, &Need::Middle { k }, &mut out, |tile, out| {
        let mut acc = [0f64; SUB_TILE];
        let acc = &mut acc[..out.len()];
        for r in k..n - k {
            for (a, &v) in acc.iter_mut().zip(&tile[r * STRIDE..]) {
                *a += f64::from(v);
            }
        }
        for (o, a) in out.iter_mut().zip(acc.iter()) {
            *o = (a / kept as f64) as f32;
        }
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::rows;
    use super::*;

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
}
