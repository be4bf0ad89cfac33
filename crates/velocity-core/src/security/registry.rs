//! What an attack entry is, how a name finds it, and how its parameters are
//! validated (through the shared [`crate::schema`] dialect).
//!
//! Update attacks come in two shapes. A per-row attack ([`Apply::Update`]) is
//! called once per Byzantine row with that row's [`UpdateContext`]. An adaptive
//! attack ([`Apply::Adaptive`]) is called once per round with every honest row
//! and the real aggregation rule ([`AdaptiveContext::aggregate`]), and every row
//! of the attack sends the one vector it returns.

use super::{HonestStats, ATTACKS};
use crate::error::{closest_in, name_key, CoreError, Result};
use crate::schema::{ParamSpec, RawValue, Value, Values};
use rand_chacha::ChaCha8Rng;

/// Whether an attack rewrites the update (server side) or the labels (client side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Update,
    Data,
}

impl Kind {
    /// "update" or "data".
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Update => "update",
            Kind::Data => "data",
        }
    }
}

/// The parameters every attack takes.
pub static COMMON: [ParamSpec; 4] = [
    ParamSpec::float("fraction", 0.2, "fraction of clients that are Byzantine")
        .min(0.0, false)
        .max(1.0, true),
    ParamSpec::int(
        "count",
        0,
        "number of Byzantine clients; overrides fraction",
    )
    .nullable()
    .min(1.0, true),
    ParamSpec::int("start_round", 1, "first round the attack is active").min(1.0, true),
    ParamSpec::int(
        "end_round",
        0,
        "last round it is active (inclusive); None = to the end",
    )
    .nullable()
    .min(1.0, true),
];

/// What an update attack sees for one Byzantine row.
pub struct UpdateContext<'a> {
    /// The client's own (honestly computed) update.
    pub own: &'a [f32],
    /// Statistics of this round's honest rows (`None`: no honest row, or not requested).
    pub honest: Option<&'a HonestStats>,
    /// Participating clients this round.
    pub n: usize,
    /// Participating clients whose attack is active this round.
    pub f: usize,
}

/// An update attack: the Byzantine row to send.
pub type UpdateAttack = fn(&UpdateContext<'_>, &Params, &mut ChaCha8Rng) -> Vec<f32>;

/// What the rule did with a candidate, for an adaptive attack.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The aggregate (pre-aggregators and rule) of the round's matrix with every
    /// row of the attack replaced by the candidate.
    pub value: Vec<f32>,
    /// Whether the rule's selected rows include a Byzantine one (`None`: the
    /// rule does not select).
    pub byzantine_selected: Option<bool>,
}

/// What an adaptive attack sees: the round's honest rows and the real rule.
pub struct AdaptiveContext<'a> {
    /// This round's honest rows (clients that are not Byzantine), in row order;
    /// at least one (without one the orchestrator sends zeros).
    pub honest: &'a [&'a [f32]],
    /// Their coordinate-wise statistics.
    pub stats: &'a HonestStats,
    /// Participating clients this round.
    pub n: usize,
    /// Rows this attack replaces this round.
    pub f: usize,
    /// The real rule (pre-aggregators included) on this round's matrix with
    /// every row of this attack replaced by the candidate. Each call is one
    /// aggregation, so attacks budget their calls.
    pub aggregate: &'a (dyn Fn(&[f32]) -> Result<Outcome> + Sync),
}

