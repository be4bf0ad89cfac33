//! Gaussian noise: the Byzantine client replaces its update with noise.
//!
//! ```text
//! a_k ~ N(0, σ²)    independently for every coordinate k
//! ```
//! where σ is the `sigma` parameter and the draws come from the client's keyed
//! ChaCha8 stream (seed, round, client: [`rng_for`](super::rng_for)), so they
//! do not depend on the order of the clients or the thread count.
//!
//! Parameters: `sigma` (float ≥ 0, default 1.0), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, Apply, Params, RawValue, UpdateContext};
//!
//! let ctx = UpdateContext { own: &[1.0, 2.0], honest: None, n: 4, f: 1 };
//! let p = Params::validate("gaussian_noise", &[("sigma".to_string(), RawValue::Float(0.0))]).unwrap();
//! let Apply::Update { run, .. } = p.spec().apply else { unreachable!() };
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)), vec![0.0, 0.0]);
//! ```
//!
//! References:
//! 1. Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine Learning with
//!    Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017.
//!    <https://papers.nips.cc/paper/6617>
//! 2. Li, Xu, Chen, Giannakis and Ling, "RSA: Byzantine-Robust Stochastic
//!    Aggregation Methods for Distributed Learning", AAAI 2019.
//!    <https://arxiv.org/abs/1811.03761>

use super::math::zeros;
use super::{Apply, AttackSpec, Params, UpdateContext};
use crate::schema::ParamSpec;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "gaussian_noise",
    aliases: &["Gaussian"],
    description: "replaces the update with N(0, sigma^2) noise per coordinate",
    reference: "Blanchard et al. 2017, https://papers.nips.cc/paper/6617; \
                Li et al. 2019 (RSA), https://arxiv.org/abs/1811.03761",
    params: &[ParamSpec::float("sigma", 1.0, "standard deviation of the noise").min(0.0, true)],
    apply: Apply::Update {
        run: gaussian_noise,
        needs_honest_stats: false,
    },
    adaptive: false,
    check: None,
};

fn gaussian_noise(ctx: &UpdateContext<'_>, p: &Params, rng: &mut ChaCha8Rng) -> Vec<f32> {
    match Normal::new(0.0, p.float("sigma")) {
        Ok(normal) => (0..ctx.own.len())
            .map(|_| normal.sample(rng) as f32)
            .collect(),
        Err(_) => zeros(ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run_update;
    use crate::schema::RawValue;

    #[test]
    fn noise_is_keyed_and_scaled() {
        let own = [1.0f32, -2.0, 3.0];
        let zero = run_update("gaussian_noise", &[("sigma", RawValue::Float(0.0))], &own);
        assert_eq!(zero, vec![0.0; 3]);
        let a = run_update("gaussian_noise", &[], &own);
        assert_eq!(a, run_update("gaussian_noise", &[], &own));
        assert!(a.iter().all(|v| v.is_finite() && *v != 0.0));
    }
}
