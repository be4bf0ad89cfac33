//! The attack registry: the single source of truth for attack names, kinds,
//! parameter schemas and implementations.
//!
//! Adding an attack touches this file only: write its function (an
//! [`UpdateAttack`] or a [`DataAttack`]), then add one [`AttackSpec`] to
//! [`ATTACKS`]. Python reads names and schemas through `valid_attacks()` and
//! `attack_schemas()`.
//!
//! Every attack also takes the [`COMMON`] parameters (who is Byzantine and
//! when the attack is active).

use crate::error::{closest, closest_in, name_key, CoreError, Result, MAX_COUNT};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Bernoulli, Distribution, Normal};

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

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Float,
    Int,
}

/// A validated parameter value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    None,
}

/// A parameter value as the caller gave it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    None,
    Bool(bool),
    Int(i64),
    /// An integer outside the i64 range (its decimal text).
    BigInt(String),
    Float(f64),
    /// Anything else (its type name).
    Other(String),
}

/// One parameter: its type, default and allowed range.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub default: Value,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub min_inclusive: bool,
    pub max_inclusive: bool,
    pub nullable: bool,
    /// The value is a class id: it must be below the dataset's number of classes.
    pub class_id: bool,
    pub description: &'static str,
}

impl ParamSpec {
    const fn float(name: &'static str, default: f64, description: &'static str) -> Self {
        ParamSpec {
            name,
            ty: ParamType::Float,
            default: Value::Float(default),
            min: None,
            max: None,
            min_inclusive: true,
            max_inclusive: true,
            nullable: false,
            class_id: false,
            description,
        }
    }

    /// An int parameter, at most [`MAX_COUNT`] unless [`ParamSpec::max`] says otherwise.
    const fn int(name: &'static str, default: i64, description: &'static str) -> Self {
        ParamSpec {
            name,
            ty: ParamType::Int,
            default: Value::Int(default),
            min: None,
            max: Some(MAX_COUNT as f64),
            min_inclusive: true,
            max_inclusive: true,
            nullable: false,
            class_id: false,
            description,
        }
    }

    /// Makes the parameter nullable with default `None`.
    const fn nullable(mut self) -> Self {
        self.nullable = true;
        self.default = Value::None;
        self
    }

    /// Marks an int parameter as a class id (checked against the dataset's classes).
    const fn class_id(mut self) -> Self {
        self.class_id = true;
        self
    }

    const fn min(mut self, min: f64, inclusive: bool) -> Self {
        self.min = Some(min);
        self.min_inclusive = inclusive;
        self
    }

    const fn max(mut self, max: f64, inclusive: bool) -> Self {
        self.max = Some(max);
        self.max_inclusive = inclusive;
        self
    }

