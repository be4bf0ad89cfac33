//! CenteredClipping.
//!
//! Learning from History for Byzantine Robust Optimization
//! [Karimireddy et al., 2021]. Paper: <https://arxiv.org/abs/2012.10333>

use super::distances::distances_to;
use super::{Aggregate, Inputs, KernelResult, Strategy, StrategySpec};
use crate::parallel::CHUNK;
use crate::schema::ParamSpec;
use rayon::prelude::*;

/// CenteredClipping's registry entry: it clips around the previous aggregate.
pub(super) const SPEC: StrategySpec = StrategySpec::new(
    "CenteredClipping",
    "Centered clipping: average the updates after clipping them around a centre.",
    "Karimireddy et al. 2021, https://arxiv.org/abs/2012.10333",
    run,
)
.params(&[
    ParamSpec::float("tau", 1.0, "clipping radius around the centre").min(0.0, false),
    ParamSpec::int("iters", 3, "clipping iterations per round").min(1.0, true),
])
.aliases(&["CC"]) // Karimireddy et al.'s abbreviation
.param_hints(&[("L_iter", "iters"), ("radius", "tau"), ("clip", "tau")])
.uses_previous_aggregate();

fn run(s: &Strategy, input: &Inputs<'_>) -> KernelResult<Aggregate> {
    centered_clipping(input.rows, input.previous, s.float("tau"), s.count("iters"))
        .map(Aggregate::plain)
}

/// Centered clipping around a reference point.
///
/// ```text
/// v_{l+1} = v_l + (1/n) · Σ_i (x_i − v_l) · min(1, τ / ‖x_i − v_l‖)
/// ```
/// for l = 0 … L−1, where n is the number of rows, x_i client i's update,
/// τ > 0 the clipping radius, L = `iters` ≥ 1 and v_0 the reference: the
/// previous round's aggregate in a run (the zero vector when `reference` is
/// `None`). A row at distance 0 is not clipped. Unweighted; v is kept in f64
/// and the result is rounded to f32.
///
/// Preconditions: n ≥ 1, τ > 0, iters ≥ 1, finite reference.
/// Non-finite input: rejected (detected by the first distance pass).
pub(crate) fn centered_clipping(
    rows: &[&[f32]],
    reference: Option<&[f32]>,
    tau: f64,
    iters: usize,
) -> KernelResult<Vec<f32>> {
    let n = rows.len();
    let d = rows[0].len();
    let mut v: Vec<f64> = match reference {
        Some(r) => r.iter().map(|&x| f64::from(x)).collect(),
        None => vec![0f64; d],
    };
    for _ in 0..iters {
        let dist = distances_to(rows, &v)?;
        let scale: Vec<f64> = dist
            .iter()
            .map(|&norm| if norm <= tau { 1.0 } else { tau / norm })
            .collect();
        v.par_chunks_mut(CHUNK).enumerate().for_each(|(c, vc)| {
            let start = c * CHUNK;
            let mut acc = [0f64; CHUNK];
            let acc = &mut acc[..vc.len()];
            for (row, &s) in rows.iter().zip(&scale) {
                let x = &row[start..start + vc.len()];
                for ((a, &xj), &vj) in acc.iter_mut().zip(x).zip(vc.iter()) {
                    *a += s * (f64::from(xj) - vj);
                }
            }
            for (vj, a) in vc.iter_mut().zip(acc.iter()) {
                *vj += a / n as f64;
            }
        });
    }
    Ok(v.into_iter().map(|x| x as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::rows;
    use super::*;

    #[test]
    fn clips_far_rows_to_tau() {
        // From v0 = 0: row0 at distance 5 is scaled to length 1, row1 (0.6) kept.
        let data = vec![vec![3.0f32, 4.0], vec![0.6, 0.0]];
        let v = centered_clipping(&rows(&data), None, 1.0, 1).unwrap();
        let expected = [((0.6 + 0.6f32 as f64) / 2.0) as f32, (0.8 / 2.0) as f32];
        assert!(
            (v[0] - expected[0]).abs() < 1e-7 && (v[1] - expected[1]).abs() < 1e-7,
            "{v:?}"
        );
    }

    #[test]
    fn reference_is_the_starting_point() {
        let data = vec![vec![10.0f32], vec![10.0]];
        let v = centered_clipping(&rows(&data), Some(&[9.5]), 1.0, 1).unwrap();
        assert_eq!(v, vec![10.0]);
        let v = centered_clipping(&rows(&data), Some(&[0.0]), 2.0, 2).unwrap();
        assert_eq!(v, vec![4.0]);
    }
}
