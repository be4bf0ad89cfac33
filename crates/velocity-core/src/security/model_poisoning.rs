//! Model poisoning: the Byzantine client flips the sign of a random share of
//! its update's coordinates and scales the result.
//!
//! ```text
//! a_k = s · b_k · x_k,    b_k = −1 with probability p, +1 otherwise
//! ```
//! where x is the client's own update, p the `intensity` parameter, s the
//! `scale` parameter, and the b_k are drawn from the client's keyed ChaCha8
//! stream (seed, round, client).
//!
//! Parameters: `intensity` (float in [0, 1], default 0.5), `scale` (float ≥ 0,
//! default 1.0), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, Apply, Params, RawValue};
//! use _core::security::UpdateContext;
//!
//! let ctx = UpdateContext { own: &[1.0, -2.0, 3.0], honest: None, n: 4, f: 1 };
//! let raw = [
//!     ("intensity".to_string(), RawValue::Float(1.0)),
//!     ("scale".to_string(), RawValue::Int(2)),
//! ];
//! let p = Params::validate("model_poisoning", &raw).unwrap();
//! let Apply::Update { run, .. } = p.spec().apply else { unreachable!() };
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)), vec![-2.0, 4.0, -6.0]);
//! ```
//!
//! References:
//! 1. Bhagoji, Chakraborty, Mittal and Calo, "Analyzing Federated Learning
//!    through an Adversarial Lens", ICML 2019. <https://arxiv.org/abs/1811.12470>

use super::math::zeros;
use super::{Apply, AttackSpec, Params, UpdateContext};
use crate::schema::ParamSpec;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Bernoulli, Distribution};

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "model_poisoning",
    aliases: &[],
    description: "flips the sign of each coordinate of the update with probability \
                  intensity, then scales it",
    reference: "Bhagoji et al. 2019, Analyzing Federated Learning through an \
                Adversarial Lens, https://arxiv.org/abs/1811.12470",
    params: &[
        ParamSpec::float(
            "intensity",
            0.5,
            "probability of flipping each coordinate's sign",
        )
        .min(0.0, true)
        .max(1.0, true),
        ParamSpec::float("scale", 1.0, "factor applied to the update").min(0.0, true),
    ],
    apply: Apply::Update {
        run: model_poisoning,
        needs_honest_stats: false,
    },
    adaptive: false,
    check: None,
};

fn model_poisoning(ctx: &UpdateContext<'_>, p: &Params, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let scale = p.float("scale") as f32;
    match Bernoulli::new(p.float("intensity")) {
        Ok(flip) => ctx
            .own
            .iter()
            .map(|&x| {
                if flip.sample(rng) {
                    -x * scale
                } else {
                    x * scale
                }
            })
            .collect(),
        Err(_) => zeros(ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run_update;
    use crate::schema::RawValue;

    #[test]
    fn flips_with_probability_intensity_and_scales() {
        let own = [1.0f32, -2.0, 3.0];
        let all = [
            ("intensity", RawValue::Float(1.0)),
            ("scale", RawValue::Int(2)),
        ];
        assert_eq!(
            run_update("model_poisoning", &all, &own),
            vec![-2.0, 4.0, -6.0]
        );
        let none = [("intensity", RawValue::Float(0.0))];
        assert_eq!(run_update("model_poisoning", &none, &own), own.to_vec());
    }
}
