//! Aggregation strategies: the registry, one kernel file per rule.
//!
//! **The registry.** [`STRATEGIES`] lists every strategy once. Each entry (a
//! [`StrategySpec`], declared in the strategy's kernel file next to its kernel)
//! holds its name and aliases, its parameters in the shared [`crate::schema`]
//! dialect (type, default, range, description), its paper, its preconditions on
//! the number of clients and its capabilities ([`ClientObjective`],
//! [`StrategySpec::uses_previous_aggregate`], [`Tolerance`], selection). The
//! Python bindings export it as `strategy_schemas()` in the same `ParamSchema`
//! shape as the attacks, and the Python classes are derived from it.
//!
//! **Adding a strategy** is its kernel file (the kernel, a [`Kernel`] adapter and
//! its `SPEC`) plus its `mod` line and one line in [`STRATEGIES`]. Nothing else in
//! Rust, and nothing in Python, names it; `velocity/strategy.py` may add a class
//! only for a docstring with the math and a doctest.
//!
//! **The kernels** work on row slices `rows: &[&[f32]]` (n rows = clients, each
//! of length d = coordinates) and sample weights `weights: &[f64]`, so the
//! orchestrator can substitute attacked rows without copying the honest matrix.
//! Kernels run on the current rayon pool, split coordinates into fixed chunks
//! ([`crate::parallel::CHUNK`]) and never split a per-coordinate reduction, so
//! results are bit-identical for any thread count.
//!
//! **Non-finite input.** All strategies reject an update matrix that holds
//! NaN or ±Inf ([`CoreError::NonFinite`] names the first row and coordinate)
//! rather than silently dropping or propagating it. Kernels detect it in their
//! first pass (for free) and the exact position is then located by a scan.
//!
//! ```
//! use _core::schema::RawValue;
//! use _core::strategy::Strategy;
//!
//! let krum = Strategy::new("Krum", &[("f", RawValue::Int(1))]).unwrap();
//! let rows: Vec<&[f32]> = vec![&[0.0, 0.0], &[1.0, 0.0], &[0.0, 1.0], &[1.0, 1.0], &[100.0, 100.0]];
//! let out = krum.aggregate(&rows, &[1.0; 5], None).unwrap();
//! assert_eq!((out.value, out.selected), (vec![0.0, 0.0], Some(vec![0])));
//! let e = krum.check_clients(4).unwrap_err();
//! assert_eq!(e.to_string(), "Krum needs at least 5 clients (n ≥ 2f+3 with f = 1), got n = 4");
//! ```

mod bulyan;
mod centered_clipping;
mod columns;
mod distances;
mod fedavg;
mod geometric_median;
mod krum;
mod median;
mod spec;
mod trimmed_mean;

pub use spec::{ClientCheck, ClientObjective, Inputs, Kernel, ParamCheck, StrategySpec, Tolerance};

pub(crate) use distances::pairwise_sq_distances;
pub(crate) use fedavg::weighted_sum_into;

use crate::error::{closest_in, name_key, CoreError, Result};
use crate::schema::{ParamSpec, RawValue, Value, Values};
use rayon::prelude::*;

/// The registry, one entry per strategy (each declared in its kernel file), in
/// the order the catalog lists them.
pub static STRATEGIES: &[StrategySpec] = &[
    fedavg::FEDAVG,
    fedavg::FEDPROX,
    median::SPEC,
    trimmed_mean::SPEC,
    krum::KRUM,
    krum::MULTI_KRUM,
    bulyan::SPEC,
    geometric_median::SPEC,
    centered_clipping::SPEC,
];

/// Strategy names in registry order.
pub fn valid_strategies() -> Vec<&'static str> {
    STRATEGIES.iter().map(|s| s.name).collect()
}

