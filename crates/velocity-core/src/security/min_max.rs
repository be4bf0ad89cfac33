//! Min-Max and Min-Sum (Shejwalkar and Houmansadr's AGR-agnostic attacks):
//! every Byzantine client sends the honest mean pushed as far along a fixed
//! perturbation as it can go while staying no farther from the honest updates
//! than they are from each other.
//!
//! ```text
//! m(γ) = μ + γ · p
//! Min-Max:  γ* = max γ  s.t.  max_i ‖m(γ) − x_i‖² ≤ max_{i,j} ‖x_i − x_j‖²
//! Min-Sum:  γ* = max γ  s.t.  Σ_i ‖m(γ) − x_i‖² ≤ max_i Σ_j ‖x_i − x_j‖²
//! p = −μ/‖μ‖ (direction 0, "unit"),  −sign(μ) (1, "sign"),  −σ (2, "std")
//! ```
//! where
//! * x_1 … x_h are this round's honest updates, μ their coordinate-wise mean
//!   and σ their coordinate-wise population standard deviation (the reference
//!   code's `torch.std` is the sample one: the search absorbs the scale, only
//!   the cap 2·γ_init differs by √(h/(h−1)));
//! * p is the perturbation (`direction`; 0 when μ = 0 for "unit"/"sign");
//! * γ* is found as in the reference code (`our_attack_dist` /
//!   `our_attack_score`): γ = γ_init, s = γ_init, γ_ok = 0; while
//!   |γ_ok − γ| > `tol` (and at most `iters` tests): if the constraint holds at
//!   γ then γ_ok = γ, γ ← γ + s/2, else γ ← γ − s/2; s ← s/2. It sends m(γ_ok).
//!   γ = 0 always satisfies both constraints (μ lies in the honest hull), so
//!   γ_ok is within the last step of the largest feasible γ ≤ 2·γ_init.
//!
//! The squared distances expand as ‖μ − x_i‖² + 2γ⟨μ − x_i, p⟩ + γ²‖p‖², so
//! after one O(h·d) pass (plus the pairwise honest distances, the Krum kernel)
//! each test of γ costs O(h). The rule is never called: these attacks are
//! agnostic of the aggregation rule. The Min-Sum bound is the paper's max_i;
//! the reference code uses min_i.
//!
//! Parameters: `direction` (int: 0 unit, 1 sign, 2 std; default 2),
//! `gamma_init` (float > 0, default 10), `tol` (float > 0, default 1e-5),
//! `iters` (int ≥ 1, default 20), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, AdaptiveContext, Apply, HonestStats, Params};
//!
//! let honest: Vec<&[f32]> = vec![&[0.0, 0.0], &[2.0, 0.0]]; // μ = [1, 0], σ = [1, 0]
//! let stats = HonestStats::compute(&honest).unwrap();
//! let never = |_: &[f32]| unreachable!("agnostic of the rule");
//! let ctx = AdaptiveContext { honest: &honest, stats: &stats, n: 3, f: 1, aggregate: &never };
//! let p = Params::validate("min_max", &[]).unwrap();
//! let Apply::Adaptive(run) = p.spec().apply else { unreachable!() };
//! // p = −σ, m = [1 − γ, 0]; max_i ‖m − x_i‖ = 1 + γ ≤ 2 = ‖x_1 − x_2‖: γ* = 1.
//! let m = run(&ctx, &p, &mut rng_for(0, 0, 0, 0)).unwrap();
//! assert!(m[0].abs() < 1e-4 && m[1] == 0.0);
//! ```
//!
//! References:
//! 1. Shejwalkar and Houmansadr, "Manipulating the Byzantine: Optimizing Model
//!    Poisoning Attacks and Defenses for Federated Learning", NDSS 2021.
//!    <https://www.ndss-symposium.org/ndss-paper/manipulating-the-byzantine-optimizing-model-poisoning-attacks-and-defenses-for-federated-learning/>

