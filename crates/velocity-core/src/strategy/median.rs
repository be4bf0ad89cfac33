//! FedMedian: the coordinate-wise median.
//!
//! Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates
//! [Yin et al., 2018]. Paper: <https://arxiv.org/abs/1803.01498>

use super::columns::{reduce_sorted_columns, Need, STRIDE};
use super::{Aggregate, Inputs, KernelResult, Strategy, StrategySpec};

/// FedMedian's registry entry.
pub(super) const SPEC: StrategySpec = StrategySpec::new(
    "FedMedian",
    "Coordinate-wise median of the client updates (unweighted).",
    "Yin et al. 2018, https://arxiv.org/abs/1803.01498",
    run,
)
.aliases(&["Median", "CoordinateWiseMedian"]); // ByzFL, papers

fn run(_: &Strategy, input: &Inputs<'_>) -> KernelResult<Aggregate> {
    median(input.rows).map(Aggregate::plain)
}

/// The coordinate-wise median (unweighted).
///
/// ```text
/// out_j = x_(⌈n/2⌉),j                          n odd
/// out_j = (x_(n/2),j + x_(n/2+1),j) / 2         n even
/// ```
/// where n is the number of rows and x_(r),j the r-th smallest value of
/// coordinate j (numpy's convention for even n). The midpoint is computed in
/// f64 and rounded to f32.
///
/// Preconditions: n ≥ 1. Non-finite input: rejected.
pub(crate) fn median(rows: &[&[f32]]) -> KernelResult<Vec<f32>> {
    let n = rows.len();
    let mut out = vec![0f32; rows[0].len()];
    let mid = n / 2;
    let ranks = if n % 2 == 1 {
        vec![mid]
    } else {
        vec![mid - 1, mid]
    };
    reduce_sorted_columns(rows, &Need::Ranks(ranks), &mut out, |tile, out| {
        let w = out.len();
        let upper = &tile[mid * STRIDE..mid * STRIDE + w];
        if n % 2 == 1 {
            out.copy_from_slice(upper);
        } else {
            let lower = &tile[(mid - 1) * STRIDE..(mid - 1) * STRIDE + w];
            for ((o, &a), &b) in out.iter_mut().zip(lower).zip(upper) {
                *o = ((f64::from(a) + f64::from(b)) * 0.5) as f32;
            }
        }
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::rows;
    use super::*;

    #[test]
    fn odd_and_even_medians() {
        let data = vec![
            vec![1.0, -5.0, 2.0],
            vec![9.0, 0.0, 2.0],
            vec![3.0, 4.0, -7.0],
        ];
        assert_eq!(median(&rows(&data)).unwrap(), vec![3.0, 0.0, 2.0]);
        let data = vec![
            vec![1.0, -5.0],
            vec![9.0, 0.0],
            vec![3.0, 4.0],
            vec![4.0, 1.0],
        ];
        assert_eq!(median(&rows(&data)).unwrap(), vec![3.5, 0.5]);
        let data = vec![vec![2.5f32]];
        assert_eq!(median(&rows(&data)).unwrap(), vec![2.5]);
    }
}
