//! Parameter schemas: the one dialect in which strategies and attacks declare
//! their parameters.
//!
//! A [`ParamSpec`] declares a parameter once: its type, default, range, whether
//! `None` is allowed, and one line of description. [`Values::validate`] checks
//! what a caller gave against a list of specs and fills in the defaults. The
//! strategy registry ([`crate::strategy::STRATEGIES`]) and the attack registry
//! ([`crate::security::ATTACKS`]) both use it, and the Python bindings export
//! both as the same `ParamSchema` dicts (`strategy_schemas()`, `attack_schemas()`).
//!
//! ```
//! use _core::schema::{ParamSpec, RawValue, Value, Values};
//!
//! static BETA: ParamSpec = ParamSpec::float("beta", 0.1, "fraction trimmed at each tail")
//!     .min(0.0, true)
//!     .max(0.5, false);
//! let specs = [&BETA];
//! let values = Values::validate("strategy", "TrimmedMean", &specs, &[("beta", RawValue::Float(0.2))]);
//! assert_eq!(values.unwrap().get("beta"), Value::Float(0.2));
//! let e = Values::validate("strategy", "TrimmedMean", &specs, &[("beta", RawValue::Float(0.5))]);
//! assert_eq!(
//!     e.unwrap_err().to_string(),
//!     "invalid TrimmedMean.beta: got 0.5; allowed: a finite float in [0.0, 0.5)"
//! );
//! ```

use crate::error::{closest, CoreError, Result, MAX_COUNT};

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Float,
    Int,
}

impl ParamType {
    /// "float" or "int" (the `type` of a `ParamSchema`).
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Float => "float",
            ParamType::Int => "int",
        }
    }
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
    /// A float parameter (finite; no range until [`ParamSpec::min`]/[`ParamSpec::max`]).
    pub const fn float(name: &'static str, default: f64, description: &'static str) -> Self {
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
    pub const fn int(name: &'static str, default: i64, description: &'static str) -> Self {
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
    pub const fn nullable(mut self) -> Self {
        self.nullable = true;
        self.default = Value::None;
        self
    }

    /// Marks an int parameter as a class id (checked against the dataset's classes).
    pub const fn class_id(mut self) -> Self {
        self.class_id = true;
        self
    }

    /// The lower bound (`inclusive`: ≥, else >).
    pub const fn min(mut self, min: f64, inclusive: bool) -> Self {
        self.min = Some(min);
        self.min_inclusive = inclusive;
        self
    }

    /// The upper bound (`inclusive`: ≤, else <).
    pub const fn max(mut self, max: f64, inclusive: bool) -> Self {
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

    /// Checks one raw value against this spec; errors name `owner.name`.
    ///
    /// Bools are never numbers; an int is accepted for a float parameter (not
    /// the other way round); floats must be finite; `None` only when nullable.
    pub fn coerce(&self, owner: &str, raw: &RawValue) -> Result<Value> {
        let field = format!("{owner}.{}", self.name);
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

/// Every parameter of one strategy or attack, validated, in schema order.
#[derive(Debug, Clone, PartialEq)]
pub struct Values(Vec<(&'static str, Value)>);

impl Values {
    /// Validates `raw` against `specs` (the parameters of the `kind` — "strategy"
    /// or "attack" — named `owner`), filling in the defaults.
    ///
    /// Errors: a parameter not in `specs` (with the close match and the sorted
    /// valid names), and each value's [`ParamSpec::coerce`] error. A key given
    /// twice keeps its last value.
    pub fn validate<K: AsRef<str>>(
        kind: &'static str,
        owner: &'static str,
        specs: &[&'static ParamSpec],
        raw: &[(K, RawValue)],
    ) -> Result<Values> {
        let mut values: Vec<(&'static str, Value)> =
            specs.iter().map(|p| (p.name, p.default)).collect();
        for (key, value) in raw {
            let key = key.as_ref();
            let Some(pos) = specs.iter().position(|p| p.name == key) else {
                let mut valid: Vec<&str> = specs.iter().map(|p| p.name).collect();
                valid.sort_unstable();
                return Err(CoreError::UnknownParam {
                    kind,
                    owner: owner.to_string(),
                    param: key.to_string(),
                    suggestion: closest(key, valid.iter().copied()),
                    valid: valid.iter().map(|s| s.to_string()).collect(),
                });
            };
            values[pos].1 = specs[pos].coerce(owner, value)?;
        }
        Ok(Values(values))
    }

    /// Every parameter with its value, in schema order.
    pub fn as_slice(&self) -> &[(&'static str, Value)] {
        &self.0
    }

    /// The value of `name` (`None` if there is no such parameter).
    pub fn get(&self, name: &str) -> Value {
        self.0
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

    /// A count parameter (an int declared with a lower bound ≥ 0; 0 if absent).
    pub fn count(&self, name: &str) -> usize {
        self.opt_count(name).unwrap_or(0)
    }

    /// A nullable count parameter.
    pub fn opt_count(&self, name: &str) -> Option<usize> {
        self.opt_int(name).and_then(|i| usize::try_from(i).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static F: ParamSpec = ParamSpec::int("f", 1, "tolerated").min(0.0, true);
    static M: ParamSpec = ParamSpec::int("m", 0, "kept").nullable().min(1.0, true);
    static TAU: ParamSpec = ParamSpec::float("tau", 1.0, "radius").min(0.0, false);

    #[test]
    fn allowed_texts() {
        assert_eq!(F.allowed(), "an int in [0, 1000000]");
        assert_eq!(M.allowed(), "an int in [1, 1000000] or None");
        assert_eq!(TAU.allowed(), "a finite float > 0.0");
    }

    #[test]
    fn validation_fills_defaults_and_names_the_owner() {
        let specs = [&F, &M, &TAU];
        let v = Values::validate::<&str>("strategy", "X", &specs, &[]).unwrap();
        assert_eq!(v.count("f"), 1);
        assert_eq!(v.opt_count("m"), None);
        assert_eq!(v.float("tau"), 1.0);
        let v = Values::validate("strategy", "X", &specs, &[("m", RawValue::Int(3))]).unwrap();
        assert_eq!(v.opt_count("m"), Some(3));
        let e = Values::validate("strategy", "X", &specs, &[("tua", RawValue::Int(3))])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unknown parameter 'tua' for strategy 'X'; did you mean 'tau'? valid: f, m, tau"
        );
        let e = Values::validate("strategy", "X", &specs, &[("f", RawValue::Bool(true))])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "invalid X.f: got True; allowed: an int in [0, 1000000]");
        let tau = [("tau", RawValue::Int(2))];
        let v = Values::validate("strategy", "X", &specs, &tau).unwrap();
        assert_eq!(v.get("tau"), Value::Float(2.0));
    }
}
