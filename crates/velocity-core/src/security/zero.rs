//! Zero: the Byzantine client sends the zero vector (it drags the aggregate
//! towards no progress).
//!
//! ```text
//! a = 0
//! ```
//!
//! Parameters: only the common ones.
//!
//! ```
//! use _core::security::{rng_for, Apply, Params, UpdateContext};
//!
//! let ctx = UpdateContext { own: &[1.0, -2.0, 3.0], honest: None, n: 4, f: 1 };
//! let p = Params::validate("zero", &[]).unwrap();
//! let Apply::Update { run, .. } = p.spec().apply else { unreachable!() };
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)), vec![0.0; 3]);
//! ```
//!
//! References:
//! 1. Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine Learning with
//!    Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017.
//!    <https://papers.nips.cc/paper/6617>

use super::math::zeros;
use super::{Apply, AttackSpec, Params, UpdateContext};
use rand_chacha::ChaCha8Rng;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "zero",
    aliases: &[],
    description: "sends the zero vector",
    reference: "Blanchard et al. 2017, https://papers.nips.cc/paper/6617",
    params: &[],
    apply: Apply::Update {
        run: zero,
        needs_honest_stats: false,
    },
    adaptive: false,
    check: None,
};

fn zero(ctx: &UpdateContext<'_>, _: &Params, _: &mut ChaCha8Rng) -> Vec<f32> {
    zeros(ctx)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run_update;

    #[test]
    fn sends_zeros() {
        assert_eq!(run_update("zero", &[], &[1.0, -2.0, 3.0]), vec![0.0; 3]);
    }
}