use super::math::to_f32;
use super::{AdaptiveContext, Apply, AttackSpec, Params};
use crate::error::Result;
use crate::parallel::{chunk_range, num_chunks};
use crate::schema::ParamSpec;
use crate::strategy::{locate_non_finite, pairwise_sq_distances};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const PARAMS: [ParamSpec; 4] = [
    ParamSpec::int(
        "direction",
        2,
        "perturbation p: 0 = -mu/|mu| (unit), 1 = -sign(mu) (sign), 2 = -sigma (std)",
    )
    .min(0.0, true)
    .max(2.0, true),
    ParamSpec::float(
        "gamma_init",
        10.0,
        "first gamma tested; the search caps at 2x",
    )
    .min(0.0, false),
    ParamSpec::float(
        "tol",
        1e-5,
        "stop when the tested gamma is this close to the last feasible one",
    )
    .min(0.0, false),
    ParamSpec::int("iters", 20, "most constraint tests")
        .min(1.0, true)
        .max(1000.0, true),
];

pub(super) const MIN_MAX: AttackSpec = AttackSpec {
    name: "min_max",
    aliases: &["MinMax", "Min-Max"],
    description: "Min-Max: the honest mean pushed along a perturbation as far as the largest \
                  honest pairwise distance allows",
    reference: "Shejwalkar and Houmansadr 2021, Manipulating the Byzantine: Optimizing Model \
                Poisoning Attacks and Defenses for Federated Learning, NDSS, \
                https://www.ndss-symposium.org/ndss-paper/manipulating-the-byzantine-optimizing-model-poisoning-attacks-and-defenses-for-federated-learning/",
    params: &PARAMS,
    apply: Apply::Adaptive(min_max),
    adaptive: true,
    check: None,
};

pub(super) const MIN_SUM: AttackSpec = AttackSpec {
    name: "min_sum",
    aliases: &["MinSum", "Min-Sum"],
    description: "Min-Sum: the honest mean pushed along a perturbation as far as the largest \
                  honest sum of squared distances allows",
    reference: MIN_MAX.reference,
    params: &PARAMS,
    apply: Apply::Adaptive(min_sum),
    adaptive: true,
    check: None,
};

/// Which constraint the search keeps.
#[derive(Clone, Copy)]
enum Bound {
    /// max_i ‖m − x_i‖² ≤ max_{i,j} ‖x_i − x_j‖².
    MaxDistance,
    /// Σ_i ‖m − x_i‖² ≤ max_i Σ_j ‖x_i − x_j‖².
    SumOfDistances,
}

fn min_max(ctx: &AdaptiveContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    attack(ctx, p, Bound::MaxDistance)
}

fn min_sum(ctx: &AdaptiveContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    attack(ctx, p, Bound::SumOfDistances)
}

/// The perturbation p of `direction` (0 unit, 1 sign, 2 std).
fn perturbation(direction: i64, mean: &[f64], std: &[f64]) -> Vec<f64> {
    let sign = |m: f64| if m == 0.0 { 0.0 } else { -m.signum() };
    match direction {
        0 => {
            let norm = mean.iter().map(|m| m * m).sum::<f64>().sqrt();
            let scale = if norm > 0.0 { -1.0 / norm } else { 0.0 };
            mean.iter().map(|m| m * scale).collect()
        }
        1 => mean.iter().map(|&m| sign(m)).collect(),
        _ => std.iter().map(|s| -s).collect(),
    }
}

/// (‖μ − x_i‖², ⟨μ − x_i, p⟩) for every row, summed per fixed chunk and the
/// chunks in order (bit-identical for any thread count).
fn expansion(rows: &[&[f32]], mean: &[f64], p: &[f64]) -> Vec<(f64, f64)> {
    let d = mean.len();
    let partials: Vec<Vec<(f64, f64)>> = (0..num_chunks(d))
        .into_par_iter()
        .map(|c| {
            let r = chunk_range(c, d);
            rows.iter()
                .map(|row| {
                    let (mut a, mut b) = (0f64, 0f64);
                    for ((&x, &m), &q) in row[r.clone()]
                        .iter()
                        .zip(&mean[r.clone()])
                        .zip(&p[r.clone()])
                    {
                        let t = m - f64::from(x);
                        a += t * t;
                        b += t * q;
                    }
                    (a, b)
                })
                .collect()
        })
        .collect();
    let mut out = vec![(0f64, 0f64); rows.len()];
    for partial in &partials {
        for (o, q) in out.iter_mut().zip(partial) {
            o.0 += q.0;
            o.1 += q.1;
        }
    }
    out
}