    /// Human-readable allowed values, e.g. "a float in (0, 1]" or "an int ≥ 1 or None".
    pub fn allowed(&self) -> String {
        let (kind, fmt): (&str, fn(f64) -> String) = match self.ty {
            ParamType::Float => ("a finite float", |v| format!("{v:?}")),
            ParamType::Int => ("an int", |v| format!("{}", v as i64)),
        };
        let range = match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!(
                " in {}{}, {}{}",
                if self.min_inclusive { "[" } else { "(" },
                fmt(lo),
                fmt(hi),
                if self.max_inclusive { "]" } else { ")" }
            ),
            (Some(lo), None) => {
                format!(
                    " {} {}",
                    if self.min_inclusive { "≥" } else { ">" },
                    fmt(lo)
                )
            }
            (None, Some(hi)) => {
                format!(
                    " {} {}",
                    if self.max_inclusive { "≤" } else { "<" },
                    fmt(hi)
                )
            }
            (None, None) => String::new(),
        };
        let none = if self.nullable { " or None" } else { "" };
        format!("{kind}{range}{none}")
    }

    fn in_range(&self, v: f64) -> bool {
        let lo_ok = match self.min {
            Some(lo) if self.min_inclusive => v >= lo,
            Some(lo) => v > lo,
            None => true,
        };
        let hi_ok = match self.max {
            Some(hi) if self.max_inclusive => v <= hi,
            Some(hi) => v < hi,
            None => true,
        };
        lo_ok && hi_ok
    }

    /// Checks one raw value against this spec.
    fn coerce(&self, attack: &str, raw: &RawValue) -> Result<Value> {
        let field = format!("{attack}.{}", self.name);
        let bad = |shown: String| CoreError::invalid(field.clone(), shown, self.allowed());
        let value = match (raw, self.ty) {
            (RawValue::None, _) if self.nullable => return Ok(Value::None),
            (RawValue::None, _) => return Err(bad("None".into())),
            (RawValue::Bool(b), _) => {
                return Err(bad(if *b { "True".into() } else { "False".into() }))
            }
            (RawValue::Int(i), ParamType::Int) => Value::Int(*i),
            (RawValue::Int(i), ParamType::Float) => Value::Float(*i as f64),
            (RawValue::Float(x), ParamType::Float) if x.is_finite() => Value::Float(*x),
            (RawValue::Float(x), _) => return Err(bad(format!("{x:?}"))),
            (RawValue::BigInt(s), _) => return Err(bad(s.clone())),
            (RawValue::Other(type_name), _) => {
                return Err(bad(format!("a value of type {type_name}")))
            }
        };
        let as_f64 = match value {
            Value::Float(x) => x,
            Value::Int(i) => i as f64,
            Value::None => return Ok(value),
        };
        if self.in_range(as_f64) {
            Ok(value)
        } else {
            Err(bad(match value {
                Value::Int(i) => i.to_string(),
                _ => format!("{as_f64:?}"),
            }))
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

/// Coordinate-wise statistics of this round's honest rows.
#[derive(Debug, Clone, PartialEq)]
pub struct HonestStats {
    /// Mean per coordinate.
    pub mean: Vec<f64>,
    /// Population standard deviation per coordinate.
    pub std: Vec<f64>,
}

impl HonestStats {
    /// Mean and population std over `rows` (None when there are no rows).
    /// Two passes in f64, parallel over fixed coordinate chunks.
    pub fn compute(rows: &[&[f32]]) -> Option<HonestStats> {
        use crate::parallel::CHUNK;
        use rayon::prelude::*;
        let h = rows.len();
        let d = rows.first()?.len();
        let mut mean = vec![0f64; d];
        let mut std = vec![0f64; d];
        mean.par_chunks_mut(CHUNK)
            .zip(std.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, (m, s))| {
                let start = c * CHUNK;
                let len = m.len();
                for row in rows {
                    for (a, &x) in m.iter_mut().zip(&row[start..start + len]) {
                        *a += f64::from(x);
                    }
                }
                m.iter_mut().for_each(|a| *a /= h as f64);
                for row in rows {
                    for ((a, &x), &mu) in s.iter_mut().zip(&row[start..start + len]).zip(m.iter()) {
                        let t = f64::from(x) - mu;
                        *a += t * t;
                    }
                }
                s.iter_mut().for_each(|a| *a = (*a / h as f64).sqrt());
            });
        Some(HonestStats { mean, std })
    }
}

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
    /// Cross-parameter checks run after each value is validated.
    pub check: Option<fn(&Params) -> Result<()>>,
}

impl AttackSpec {
    /// Update or data attack.
    pub fn kind(&self) -> Kind {
        match self.apply {
            Apply::Update { .. } => Kind::Update,
            Apply::Data(_) => Kind::Data,
        }
    }

    /// Every parameter: attack-specific first, then the common ones.
    pub fn all_params(&self) -> impl Iterator<Item = &'static ParamSpec> {
        self.params.iter().chain(COMMON.iter())
    }
}

// ---------------------------------------------------------------- attacks

fn zeros(ctx: &UpdateContext<'_>) -> Vec<f32> {
    vec![0f32; ctx.own.len()]
}

fn gaussian_noise(ctx: &UpdateContext<'_>, p: &Params, rng: &mut ChaCha8Rng) -> Vec<f32> {
    match Normal::new(0.0, p.float("sigma")) {
        Ok(normal) => (0..ctx.own.len())
            .map(|_| normal.sample(rng) as f32)
            .collect(),
        Err(_) => zeros(ctx),
    }
}

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

