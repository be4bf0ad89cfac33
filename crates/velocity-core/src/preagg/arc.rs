//! Adaptive Robust Clipping (ARC).
//!
//! The Vital Role of Gradient Clipping in Byzantine-Resilient Distributed
//! Learning [Allouah et al., 2024]. Paper: <https://arxiv.org/abs/2405.14432>

use super::clipping::clip_factor;
use super::{
    at_least, row_norms, Members, Mixed, PreAgg, PreAggSpec, PreInputs, RowCount, StageRows,
};
use crate::error::Result;
use crate::schema::ParamSpec;
use crate::strategy::KernelResult;

/// ARC's registry entry.
pub(super) const SPEC: PreAggSpec = PreAggSpec {
    name: "ARC",
    aliases: &["AdaptiveRobustClipping"],
    description: "Adaptive robust clipping: clip the ⌊2f(n−f)/n⌋ largest updates to the \
                  norm of the largest remaining one.",
    reference: "Allouah et al. 2024, https://arxiv.org/abs/2405.14432",
    params: &[ParamSpec::int(
        "f",
        1,
        "number of Byzantine clients tolerated: floor(2f(n-f)/n) updates are clipped \
         (needs n >= f)",
    )
    .min(0.0, true)],
    tolerance: Some("f"),
    seeded: false,
    rows: RowCount::Same,
    check_clients: Some(arc_clients),
    kernel: run,
};

/// n ≥ f (ByzFL's f < n + 1); then k ≤ n/2 < n, so a threshold row remains.
fn arc_clients(p: &PreAgg, n: usize) -> Result<()> {
    at_least(p, n, 1, "f", 0)
}

fn run(p: &PreAgg, input: &PreInputs<'_>, _: &mut Vec<f32>) -> KernelResult<Mixed> {
    Ok(Mixed {
        rows: StageRows::Scaled(arc(input.rows, p.count("f"))?),
        weights: input.weights.to_vec(),
        members: Members::Same,
    })
}

/// k = ⌊2f(n − f)/n⌋, the rows ARC clips, exactly (in u128). ByzFL computes
/// `int((2f/n)·(n − f))` in floating point, which is one less when the quotient
/// is an integer that rounding puts just below (first at n = 121, f = 66: 60
/// here, 59 there). For f ≤ n it is at most n/2.
pub(crate) fn clipped_count(n: usize, f: usize) -> usize {
    let (n128, f128) = (n as u128, f as u128);
    (2 * f128 * (n128 - f128) / n128) as usize
}