/// An adaptive update attack: the one vector every row of the attack sends
/// this round.
pub type AdaptiveAttack = fn(&AdaptiveContext<'_>, &Params, &mut ChaCha8Rng) -> Result<Vec<f32>>;

/// A data attack: rewrites `labels` (all in `[0, num_classes)`) in place.
pub type DataAttack = fn(&mut [i64], usize, &Params, &mut ChaCha8Rng) -> Result<()>;

/// How an attack acts.
#[derive(Clone, Copy)]
pub enum Apply {
    /// Replaces the update; `needs_honest_stats` asks the orchestrator for [`HonestStats`].
    Update {
        run: UpdateAttack,
        needs_honest_stats: bool,
    },
    /// Replaces every row of the attack with one vector per round, computed
    /// from the honest rows and the real rule; always given [`HonestStats`].
    Adaptive(AdaptiveAttack),
    /// Poisons the labels before local training.
    Data(DataAttack),
}

/// One registry entry.
pub struct AttackSpec {
    pub name: &'static str,
    /// Other accepted names (e.g. ByzFL's class names); matched like `name`,
    /// ignoring case, `_`, `-` and spaces.
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub reference: &'static str,
    /// Attack-specific parameters (the [`COMMON`] ones come on top).
    pub params: &'static [ParamSpec],
    pub apply: Apply,
    /// In the adaptive set (`--attacks adaptive`): the attack optimises against
    /// the defence from this round's honest updates, through the real rule
    /// ([`Apply::Adaptive`]) or not (Min-Max, Min-Sum, Fang's trimmed-mean
    /// attack, Mimic).
    pub adaptive: bool,
    /// Cross-parameter checks run after each value is validated.
    pub check: Option<fn(&Params) -> Result<()>>,
}

impl AttackSpec {
    /// Update or data attack (an adaptive attack replaces updates).
    pub fn kind(&self) -> Kind {
        match self.apply {
            Apply::Update { .. } | Apply::Adaptive(_) => Kind::Update,
            Apply::Data(_) => Kind::Data,
        }
    }

    /// Every parameter: attack-specific first, then the common ones.
    pub fn all_params(&self) -> impl Iterator<Item = &'static ParamSpec> {
        self.params.iter().chain(COMMON.iter())
    }
}

/// Sorted attack names.
pub fn valid_attacks() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ATTACKS.iter().map(|a| a.name).collect();
    names.sort_unstable();
    names
}

/// The registry entry for `name` or one of its aliases, ignoring case, `_`, `-`
/// and spaces (`ALIE`, `Gaussian-Noise`, ByzFL's `SignFlipping`), or an error
/// with a close match.
pub fn find_attack(name: &str) -> Result<&'static AttackSpec> {
    let key = name_key(name);
    ATTACKS
        .iter()
        .find(|a| name_key(a.name) == key || a.aliases.iter().any(|al| name_key(al) == key))
        .ok_or_else(|| {
            let valid = valid_attacks();
            let spellings = ATTACKS.iter().flat_map(|a| {
                std::iter::once((a.name, a.name)).chain(a.aliases.iter().map(|al| (*al, a.name)))
            });
            CoreError::UnknownName {
                kind: "attack",
                name: name.to_string(),
                suggestion: closest_in(name, spellings),
                valid: valid.iter().map(|s| s.to_string()).collect(),
            }
        })
}

/// Byzantine clients per attack among `num_clients` (see [`Params::num_byzantine`]),
/// refusing a plan that needs more than `num_clients` in total. The sum is checked,
/// so no count can wrap it.
pub fn byzantine_counts(attacks: &[Params], num_clients: usize) -> Result<Vec<usize>> {
    let counts: Vec<usize> = attacks
        .iter()
        .map(|a| a.num_byzantine(num_clients))
        .collect();
    let total = counts
        .iter()
        .try_fold(0usize, |acc, &k| acc.checked_add(k))
        .filter(|&t| t <= num_clients);
    if total.is_none() {
        let sum: u128 = counts.iter().map(|&k| k as u128).sum();
        let parts: Vec<String> = attacks
            .iter()
            .zip(&counts)
            .map(|(a, k)| format!("{} = {k}", a.spec().name))
            .collect();
        return Err(CoreError::invalid(
            "attacks",
            format!("{sum} Byzantine clients ({})", parts.join(", ")),
            format!("at most num_clients = {num_clients} in total"),
        ));
    }
    Ok(counts)
}

/// When an attack is active and how many clients run it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Common {
    pub fraction: f64,
    pub count: Option<usize>,
    pub start_round: u64,
    pub end_round: Option<u64>,
}

/// An attack with every parameter validated and defaults filled.
#[derive(Clone)]
pub struct Params {
    spec: &'static AttackSpec,
    values: Values,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("attack", &self.spec.name)
            .field("values", &self.values.as_slice())
            .finish()
    }
}

