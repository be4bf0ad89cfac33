//! Optimal IPM (ByzFL's `Optimal_InnerProductManipulation`): IPM with the
//! factor τ chosen each round to push the real rule's aggregate as far as
//! possible from the honest mean.
//!
//! ```text
//! a(τ) = −τ · μ,        τ* = argmax_τ ‖Agg(x_1 … x_h, a(τ) × f) − μ‖₂
//! ```
//! where
//! * x_1 … x_h are this round's honest updates and μ their coordinate-wise mean;
//! * Agg is the run's real rule, pre-aggregators included, on the round's
//!   matrix with the f rows of this attack set to a(τ);
//! * τ* comes from the line search plus grid of [`search`](super::search)
//!   (`evals` aggregations at most; with `grid = 0` it is ByzFL's search);
//!   a candidate that overflows f32 is skipped (no aggregation, no damage).
//!
//! τ is ByzFL's name; velocity's `ipm` calls the fixed factor `epsilon`.
//!
//! Parameters: `evals` (int ≥ 1, default 15: a round within 20 aggregations,
//! bench/README.md; ByzFL's 20), `grid` (int ≥ 0, default 8),
//! `start` (float, default 0), `delta` (float ≠ 0, default 10), `ratio`
//! (float in (0.5, 1), default 0.8), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, AdaptiveContext, Apply, HonestStats, Outcome, Params, RawValue};
//!
//! let honest: Vec<&[f32]> = vec![&[1.0, 2.0], &[3.0, 2.0]]; // μ = [2, 2]
//! let stats = HonestStats::compute(&honest).unwrap();
//! let echo = |c: &[f32]| Ok(Outcome { value: c.to_vec(), byzantine_selected: None });
//! let ctx = AdaptiveContext { honest: &honest, stats: &stats, n: 3, f: 1, aggregate: &echo };
//! let raw = [("evals".to_string(), RawValue::Int(1)), ("start".to_string(), RawValue::Float(0.5))];
//! let p = Params::validate("ipm_opt", &raw).unwrap();
//! let Apply::Adaptive(run) = p.spec().apply else { unreachable!() };
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)).unwrap(), vec![-1.0, -1.0]);
//! ```
//!
//! References:
//! 1. Xie, Koyejo and Gupta, "Fall of Empires: Breaking Byzantine-tolerant SGD
//!    by Inner Product Manipulation", UAI 2019. <https://arxiv.org/abs/1903.03936>
//! 2. Allouah, Farhadkhani, Guerraoui, Gupta, Pinot and Stephan, "Fixing by
//!    Mixing: A Recipe for Optimal Byzantine ML under Heterogeneity", AISTATS
//!    2023 (ByzFL's optimised attacks). <https://arxiv.org/abs/2302.01772>

use super::math::{damage, to_f32};
use super::search::{self, Search};
use super::{AdaptiveContext, Apply, AttackSpec, Params};
use crate::error::Result;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "ipm_opt",
    aliases: &[
        "Optimal_InnerProductManipulation",
        "OptimalIPM",
        "Optimal_IPM",
    ],
    description: "optimal IPM: -tau*mu with tau searched each round to maximise the real rule's \
                  distance from the honest mean",
    reference: "Xie et al. 2019, https://arxiv.org/abs/1903.03936; optimised as ByzFL's \
                Optimal_InnerProductManipulation (Allouah et al. 2023, \
                https://arxiv.org/abs/2302.01772)",
    params: &search::PARAMS,
    apply: Apply::Adaptive(ipm_opt),
    adaptive: true,
    check: Some(search::check),
};

/// ByzFL's IPM vector −τ·μ (None if it overflows f32).
fn candidate(mean: &[f64], tau: f64) -> Option<Vec<f32>> {
    to_f32(mean.par_iter().map(|m| -tau * m))
}

fn ipm_opt(ctx: &AdaptiveContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    let mean = &ctx.stats.mean;
    let tau = Search::from_params(p).maximise(|tau| match candidate(mean, tau) {
        Some(c) => Ok(damage(&(ctx.aggregate)(&c)?.value, mean)),
        None => Ok(f64::NEG_INFINITY),
    })?;
    Ok(candidate(mean, tau).unwrap_or_else(|| vec![0f32; mean.len()]))
}

#[cfg(test)]
mod tests {
    use super::super::math::damage;
    use super::super::test_util::{adaptive, outcome, random_rows};
    use super::*;
    use crate::schema::RawValue;
    use crate::strategy::Strategy;

    #[test]
    fn equals_byzfl_formula_at_a_fixed_tau() {
        // numpy: -2.5 * np.mean([[1, 2, 0], [3, 2, 4]], axis=0) = [-5, -5, -5]
        let rows = vec![vec![1.0f32, 2.0, 0.0], vec![3.0, 2.0, 4.0]];
        let fedavg = Strategy::new("FedAvg", &[]).unwrap();
        let params = [("evals", RawValue::Int(1)), ("start", RawValue::Float(2.5))];
        let (m, _) = adaptive("ipm_opt", &params, &rows, 1, Some(&fedavg));
        assert_eq!(m.unwrap(), vec![-5.0, -5.0, -5.0]);
    }

    #[test]
    fn at_least_as_damaging_as_a_fixed_grid() {
        let mut rows = random_rows(12, 12, 64);
        for r in &mut rows {
            r.iter_mut().for_each(|v| *v += 0.3);
        }
        let honest: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        for (rule, params) in [
            ("TrimmedMean", vec![("beta", RawValue::Float(0.2))]),
            ("FedMedian", vec![]),
            ("Krum", vec![("f", RawValue::Int(4))]),
            ("FedAvg", vec![]),
        ] {
            let rule = Strategy::new(rule, &params).unwrap();
            let (m, stats) = adaptive("ipm_opt", &[], &rows, 4, Some(&rule));
            let hit =
                |c: &[f32]| damage(&outcome(&rule, &honest, 4, c).unwrap().value, &stats.mean);
            let best = hit(&m.unwrap());
            for k in 0..10 {
                let grid_point = candidate(&stats.mean, k as f64).unwrap();
                assert!(best >= hit(&grid_point), "{}: τ = {k}", rule.name());
            }
        }
        // A huge start overflows f32: skipped, and the rest of the search goes on.
        let fedavg = Strategy::new("FedAvg", &[]).unwrap();
        let params = [
            ("start", RawValue::Float(1e300)),
            ("delta", RawValue::Float(-1e300)),
        ];
        let (m, _) = adaptive("ipm_opt", &params, &rows, 4, Some(&fedavg));
        assert!(m.unwrap().iter().all(|v| v.is_finite()));
    }
}