fn sign_flipping(ctx: &UpdateContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Vec<f32> {
    let scale = p.float("scale") as f32;
    ctx.own.iter().map(|&x| -scale * x).collect()
}

/// Φ⁻¹, the standard normal quantile (Acklam's rational approximation,
/// relative error < 1.15e-9). Returns ∓∞ at p = 0 / 1 and NaN outside [0, 1].
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e2,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    const P_LOW: f64 = 0.02425;
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

/// ALIE's default z: s = ⌊n/2 + 1⌋ − f, z = Φ⁻¹((n − s)/n).
///
/// s is clamped to at least 1 (a Byzantine majority would give s ≤ 0 and
/// z = +∞), so z stays finite; n < 2 gives z = 0.
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

fn ipm(ctx: &UpdateContext<'_>, p: &Params, _: &mut ChaCha8Rng) -> Vec<f32> {
    let Some(stats) = ctx.honest else {
        return zeros(ctx);
    };
    let eps = p.float("epsilon");
    stats.mean.iter().map(|m| (-eps * m) as f32).collect()
}

fn zero(ctx: &UpdateContext<'_>, _: &Params, _: &mut ChaCha8Rng) -> Vec<f32> {
    zeros(ctx)
}

fn label_flipping(
    labels: &mut [i64],
    classes: usize,
    _: &Params,
    _: &mut ChaCha8Rng,
) -> Result<()> {
    let top = classes as i64 - 1;
    labels.iter_mut().for_each(|y| *y = top - *y);
    Ok(())
}

fn targeted_label_flipping(
    labels: &mut [i64],
    classes: usize,
    p: &Params,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    let (source, target) = (p.int("source"), p.int("target"));
    for (name, v) in [("source", source), ("target", target)] {
        if v >= classes as i64 {
            return Err(CoreError::invalid(
                format!("targeted_label_flipping.{name}"),
                v,
                format!("an int in [0, num_classes) = [0, {classes})"),
            ));
        }
    }
    let hits: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == source).collect();
    let k = ((p.float("ratio") * hits.len() as f64 + 0.5).floor() as usize).min(hits.len());
    for pick in sample(rng, hits.len(), k) {
        labels[hits[pick]] = target;
    }
    Ok(())
}

fn source_differs_from_target(p: &Params) -> Result<()> {
    if p.int("source") == p.int("target") {
        return Err(CoreError::invalid(
            "targeted_label_flipping.target",
            p.int("target"),
            format!("an int ≥ 0 different from source = {}", p.int("source")),
        ));
    }
    Ok(())
}

/// The registry, one entry per attack.
pub static ATTACKS: &[AttackSpec] = &[
    AttackSpec {
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
        check: None,
    },
    AttackSpec {
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
        check: None,
    },
    AttackSpec {
        name: "ipm",
        aliases: &["InnerProductManipulation"],
        description: "inner product manipulation: sends -epsilon times the mean honest update",
        reference: "Xie et al. 2019, Fall of Empires: Breaking Byzantine-tolerant SGD by \
                    Inner Product Manipulation, https://arxiv.org/abs/1903.03936",
        params: &[
            ParamSpec::float("epsilon", 0.5, "scale of the reversed honest mean").min(0.0, true),
        ],
        apply: Apply::Update {
            run: ipm,
            needs_honest_stats: true,
        },
        check: None,
    },
    AttackSpec {
        name: "label_flipping",
        aliases: &[],
        description: "trains on flipped labels: y -> C - 1 - y for every sample",
        reference: "Tolpegin et al. 2020, Data Poisoning Attacks Against Federated \
                    Learning Systems, https://arxiv.org/abs/2007.08432",
        params: &[],
        apply: Apply::Data(label_flipping),
        check: None,
    },
    AttackSpec {
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
        check: None,
    },
    AttackSpec {
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
        check: None,
    },
    AttackSpec {
        name: "targeted_label_flipping",
        aliases: &[],
        description: "relabels a seeded random ratio of the samples of class source as target",
        reference: "Tolpegin et al. 2020, Data Poisoning Attacks Against Federated \
                    Learning Systems, https://arxiv.org/abs/2007.08432",
        params: &[
            ParamSpec::int("source", 1, "class whose samples are relabelled")
                .min(0.0, true)
                .class_id(),
            ParamSpec::int("target", 7, "class they are relabelled as")
                .min(0.0, true)
                .class_id(),
            ParamSpec::float("ratio", 1.0, "share of the source samples relabelled")
                .min(0.0, false)
                .max(1.0, true),
        ],
        apply: Apply::Data(targeted_label_flipping),
        check: Some(source_differs_from_target),
    },
    AttackSpec {
        name: "zero",
        aliases: &[],
        description: "sends the zero vector",
        reference: "Blanchard et al. 2017, https://papers.nips.cc/paper/6617",
        params: &[],
        apply: Apply::Update {
            run: zero,
            needs_honest_stats: false,
        },
        check: None,
    },
];