/// The registry entry for `name` or one of its aliases, ignoring case, `_`, `-`,
/// spaces and dots (`fed_median`, `TrMean`, `CC`), or an error with a close
/// match (aliases and [`StrategySpec::suggested_for`] names included).
pub fn find_strategy(name: &str) -> Result<&'static StrategySpec> {
    let key = name_key(name);
    STRATEGIES
        .iter()
        .find(|s| name_key(s.name) == key || s.aliases.iter().any(|a| name_key(a) == key))
        .ok_or_else(|| {
            let spellings = STRATEGIES.iter().flat_map(|s| {
                std::iter::once((s.name, s.name))
                    .chain(s.aliases.iter().map(|a| (*a, s.name)))
                    .chain(s.suggested_for.iter().map(|a| (*a, s.name)))
            });
            CoreError::UnknownName {
                kind: "strategy",
                name: name.to_string(),
                suggestion: closest_in(name, spellings),
                valid: valid_strategies().iter().map(|s| s.to_string()).collect(),
            }
        })
}

/// Marker returned by a kernel that saw NaN/±Inf in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SawNonFinite;

/// A kernel's result before the non-finite check is turned into an error.
pub type KernelResult<T> = std::result::Result<T, SawNonFinite>;

/// The output of one aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The aggregated d-vector.
    pub value: Vec<f32>,
    /// For selection strategies (Krum, MultiKrum, Bulyan): the kept row indices, sorted.
    pub selected: Option<Vec<usize>>,
}

impl Aggregate {
    /// A value without selected rows.
    pub fn plain(value: Vec<f32>) -> Self {
        Aggregate {
            value,
            selected: None,
        }
    }
}

/// An immutable, validated aggregation rule: a registry entry and its parameters.
///
/// [`Strategy::new`] checks everything that does not depend on the number of
/// clients n; [`Strategy::check_clients`] checks the rest.
#[derive(Clone)]
pub struct Strategy {
    spec: &'static StrategySpec,
    values: Values,
}

impl PartialEq for Strategy {
    fn eq(&self, other: &Self) -> bool {
        self.spec.name == other.spec.name && self.values == other.values
    }
}

impl std::fmt::Debug for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Strategy {
    /// The strategy `name` (or an alias) with `params` checked against its
    /// registry entry and the defaults filled in.
    ///
    /// Errors: an unknown name or parameter (with the close match), a value of
    /// the wrong type or out of range (named `Name.param`), and the entry's
    /// cross-parameter check (Bulyan's m ≥ 2f + 1).
    pub fn new(name: &str, params: &[(&str, RawValue)]) -> Result<Self> {
        let spec = find_strategy(name)?;
        let specs: Vec<&'static ParamSpec> = spec.params.iter().collect();
        let values = Values::validate("strategy", spec.name, &specs, params)?;
        let strategy = Strategy { spec, values };
        if let Some(check) = spec.check {
            check(&strategy)?;
        }
        Ok(strategy)
    }

