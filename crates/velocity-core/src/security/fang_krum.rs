//! Fang et al.'s full-knowledge attack on Krum, in update space: every
//! Byzantine client sends the reversed honest direction, scaled by the largest
//! λ (halving from the paper's upper bound) that makes the real rule select a
//! Byzantine row.
//!
//! ```text
//! a = −λ · s,    s = sign(μ)
//! λ₀ = 1/((n − 2f − 1)·√d) · min_i Σ_{l ∈ Γ_i} ‖x_l − x_i‖  +  1/√d · max_i ‖x_i‖
//! λ = λ₀, λ₀/2, λ₀/4, …  until the rule selects a Byzantine row, λ < `threshold`
//!                        or `evals` aggregations are spent
//! ```
//! where
//! * x_1 … x_h are this round's honest updates, μ their coordinate-wise mean
//!   and s its coordinate-wise sign (the direction the honest clients move the
//!   model; sign 0 stays 0);
//! * n is the number of participating clients, f the rows this attack replaces
//!   and d the number of coordinates;
//! * Γ_i holds the n − f − 2 honest updates closest to x_i (at most the h − 1
//!   others); n − 2f − 1 is taken as at least 1;
//! * ‖x_i‖ is the paper's D(w_i, w_Re) with the before-attack model w_Re = the
//!   global model, i.e. the zero update.
//!
//! It sends the first λ whose aggregate selects a Byzantine row
//! (`byzantine_selected == Some(true)`); if none does, the last λ tried. A
//! rule that does not select (`None`) gets, among the λ tried, the one whose
//! aggregate lands farthest from μ (‖aggregate − μ‖, the first on ties). At
//! least one λ is tried. The paper also crafts the other f − 1 rows close to
//! the first; here all f rows send the same vector.
//!
//! Parameters: `threshold` (float > 0, default 1e-5), `evals` (int ≥ 1,
//! default 19), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, AdaptiveContext, Apply, HonestStats, Outcome, Params};
//!
//! let honest: Vec<&[f32]> = vec![&[1.0, 1.0], &[1.0, 1.0]];
//! let stats = HonestStats::compute(&honest).unwrap();
//! // A rule that selects a Byzantine row once the candidate is small enough.
//! let rule = |c: &[f32]| Ok(Outcome { value: c.to_vec(), byzantine_selected: Some(c[0].abs() < 0.5) });
//! let ctx = AdaptiveContext { honest: &honest, stats: &stats, n: 3, f: 1, aggregate: &rule };
//! let p = Params::validate("fang_krum", &[]).unwrap();
//! let Apply::Adaptive(run) = p.spec().apply else { unreachable!() };
//! // λ₀ = 0/(1·√2) + √2/√2 = 1; λ = 1 is not selected, λ = 1/2 neither, λ = 1/4 is.
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)).unwrap(), vec![-0.25, -0.25]);
//! ```
//!
//! References:
//! 1. Fang, Cao, Jia and Gong, "Local Model Poisoning Attacks to
//!    Byzantine-Robust Federated Learning", USENIX Security 2020.
//!    <https://arxiv.org/abs/1911.11815>

use super::math::{damage, to_f32};
use super::{AdaptiveContext, Apply, AttackSpec, Params};
use crate::error::Result;
use crate::schema::ParamSpec;
use crate::strategy::{locate_non_finite, pairwise_sq_distances};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "fang_krum",
    aliases: &["FangKrum", "Fang-Krum"],
    description: "Fang et al.'s attack on Krum: -lambda*sign(mu), lambda halved from the \
                  paper's bound until the real rule selects a Byzantine row",
    reference: "Fang et al. 2020, Local Model Poisoning Attacks to Byzantine-Robust Federated \
                Learning, USENIX Security, https://arxiv.org/abs/1911.11815",
    params: &[
        ParamSpec::float("threshold", 1e-5, "smallest lambda tried").min(0.0, false),
        ParamSpec::int("evals", 19, "most aggregations per round")
            .min(1.0, true)
            .max(1000.0, true),
    ],
    apply: Apply::Adaptive(fang_krum),
    adaptive: true,
    check: None,
};

