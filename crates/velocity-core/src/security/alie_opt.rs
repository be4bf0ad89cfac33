//! Optimal ALIE (ByzFL's `Optimal_ALittleIsEnough`): ALIE with the factor τ
//! chosen each round to push the real rule's aggregate as far as possible from
//! the honest mean.
//!
//! ```text
//! a(τ) = μ + τ · s,        τ* = argmax_τ ‖Agg(x_1 … x_h, a(τ) × f) − μ‖₂
//! ```
//! where
//! * x_1 … x_h are this round's honest updates, μ their coordinate-wise mean
//!   and s their coordinate-wise sample standard deviation (ddof = 1, as
//!   ByzFL; 0 when h = 1);
//! * Agg is the run's real rule, pre-aggregators included, on the round's
//!   matrix with the f rows of this attack set to a(τ);
//! * τ* comes from the line search plus grid of [`search`](super::search)
//!   (`evals` aggregations at most; with `grid = 0` it is ByzFL's search);
//!   a candidate that overflows f32 is skipped (no aggregation, no damage).
//!
//! ByzFL's sign is +τ·s, with τ searched up from `start`; velocity's `alie`
//! sends μ − z·σ (population σ). A negative `delta` searches downwards.
//!
//! Parameters: `evals` (int ≥ 1, default 15: a round within 20 aggregations,
//! bench/README.md; ByzFL's 20), `grid` (int ≥ 0, default 8),
//! `start` (float, default 0), `delta` (float ≠ 0, default 10), `ratio`
//! (float in (0.5, 1), default 0.8), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, AdaptiveContext, Apply, HonestStats, Outcome, Params, RawValue};
//!
//! let honest: Vec<&[f32]> = vec![&[1.0, 0.0], &[3.0, 0.0]]; // μ = [2, 0], s = [√2, 0]
//! let stats = HonestStats::compute(&honest).unwrap();
//! // A rule that returns the candidate: the damage grows with τ, the search
//! // keeps the largest τ it tried (ByzFL's expansion 0, 10, 30, 70).
//! let echo = |c: &[f32]| Ok(Outcome { value: c.to_vec(), byzantine_selected: None });
//! let ctx = AdaptiveContext { honest: &honest, stats: &stats, n: 3, f: 1, aggregate: &echo };
//! let raw = [("evals".to_string(), RawValue::Int(4)), ("grid".to_string(), RawValue::Int(0))];
//! let p = Params::validate("alie_opt", &raw).unwrap();
//! let Apply::Adaptive(run) = p.spec().apply else { unreachable!() };
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)).unwrap(), vec![(2.0 + 70.0 * 2f64.sqrt()) as f32, 0.0]);
//! ```
//!
//! References:
//! 1. Baruch, Baruch and Goldberg, "A Little Is Enough: Circumventing Defenses
//!    for Distributed Learning", NeurIPS 2019. <https://arxiv.org/abs/1902.06156>
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
    name: "alie_opt",
    aliases: &["Optimal_ALittleIsEnough", "OptimalALIE", "Optimal_ALIE"],
    description: "optimal ALIE: mu + tau*s with tau searched each round to maximise the real \
                  rule's distance from the honest mean",
    reference: "Baruch et al. 2019, https://arxiv.org/abs/1902.06156; optimised as ByzFL's \
                Optimal_ALittleIsEnough (Allouah et al. 2023, https://arxiv.org/abs/2302.01772)",
    params: &search::PARAMS,
    apply: Apply::Adaptive(alie_opt),
    adaptive: true,
    check: Some(search::check),
};

/// ByzFL's ALIE vector μ + τ·s (None if it overflows f32).
fn candidate(mean: &[f64], sample_std: &[f64], tau: f64) -> Option<Vec<f32>> {
    to_f32(mean.par_iter().zip(sample_std).map(|(m, s)| m + tau * s))
}

fn alie_opt(ctx: &AdaptiveContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    let (mean, h) = (&ctx.stats.mean, ctx.honest.len());
    let ddof = if h > 1 {
        (h as f64 / (h - 1) as f64).sqrt()
    } else {
        0.0
    };
    let std: Vec<f64> = ctx.stats.std.iter().map(|s| s * ddof).collect();
    let tau = Search::from_params(p).maximise(|tau| match candidate(mean, &std, tau) {
        Some(c) => Ok(damage(&(ctx.aggregate)(&c)?.value, mean)),
        None => Ok(f64::NEG_INFINITY),
    })?;
    Ok(candidate(mean, &std, tau).unwrap_or_else(|| mean.iter().map(|&m| m as f32).collect()))
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
        // numpy: x = [[1, 2, 0], [3, 2, 4], [2, 5, 2]]; x.mean(0) + 1.5 * x.std(0, ddof=1)
        // = [3.5, 3 + 1.5·√3, 5.0]
        let rows = vec![
            vec![1.0f32, 2.0, 0.0],
            vec![3.0, 2.0, 4.0],
            vec![2.0, 5.0, 2.0],
        ];
        let fedavg = Strategy::new("FedAvg", &[]).unwrap();
        let params = [("evals", RawValue::Int(1)), ("start", RawValue::Float(1.5))];
        let (m, _) = adaptive("alie_opt", &params, &rows, 1, Some(&fedavg));
        let want = [3.5f64, 3.0 + 1.5 * 3f64.sqrt(), 5.0];
        let m = m.unwrap();
        for (a, w) in m.iter().zip(want) {
            assert!((f64::from(*a) - w).abs() < 1e-6, "{m:?}");
        }
        // One honest row: s = 0, the row itself.
        let one = vec![vec![1.0f32, -1.0]];
        let (m, _) = adaptive("alie_opt", &[], &one, 1, Some(&fedavg));
        assert_eq!(m.unwrap(), one[0]);
    }

    #[test]
    fn at_least_as_damaging_as_a_fixed_grid() {
        let rows = random_rows(11, 12, 64);
        let honest: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        for (rule, params) in [
            ("TrimmedMean", vec![("beta", RawValue::Float(0.2))]),
            ("FedMedian", vec![]),
            ("Krum", vec![("f", RawValue::Int(4))]),
        ] {
            let rule = Strategy::new(rule, &params).unwrap();
            let (m, stats) = adaptive("alie_opt", &[], &rows, 4, Some(&rule));
            let hit =
                |c: &[f32]| damage(&outcome(&rule, &honest, 4, c).unwrap().value, &stats.mean);
            let best = hit(&m.unwrap());
            let s: Vec<f64> = stats
                .std
                .iter()
                .map(|v| v * (12f64 / 11.0).sqrt())
                .collect();
            for k in 0..10 {
                let tau = k as f64;
                let grid_point = candidate(&stats.mean, &s, tau).unwrap();
                assert!(best >= hit(&grid_point), "{}: τ = {tau}", rule.name());
            }
        }
    }
}