impl Params {
    /// Validates `raw` against the attack `name`'s schema.
    ///
    /// Errors: unknown attack or parameter (with a close match), wrong type
    /// (bools never count as numbers; ints are accepted for float parameters),
    /// out of range, `None` for a non-nullable parameter, and cross-parameter
    /// checks (end_round ≥ start_round, …).
    ///
    /// ```
    /// use _core::security::{Params, RawValue};
    ///
    /// let p = Params::validate("alie", &[("z".to_string(), RawValue::Float(1.5))]).unwrap();
    /// assert_eq!((p.opt_float("z"), p.float("fraction")), (Some(1.5), 0.2));
    /// let e = Params::validate("alie", &[("count".to_string(), RawValue::Int(0))]).unwrap_err();
    /// assert_eq!(
    ///     e.to_string(),
    ///     "invalid alie.count: got 0; allowed: an int in [1, 1000000] or None"
    /// );
    /// ```
    pub fn validate(name: &str, raw: &[(String, RawValue)]) -> Result<Params> {
        let spec = find_attack(name)?;
        let specs: Vec<&'static ParamSpec> = spec.all_params().collect();
        let values = Values::validate("attack", spec.name, &specs, raw)?;
        let params = Params { spec, values };
        let common = params.common();
        if let Some(end) = common.end_round {
            if end < common.start_round {
                return Err(CoreError::invalid(
                    format!("{}.end_round", spec.name),
                    end,
                    format!("None or an int ≥ start_round = {}", common.start_round),
                ));
            }
        }
        if let Some(check) = spec.check {
            check(&params)?;
        }
        Ok(params)
    }