/// The paper's upper bound λ₀ on the honest rows.
fn lambda_bound(honest: &[&[f32]], dist: &[f64], n: usize, f: usize) -> f64 {
    let h = honest.len();
    let d = honest[0].len().max(1) as f64;
    let k = n.saturating_sub(f + 2).min(h - 1);
    let min_score = (0..h)
        .map(|i| {
            let mut near: Vec<f64> = (0..h)
                .filter(|&j| j != i)
                .map(|j| dist[i * h + j].sqrt())
                .collect();
            near.sort_unstable_by(f64::total_cmp);
            near.iter().take(k).sum::<f64>()
        })
        .fold(f64::INFINITY, f64::min);
    let denom = n.saturating_sub(2 * f + 1).max(1) as f64;
    let max_norm = honest
        .iter()
        .map(|x| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt())
        .fold(0.0, f64::max);
    min_score / (denom * d.sqrt()) + max_norm / d.sqrt()
}

fn fang_krum(ctx: &AdaptiveContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    let mean = &ctx.stats.mean;
    if ctx.honest.is_empty() {
        return Ok(vec![0f32; mean.len()]);
    }
    let dist = pairwise_sq_distances(ctx.honest).map_err(|_| locate_non_finite(ctx.honest))?;
    let sign: Vec<f64> = mean
        .iter()
        .map(|&m| if m == 0.0 { 0.0 } else { m.signum() })
        .collect();
    let candidate = |lambda: f64| to_f32(sign.par_iter().map(|s| -lambda * s));
    let threshold = p.float("threshold");
    let evals = usize::try_from(p.int("evals")).unwrap_or(1);
    let mut lambda = lambda_bound(ctx.honest, &dist, ctx.n, ctx.f);
    // (λ, damage) of the farthest aggregate, for rules that do not select.
    let mut best: Option<(f64, f64)> = None;
    let mut last = lambda;
    for _ in 0..evals {
        last = lambda;
        if let Some(c) = candidate(lambda) {
            let out = (ctx.aggregate)(&c)?;
            match out.byzantine_selected {
                Some(true) => return Ok(c),
                Some(false) => {}
                None => {
                    let y = damage(&out.value, mean);
                    if best.is_none_or(|(_, b)| y > b) {
                        best = Some((lambda, y));
                    }
                }
            }
        }
        lambda /= 2.0;
        if lambda < threshold {
            break;
        }
    }
    let chosen = best.map_or(last, |(l, _)| l);
    Ok(candidate(chosen).unwrap_or_else(|| vec![0f32; mean.len()]))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{adaptive, outcome, random_rows};
    use super::*;
    use crate::schema::RawValue;
    use crate::strategy::Strategy;

    #[test]
    fn bound_matches_the_paper_formula() {
        // h = 3 honest rows, n = 5, f = 2: k = n − f − 2 = 1 neighbour,
        // n − 2f − 1 = 0 → 1, d = 2.
        let rows: Vec<&[f32]> = vec![&[0.0, 0.0], &[3.0, 4.0], &[0.0, 1.0]];
        let dist = pairwise_sq_distances(&rows).unwrap();
        // min_i nearest distance = 1 (rows 0 and 2); max ‖x_i‖ = 5.
        let want = 1.0 / 2f64.sqrt() + 5.0 / 2f64.sqrt();
        assert!((lambda_bound(&rows, &dist, 5, 2) - want).abs() < 1e-12);
        // n = 10, f = 2: k = 6 capped at h − 1 = 2, n − 2f − 1 = 5.
        // Sums: row 0: 1 + 5, row 1: 5 + √18, row 2: 1 + √18 → min 1 + √18.
        let want = (1.0 + 18f64.sqrt()) / (5.0 * 2f64.sqrt()) + 5.0 / 2f64.sqrt();
        assert!((lambda_bound(&rows, &dist, 10, 2) - want).abs() < 1e-6);
    }

    #[test]
    fn krum_selects_the_attack_and_it_reverses_the_mean() {
        // Spread-out honest updates around a small mean: a small enough
        // reversed update sits closer to them than they sit to each other.
        let mut rows = random_rows(5, 9, 40);
        for r in &mut rows {
            for v in r.iter_mut() {
                *v += 0.1;
            }
        }
        let krum = Strategy::new("Krum", &[("f", RawValue::Int(3))]).unwrap();
        let (m, stats) = adaptive("fang_krum", &[], &rows, 3, Some(&krum));
        let m = m.unwrap();
        let honest: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let out = outcome(&krum, &honest, 3, &m).unwrap();
        assert_eq!(out.byzantine_selected, Some(true));
        // −λ·sign(μ) with λ ≥ threshold.
        let lambda = f64::from(m[0].abs());
        assert!(lambda >= 1e-5);
        let reversed = |l: f64| -> Vec<f32> {
            stats
                .mean
                .iter()
                .map(|&mu| (-l * mu.signum()) as f32)
                .collect()
        };
        assert_eq!(m, reversed(lambda));
        // The largest such λ on the halving grid: 2λ is not selected (or 2λ > λ₀).
        let dist = pairwise_sq_distances(&honest).unwrap();
        let bound = lambda_bound(&honest, &dist, 12, 3);
        assert!(
            (2.0 * lambda > bound * (1.0 + 1e-6))
                || outcome(&krum, &honest, 3, &reversed(2.0 * lambda))
                    .unwrap()
                    .byzantine_selected
                    == Some(false)
        );
    }

    #[test]
    fn non_selection_rules_get_the_farthest_lambda() {
        let rows = random_rows(6, 7, 30);
        let mean = Strategy::new("FedAvg", &[]).unwrap();
        let (m, stats) = adaptive("fang_krum", &[], &rows, 2, Some(&mean));
        let m = m.unwrap();
        // FedAvg moves linearly with the candidate: the largest λ (λ₀) wins.
        let honest: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let dist = pairwise_sq_distances(&honest).unwrap();
        let bound = lambda_bound(&honest, &dist, 9, 2);
        let k = stats.mean.iter().position(|&v| v != 0.0).unwrap();
        assert_eq!(m[k], (-bound * stats.mean[k].signum()) as f32);
    }

    #[test]
    fn never_selected_sends_the_last_lambda_and_budget_holds() {
        let rows = [vec![1.0f32, 1.0], vec![1.0, 1.0]];
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let honest: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let stats = super::super::HonestStats::compute(&honest).unwrap();
        let rule = |c: &[f32]| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(super::super::Outcome {
                value: c.to_vec(),
                byzantine_selected: Some(false),
            })
        };
        let ctx = AdaptiveContext {
            honest: &honest,
            stats: &stats,
            n: 3,
            f: 1,
            aggregate: &rule,
        };
        let p = Params::validate("fang_krum", &[("evals".to_string(), RawValue::Int(4))]).unwrap();
        let m = fang_krum(&ctx, &p, &mut super::super::rng_for(0, 0, 0, 0)).unwrap();
        // λ₀ = 1, tried 1, 1/2, 1/4, 1/8.
        assert_eq!(m, vec![-0.125, -0.125]);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 4);
        // All honest updates zero: λ₀ = 0, one try, zeros sent.
        let zero = vec![vec![0.0f32; 3]; 3];
        let fedavg = Strategy::new("FedAvg", &[]).unwrap();
        let (m, _) = adaptive("fang_krum", &[], &zero, 1, Some(&fedavg));
        assert_eq!(m.unwrap(), vec![0.0; 3]);
    }
}
