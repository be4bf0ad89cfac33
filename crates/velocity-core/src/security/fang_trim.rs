//! Fang et al.'s full-knowledge attack on the trimmed mean and the median, in
//! update space: on every coordinate each Byzantine client sends a random
//! value just beyond the honest extreme opposite to the honest direction.
//!
//! ```text
//! s_j = sign(μ_j)
//! s_j = −1:  a_j ~ U[w_max,j, b·w_max,j]  if w_max,j > 0,  else U[w_max,j, w_max,j / b]
//! s_j = +1:  a_j ~ U[w_min,j / b, w_min,j]  if w_min,j > 0,  else U[b·w_min,j, w_min,j]
//! s_j =  0:  a_j = 0
//! ```
//! where
//! * j is a coordinate, μ_j the mean of this round's honest updates and s_j
//!   its sign (the direction the honest clients move parameter j);
//! * w_max,j and w_min,j are the largest and smallest honest update values;
//! * b > 1 is `b`: each interval lies between the extreme e and b·e or e/b,
//!   on the side of e away from the honest direction;
//! * sampled as e·r or e/r with r = 1 + (b − 1)·u, u ~ U[0, 1) drawn per
//!   coordinate from the client's keyed generator (as in Fang's
//!   `trim_attack`), so each Byzantine client sends its own values.
//!
//! Without an honest row the attack sends zeros. The rule is not needed.
//!
//! Parameters: `b` (float ≥ 1, default 2), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, Apply, HonestStats, Params, UpdateContext};
//!
//! // μ = [2, -1]: coordinate 0 moves up (pushed below min = 1), 1 down (pushed above max = 0).
//! let honest: Vec<&[f32]> = vec![&[1.0, -2.0], &[3.0, 0.0]];
//! let stats = HonestStats::compute(&honest).unwrap();
//! let ctx = UpdateContext { own: &[9.0; 2], honest: Some(&stats), n: 3, f: 1 };
//! let p = Params::validate("fang_trim", &[]).unwrap();
//! let Apply::Update { run, .. } = p.spec().apply else { unreachable!() };
//! let a = run(&ctx, &p, &mut rng_for(0, 0, 0, 0));
//! assert!((0.5..=1.0).contains(&a[0]) && a[1] == 0.0);
//! ```
//!
//! References:
//! 1. Fang, Cao, Jia and Gong, "Local Model Poisoning Attacks to
//!    Byzantine-Robust Federated Learning", USENIX Security 2020.
//!    <https://arxiv.org/abs/1911.11815>

use super::math::zeros;
use super::{Apply, AttackSpec, Params, UpdateContext};
use crate::schema::ParamSpec;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "fang_trim",
    aliases: &["FangTrim", "FangTrimmedMean", "FangAttack"],
    description: "Fang et al.'s attack on the trimmed mean and median: random values just beyond \
                  the honest extreme opposite to the honest direction",
    reference: "Fang et al. 2020, Local Model Poisoning Attacks to Byzantine-Robust Federated \
                Learning, USENIX Security, https://arxiv.org/abs/1911.11815",
    params: &[
        ParamSpec::float("b", 2.0, "how far beyond the honest extreme (factor)").min(1.0, true),
    ],
    apply: Apply::Update {
        run: fang_trim,
        needs_honest_stats: true,
    },
    adaptive: true,
    check: None,
};

fn fang_trim(ctx: &UpdateContext<'_>, p: &Params, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let Some(stats) = ctx.honest else {
        return zeros(ctx);
    };
    let b = p.float("b");
    stats
        .mean
        .iter()
        .zip(stats.min.iter().zip(&stats.max))
        .map(|(&mu, (&lo, &hi))| {
            let r = 1.0 + (b - 1.0) * rng.random::<f64>();
            let (s, e) = match mu {
                m if m > 0.0 => (1.0, f64::from(lo)),
                m if m < 0.0 => (-1.0, f64::from(hi)),
                _ => return 0.0,
            };
            (if s * e > 0.0 { e / r } else { e * r }) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::raw;
    use super::super::{rng_for, HonestStats};
    use super::*;
    use crate::schema::RawValue;

    #[test]
    fn values_lie_in_the_papers_intervals() {
        // Columns: μ > 0 with min > 0 and min < 0; μ < 0 with max > 0 and
        // max < 0; μ = 0.
        let honest: Vec<&[f32]> = vec![&[1.0, -1.0, 1.0, -3.0, 1.0], &[3.0, 5.0, -5.0, -1.0, -1.0]];
        let stats = HonestStats::compute(&honest).unwrap();
        let ctx = UpdateContext {
            own: &[0.0; 5],
            honest: Some(&stats),
            n: 4,
            f: 2,
        };
        let b = 3.0f32;
        let p = Params::validate("fang_trim", &raw(&[("b", RawValue::Float(3.0))])).unwrap();
        let intervals = [(1.0 / b, 1.0), (-b, -1.0), (1.0, b), (-1.0, -1.0 / b)];
        let mut spread = [f32::INFINITY, f32::NEG_INFINITY];
        for client in 0..200 {
            let a = fang_trim(&ctx, &p, &mut rng_for(1, 2, 3, client));
            for (j, (lo, hi)) in intervals.iter().enumerate() {
                assert!((lo - 1e-6..=hi + 1e-6).contains(&a[j]), "{j}: {}", a[j]);
            }
            assert_eq!(a[4], 0.0);
            spread = [spread[0].min(a[0]), spread[1].max(a[0])];
        }
        // The values fill the interval, not one point.
        assert!(spread[0] < 0.4 && spread[1] > 0.9, "{spread:?}");
        // Keyed: same client, same values; b = 1: exactly the extremes.
        let again = fang_trim(&ctx, &p, &mut rng_for(1, 2, 3, 7));
        assert_eq!(again, fang_trim(&ctx, &p, &mut rng_for(1, 2, 3, 7)));
        let p1 = Params::validate("fang_trim", &raw(&[("b", RawValue::Float(1.0))])).unwrap();
        let a = fang_trim(&ctx, &p1, &mut rng_for(0, 0, 0, 0));
        assert_eq!(a, vec![1.0, -1.0, 1.0, -1.0, 0.0]);
        // No honest row: zeros.
        let none = UpdateContext {
            own: &[1.0; 3],
            honest: None,
            n: 2,
            f: 2,
        };
        assert_eq!(fang_trim(&none, &p, &mut rng_for(0, 0, 0, 0)), vec![0.0; 3]);
    }
}