/// Adaptive Robust Clipping.
///
/// ```text
/// ARC_f(x_1, …, x_n) = (min(1, ‖x_π(n−k)‖ / ‖x_1‖) · x_1, …, min(1, ‖x_π(n−k)‖ / ‖x_n‖) · x_n)
/// k = ⌊2 · (f/n) · (n − f)⌋
/// ```
/// where x_1 … x_n are the rows (client updates), f ≥ 0 the number of
/// Byzantine rows tolerated, ‖·‖ the Euclidean norm and π the permutation that
/// sorts the norms in non-decreasing order, ties by index: the k rows with the
/// largest norms are clipped to the norm of the largest remaining one, the
/// (n − k)-th smallest. k = 0 (f = 0 or f = n) changes nothing. Weights are
/// kept; row i stands for client i. Norms in f64 over fixed chunks; products
/// in f64 rounded to f32 (ByzFL: float32 norms and products).
///
/// Returns the factors: the pipeline copies only the k rows it scales.
///
/// Preconditions: n ≥ f (checked by the caller), so n − k ≥ 1.
/// Non-finite input: rejected.
pub(crate) fn arc(rows: &[&[f32]], f: usize) -> KernelResult<Vec<f64>> {
    let n = rows.len();
    let norms = row_norms(rows)?;
    let k = clipped_count(n, f);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| norms[a].total_cmp(&norms[b]).then(a.cmp(&b)));
    let threshold = norms[order[n - k - 1]];
    let mut scale = vec![1.0; n];
    for &i in &order[n - k..] {
        scale[i] = clip_factor(norms[i], threshold);
    }
    Ok(scale)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::scaled;
    use super::*;
    use crate::error::MAX_COUNT;
    use crate::parallel::install;
    use crate::strategy::test_util::{matrix, rows};
    use crate::strategy::SawNonFinite;

    /// The rows `arc` passes on, n × d.
    fn arc_rows(data: &[Vec<f32>], f: usize) -> KernelResult<Vec<f32>> {
        let r = rows(data);
        Ok(scaled(&r, &arc(&r, f)?))
    }

    #[test]
    fn clipped_count_is_exact_and_below_n() {
        assert_eq!(clipped_count(10, 1), 1); // 1.8
        assert_eq!(clipped_count(10, 3), 4); // 4.2
        assert_eq!(clipped_count(10, 5), 5);
        assert_eq!(clipped_count(10, 10), 0);
        assert_eq!(clipped_count(3, 1), 1); // ByzFL's doctest: the largest row is clipped
        assert_eq!(clipped_count(121, 66), 60); // 7260 / 121 exactly (ByzFL's floats: 59)
        for n in 1..60 {
            for f in 0..=n {
                let k = clipped_count(n, f);
                assert!(k < n, "n={n} f={f}");
                assert_eq!(k, (2 * f * (n - f)) / n);
            }
        }
        assert_eq!(clipped_count(MAX_COUNT, MAX_COUNT / 2), MAX_COUNT / 2);
        assert_eq!(clipped_count(usize::MAX, usize::MAX / 2), usize::MAX / 2);
    }

    #[test]
    fn byzfl_doctest() {
        // ByzFL: ARC(f=1) on [1,2,3], [4,5,6], [7,8,9] -> the last row scaled to ‖[4,5,6]‖.
        let data = vec![
            vec![1.0f32, 2.0, 3.0],
            vec![4.0, 5.0, 6.0],
            vec![7.0, 8.0, 9.0],
        ];
        let out = arc_rows(&data, 1).unwrap();
        assert_eq!(out[..6], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let s = 77f64.sqrt() / 194f64.sqrt();
        let want: Vec<f32> = [7.0, 8.0, 9.0].iter().map(|x| (x * s) as f32).collect();
        assert_eq!(out[6..], want[..]);
        assert!((out[6] - 4.41).abs() < 1e-3 && (out[8] - 5.6701).abs() < 1e-3);
    }

    #[test]
    fn ties_and_no_op_cases() {
        // n = 4, f = 2: k = 2. Norms 1, 2, 2, 5: rows 2 and 3 clipped to the norm of row 1.
        let data = vec![vec![1.0f32], vec![-2.0], vec![2.0], vec![5.0]];
        assert_eq!(arc_rows(&data, 2).unwrap(), vec![1.0, -2.0, 2.0, 2.0]);
        assert_eq!(arc_rows(&data, 0).unwrap(), vec![1.0, -2.0, 2.0, 5.0]);
        assert_eq!(arc_rows(&data, 4).unwrap(), vec![1.0, -2.0, 2.0, 5.0]);
        let zeros = vec![vec![0.0f32], vec![0.0], vec![3.0]];
        assert_eq!(arc_rows(&zeros, 1).unwrap(), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn same_bits_for_any_thread_count_and_rejects_non_finite() {
        let mut data = matrix(8, 3 * crate::parallel::CHUNK + 1, 5);
        let run = |t, data: &Vec<Vec<f32>>| install(Some(t), || arc_rows(data, 3)).unwrap();
        assert_eq!(run(1, &data), run(4, &data));
        data[5][9] = f32::NAN;
        assert_eq!(arc_rows(&data, 3), Err(SawNonFinite));
    }
}