/// The reference code's bisection: the last γ that passed `ok` (0 if none).
fn search(gamma_init: f64, tol: f64, iters: usize, ok: impl Fn(f64) -> bool) -> f64 {
    let (mut gamma, mut step, mut passed) = (gamma_init, gamma_init, 0.0);
    for _ in 0..iters {
        if (passed - gamma).abs() <= tol {
            break;
        }
        if ok(gamma) {
            passed = gamma;
            gamma += step / 2.0;
        } else {
            gamma -= step / 2.0;
        }
        step /= 2.0;
    }
    passed
}

/// γ* for the rows' expansion `terms`, ‖p‖² = `pp` and the pairwise squared
/// distances `dist` (h × h).
fn best_gamma(bound: Bound, terms: &[(f64, f64)], pp: f64, dist: &[f64], p: &Params) -> f64 {
    let h = terms.len();
    let sq = |g: f64, (a, b): (f64, f64)| a + 2.0 * g * b + g * g * pp;
    let iters = usize::try_from(p.int("iters")).unwrap_or(1);
    let (gamma_init, tol) = (p.float("gamma_init"), p.float("tol"));
    match bound {
        Bound::MaxDistance => {
            let limit = dist.iter().copied().fold(0.0, f64::max);
            search(gamma_init, tol, iters, |g| {
                terms.iter().all(|&t| sq(g, t) <= limit)
            })
        }
        Bound::SumOfDistances => {
            let limit = dist
                .chunks(h)
                .map(|row| row.iter().sum::<f64>())
                .fold(0.0, f64::max);
            search(gamma_init, tol, iters, |g| {
                terms.iter().map(|&t| sq(g, t)).sum::<f64>() <= limit
            })
        }
    }
}