// ---------------------------------------------------------------- lookup & validation

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
            CoreError::UnknownAttack {
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
    values: Vec<(&'static str, Value)>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("attack", &self.spec.name)
            .field("values", &self.values)
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
    pub fn validate(name: &str, raw: &[(String, RawValue)]) -> Result<Params> {
        let spec = find_attack(name)?;
        let mut values: Vec<(&'static str, Value)> =
            spec.all_params().map(|p| (p.name, p.default)).collect();
        for (key, value) in raw {
            let Some(pos) = values.iter().position(|(n, _)| n == key) else {
                let mut valid: Vec<&str> = spec.all_params().map(|p| p.name).collect();
                valid.sort_unstable();
                return Err(CoreError::UnknownParam {
                    attack: spec.name.to_string(),
                    param: key.clone(),
                    suggestion: closest(key, valid.iter().copied()),
                    valid: valid.iter().map(|s| s.to_string()).collect(),
                });
            };
            let param = spec.all_params().nth(pos).unwrap_or(&COMMON[0]);
            values[pos].1 = param.coerce(spec.name, value)?;
        }
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
        &self.values
    }

    fn get(&self, name: &str) -> Value {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Value::None, |(_, v)| *v)
    }

    /// A float parameter (NaN if absent, which validation rules out).
    pub fn float(&self, name: &str) -> f64 {
        self.opt_float(name).unwrap_or(f64::NAN)
    }

    /// A nullable float parameter.
    pub fn opt_float(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            Value::Float(x) => Some(x),
            Value::Int(i) => Some(i as f64),
            Value::None => None,
        }
    }

    /// An int parameter (-1 if absent, which validation rules out).
    pub fn int(&self, name: &str) -> i64 {
        self.opt_int(name).unwrap_or(-1)
    }

    /// A nullable int parameter.
    pub fn opt_int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Value::Int(i) => Some(i),
            _ => None,
        }
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

