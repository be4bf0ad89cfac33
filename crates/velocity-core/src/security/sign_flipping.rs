//! Sign flipping: the Byzantine client sends its own update reversed and scaled.
//!
//! ```text
//! a = −s · x
//! ```
//! where x is the client's own (honestly computed) update and s the `scale`
//! parameter.
//!
//! Parameters: `scale` (float ≥ 0, default 1.0), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, Apply, Params, RawValue, UpdateContext};
//!
//! let ctx = UpdateContext { own: &[1.0, -2.0, 3.0], honest: None, n: 4, f: 1 };
//! let p = Params::validate("sign_flipping", &[("scale".to_string(), RawValue::Float(2.0))]).unwrap();
//! let Apply::Update { run, .. } = p.spec().apply else { unreachable!() };
//! assert_eq!(run(&ctx, &p, &mut rng_for(0, 0, 0, 0)), vec![-2.0, 4.0, -6.0]);
//! ```
//!
//! References:
//! 1. Damaskinos, El Mhamdi, Guerraoui, Patra and Taziki, "Asynchronous
//!    Byzantine Machine Learning (the case of SGD)", ICML 2018.
//!    <https://proceedings.mlr.press/v80/damaskinos18a>
//! 2. Li, Xu, Chen, Giannakis and Ling, "RSA: Byzantine-Robust Stochastic
//!    Aggregation Methods for Distributed Learning", AAAI 2019.
//!    <https://arxiv.org/abs/1811.03761>

use super::{Apply, AttackSpec, Params, UpdateContext};
use crate::schema::ParamSpec;
use rand_chacha::ChaCha8Rng;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "sign_flipping",
    aliases: &[],
    description: "sends -scale times the client's own update",
    reference: "Damaskinos et al. 2018, https://proceedings.mlr.press/v80/damaskinos18a; \
                Li et al. 2019 (RSA), https://arxiv.org/abs/1811.03761",
    params: &[
        ParamSpec::float("scale", 1.0, "factor applied to the reversed update").min(0.0, true),
    ],
    apply: Apply::Update {
        run: sign_flipping,
        needs_honest_stats: false,
    },
    adaptive: false,
    check: None,
};

fn sign_flipping(ctx: &UpdateContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Vec<f32> {
    let scale = p.float("scale") as f32;
    ctx.own.iter().map(|&x| -scale * x).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run_update;
    use crate::schema::RawValue;

    #[test]
    fn sends_the_reversed_update() {
        let own = [1.0f32, -2.0, 3.0];
        let scale = [("scale", RawValue::Float(2.0))];
        assert_eq!(
            run_update("sign_flipping", &scale, &own),
            vec![-2.0, 4.0, -6.0]
        );
    }
}