    /// The registry entry.
    pub fn spec(&self) -> &'static StrategySpec {
        self.spec
    }

    /// The registered name ("FedAvg", "Krum", …).
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Every parameter with its value, in schema order.
    pub fn values(&self) -> &[(&'static str, Value)] {
        self.values.as_slice()
    }

    /// A float parameter.
    pub fn float(&self, name: &str) -> f64 {
        self.values.float(name)
    }

    /// A count parameter.
    pub fn count(&self, name: &str) -> usize {
        self.values.count(name)
    }

    /// A nullable count parameter.
    pub fn opt_count(&self, name: &str) -> Option<usize> {
        self.values.opt_count(name)
    }

    /// A constructor-call-like description, e.g. `Strategy("Krum", {"f": 1})`.
    pub fn describe(&self) -> String {
        if self.values().is_empty() {
            format!("Strategy(\"{}\")", self.name())
        } else {
            format!(
                "Strategy(\"{}\", {})",
                self.name(),
                dict_literal(self.values())
            )
        }
    }

    /// True for strategies that keep a subset of the rows (Krum, MultiKrum, Bulyan).
    pub fn is_selection(&self) -> bool {
        self.spec.selection
    }

    /// False for the plain means (FedAvg, FedProx).
    pub fn is_robust(&self) -> bool {
        self.spec.robust
    }

    /// What clients minimise locally.
    pub fn client_objective(&self) -> ClientObjective {
        self.spec.client_objective
    }

    /// μ of the proximal term μ/2 · ‖w − wᵗ‖² clients add to their loss (0 for
    /// strategies whose clients minimise their plain loss).
    pub fn proximal_mu(&self) -> f64 {
        match self.spec.client_objective {
            ClientObjective::Local => 0.0,
            ClientObjective::Proximal { mu } => self.float(mu),
        }
    }

    /// Whether the kernel reads the previous round's aggregate.
    pub fn uses_previous_aggregate(&self) -> bool {
        self.spec.uses_previous_aggregate
    }

    /// Byzantine clients per round among `n` this configuration is set to
    /// tolerate: the [`Tolerance`] parameter (f, or ⌊β·n⌋), None for rules
    /// without one (the median's breakdown point is not a setting).
    pub fn configured_byzantine(&self, n: usize) -> Option<usize> {
        Some(match self.spec.tolerance? {
            Tolerance::Count(p) => self.count(p),
            Tolerance::Fraction(p) => (self.float(p) * n as f64).floor() as usize,
        })
    }

    /// Checks that `n` clients satisfy this strategy's precondition.
    ///
    /// n ≥ 1 always, then the entry's own check: Krum and MultiKrum n ≥ 2f + 3
    /// (and MultiKrum m ≤ n); Bulyan n ≥ 4f + 3 and 2f + 1 ≤ θ ≤ n. The bounds
    /// are computed in u128, so no f (up to `usize::MAX`) can wrap them.
    pub fn check_clients(&self, n: usize) -> Result<()> {
        if n < 1 {
            return Err(CoreError::TooFewClients {
                strategy: self.name(),
                n,
                required: 1,
                formula: "n ≥ 1".into(),
            });
        }
        match self.spec.check_clients {
            Some(check) => check(self, n),
            None => Ok(()),
        }
    }

    /// Aggregates `rows` (n × d) with sample `weights` (n) into a d-vector.
    ///
    /// `previous` is the previous round's aggregate, read by strategies that
    /// declare [`StrategySpec::uses_previous_aggregate`] (CenteredClipping's
    /// starting point v₀; `None`: the zero vector) and ignored by the others.
    /// Runs on the current rayon pool.
    ///
    /// Errors: n = 0 or d = 0, ragged rows, `weights.len() != n`, negative or
    /// non-finite weights or a zero weight sum, NaN/Inf in `rows` or
    /// `previous`, and the strategy's own precondition ([`Strategy::check_clients`]).
    pub fn aggregate(
        &self,
        rows: &[&[f32]],
        weights: &[f64],
        previous: Option<&[f32]>,
    ) -> Result<Aggregate> {
        let d = check_inputs(rows, weights)?;
        self.check_clients(rows.len())?;
        if let Some(r) = previous {
            if r.len() != d {
                return Err(CoreError::shape(
                    "reference",
                    format!("length {d}"),
                    r.len(),
                ));
            }
            if let Some(j) = r.iter().position(|v| !v.is_finite()) {
                return Err(CoreError::invalid(
                    format!("reference[{j}]"),
                    r[j],
                    "a finite float",
                ));
            }
        }
        let inputs = Inputs {
            rows,
            weights,
            previous: previous.filter(|_| self.uses_previous_aggregate()),
        };
        (self.spec.kernel)(self, &inputs).map_err(|SawNonFinite| locate_non_finite(rows))
    }
}

