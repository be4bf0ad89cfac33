//! GeometricMedian: robust federated aggregation with the smoothed Weiszfeld algorithm.
//!
//! Robust Aggregation for Federated Learning (RFA)
//! [Pillutla et al., 2022]. Paper: <https://arxiv.org/abs/1912.13445>

use super::distances::distances_to;
use super::fedavg::{normalised, weighted_sum_into};
use super::{Aggregate, Inputs, KernelResult, SawNonFinite, Strategy, StrategySpec};
use crate::schema::ParamSpec;

/// GeometricMedian's registry entry.
pub(super) const SPEC: StrategySpec = StrategySpec::new(
    "GeometricMedian",
    "Geometric median by smoothed Weiszfeld iterations (RFA).",
    "Pillutla et al. 2022, https://arxiv.org/abs/1912.13445",
    run,
)
.params(&[
    ParamSpec::float("eps", 1e-6, "distance smoothing and stopping tolerance").min(0.0, false),
    ParamSpec::int("max_iter", 100, "maximum Weiszfeld iterations").min(1.0, true),
])
.aliases(&["GeoMed", "RFA"]) // common short name; Pillutla et al.
.param_hints(&[("nu", "eps"), ("T", "max_iter"), ("tol", "eps")]);

fn run(s: &Strategy, input: &Inputs<'_>) -> KernelResult<Aggregate> {
    geometric_median(
        input.rows,
        input.weights,
        s.float("eps"),
        s.count("max_iter"),
    )
    .map(Aggregate::plain)
}

/// Weighted sum `Σ_i c_i x_i` as an f64 vector.
fn combine(rows: &[&[f32]], coeffs: &[f64]) -> KernelResult<Vec<f64>> {
    let mut z = vec![0f64; rows[0].len()];
    let finite = weighted_sum_into(rows, coeffs, &mut z, |a| a);
    finite.then_some(z).ok_or(SawNonFinite)
}

/// Euclidean norm of `a − b` and of `a`.
fn step_and_norm(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (step, norm) = a.iter().zip(b).fold((0f64, 0f64), |(s, n), (x, y)| {
        (s + (x - y) * (x - y), n + x * x)
    });
    (step.sqrt(), norm.sqrt())
}

/// The smoothed-Weiszfeld approximation of the weighted geometric median.
///
/// ```text
/// z_0     = Σ_i w_i x_i / Σ_i w_i
/// β_i     = w_i / max(ε, ‖z_t − x_i‖)
/// z_{t+1} = Σ_i β_i x_i / Σ_i β_i
/// ```
/// where n is the number of rows, x_i client i's update, w_i ≥ 0 its sample
/// count and ε > 0 the smoothing constant; this minimises
/// g(z) = Σ_i w_i · max(ε, ‖z − x_i‖). It stops after `max_iter` updates or as
/// soon as a step is short: ‖z_{t+1} − z_t‖ ≤ ε · (1 + ‖z_{t+1}‖). (A relative
/// decrease of g is a poor test here: one far outlier dominates g, and the
/// iteration would stop visibly short of the median.) z is kept in f64; the
/// result is rounded to f32.
///
/// Preconditions: n ≥ 1, Σ w_i > 0, ε > 0, max_iter ≥ 1.
/// Non-finite input: rejected (detected by the first weighted mean).
pub(crate) fn geometric_median(
    rows: &[&[f32]],
    weights: &[f64],
    eps: f64,
    max_iter: usize,
) -> KernelResult<Vec<f32>> {
    let mut z = combine(rows, &normalised(weights))?;
    for _ in 0..max_iter {
        let dist = distances_to(rows, &z)?;
        let beta: Vec<f64> = weights
            .iter()
            .zip(&dist)
            .map(|(w, d)| w / d.max(eps))
            .collect();
        let next = combine(rows, &normalised(&beta))?;
        let (step, norm) = step_and_norm(&next, &z);
        z = next;
        if step <= eps * (1.0 + norm) {
            break;
        }
    }
    Ok(z.into_iter().map(|v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::rows;
    use super::*;

    #[test]
    fn collinear_points_converge_to_the_middle() {
        // The geometric median of 0, 1, 10 on a line is 1.
        let data = vec![vec![0.0f32], vec![1.0], vec![10.0]];
        let z = geometric_median(&rows(&data), &[1.0, 1.0, 1.0], 1e-9, 500).unwrap();
        assert!((z[0] - 1.0).abs() < 1e-3, "{z:?}");
    }

    #[test]
    fn outlier_has_bounded_influence() {
        let data = vec![
            vec![1.0f32, 1.0],
            vec![1.0, 1.0],
            vec![1.0, 1.0],
            vec![1e6, -1e6],
        ];
        let z = geometric_median(&rows(&data), &[1.0; 4], 1e-10, 100).unwrap();
        assert!(
            (z[0] - 1.0).abs() < 1e-2 && (z[1] - 1.0).abs() < 1e-2,
            "{z:?}"
        );
    }

    #[test]
    fn one_iteration_is_the_weiszfeld_step() {
        let data = vec![vec![0.0f32, 0.0], vec![4.0, 0.0]];
        // z0 = (1, 0) with weights (3, 1); distances 1 and 3; β = (3, 1/3).
        let z = geometric_median(&rows(&data), &[3.0, 1.0], 1e-12, 1).unwrap();
        let expected = (4.0 * (1.0 / 3.0) / (3.0 + 1.0 / 3.0)) as f32;
        assert_eq!(z, vec![expected, 0.0]);
    }
}
