//! ALIE, "a little is enough": every Byzantine client sends the honest mean
//! shifted by z honest standard deviations, small enough to pass robust rules.
//!
//! ```text
//! a_k = μ_k − z · σ_k,    z = Φ⁻¹((n − s) / n),    s = max(1, ⌊n/2 + 1⌋ − f)
//! ```
//! where
//! * k is a coordinate, μ_k and σ_k the mean and population standard deviation
//!   of coordinate k over this round's honest updates;
//! * n is the number of participating clients and f the number of them whose
//!   attack is active this round;
//! * s is the number of "supporters" the attackers need, Φ⁻¹ the standard
//!   normal quantile ([`normal_quantile`](super::normal_quantile));
//! * z is the `z` parameter when given, else the formula (n < 2 gives z = 0).
//!
//! All Byzantine clients send the same vector a. Without an honest row the
//! attack sends zeros.
//!
//! Parameters: `z` (float or None, default None: derived from n and f), plus
//! the common ones.
//!
//! ```
//! use _core::security::{rng_for, Apply, HonestStats, Params, RawValue, UpdateContext};
//!
//! let honest: Vec<&[f32]> = vec![&[1.0, 1.0, 1.0], &[3.0, 1.0, -1.0]]; // μ = [2, 1, 0], σ = [1, 0, 1]
//! let stats = HonestStats::compute(&honest).unwrap();
//! let ctx = UpdateContext { own: &[9.0; 3], honest: Some(&stats), n: 4, f: 2 };
//! let p = Params::validate("alie", &[("z".to_string(), RawValue::Float(1.0))]).unwrap();
//! let Apply::Update { run, .. } = p.spec().apply else { unreachable!() };
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)), vec![1.0, 1.0, -1.0]);
//! ```
//!
//! References:
//! 1. Baruch, Baruch and Goldberg, "A Little Is Enough: Circumventing Defenses
//!    for Distributed Learning", NeurIPS 2019. <https://arxiv.org/abs/1902.06156>

use super::math::{normal_quantile, zeros};
use super::{Apply, AttackSpec, Params, UpdateContext};
use crate::schema::ParamSpec;
use rand_chacha::ChaCha8Rng;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "alie",
    aliases: &["ALittleIsEnough"],
    description: "A little is enough: sends mu - z*sigma of the honest updates, \
                  small enough to pass robust aggregators",
    reference: "Baruch et al. 2019, A Little Is Enough: Circumventing Defenses for \
                Distributed Learning, https://arxiv.org/abs/1902.06156",
    params: &[ParamSpec::float(
        "z",
        0.0,
        "deviation in honest standard deviations; None = derived from n and f",
    )
    .nullable()],
    apply: Apply::Update {
        run: alie,
        needs_honest_stats: true,
    },
    adaptive: false,
    check: None,
};

/// ALIE's default z: s = ⌊n/2 + 1⌋ − f, z = Φ⁻¹((n − s)/n).
///
/// s is clamped to at least 1 (a Byzantine majority would give s ≤ 0 and
/// z = +∞), so z stays finite; n < 2 gives z = 0.
///
/// ```
/// use _core::security::{alie_default_z, normal_quantile};
///
/// // n = 50, f = 10: s = 26 − 10 = 16, z = Φ⁻¹(34/50).
/// assert_eq!(alie_default_z(50, 10), normal_quantile(0.68));
/// assert_eq!(alie_default_z(1, 1), 0.0);
/// ```
pub fn alie_default_z(n: usize, f: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let s = ((n / 2 + 1).saturating_sub(f)).max(1);
    normal_quantile((n - s) as f64 / n as f64)
}

fn alie(ctx: &UpdateContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Vec<f32> {
    let Some(stats) = ctx.honest else {
        return zeros(ctx);
    };
    let z = p
        .opt_float("z")
        .unwrap_or_else(|| alie_default_z(ctx.n, ctx.f));
    stats
        .mean
        .iter()
        .zip(&stats.std)
        .map(|(m, s)| (m - z * s) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run_update;
    use super::*;
    use crate::schema::RawValue;

    #[test]
    fn alie_z_matches_the_paper_formula() {
        // n = 50, f = 10: s = 26 - 10 = 16, z = Φ⁻¹(34/50).
        assert!((alie_default_z(50, 10) - normal_quantile(0.68)).abs() < 1e-15);
        // Byzantine majority: s clamped to 1, z stays finite.
        assert!(alie_default_z(4, 3).is_finite());
        assert_eq!(alie_default_z(1, 1), 0.0);
    }

    #[test]
    fn sends_mean_minus_z_std() {
        let own = [1.0f32, -2.0, 3.0];
        assert_eq!(
            run_update("alie", &[("z", RawValue::Float(1.0))], &own),
            vec![1.0, 1.0, -1.0]
        );
        let no_honest = UpdateContext {
            own: &own,
            honest: None,
            n: 2,
            f: 2,
        };
        let p = Params::validate("alie", &[]).unwrap();
        let mut rng = super::super::rng_for(0, 0, 0, 0);
        assert_eq!(alie(&no_honest, &p, &mut rng), vec![0.0; 3]);
    }
}
