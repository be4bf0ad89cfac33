//! The attack registry: the single source of truth for attack names, kinds,
//! parameter schemas and implementations.
//!
//! One file per attack holds its documentation (the math, with every symbol
//! defined, and the paper), its function (an [`UpdateAttack`] or a
//! [`DataAttack`]) and its registry entry `SPEC`. Adding an attack is that file,
//! its `mod` line and one line in [`ATTACKS`] below; Python reads names and
//! schemas through `valid_attacks()` and `attack_schemas()`, so nothing else
//! changes. `registry.rs` holds the entry type, lookup and validation; `math.rs`
//! the shared math (Φ⁻¹, the keyed RNG, the honest statistics).
//!
//! Every attack also takes the [`COMMON`] parameters (who is Byzantine and
//! when the attack is active).
//!
//! ```
//! use _core::security::{find_attack, Kind, ATTACKS};
//!
//! assert_eq!(find_attack("ALittleIsEnough").unwrap().name, "alie");
//! assert_eq!(find_attack("label_flipping").unwrap().kind(), Kind::Data);
//! assert!(ATTACKS.iter().all(|a| !a.description.is_empty()));
//! ```

mod alie;
mod gaussian_noise;
mod ipm;
mod label_flipping;
mod math;
mod model_poisoning;
mod registry;
mod sign_flipping;
mod targeted_label_flipping;
mod zero;

pub use crate::schema::{ParamSpec, ParamType, RawValue, Value};
pub use alie::alie_default_z;
pub use math::{normal_quantile, rng_for, HonestStats};
pub use registry::{
    byzantine_counts, find_attack, valid_attacks, Apply, AttackSpec, Common, DataAttack, Kind,
    Params, UpdateAttack, UpdateContext, COMMON,
};

/// The registry, one entry per attack (each declared in its own file).
pub static ATTACKS: &[AttackSpec] = &[
    alie::SPEC,
    gaussian_noise::SPEC,
    ipm::SPEC,
    label_flipping::SPEC,
    model_poisoning::SPEC,
    sign_flipping::SPEC,
    targeted_label_flipping::SPEC,
    zero::SPEC,
];

#[cfg(test)]
pub(crate) mod test_util {
    use super::{Apply, HonestStats, Params, RawValue, UpdateContext};

    /// `pairs` as the raw parameters `Params::validate` reads.
    pub fn raw(pairs: &[(&str, RawValue)]) -> Vec<(String, RawValue)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// The update attack `name` with `params`, run on `own` (honest rows
    /// `[1, 1, 1]` and `[3, 1, -1]`: mean [2, 1, 0], std [1, 0, 1]; n = 4, f = 2).
    pub fn run_update(name: &str, params: &[(&str, RawValue)], own: &[f32]) -> Vec<f32> {
        let honest: Vec<&[f32]> = vec![&[1.0, 1.0, 1.0], &[3.0, 1.0, -1.0]];
        let stats = HonestStats::compute(&honest).unwrap();
        let ctx = UpdateContext {
            own,
            honest: Some(&stats),
            n: 4,
            f: 2,
        };
        let p = Params::validate(name, &raw(params)).unwrap();
        match p.spec().apply {
            Apply::Update { run, .. } => run(&ctx, &p, &mut super::rng_for(1, 2, 3, 4)),
            Apply::Data(_) => unreachable!("{name} is a data attack"),
        }
    }
}
