//! IPM, inner product manipulation: the Byzantine clients send the honest mean,
//! reversed and scaled, so that its inner product with the true gradient turns
//! negative.
//!
//! ```text
//! a = −ε · μ
//! ```
//! where μ is the coordinate-wise mean of this round's honest updates and ε the
//! `epsilon` parameter. Without an honest row the attack sends zeros.
//!
//! Parameters: `epsilon` (float ≥ 0, default 0.5), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, Apply, HonestStats, Params, UpdateContext};
//!
//! let honest: Vec<&[f32]> = vec![&[1.0, 1.0, 1.0], &[3.0, 1.0, -1.0]]; // μ = [2, 1, 0]
//! let stats = HonestStats::compute(&honest).unwrap();
//! let ctx = UpdateContext { own: &[9.0; 3], honest: Some(&stats), n: 4, f: 2 };
//! let p = Params::validate("ipm", &[]).unwrap();
//! let Apply::Update { run, .. } = p.spec().apply else { unreachable!() };
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)), vec![-1.0, -0.5, 0.0]);
//! ```
//!
//! References:
//! 1. Xie, Koyejo and Gupta, "Fall of Empires: Breaking Byzantine-tolerant SGD
//!    by Inner Product Manipulation", UAI 2019. <https://arxiv.org/abs/1903.03936>

use super::math::zeros;
use super::{Apply, AttackSpec, Params, UpdateContext};
use crate::schema::ParamSpec;
use rand_chacha::ChaCha8Rng;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "ipm",
    aliases: &["InnerProductManipulation"],
    description: "inner product manipulation: sends -epsilon times the mean honest update",
    reference: "Xie et al. 2019, Fall of Empires: Breaking Byzantine-tolerant SGD by \
                Inner Product Manipulation, https://arxiv.org/abs/1903.03936",
    params: &[ParamSpec::float("epsilon", 0.5, "scale of the reversed honest mean").min(0.0, true)],
    apply: Apply::Update {
        run: ipm,
        needs_honest_stats: true,
    },
    adaptive: false,
    check: None,
};

fn ipm(ctx: &UpdateContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Vec<f32> {
    let Some(stats) = ctx.honest else {
        return zeros(ctx);
    };
    let eps = p.float("epsilon");
    stats.mean.iter().map(|m| (-eps * m) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run_update;

    #[test]
    fn sends_the_reversed_honest_mean() {
        let own = [1.0f32, -2.0, 3.0];
        assert_eq!(run_update("ipm", &[], &own), vec![-1.0, -0.5, 0.0]);
    }
}
