//! The crate's one error type.
//!
//! Errors stay Rust values inside the crate; the Python bindings map them to
//! `ValueError` (bad input) or `RuntimeError` (thread pool, internal bug) at
//! the boundary only. Every message names the field, the value and what is
//! allowed, so a caller can fix the input without reading the source.

use std::fmt;

/// Everything that can go wrong in the core.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// A parameter or input value outside its allowed range.
    InvalidParam {
        field: String,
        value: String,
        allowed: String,
    },
    /// A strategy got fewer clients than its robustness precondition needs.
    TooFewClients {
        strategy: &'static str,
        n: usize,
        required: usize,
        formula: String,
    },
    /// An update matrix entry is NaN or ±Inf.
    NonFinite { row: usize, col: usize },
    /// An array has the wrong length or shape.
    Shape {
        field: String,
        expected: String,
        got: String,
    },
    /// An attack name that is not in the registry.
    UnknownAttack {
        name: String,
        suggestion: Option<String>,
        valid: Vec<String>,
    },
    /// A parameter name that the attack does not have.
    UnknownParam {
        attack: String,
        param: String,
        suggestion: Option<String>,
        valid: Vec<String>,
    },
    /// The new global parameters are not finite.
    Diverged { round: u64, col: usize },
    /// A failure that is not the caller's input (thread pool start, internal bug).
    Runtime { message: String },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, CoreError>;

impl CoreError {
    /// Shorthand for [`CoreError::InvalidParam`].
    pub fn invalid(
        field: impl Into<String>,
        value: impl fmt::Display,
        allowed: impl Into<String>,
    ) -> Self {
        CoreError::InvalidParam {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// Shorthand for [`CoreError::Shape`].
    pub fn shape(
        field: impl Into<String>,
        expected: impl fmt::Display,
        got: impl fmt::Display,
    ) -> Self {
        CoreError::Shape {
            field: field.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// True for errors caused by the caller's input (Python `ValueError`).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, CoreError::Runtime { .. })
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean '{s}'?"),
        None => String::from(";"),
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidParam {
                field,
                value,
                allowed,
            } => write!(f, "invalid {field}: got {value}; allowed: {allowed}"),
            CoreError::TooFewClients {
                strategy,
                n,
                required,
                formula,
            } => write!(
                f,
                "{strategy} needs at least {required} clients ({formula}), got n = {n}"
            ),
            CoreError::NonFinite { row, col } => write!(
                f,
                "update row {row} has a non-finite value at coordinate {col} \
                 (all strategies reject NaN/Inf input)"
            ),
            CoreError::Shape {
                field,
                expected,
                got,
            } => write!(
                f,
                "invalid shape for {field}: expected {expected}, got {got}"
            ),
            CoreError::UnknownAttack {
                name,
                suggestion,
                valid,
            } => write!(
                f,
                "unknown attack '{name}'{} valid: {}",
                did_you_mean(suggestion),
                valid.join(", ")
            ),
            CoreError::UnknownParam {
                attack,
                param,
                suggestion,
                valid,
            } => write!(
                f,
                "unknown parameter '{param}' for attack '{attack}'{} valid: {}",
                did_you_mean(suggestion),
                valid.join(", ")
            ),
            CoreError::Diverged { round, col } => write!(
                f,
                "the run diverged at round {round}: the new global parameters have a \
                 non-finite value at coordinate {col}"
            ),
            CoreError::Runtime { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for CoreError {}

/// Converts a caller-supplied integer to a count, refusing values below `min`.
pub fn count_at_least(field: &str, value: i64, min: usize) -> Result<usize> {
    match usize::try_from(value) {
        Ok(v) if v >= min => Ok(v),
        _ => Err(CoreError::invalid(
            field,
            value,
            format!("an integer ≥ {min}"),
        )),
    }
}

/// Levenshtein distance between two strings (by `char`).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `name`, if it is close enough to be a typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name.to_lowercase(), c), c))
        .filter(|(dist, _)| *dist <= limit)
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("gausian_noise", "gaussian_noise"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_suggests_typos_only() {
        let names = ["alie", "gaussian_noise", "zero"];
        assert_eq!(
            closest("gausian_noise", names).as_deref(),
            Some("gaussian_noise")
        );
        assert_eq!(closest("completely_else", names), None);
    }

    #[test]
    fn messages_name_field_value_and_range() {
        let e = CoreError::invalid("beta", 0.7, "a float in [0, 0.5)");
        assert_eq!(
            e.to_string(),
            "invalid beta: got 0.7; allowed: a float in [0, 0.5)"
        );
        let e = CoreError::TooFewClients {
            strategy: "Krum",
            n: 4,
            required: 5,
            formula: "n ≥ 2f+3 with f = 1".into(),
        };
        assert!(e.to_string().contains("at least 5"));
        assert!(e.to_string().contains("n = 4"));
        assert_eq!(
            count_at_least("f", -1, 0).unwrap_err().to_string(),
            "invalid f: got -1; allowed: an integer ≥ 0"
        );
    }
}