/// A ChaCha8 generator for (seed, stream, round, client): independent of call order.
pub fn rng_for(seed: u64, stream: u64, round: u64, client: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (i, word) in [seed, stream, round, client].iter().enumerate() {
        key[i * 8..(i + 1) * 8].copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, RawValue)]) -> Vec<(String, RawValue)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn registry_is_sorted_unique_and_complete() {
        let names = valid_attacks();
        assert_eq!(
            names,
            vec![
                "alie",
                "gaussian_noise",
                "ipm",
                "label_flipping",
                "model_poisoning",
                "sign_flipping",
                "targeted_label_flipping",
                "zero"
            ]
        );
        for a in ATTACKS {
            let mut params: Vec<_> = a.all_params().map(|p| p.name).collect();
            let total = params.len();
            params.sort_unstable();
            params.dedup();
            assert_eq!(params.len(), total, "{}", a.name);
            // Defaults validate.
            assert!(Params::validate(a.name, &[]).is_ok(), "{}", a.name);
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
        ] {
            assert_eq!(find_attack(given).map(|a| a.name), Ok(name), "{given}");
        }
        let e = find_attack("signflip").err().unwrap().to_string();
        assert!(e.contains("did you mean 'sign_flipping'"), "{e}");
        let e = find_attack("ALittleIsEnuogh").err().unwrap().to_string();
        assert!(e.contains("did you mean 'alie'"), "{e}");
        let e = find_attack("Mimic").err().unwrap().to_string();
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
                assert_eq!(p.max, Some(MAX_COUNT as f64), "{}.{}", a.name, p.name);
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

    #[test]
    fn normal_quantile_known_values() {
        let cases = [
            (0.5, 0.0),
            (0.975, 1.959963984540054),
            (0.8413447460685429, 1.0),
            (0.02275013194817921, -2.0),
            (0.001, -3.090232306167813),
            (0.999, 3.090232306167813),
            (0.6, 0.2533471031357997),
        ];
        for (p, x) in cases {
            let q = normal_quantile(p);
            assert!(
                (q - x).abs() < 1e-8 * x.abs().max(1.0),
                "Φ⁻¹({p}) = {q}, want {x}"
            );
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert!(normal_quantile(1.5).is_nan());
    }

    #[test]
    fn alie_z_matches_the_paper_formula() {
        // n = 50, f = 10: s = 26 - 10 = 16, z = Φ⁻¹(34/50).
        assert!((alie_default_z(50, 10) - normal_quantile(0.68)).abs() < 1e-15);
        // Byzantine majority: s clamped to 1, z stays finite.
        assert!(alie_default_z(4, 3).is_finite());
        assert_eq!(alie_default_z(1, 1), 0.0);
    }

    #[test]
    fn attacks_do_what_they_say() {
        let own = [1.0f32, -2.0, 3.0];
        let rows: Vec<&[f32]> = vec![&[1.0, 1.0, 1.0], &[3.0, 1.0, -1.0]];
        let stats = HonestStats::compute(&rows).unwrap();
        assert_eq!(stats.mean, vec![2.0, 1.0, 0.0]);
        assert_eq!(stats.std, vec![1.0, 0.0, 1.0]);
        let ctx = UpdateContext {
            own: &own,
            honest: Some(&stats),
            n: 4,
            f: 2,
        };
        let mut rng = rng_for(1, 2, 3, 4);
        let run = |name: &str, raw_params: &[(&str, RawValue)], rng: &mut ChaCha8Rng| {
            let p = Params::validate(name, &raw(raw_params)).unwrap();
            match p.spec().apply {
                Apply::Update { run, .. } => run(&ctx, &p, rng),
                Apply::Data(_) => unreachable!(),
            }
        };
        assert_eq!(
            run(
                "sign_flipping",
                &[("scale", RawValue::Float(2.0))],
                &mut rng
            ),
            vec![-2.0, 4.0, -6.0]
        );
        assert_eq!(run("zero", &[], &mut rng), vec![0.0; 3]);
        assert_eq!(run("ipm", &[], &mut rng), vec![-1.0, -0.5, 0.0]);
        assert_eq!(
            run("alie", &[("z", RawValue::Float(1.0))], &mut rng),
            vec![1.0, 1.0, -1.0]
        );
        assert_eq!(
            run(
                "model_poisoning",
                &[
                    ("intensity", RawValue::Float(1.0)),
                    ("scale", RawValue::Int(2))
                ],
                &mut rng
            ),
            vec![-2.0, 4.0, -6.0]
        );
        assert_eq!(
            run(
                "model_poisoning",
                &[("intensity", RawValue::Float(0.0))],
                &mut rng
            ),
            own.to_vec()
        );
        assert_eq!(
            run(
                "gaussian_noise",
                &[("sigma", RawValue::Float(0.0))],
                &mut rng
            ),
            vec![0.0; 3]
        );
        let a = run("gaussian_noise", &[], &mut rng_for(1, 2, 3, 4));
        let b = run("gaussian_noise", &[], &mut rng_for(1, 2, 3, 4));
        assert_eq!(a, b);
        let no_honest = UpdateContext {
            own: &own,
            honest: None,
            n: 2,
            f: 2,
        };
        let p = Params::validate("alie", &[]).unwrap();
        assert_eq!(alie(&no_honest, &p, &mut rng), vec![0.0; 3]);
    }

    #[test]
    fn data_attacks() {
        let p = Params::validate("label_flipping", &[]).unwrap();
        let mut labels = vec![0i64, 1, 9, 4];
        label_flipping(&mut labels, 10, &p, &mut rng_for(0, 0, 0, 0)).unwrap();
        assert_eq!(labels, vec![9, 8, 0, 5]);

        let p = Params::validate(
            "targeted_label_flipping",
            &raw(&[("ratio", RawValue::Float(0.5))]),
        )
        .unwrap();
        let mut labels = vec![1i64, 1, 2, 1, 1, 3];
        targeted_label_flipping(&mut labels, 10, &p, &mut rng_for(0, 0, 0, 0)).unwrap();
        assert_eq!(labels.iter().filter(|&&y| y == 7).count(), 2);
        assert_eq!(labels.iter().filter(|&&y| y == 1).count(), 2);
        assert_eq!((labels[2], labels[5]), (2, 3));
        let mut labels = vec![1i64; 3];
        assert!(targeted_label_flipping(&mut labels, 5, &p, &mut rng_for(0, 0, 0, 0)).is_err());
    }
}
