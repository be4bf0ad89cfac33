//! Mimic: every Byzantine client copies one honest client, over-weighting its
//! (heterogeneous) data so that robust rules drift towards it.
//!
//! ```text
//! a = x_{i*},    i* = `target`  if given,
//!                i* = argmax_i |⟨x_i − μ, z⟩|  otherwise
//! ```
//! where
//! * x_1 … x_h are this round's honest updates in row order, μ their mean;
//! * z is the top principal direction of the centred rows x_i − μ. It is found
//!   without forming a d × d covariance: with the centred Gram matrix
//!   G = −½ J D J (D the h × h squared distances, J = I − 11ᵀ/h), z ∝ Σ_i u_i (x_i − μ)
//!   for the top eigenvector u of G, and ⟨x_i − μ, z⟩ ∝ (G u)_i ∝ u_i, so
//!   i* = argmax_i |u_i| (the first on ties); u comes from 100 power iterations
//!   on G from a start drawn from the attack's keyed generator.
//!
//! The paper fixes i* after a warm-up phase (accumulating z over the first
//! rounds); this version picks i* afresh each round from that round's rows.
//! ByzFL's `Mimic(epsilon)` is `target = epsilon`. The rule is not needed.
//! A `target` beyond the round's honest rows is an error naming both numbers.
//!
//! Parameters: `target` (int ≥ 0 or None, default None: the heuristic), plus
//! the common ones.
//!
//! ```
//! use _core::security::{rng_for, AdaptiveContext, Apply, HonestStats, Params};
//!
//! // Spread along the first axis; the row farthest along it is copied.
//! let honest: Vec<&[f32]> = vec![&[0.0, 0.1], &[1.0, 0.0], &[-3.0, -0.1]];
//! let stats = HonestStats::compute(&honest).unwrap();
//! let never = |_: &[f32]| unreachable!("agnostic of the rule");
//! let ctx = AdaptiveContext { honest: &honest, stats: &stats, n: 4, f: 1, aggregate: &never };
//! let p = Params::validate("mimic", &[]).unwrap();
//! let Apply::Adaptive(run) = p.spec().apply else { unreachable!() };
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)).unwrap(), vec![-3.0, -0.1]);
//! ```
//!
//! References:
//! 1. Karimireddy, He and Jaggi, "Byzantine-Robust Learning on Heterogeneous
//!    Datasets via Bucketing", ICLR 2022. <https://arxiv.org/abs/2006.09365>

use super::{AdaptiveContext, Apply, AttackSpec, Params};
use crate::error::{CoreError, Result};
use crate::schema::ParamSpec;
use crate::strategy::{locate_non_finite, pairwise_sq_distances};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Power iterations on the h × h Gram matrix (O(h²) each).
const POWER_ITERS: usize = 100;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "mimic",
    aliases: &["Mimic"],
    description: "Mimic: every Byzantine client copies one honest client, by default the one \
                  farthest along the honest rows' top principal direction",
    reference: "Karimireddy et al. 2022, Byzantine-Robust Learning on Heterogeneous Datasets \
                via Bucketing, ICLR, https://arxiv.org/abs/2006.09365",
    params: &[ParamSpec::int(
        "target",
        0,
        "honest row copied (row order); None = the top-principal-direction heuristic",
    )
    .nullable()
    .min(0.0, true)],
    apply: Apply::Adaptive(mimic),
    adaptive: true,
    check: None,
};

