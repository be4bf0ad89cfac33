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
        /// Computed in u128 from the strategy's parameters, so it never overflows.
        required: u128,
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
    /// A strategy or attack name that is not in its registry.
    UnknownName {
        /// "strategy" or "attack".
        kind: &'static str,
        name: String,
        suggestion: Option<String>,
        valid: Vec<String>,
    },
    /// A parameter name that the strategy or attack does not have.
    UnknownParam {
        /// "strategy" or "attack".
        kind: &'static str,
        /// The strategy's or attack's registered name.
        owner: String,
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

/// A caller's name as a message shows it: control characters escaped, at most 60
/// characters (a message stays one readable line).
pub fn shown_name(name: &str) -> String {
    let escaped: String = name.chars().flat_map(char::escape_debug).collect();
    let count = escaped.chars().count();
    if count <= 60 {
        escaped
    } else {
        let head: String = escaped.chars().take(60).collect();
        format!("{head}… ({count} characters)")
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
            CoreError::UnknownName {
                kind,
                name,
                suggestion,
                valid,
            } => write!(
                f,
                "unknown {kind} '{}'{} valid: {}",
                shown_name(name),
                did_you_mean(suggestion),
                valid.join(", ")
            ),
            CoreError::UnknownParam {
                kind,
                owner,
                param,
                suggestion,
                valid,
            } => write!(
                f,
                "unknown parameter '{}' for {kind} '{owner}'{} valid: {}",
                shown_name(param),
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

/// The largest count a caller may pass: Byzantine clients tolerated, rows kept,
/// iterations, clients, attack counts and round numbers in attack windows. Far
/// above any real federation, and small enough that every precondition formula
/// (2f + 3, 4f + 3, sums of counts) stays exact in 64-bit arithmetic.
pub const MAX_COUNT: usize = 1_000_000;

/// Converts a caller-supplied integer to a count, refusing values below `min`.
pub fn count_at_least(field: &str, value: i64, min: usize) -> Result<usize> {
    count_in(field, value, min, usize::MAX)
}

/// Converts a caller-supplied integer to a count in `[min, max]`.
pub fn count_in(field: &str, value: i64, min: usize, max: usize) -> Result<usize> {
    match usize::try_from(value) {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(CoreError::invalid(field, value, count_range(min, max))),
    }
}

/// "an integer ≥ 1" or "an integer in [0, 1000000]".
pub fn count_range(min: usize, max: usize) -> String {
    if max == usize::MAX {
        format!("an integer ≥ {min}")
    } else {
        format!("an integer in [{min}, {max}]")
    }
}

/// A name as it is compared: lower case, without `_`, `-`, spaces and dots,
/// so `Gaussian-Noise`, `gaussian_noise` and `GaussianNoise` are one name.
pub fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Optimal-string-alignment distance (by `char`): insertions, deletions,
/// substitutions and swaps of two neighbours (`mpl` → `mlp`) cost 1 each.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows: Vec<Vec<usize>> = vec![(0..=b.len()).collect()];
    for i in 1..=a.len() {
        let mut row = vec![i];
        for j in 1..=b.len() {
            let mut cost = (rows[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]))
                .min(rows[i - 1][j] + 1)
                .min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cost = cost.min(rows[i - 2][j - 2] + 1);
            }
            row.push(cost);
        }
        rows.push(row);
    }
    rows[a.len()][b.len()]
}

/// How alike two name keys are, in [0, 1]: 1 − distance / longer length, and at
/// least 0.9 when one (of four characters or more) begins the other
/// (`signflip` → `signflipping`).
fn similarity(a: &str, b: &str) -> f64 {
    let (la, lb) = (a.chars().count(), b.chars().count());
    let longer = la.max(lb);
    if longer == 0 {
        return 1.0;
    }
    let plain = 1.0 - edit_distance(a, b) as f64 / longer as f64;
    if la.min(lb) >= 4 && (a.starts_with(b) || b.starts_with(a)) {
        plain.max(0.9)
    } else {
        plain
    }
}

/// Least [`similarity`] for a suggestion. `velocity._inline.did_you_mean` uses the
/// same rule, so Python and Rust suggest the same names.
pub const SUGGEST_CUTOFF: f64 = 0.6;

/// The closest candidate to `name`, if it is close enough to be a typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest_in(name, candidates.into_iter().map(|c| (c, c)))
}

/// Like [`closest`] over `(spelling, suggestion)` pairs: an alias or a common name
/// from another library (`spelling`) can point at the name to suggest.
pub fn closest_in<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    // A name is compared by its first 200 characters: no typo is longer, and a
    // megabyte of "name" must not cost a megabyte-long edit distance per candidate.
    let key: String = name_key(name).chars().take(200).collect();
    if key.is_empty() {
        return None;
    }
    let mut best: Option<(f64, &str)> = None;
    for (spelling, suggestion) in candidates {
        let score = similarity(&key, &name_key(spelling));
        if score >= SUGGEST_CUTOFF && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, suggestion));
        }
    }
    best.map(|(_, s)| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bounded_and_never_wrap() {
        assert_eq!(count_in("f", 3, 0, MAX_COUNT).unwrap(), 3);
        assert!(count_in("f", -1, 0, MAX_COUNT).is_err());
        assert!(count_in("f", i64::MAX, 0, MAX_COUNT).is_err());
        let e = count_in("f", 1_000_001, 0, MAX_COUNT)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "invalid f: got 1000001; allowed: an integer in [0, 1000000]"
        );
        assert_eq!(count_at_least("m", i64::MAX, 1).unwrap(), i64::MAX as usize);
    }

    #[test]
    fn names_compare_without_case_or_separators() {
        assert_eq!(name_key("Gaussian-Noise"), "gaussiannoise");
        assert_eq!(name_key("SIGN_flipping"), "signflipping");
        assert_eq!(
            closest("signflip", ["sign_flipping", "zero"]).as_deref(),
            Some("sign_flipping")
        );
        assert_eq!(closest("ALIE", ["alie", "ipm"]).as_deref(), Some("alie"));
        assert_eq!(
            closest_in(
                "ALittleIsEnuogh",
                [("alie", "alie"), ("ALittleIsEnough", "alie")]
            )
            .as_deref(),
            Some("alie")
        );
        assert_eq!(closest("", ["alie"]), None);
        assert_eq!(closest("xyz", ["alie", "ipm"]), None);
    }

    #[test]
    fn names_in_messages_stay_on_one_line() {
        assert_eq!(shown_name("a\nb"), "a\\nb");
        assert!(shown_name(&"x".repeat(500)).ends_with("(500 characters)"));
        let e = CoreError::UnknownName {
            kind: "attack",
            name: "evil\nname".into(),
            suggestion: None,
            valid: vec!["zero".into()],
        };
        assert!(!e.to_string().contains('\n'), "{e}");
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("gausian_noise", "gaussian_noise"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("mpl", "mlp"), 1);
        assert_eq!(edit_distance("alei", "alie"), 1);
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