fn attack(ctx: &AdaptiveContext<'_>, p: &Params, bound: Bound) -> Result<Vec<f32>> {
    let mean = &ctx.stats.mean;
    if ctx.honest.is_empty() {
        return Ok(vec![0f32; mean.len()]);
    }
    let dir = perturbation(p.int("direction"), mean, &ctx.stats.std);
    let dist = pairwise_sq_distances(ctx.honest).map_err(|_| locate_non_finite(ctx.honest))?;
    let terms = expansion(ctx.honest, mean, &dir);
    let pp = dir.iter().map(|q| q * q).sum::<f64>();
    let gamma = best_gamma(bound, &terms, pp, &dist, p);
    // m(γ) overflows f32 only if μ does not fit; fall back to μ then.
    Ok(
        to_f32(mean.par_iter().zip(&dir).map(|(m, q)| m + gamma * q))
            .unwrap_or_else(|| mean.iter().map(|&m| m as f32).collect()),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{adaptive, random_rows};
    use super::*;
    use crate::schema::RawValue;

    /// Naive f64 constraint values at m: (max_i ‖m − x_i‖², Σ_i ‖m − x_i‖²).
    fn naive(rows: &[Vec<f32>], m: &[f32]) -> (f64, f64) {
        let sq: Vec<f64> = rows
            .iter()
            .map(|x| {
                x.iter()
                    .zip(m)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum()
            })
            .collect();
        (sq.iter().copied().fold(0.0, f64::max), sq.iter().sum())
    }

    /// Naive (max_{i,j} ‖x_i − x_j‖², max_i Σ_j ‖x_i − x_j‖²).
    fn naive_limits(rows: &[Vec<f32>]) -> (f64, f64) {
        let sums: Vec<Vec<f64>> = rows
            .iter()
            .map(|x| {
                rows.iter()
                    .map(|y| naive(std::slice::from_ref(y), x).0)
                    .collect()
            })
            .collect();
        (
            sums.iter().flatten().copied().fold(0.0, f64::max),
            sums.iter()
                .map(|r| r.iter().sum::<f64>())
                .fold(0.0, f64::max),
        )
    }

    /// The largest γ ≥ 0 with the constraint, solved in closed form per row
    /// (c γ² + 2 b γ + a − T ≤ 0), from naive sums.
    fn largest_feasible(rows: &[Vec<f32>], mean: &[f64], dir: &[f64], sum: bool) -> f64 {
        let c: f64 = dir.iter().map(|q| q * q).sum();
        let ab: Vec<(f64, f64)> = rows
            .iter()
            .map(|x| {
                let t: Vec<f64> = x.iter().zip(mean).map(|(&a, m)| m - f64::from(a)).collect();
                (
                    t.iter().map(|v| v * v).sum(),
                    t.iter().zip(dir).map(|(v, q)| v * q).sum(),
                )
            })
            .collect();
        let (max_pair, max_sum) = naive_limits(rows);
        let root = |a: f64, b: f64, c: f64, limit: f64| {
            (-b + (b * b - c * (a - limit)).max(0.0).sqrt()) / c
        };
        if sum {
            let h = rows.len() as f64;
            let a: f64 = ab.iter().map(|t| t.0).sum();
            let b: f64 = ab.iter().map(|t| t.1).sum();
            root(a, b, h * c, max_sum)
        } else {
            ab.iter()
                .map(|&(a, b)| root(a, b, c, max_pair))
                .fold(f64::INFINITY, f64::min)
        }
    }

    #[test]
    fn gamma_is_the_largest_feasible_within_the_last_step() {
        for (seed, h, d) in [(1, 8, 50), (2, 3, 4099), (3, 12, 7)] {
            let rows = random_rows(seed, h, d);
            for (name, sum) in [("min_max", false), ("min_sum", true)] {
                for direction in 0..3 {
                    let params = [("direction", RawValue::Int(direction))];
                    let (m, stats) = adaptive(name, &params, &rows, 2, None);
                    let m = m.unwrap();
                    let (max_sq, sum_sq) = naive(&rows, &m);
                    let (max_pair, max_sum) = naive_limits(&rows);
                    let (got, limit) = if sum {
                        (sum_sq, max_sum)
                    } else {
                        (max_sq, max_pair)
                    };
                    assert!(
                        got <= limit * (1.0 + 1e-5),
                        "{name} {direction}: {got} > {limit}"
                    );
                    let dir = perturbation(direction, &stats.mean, &stats.std);
                    let want = largest_feasible(&rows, &stats.mean, &dir, sum).min(20.0);
                    // γ from the sent vector: m − μ = γ p.
                    let k = dir.iter().position(|q| q.abs() > 1e-3).unwrap();
                    let gamma = (f64::from(m[k]) - stats.mean[k]) / dir[k];
                    let last_step = 10.0 / 2f64.powi(20);
                    assert!(
                        (gamma - want).abs() <= 2.0 * last_step + 1e-4 * want,
                        "{name} {direction}: γ = {gamma}, largest feasible {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn degenerate_rounds_send_the_mean() {
        // One honest row: no room at all, m = x_1.
        let rows = vec![vec![1.0f32, -2.0, 3.0]];
        let (m, _) = adaptive("min_max", &[], &rows, 2, None);
        assert_eq!(m.unwrap(), rows[0]);
        // Identical rows (σ = 0): p = 0, m = μ whatever γ.
        let rows = vec![vec![0.5f32; 3]; 4];
        let (m, _) = adaptive("min_sum", &[], &rows, 2, None);
        assert_eq!(m.unwrap(), vec![0.5; 3]);
        // μ = 0 with the unit or sign direction: p = 0.
        let rows = vec![vec![1.0f32, -1.0], vec![-1.0, 1.0]];
        for dir in [0, 1] {
            let params = [("direction", RawValue::Int(dir))];
            let (m, _) = adaptive("min_max", &params, &rows, 1, None);
            assert_eq!(m.unwrap(), vec![0.0, 0.0]);
        }
    }

    #[test]
    fn bisection_follows_the_reference_loop() {
        // Feasible up to 3: the reference loop's trajectory ends within tol.
        let g = search(10.0, 1e-5, 100, |g| g <= 3.0);
        assert!(g <= 3.0 && 3.0 - g < 2e-5, "{g}");
        // Always feasible: capped below 2·γ_init.
        let g = search(10.0, 1e-5, 100, |_| true);
        assert!(g < 20.0 && 20.0 - g < 2e-5, "{g}");
        assert_eq!(search(10.0, 1e-5, 100, |_| false), 0.0);
        // The iteration cap stops it.
        assert_eq!(search(10.0, 1e-5, 1, |_| true), 10.0);
    }

    #[test]
    fn bit_identical_for_any_thread_count() {
        let rows = random_rows(7, 6, 3 * crate::parallel::CHUNK + 5);
        let run = |t| {
            crate::parallel::install(Some(t), || adaptive("min_sum", &[], &rows, 2, None).0)
                .unwrap()
                .unwrap()
        };
        assert_eq!(run(1), run(3));
    }
}