/// i* = argmax_i |u_i| for the top eigenvector u of G = −½ J D J.
fn principal_row(dist: &[f64], h: usize, rng: &mut ChaCha8Rng) -> usize {
    let row_mean: Vec<f64> = dist
        .chunks(h)
        .map(|r| r.iter().sum::<f64>() / h as f64)
        .collect();
    let grand = row_mean.iter().sum::<f64>() / h as f64;
    let gram: Vec<f64> = (0..h * h)
        .map(|k| {
            let (i, j) = (k / h, k % h);
            -0.5 * (dist[k] - row_mean[i] - row_mean[j] + grand)
        })
        .collect();
    let mut u: Vec<f64> = (0..h).map(|_| StandardNormal.sample(rng)).collect();
    for _ in 0..POWER_ITERS {
        let next: Vec<f64> = gram
            .chunks(h)
            .map(|r| r.iter().zip(&u).map(|(g, v)| g * v).sum())
            .collect();
        let norm = next.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            break;
        }
        u = next.into_iter().map(|v| v / norm).collect();
    }
    let mut best = 0;
    for (i, v) in u.iter().enumerate() {
        if v.abs() > u[best].abs() {
            best = i;
        }
    }
    best
}

fn mimic(ctx: &AdaptiveContext<'_>, p: &Params, rng: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    let h = ctx.honest.len();
    if h == 0 {
        return Ok(vec![0f32; ctx.stats.mean.len()]);
    }
    let target = match p.opt_int("target") {
        Some(t) => usize::try_from(t).ok().filter(|&t| t < h).ok_or_else(|| {
            CoreError::invalid(
                "mimic.target",
                t,
                format!("None or an int < {h}, the honest clients this round"),
            )
        })?,
        None => {
            let dist =
                pairwise_sq_distances(ctx.honest).map_err(|_| locate_non_finite(ctx.honest))?;
            principal_row(&dist, h, rng)
        }
    };
    Ok(ctx.honest[target].to_vec())
}

#[cfg(test)]
mod tests {
    use super::super::rng_for;
    use super::super::test_util::{adaptive, random_rows};
    use super::*;
    use crate::schema::RawValue;

    #[test]
    fn copies_the_target_or_the_principal_outlier() {
        let rows = random_rows(3, 5, 20);
        for t in 0..5 {
            let (m, _) = adaptive("mimic", &[("target", RawValue::Int(t))], &rows, 2, None);
            assert_eq!(m.unwrap(), rows[t as usize]);
        }
        let (e, _) = adaptive("mimic", &[("target", RawValue::Int(5))], &rows, 2, None);
        assert_eq!(
            e.unwrap_err().to_string(),
            "invalid mimic.target: got 5; allowed: None or an int < 5, the honest clients this round"
        );
        // Heuristic against a naive reference: rows spread along one direction
        // plus noise; the top direction is that one, row 3 is farthest.
        let dir: Vec<f32> = (0..20)
            .map(|j| if j % 2 == 0 { 1.0 } else { -0.5 })
            .collect();
        let scale = [0.5f32, -1.0, 2.0, -6.0, 1.5];
        let noisy: Vec<Vec<f32>> = rows
            .iter()
            .zip(scale)
            .map(|(r, s)| r.iter().zip(&dir).map(|(x, d)| 0.05 * x + s * d).collect())
            .collect();
        let (m, _) = adaptive("mimic", &[], &noisy, 2, None);
        assert_eq!(m.unwrap(), noisy[3]);
    }

    #[test]
    fn power_iteration_finds_the_top_eigenvector() {
        // Centred rows along e_0 with a smaller spread along e_1: naive
        // projections on e_0 pick the largest |x_i0 − μ_0|.
        let rows: Vec<Vec<f32>> = vec![
            vec![4.0, 0.0],
            vec![-1.0, 1.0],
            vec![-1.0, -1.0],
            vec![-2.0, 0.0],
        ];
        let honest: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let dist = pairwise_sq_distances(&honest).unwrap();
        for seed in 0..5 {
            assert_eq!(principal_row(&dist, 4, &mut rng_for(seed, 0, 0, 0)), 0);
        }
        // Degenerate: one row, identical rows.
        assert_eq!(principal_row(&[0.0], 1, &mut rng_for(0, 0, 0, 0)), 0);
        let same = vec![0.0; 9];
        assert!(principal_row(&same, 3, &mut rng_for(0, 0, 0, 0)) < 3);
    }
}