    /// The attack's registry entry.
    pub fn spec(&self) -> &'static AttackSpec {
        self.spec
    }

    /// Every parameter with its value, in schema order.
    pub fn values(&self) -> &[(&'static str, Value)] {
        self.values.as_slice()
    }

    /// A float parameter (NaN if absent, which validation rules out).
    pub fn float(&self, name: &str) -> f64 {
        self.values.float(name)
    }

    /// A nullable float parameter.
    pub fn opt_float(&self, name: &str) -> Option<f64> {
        self.values.opt_float(name)
    }

    /// An int parameter (-1 if absent, which validation rules out).
    pub fn int(&self, name: &str) -> i64 {
        self.values.int(name)
    }

    /// A nullable int parameter.
    pub fn opt_int(&self, name: &str) -> Option<i64> {
        self.values.opt_int(name)
    }

    /// The common parameters.
    pub fn common(&self) -> Common {
        let positive = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
        Common {
            fraction: self.float("fraction"),
            count: positive(self.opt_int("count")).map(|c| c as usize),
            start_round: positive(self.opt_int("start_round")).unwrap_or(1),
            end_round: positive(self.opt_int("end_round")),
        }
    }

    /// Whether the attack is active in `round` (start_round ≤ round ≤ end_round).
    pub fn active(&self, round: u64) -> bool {
        let c = self.common();
        round >= c.start_round && c.end_round.is_none_or(|end| round <= end)
    }

    /// Number of Byzantine clients among `num_clients`: `count` if given,
    /// else max(1, round_half_up(fraction · num_clients)).
    pub fn num_byzantine(&self, num_clients: usize) -> usize {
        let c = self.common();
        c.count
            .unwrap_or_else(|| ((c.fraction * num_clients as f64 + 0.5).floor() as usize).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::raw;
    use super::*;
    use crate::error::MAX_COUNT;
    use crate::schema::ParamType;

    #[test]
    fn registry_is_sorted_unique_and_complete() {
        let names = valid_attacks();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique, names, "attack names are unique");
        for name in [
            "alie",
            "alie_opt",
            "fang_krum",
            "fang_trim",
            "gaussian_noise",
            "ipm",
            "ipm_opt",
            "label_flipping",
            "mimic",
            "min_max",
            "min_sum",
            "model_poisoning",
            "sign_flipping",
            "targeted_label_flipping",
            "zero",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        let registry_order: Vec<&str> = ATTACKS.iter().map(|a| a.name).collect();
        assert_eq!(registry_order, names, "ATTACKS is listed alphabetically");
        let adaptive: Vec<&str> = ATTACKS
            .iter()
            .filter(|a| a.adaptive)
            .map(|a| a.name)
            .collect();
        assert_eq!(
            adaptive,
            [
                "alie_opt",
                "fang_krum",
                "fang_trim",
                "ipm_opt",
                "mimic",
                "min_max",
                "min_sum"
            ]
        );
        for a in ATTACKS {
            // What calls the rule is in the adaptive set, and replaces updates.
            if matches!(a.apply, Apply::Adaptive(_)) {
                assert!(a.adaptive && a.kind() == Kind::Update, "{}", a.name);
            }
        }
        for a in ATTACKS {
            let mut params: Vec<_> = a.all_params().map(|p| p.name).collect();
            let total = params.len();
            params.sort_unstable();
            params.dedup();
            assert_eq!(params.len(), total, "{}", a.name);
            // Defaults validate.
            assert!(Params::validate(a.name, &[]).is_ok(), "{}", a.name);
            assert!(!a.description.is_empty() && !a.reference.is_empty());
        }
        assert_eq!(find_attack("label_flipping").unwrap().kind(), Kind::Data);
        assert_eq!(find_attack("alie").unwrap().kind(), Kind::Update);
    }

    #[test]
    fn names_resolve_ignoring_case_separators_and_aliases() {
        for (given, name) in [
            ("ALIE", "alie"),
            ("Gaussian-Noise", "gaussian_noise"),
            ("GaussianNoise", "gaussian_noise"),
            ("Gaussian", "gaussian_noise"),
            ("ALittleIsEnough", "alie"),
            ("InnerProductManipulation", "ipm"),
            ("SignFlipping", "sign_flipping"),
            ("label flipping", "label_flipping"),
            ("MinMax", "min_max"),
            ("Min-Sum", "min_sum"),
            ("FangAttack", "fang_trim"),
            ("Mimic", "mimic"),
            ("Optimal_ALittleIsEnough", "alie_opt"),
            ("Optimal_InnerProductManipulation", "ipm_opt"),
        ] {
            assert_eq!(find_attack(given).map(|a| a.name), Ok(name), "{given}");
        }
        let e = find_attack("signflip").err().unwrap().to_string();
        assert!(e.contains("did you mean 'sign_flipping'"), "{e}");
        let e = find_attack("ALittleIsEnuogh").err().unwrap().to_string();
        assert!(e.contains("did you mean 'alie'"), "{e}");
        let e = find_attack("Inf").err().unwrap().to_string();
        assert!(!e.contains("did you mean"), "{e}");
        for a in ATTACKS {
            for alias in a.aliases {
                assert_eq!(find_attack(alias).map(|f| f.name), Ok(a.name));
            }
        }
    }

    #[test]
    fn int_parameters_are_bounded_and_class_ids_marked() {
        for a in ATTACKS {
            for p in a.all_params().filter(|p| p.ty == ParamType::Int) {
                let bounded = p.max.is_some_and(|m| m <= MAX_COUNT as f64);
                assert!(bounded, "{}.{}", a.name, p.name);
                let over = [(p.name.to_string(), RawValue::Int(MAX_COUNT as i64 + 1))];
                assert!(
                    Params::validate(a.name, &over).is_err(),
                    "{}.{}",
                    a.name,
                    p.name
                );
                let huge = [(p.name.to_string(), RawValue::Int(i64::MAX))];
                assert!(
                    Params::validate(a.name, &huge).is_err(),
                    "{}.{}",
                    a.name,
                    p.name
                );
            }
        }
        let classes: Vec<_> = ATTACKS
            .iter()
            .flat_map(|a| {
                a.all_params()
                    .filter(|p| p.class_id)
                    .map(|p| (a.name, p.name))
            })
            .collect();
        assert_eq!(
            classes,
            vec![
                ("targeted_label_flipping", "source"),
                ("targeted_label_flipping", "target")
            ]
        );
        let e = Params::validate("zero", &raw(&[("count", RawValue::Int(2_000_000))]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[1, 1000000] or None"), "{e}");
    }

    #[test]
    fn byzantine_totals_are_checked_not_wrapped() {
        let plan = vec![
            Params::validate("zero", &raw(&[("count", RawValue::Int(1_000_000))]))
                .unwrap();
            40
        ];
        let e = byzantine_counts(&plan, 10).unwrap_err().to_string();
        assert!(e.contains("40000000 Byzantine clients"), "{e}");
        let one = vec![Params::validate("zero", &raw(&[("count", RawValue::Int(3))])).unwrap()];
        assert_eq!(byzantine_counts(&one, 3).unwrap(), vec![3]);
        assert!(byzantine_counts(&one, 2).is_err());
    }

    #[test]
    fn defaults_are_filled() {
        let p = Params::validate("gaussian_noise", &[]).unwrap();
        assert_eq!(
            p.values(),
            &[
                ("sigma", Value::Float(1.0)),
                ("fraction", Value::Float(0.2)),
                ("count", Value::None),
                ("start_round", Value::Int(1)),
                ("end_round", Value::None),
            ]
        );
        let p = Params::validate("targeted_label_flipping", &[]).unwrap();
        assert_eq!(p.int("source"), 1);
        assert_eq!(p.int("target"), 7);
        assert_eq!(p.float("ratio"), 1.0);
    }

    #[test]
    fn validation_errors_name_field_value_and_range() {
        let e = Params::validate("gausian_noise", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "unknown attack 'gausian_noise'; did you mean 'gaussian_noise'? valid: alie, "
            ),
            "{e}"
        );
        let e = Params::validate("gaussian_noise", &raw(&[("sigm", RawValue::Float(1.0))]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'sigm'") && e.contains("did you mean 'sigma'") && e.contains("start_round"),
            "{e}"
        );
        assert!(e.contains("for attack 'gaussian_noise'"), "{e}");
        let e = Params::validate("gaussian_noise", &raw(&[("sigma", RawValue::Float(-1.0))]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid gaussian_noise.sigma: got -1.0; allowed: a finite float ≥ 0.0"
        );
        let e = Params::validate("zero", &raw(&[("fraction", RawValue::Float(0.0))]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("(0.0, 1.0]"), "{e}");
        assert!(Params::validate("zero", &raw(&[("fraction", RawValue::Int(1))])).is_ok());
        assert!(Params::validate("zero", &raw(&[("fraction", RawValue::Bool(true))])).is_err());
        assert!(Params::validate("zero", &raw(&[("count", RawValue::Float(2.0))])).is_err());
        assert!(Params::validate("zero", &raw(&[("count", RawValue::Int(0))])).is_err());
        assert!(Params::validate("zero", &raw(&[("count", RawValue::None)])).is_ok());
        assert!(Params::validate("zero", &raw(&[("fraction", RawValue::None)])).is_err());
        assert!(
            Params::validate("zero", &raw(&[("fraction", RawValue::Float(f64::NAN))])).is_err()
        );
        assert!(
            Params::validate("zero", &raw(&[("count", RawValue::BigInt("1".repeat(30)))])).is_err()
        );
        assert!(
            Params::validate("zero", &raw(&[("count", RawValue::Other("str".into()))])).is_err()
        );
        let e = Params::validate(
            "zero",
            &raw(&[
                ("start_round", RawValue::Int(5)),
                ("end_round", RawValue::Int(3)),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("end_round") && e.contains("start_round = 5"),
            "{e}"
        );
        assert!(Params::validate(
            "targeted_label_flipping",
            &raw(&[("source", RawValue::Int(3)), ("target", RawValue::Int(3))])
        )
        .is_err());
        assert!(Params::validate("alie", &raw(&[("z", RawValue::Float(-1.5))])).is_ok());
    }

    #[test]
    fn activity_window_and_counts() {
        let p = Params::validate(
            "zero",
            &raw(&[
                ("start_round", RawValue::Int(2)),
                ("end_round", RawValue::Int(3)),
            ]),
        )
        .unwrap();
        assert!(!p.active(1) && p.active(2) && p.active(3) && !p.active(4));
        assert_eq!(p.num_byzantine(10), 2);
        assert_eq!(p.num_byzantine(2), 1);
        let p = Params::validate("zero", &raw(&[("fraction", RawValue::Float(0.25))])).unwrap();
        assert_eq!(p.num_byzantine(10), 3); // 2.5 rounds half up
        let p = Params::validate("zero", &raw(&[("count", RawValue::Int(4))])).unwrap();
        assert_eq!(p.num_byzantine(10), 4);
    }
}
