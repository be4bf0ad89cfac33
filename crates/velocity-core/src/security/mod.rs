//! The attack registry: the single source of truth for attack names, kinds,
//! parameter schemas and implementations.
//!
//! One file per attack holds its documentation (the math, with every symbol
//! defined, and the paper), its function (an [`UpdateAttack`], an
//! [`AdaptiveAttack`] or a [`DataAttack`]) and its registry entry `SPEC`. Adding an attack is that file,
//! its `mod` line and one line in [`ATTACKS`] below; Python reads names and
//! schemas through `valid_attacks()` and `attack_schemas()`, so nothing else
//! changes. `registry.rs` holds the entry type, lookup and validation; `math.rs`
//! the shared math (Φ⁻¹, the keyed RNG, the honest statistics, the damage of an
//! aggregate); `search.rs` the line search of the optimal attacks.
//!
//! The adaptive set ([`AttackSpec::adaptive`], `--attacks adaptive`) holds the
//! attacks that optimise against the defence each round: Min-Max and Min-Sum,
//! Fang's attacks on Krum and on the trimmed mean/median, Mimic and the optimal
//! ALIE and IPM. Those that call the real rule are [`Apply::Adaptive`]: one
//! vector per round for all their rows, each candidate costing one aggregation
//! (at most `evals` per round: 15 for the optimal ALIE and IPM, 19 for Fang on Krum).
//!
//! Every attack also takes the [`COMMON`] parameters (who is Byzantine and
//! when the attack is active).
//!
//! ```
//! use _core::security::{find_attack, Kind, ATTACKS};
//!
//! assert_eq!(find_attack("ALittleIsEnough").unwrap().name, "alie");
//! assert_eq!(find_attack("label_flipping").unwrap().kind(), Kind::Data);
//! assert!(find_attack("Optimal_ALittleIsEnough").unwrap().adaptive);
//! assert!(ATTACKS.iter().all(|a| !a.description.is_empty()));
//! ```

mod alie;
mod alie_opt;
mod fang_krum;
mod fang_trim;
mod gaussian_noise;
mod ipm;
mod ipm_opt;
mod label_flipping;
mod math;
mod mimic;
mod min_max;
mod model_poisoning;
mod registry;
mod search;
mod sign_flipping;
mod targeted_label_flipping;
mod zero;

pub use crate::schema::{ParamSpec, ParamType, RawValue, Value};
pub use alie::alie_default_z;
pub use math::{normal_quantile, rng_for, HonestStats};
pub use registry::{
    byzantine_counts, find_attack, valid_attacks, AdaptiveAttack, AdaptiveContext, Apply,
    AttackSpec, Common, DataAttack, Kind, Outcome, Params, UpdateAttack, UpdateContext, COMMON,
};

/// The registry, one entry per attack (each declared in its own file).
pub static ATTACKS: &[AttackSpec] = &[
    alie::SPEC,
    alie_opt::SPEC,
    fang_krum::SPEC,
    fang_trim::SPEC,
    gaussian_noise::SPEC,
    ipm::SPEC,
    ipm_opt::SPEC,
    label_flipping::SPEC,
    mimic::SPEC,
    min_max::MIN_MAX,
    min_max::MIN_SUM,
    model_poisoning::SPEC,
    sign_flipping::SPEC,
    targeted_label_flipping::SPEC,
    zero::SPEC,
];

#[cfg(test)]
pub(crate) mod test_util {
    use super::{AdaptiveContext, Apply, HonestStats, Outcome, Params, RawValue, UpdateContext};
    use crate::error::Result;
    use crate::strategy::Strategy;

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
            _ => unreachable!("{name} is not a per-row update attack"),
        }
    }

    /// h pseudo-random rows of length d in [-1, 1).
    pub fn random_rows(seed: u64, h: usize, d: usize) -> Vec<Vec<f32>> {
        crate::strategy::test_util::matrix(h, d, seed)
    }

    /// What `rule` makes of `honest` followed by `f` copies of `candidate`
    /// (unit weights; Byzantine rows are the last f).
    pub fn outcome(
        rule: &Strategy,
        honest: &[&[f32]],
        f: usize,
        candidate: &[f32],
    ) -> Result<Outcome> {
        let mut rows = honest.to_vec();
        rows.extend(std::iter::repeat_n(candidate, f));
        let agg = rule.aggregate(&rows, &vec![1.0; rows.len()], None)?;
        Ok(Outcome {
            byzantine_selected: agg.selected.map(|s| s.iter().any(|&i| i >= honest.len())),
            value: agg.value,
        })
    }

    /// The adaptive attack `name` with `params` on the honest `rows`, with f
    /// Byzantine rows (n = rows + f) and `rule` as the real rule (None: the
    /// attack must not call it); returns what it sends and the honest stats.
    pub fn adaptive(
        name: &str,
        params: &[(&str, RawValue)],
        rows: &[Vec<f32>],
        f: usize,
        rule: Option<&Strategy>,
    ) -> (Result<Vec<f32>>, HonestStats) {
        let honest: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let stats = HonestStats::compute(&honest).unwrap();
        let aggregate = |c: &[f32]| match rule {
            Some(rule) => outcome(rule, &honest, f, c),
            None => unreachable!("{name} is agnostic of the rule"),
        };
        let ctx = AdaptiveContext {
            honest: &honest,
            stats: &stats,
            n: rows.len() + f,
            f,
            aggregate: &aggregate,
        };
        let p = Params::validate(name, &raw(params)).unwrap();
        let Apply::Adaptive(run) = p.spec().apply else {
            unreachable!("{name} is not adaptive")
        };
        (run(&ctx, &p, &mut super::rng_for(1, 2, 3, 4)), stats)
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{adaptive, random_rows};
    use super::{Apply, ATTACKS};
    use crate::strategy::Strategy;

    fn adaptive_names() -> impl Iterator<Item = &'static str> {
        ATTACKS
            .iter()
            .filter(|a| matches!(a.apply, Apply::Adaptive(_)))
            .map(|a| a.name)
    }

    #[test]
    fn adaptive_attacks_are_bit_identical_for_any_thread_count() {
        let rows = random_rows(9, 9, 2 * crate::parallel::CHUNK + 3);
        let trimmed = Strategy::new(
            "TrimmedMean",
            &[("beta", crate::schema::RawValue::Float(0.2))],
        )
        .unwrap();
        for name in adaptive_names() {
            let run = |t| {
                crate::parallel::install(Some(t), || {
                    adaptive(name, &[], &rows, 3, Some(&trimmed)).0
                })
                .unwrap()
                .unwrap()
            };
            assert_eq!(run(1), run(4), "{name}");
        }
    }

    #[test]
    fn adaptive_attacks_survive_degenerate_rounds() {
        let one = vec![vec![1.0f32, -2.0, 3.0]];
        let same = vec![vec![0.5f32; 3]; 4];
        let zero_mean = vec![vec![1.0f32, -1.0, 0.0], vec![-1.0, 1.0, 0.0]];
        let zeros = vec![vec![0.0f32; 3]; 3];
        for rule in ["FedAvg", "FedMedian"] {
            let rule = Strategy::new(rule, &[]).unwrap();
            for name in adaptive_names() {
                for rows in [&one, &same, &zero_mean, &zeros] {
                    let (m, _) = adaptive(name, &[], rows, 1, Some(&rule));
                    let m = m.unwrap();
                    assert!(
                        m.len() == 3 && m.iter().all(|v| v.is_finite()),
                        "{name}: {m:?}"
                    );
                }
            }
        }
    }
}
