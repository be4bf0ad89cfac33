//! Static norm clipping.
//!
//! The clipping that differentially private and Byzantine-robust training start
//! from; as a fixed-threshold pre-aggregator it is ByzFL's `Clipping`, the
//! baseline of The Vital Role of Gradient Clipping in Byzantine-Resilient
//! Distributed Learning [Allouah et al., 2024]. Paper: <https://arxiv.org/abs/2405.14432>

use super::{row_norms, Members, Mixed, PreAgg, PreAggSpec, PreInputs, RowCount, StageRows};
use crate::schema::ParamSpec;
use crate::strategy::KernelResult;

/// Clipping's registry entry.
pub(super) const SPEC: PreAggSpec = PreAggSpec {
    name: "Clipping",
    aliases: &["Clip", "StaticClipping", "NormClipping"],
    description: "Static clipping: scale every update whose norm exceeds tau down to norm tau.",
    reference: "Allouah et al. 2024, https://arxiv.org/abs/2405.14432",
    params: &[ParamSpec::float(
        "tau",
        2.0,
        "clipping threshold: updates longer than tau are scaled to norm tau (ByzFL's c)",
    )
    .min(0.0, false)],
    tolerance: None,
    seeded: false,
    rows: RowCount::Same,
    check_clients: None,
    kernel: run,
};

fn run(p: &PreAgg, input: &PreInputs<'_>, _: &mut Vec<f32>) -> KernelResult<Mixed> {
    Ok(Mixed {
        rows: StageRows::Scaled(clipping(input.rows, p.float("tau"))?),
        weights: input.weights.to_vec(),
        members: Members::Same,
    })
}

/// The factor min(1, τ / ‖x‖) that clips a row of norm `norm` to `tau`.
pub(super) fn clip_factor(norm: f64, tau: f64) -> f64 {
    if norm > tau {
        tau / norm
    } else {
        1.0
    }
}

/// Static clipping.
///
/// ```text
/// Clip_τ(x_1, …, x_n) = (min(1, τ / ‖x_1‖) · x_1, …, min(1, τ / ‖x_n‖) · x_n)
/// ```
/// where x_1 … x_n are the rows (client updates), ‖·‖ the Euclidean norm and
/// τ > 0 the threshold (`tau`; ByzFL's `c`, default 2.0 there and here). Rows
/// with ‖x_i‖ ≤ τ are unchanged; weights are kept and row i stands for client i.
/// Norms are summed in f64 over fixed chunks (any thread count gives the same
/// bits); the product is taken in f64 and rounded to f32. ByzFL also accepts
/// c = 0 (every non-zero row becomes 0); here τ must be positive.
///
/// Returns the factors min(1, τ / ‖x_i‖): the pipeline copies only the rows it
/// scales (one read of the matrix for the norms, a write of the clipped rows).
///
/// Preconditions: none beyond n ≥ 1. Non-finite input: rejected.
pub(crate) fn clipping(rows: &[&[f32]], tau: f64) -> KernelResult<Vec<f64>> {
    Ok(row_norms(rows)?
        .into_iter()
        .map(|norm| clip_factor(norm, tau))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::scaled;
    use super::*;
    use crate::parallel::{install, CHUNK};
    use crate::strategy::test_util::{matrix, rows};
    use crate::strategy::SawNonFinite;

    /// The rows `clipping` passes on, n × d.
    fn clipped(r: &[&[f32]], tau: f64) -> Vec<f32> {
        scaled(r, &clipping(r, tau).unwrap())
    }

    #[test]
    fn hand_computed_clipping() {
        let data = vec![vec![3.0f32, 4.0], vec![0.6, 0.8], vec![0.0, 0.0]];
        assert_eq!(clipping(&rows(&data), 1.0).unwrap()[2], 1.0);
        let out = clipped(&rows(&data), 1.0);
        assert_eq!(out, vec![0.6, 0.8, 0.6, 0.8, 0.0, 0.0]);
        assert_eq!(clipping(&rows(&data), 10.0).unwrap(), vec![1.0; 3]);
    }

    #[test]
    fn matches_the_naive_formula_for_any_thread_count() {
        let data = matrix(6, 2 * CHUNK + 11, 3);
        let r = rows(&data);
        let one = install(Some(1), || clipped(&r, 5.0)).unwrap();
        let four = install(Some(4), || clipped(&r, 5.0)).unwrap();
        assert_eq!(one, four);
        for (i, row) in data.iter().enumerate() {
            let norm = row
                .iter()
                .map(|&x| f64::from(x).powi(2))
                .sum::<f64>()
                .sqrt();
            let got = &one[i * row.len()..(i + 1) * row.len()];
            let got_norm = got
                .iter()
                .map(|&x| f64::from(x).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                (got_norm - norm.min(5.0)).abs() < 1e-5 * norm,
                "{got_norm} vs {norm}"
            );
            let s = clip_factor(norm, 5.0);
            assert!(got
                .iter()
                .zip(row)
                .all(|(g, x)| (f64::from(*g) - f64::from(*x) * s).abs() < 1e-6));
        }
    }

    #[test]
    fn non_finite_input_is_rejected() {
        let data = vec![vec![1.0f32, 2.0], vec![f32::NEG_INFINITY, 0.0]];
        assert_eq!(clipping(&rows(&data), 1.0), Err(SawNonFinite));
    }
}