/// Parameters as a Python dict literal, in schema order: `{"f": 1, "m": None}`.
pub(crate) fn dict_literal(values: &[(&'static str, Value)]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|(name, value)| match value {
            Value::Float(x) => format!("\"{name}\": {x:?}"),
            Value::Int(i) => format!("\"{name}\": {i}"),
            Value::None => format!("\"{name}\": None"),
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// Validates the matrix shape and the weights; returns d.
pub(crate) fn check_inputs(rows: &[&[f32]], weights: &[f64]) -> Result<usize> {
    let n = rows.len();
    if n == 0 {
        return Err(CoreError::shape(
            "updates",
            "at least one row (n ≥ 1)",
            "n = 0",
        ));
    }
    let d = rows[0].len();
    if d == 0 {
        return Err(CoreError::shape(
            "updates",
            "at least one column (d ≥ 1)",
            "d = 0",
        ));
    }
    if let Some(i) = rows.iter().position(|r| r.len() != d) {
        return Err(CoreError::shape(
            format!("updates row {i}"),
            format!("length {d}"),
            rows[i].len(),
        ));
    }
    if weights.len() != n {
        return Err(CoreError::shape(
            "weights",
            format!("length n = {n}"),
            weights.len(),
        ));
    }
    if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(CoreError::invalid(
            format!("weights[{i}]"),
            weights[i],
            "a finite float ≥ 0",
        ));
    }
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return Err(CoreError::invalid(
            "weights",
            format!("sum {total}"),
            "weights whose sum is finite and > 0",
        ));
    }
    Ok(d)
}

/// The first (row, coordinate) holding NaN/±Inf, as an error.
pub(crate) fn locate_non_finite(rows: &[&[f32]]) -> CoreError {
    let found = rows.par_iter().enumerate().find_map_first(|(i, row)| {
        row.chunks(crate::parallel::CHUNK)
            .enumerate()
            .find(|(_, chunk)| !all_finite(chunk))
            .and_then(|(c, chunk)| {
                let j = chunk.iter().position(|v| !v.is_finite())?;
                Some((i, c * crate::parallel::CHUNK + j))
            })
    });
    match found {
        Some((row, col)) => CoreError::NonFinite { row, col },
        None => CoreError::Runtime {
            message: "internal error: a kernel reported a non-finite value but none was found"
                .into(),
        },
    }
}

/// True when every value is finite (branch-free, vectorisable).
#[inline]
pub(crate) fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(0u32, |acc, v| {
        acc | u32::from(v.to_bits() & 0x7f80_0000 == 0x7f80_0000)
    }) == 0
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::Strategy;
    use crate::schema::RawValue;

    /// The registered strategy `name` with `params` (panics on invalid input).
    pub fn strategy(name: &str, params: &[(&str, RawValue)]) -> Strategy {
        Strategy::new(name, params).unwrap()
    }

    /// Rows of a row-major matrix.
    pub fn rows(data: &[Vec<f32>]) -> Vec<&[f32]> {
        data.iter().map(Vec::as_slice).collect()
    }

    /// A deterministic pseudo-random matrix (no rand dependency in tests' math).
    pub fn matrix(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                (0..d)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{matrix, rows, strategy};
    use super::*;
    use crate::error::MAX_COUNT;
    use crate::parallel::install;

    fn int(v: i64) -> RawValue {
        RawValue::Int(v)
    }

    fn float(v: f64) -> RawValue {
        RawValue::Float(v)
    }

    /// Every registered strategy at its defaults, plus other settings of each.
    fn all_strategies() -> Vec<Strategy> {
        let mut all: Vec<Strategy> = STRATEGIES.iter().map(|s| strategy(s.name, &[])).collect();
        all.extend([
            strategy("FedProx", &[("mu", float(0.1))]),
            strategy("TrimmedMean", &[("beta", float(0.2))]),
            strategy("Krum", &[("f", int(2))]),
            strategy("MultiKrum", &[("f", int(2))]),
            strategy("MultiKrum", &[("f", int(2)), ("m", int(4))]),
            strategy("Bulyan", &[("f", int(2))]),
            strategy(
                "GeometricMedian",
                &[("eps", float(1e-6)), ("max_iter", int(20))],
            ),
            strategy(
                "CenteredClipping",
                &[("tau", float(0.5)), ("iters", int(3))],
            ),
        ]);
        all
    }

    #[test]
    fn registry_is_unique_documented_and_its_defaults_validate() {
        let names = valid_strategies();
        for (i, s) in STRATEGIES.iter().enumerate() {
            assert!(!names[..i].contains(&s.name), "{} registered twice", s.name);
            assert!(
                !s.description.is_empty() && !s.reference.is_empty(),
                "{}",
                s.name
            );
            assert!(Strategy::new(s.name, &[]).is_ok(), "{}", s.name);
            for alias in s.aliases {
                assert_eq!(find_strategy(alias).map(|f| f.name), Ok(s.name));
            }
            for (_, param) in s.param_hints {
                assert!(s.params.iter().any(|p| p.name == *param), "{}", s.name);
            }
            if let Some(t) = s.tolerance {
                assert!(s.params.iter().any(|p| p.name == t.param()), "{}", s.name);
            }
            if let ClientObjective::Proximal { mu } = s.client_objective {
                assert!(s.params.iter().any(|p| p.name == mu), "{}", s.name);
            }
            for p in s
                .params
                .iter()
                .filter(|p| p.ty == crate::schema::ParamType::Int)
            {
                assert_eq!(p.max, Some(MAX_COUNT as f64), "{}.{}", s.name, p.name);
            }
        }
        for s in STRATEGIES {
            for other in s.suggested_for {
                assert!(find_strategy(other).is_err(), "{other} is only suggested");
            }
        }
    }

    #[test]
    fn names_resolve_and_unknown_ones_are_suggested() {
        for (given, name) in [
            ("fed_median", "FedMedian"),
            ("Median", "FedMedian"),
            ("TrMean", "TrimmedMean"),
            ("multi-krum", "MultiKrum"),
            ("CC", "CenteredClipping"),
            ("GeoMed", "GeometricMedian"),
        ] {
            assert_eq!(find_strategy(given).map(|s| s.name), Ok(name), "{given}");
        }
        let e = find_strategy("Krumm").unwrap_err().to_string();
        assert!(e.starts_with("unknown strategy 'Krumm'; did you mean 'Krum'? valid: FedAvg, "));
        let e = find_strategy("FedAvgM").unwrap_err().to_string();
        assert!(e.contains("did you mean 'FedAvg'"), "{e}");
        let e = Strategy::new("Krum", &[("g", int(1))])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "unknown parameter 'g' for strategy 'Krum'; valid: f");
    }

    #[test]
    fn bit_identical_for_any_thread_count() {
        // Spans several CHUNKs and tiles, with a ragged last chunk.
        let (n, d) = (11, 3 * crate::parallel::CHUNK + 123);
        let data = matrix(n, d, 7);
        let r = rows(&data);
        let w: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
        for s in all_strategies() {
            let one = install(Some(1), || s.aggregate(&r, &w, None))
                .unwrap()
                .unwrap();
            let four = install(Some(4), || s.aggregate(&r, &w, None))
                .unwrap()
                .unwrap();
            let bits = |a: &Aggregate| a.value.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&four), "{}", s.name());
            assert_eq!(one.selected, four.selected, "{}", s.name());
            assert_eq!(one.selected.is_some(), s.is_selection(), "{}", s.name());
            assert!(one.value.iter().all(|v| v.is_finite()), "{}", s.name());
        }
    }

    #[test]
    fn non_finite_input_is_rejected_by_every_strategy() {
        let (n, d) = (11, crate::parallel::CHUNK + 10);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut data = matrix(n, d, 3);
            data[4][crate::parallel::CHUNK + 2] = bad;
            data[9][1] = bad;
            let r = rows(&data);
            let w = vec![1.0; n];
            for s in all_strategies() {
                let err = s.aggregate(&r, &w, None).unwrap_err();
                assert_eq!(
                    err,
                    CoreError::NonFinite {
                        row: 4,
                        col: crate::parallel::CHUNK + 2
                    },
                    "{}",
                    s.name()
                );
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let data = matrix(5, 3, 1);
        let r = rows(&data);
        let s = strategy("FedAvg", &[]);
        assert!(s.aggregate(&[], &[], None).is_err());
        let empty: Vec<&[f32]> = vec![&[], &[]];
        assert!(s.aggregate(&empty, &[1.0, 1.0], None).is_err());
        assert!(s.aggregate(&r, &[1.0; 4], None).is_err());
        assert!(s.aggregate(&r, &[1.0, -1.0, 1.0, 1.0, 1.0], None).is_err());
        assert!(s
            .aggregate(&r, &[1.0, f64::NAN, 1.0, 1.0, 1.0], None)
            .is_err());
        assert!(s.aggregate(&r, &[0.0; 5], None).is_err());
        let ragged: Vec<&[f32]> = vec![&data[0], &data[1][..2]];
        assert!(s.aggregate(&ragged, &[1.0, 1.0], None).is_err());
        let cc = strategy(
            "CenteredClipping",
            &[("tau", float(1.0)), ("iters", int(1))],
        );
        assert!(cc.aggregate(&r, &[1.0; 5], Some(&[0.0; 2])).is_err());
        assert!(cc
            .aggregate(&r, &[1.0; 5], Some(&[0.0, f32::NAN, 0.0]))
            .is_err());
        for s in all_strategies() {
            for n in 0..3 {
                let _ = s.aggregate(&r[..n], &vec![1.0; n], None);
            }
        }
    }

    #[test]
    fn previous_aggregate_reaches_only_strategies_that_declare_it() {
        let data = [vec![10.0f32], vec![10.0]];
        let r = rows(&data);
        let cc = strategy("CenteredClipping", &[("iters", int(1))]);
        assert!(cc.uses_previous_aggregate());
        assert_eq!(cc.aggregate(&r, &[1.0; 2], None).unwrap().value, vec![1.0]);
        assert_eq!(
            cc.aggregate(&r, &[1.0; 2], Some(&[1.0])).unwrap().value,
            vec![2.0]
        );
        let mean = strategy("FedAvg", &[]);
        assert!(!mean.uses_previous_aggregate());
        assert_eq!(
            mean.aggregate(&r, &[1.0; 2], Some(&[1.0])).unwrap().value,
            vec![10.0]
        );
    }

    #[test]
    fn constructors_validate() {
        let bad: &[(&str, &[(&str, RawValue)])] = &[
            ("FedProx", &[("mu", float(-0.1))]),
            ("FedProx", &[("mu", float(f64::NAN))]),
            ("TrimmedMean", &[("beta", float(0.5))]),
            ("TrimmedMean", &[("beta", float(-0.01))]),
            ("MultiKrum", &[("f", int(1)), ("m", int(0))]),
            ("Bulyan", &[("f", int(1)), ("m", int(2))]),
            ("GeometricMedian", &[("eps", float(0.0))]),
            ("GeometricMedian", &[("max_iter", int(0))]),
            ("CenteredClipping", &[("tau", float(0.0))]),
            ("CenteredClipping", &[("iters", int(0))]),
            ("Krum", &[("f", int(-1))]),
            ("Krum", &[("f", int(MAX_COUNT as i64 + 1))]),
            ("Krum", &[("f", RawValue::Bool(true))]),
            ("Krum", &[("f", float(1.0))]),
        ];
        for (name, params) in bad {
            assert!(Strategy::new(name, params).is_err(), "{name} {params:?}");
        }
        assert!(Strategy::new("TrimmedMean", &[("beta", float(0.0))]).is_ok());
        assert!(Strategy::new("Bulyan", &[("f", int(1)), ("m", int(3))]).is_ok());
        let e = Strategy::new("TrimmedMean", &[("beta", float(0.5))])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid TrimmedMean.beta: got 0.5; allowed: a finite float in [0.0, 0.5)"
        );
        let e = Strategy::new("Bulyan", &[("m", int(2))])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid Bulyan.m: got 2; allowed: None or an integer ≥ 2f+1 = 3 (f = 1)"
        );
    }

    #[test]
    fn preconditions_name_both_numbers_and_formula() {
        let krum = strategy("Krum", &[("f", int(1))]);
        let msg = krum.check_clients(4).unwrap_err().to_string();
        assert!(
            msg.contains("at least 5") && msg.contains("n = 4") && msg.contains("2f+3"),
            "{msg}"
        );
        assert!(krum.check_clients(5).is_ok());
        let bulyan = strategy("Bulyan", &[("f", int(1))]);
        let msg = bulyan.check_clients(6).unwrap_err().to_string();
        assert!(msg.contains("at least 7") && msg.contains("4f+3"), "{msg}");
        assert!(bulyan.check_clients(7).is_ok());
        let theta = strategy("Bulyan", &[("f", int(1)), ("m", int(8))]);
        assert!(theta.check_clients(7).is_err());
        let multi = strategy("MultiKrum", &[("f", int(1)), ("m", int(6))]);
        assert!(multi.check_clients(5).is_err());
        assert!(strategy("FedAvg", &[]).check_clients(0).is_err());
        assert!(strategy("FedAvg", &[]).check_clients(1).is_ok());
    }

    #[test]
    fn preconditions_use_checked_arithmetic() {
        // 2f + 3 and 4f + 3 with f at its bound stay exact and refuse n = 10.
        let f = int(MAX_COUNT as i64);
        for name in ["Krum", "MultiKrum", "Bulyan"] {
            let s = strategy(name, &[("f", f.clone())]);
            assert!(
                matches!(s.check_clients(10), Err(CoreError::TooFewClients { required, .. }) if required > 10),
                "{name}"
            );
            let data = matrix(10, 4, 1);
            assert!(
                s.aggregate(&rows(&data), &[1.0; 10], None).is_err(),
                "{name}"
            );
        }
        assert_eq!(spec::affine(4, usize::MAX, 3), 4 * usize::MAX as u128 + 3);
        let e = strategy("Bulyan", &[("f", f.clone())])
            .check_clients(7)
            .unwrap_err();
        assert!(e.to_string().contains("at least 4000003"), "{e}");
        assert!(Strategy::new("Bulyan", &[("f", f), ("m", int(5))]).is_err());
        let multi = strategy("MultiKrum", &[("f", int(3)), ("m", int(MAX_COUNT as i64))]);
        assert!(multi.check_clients(9).is_err());
    }

    #[test]
    fn capabilities_and_descriptions() {
        let names: Vec<_> = all_strategies()
            .iter()
            .map(|s| (s.name(), s.is_selection()))
            .collect();
        assert!(names.contains(&("Krum", true)));
        assert!(names.contains(&("FedMedian", false)));
        assert!(names.contains(&("Bulyan", true)));
        assert_eq!(
            strategy("MultiKrum", &[]).describe(),
            "Strategy(\"MultiKrum\", {\"f\": 1, \"m\": None})"
        );
        assert_eq!(strategy("FedAvg", &[]).describe(), "Strategy(\"FedAvg\")");
        assert_eq!(
            strategy("FedProx", &[("mu", float(0.5))]).proximal_mu(),
            0.5
        );
        assert_eq!(strategy("FedAvg", &[]).proximal_mu(), 0.0);
        assert!(!strategy("FedProx", &[]).is_robust());
        let trimmed = strategy("TrimmedMean", &[("beta", float(0.3))]);
        assert_eq!(trimmed.configured_byzantine(10), Some(3));
        assert_eq!(
            strategy("Krum", &[("f", int(2))]).configured_byzantine(10),
            Some(2)
        );
        assert_eq!(strategy("FedMedian", &[]).configured_byzantine(10), None);
    }
}
