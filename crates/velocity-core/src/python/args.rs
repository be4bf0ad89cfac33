//! Numbers from Python arguments, checked here: a bool, a float, a huge int or a
//! non-number becomes a `TypeError`/`ValueError` that names the argument, never
//! an `OverflowError` from the conversion or a silently truncated value.

use crate::error::{count_range, CoreError};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};

/// At most this many characters of a value appear in a message.
const SHOWN: usize = 40;

/// The value as a message shows it: its repr, shortened.
pub(crate) fn shown(obj: &Bound<'_, PyAny>) -> String {
    let text = obj.repr().map(|r| r.to_string()).unwrap_or_default();
    if text.chars().count() <= SHOWN {
        text
    } else {
        let head: String = text.chars().take(SHOWN).collect();
        format!("{head}… ({} characters)", text.chars().count())
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Python and numpy bools: never numbers here.
pub(crate) fn is_bool(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyBool>() || matches!(type_name(obj).as_str(), "bool" | "bool_")
}

pub(crate) fn wrong_type(field: &str, obj: &Bound<'_, PyAny>, allowed: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "invalid {field}: got {} (a {}); allowed: {allowed}",
        shown(obj),
        type_name(obj)
    ))
}

/// An integer argument (a Python int or anything with `__index__`, not a bool)
/// in `[min, max]`.
pub(crate) fn int_in(
    field: &str,
    obj: &Bound<'_, PyAny>,
    min: i64,
    max: i64,
    allowed: impl Fn() -> String,
) -> PyResult<i64> {
    let integer = obj.is_instance_of::<PyInt>() || obj.hasattr("__index__").unwrap_or(false);
    if is_bool(obj) || !integer {
        return Err(wrong_type(field, obj, &allowed()));
    }
    match obj.extract::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(CoreError::invalid(field, shown(obj), allowed()).into()),
    }
}

/// A count argument in `[min, max]`.
pub(crate) fn count_arg(
    field: &str,
    obj: &Bound<'_, PyAny>,
    min: usize,
    max: usize,
) -> PyResult<usize> {
    let hi = i64::try_from(max).unwrap_or(i64::MAX);
    let lo = i64::try_from(min).unwrap_or(i64::MAX);
    let v = int_in(field, obj, lo, hi, || {
        if i64::try_from(max).is_ok() {
            count_range(min, max)
        } else {
            format!("an integer in [{min}, 2**63)")
        }
    })?;
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}

/// `None` or a count in `[min, max]`.
pub(crate) fn optional_count_arg(
    field: &str,
    obj: Option<&Bound<'_, PyAny>>,
    min: usize,
    max: usize,
) -> PyResult<Option<usize>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => count_arg(field, o, min, max).map(Some),
    }
}

/// A float argument: a Python float or int (or a numpy number), not a bool. An
/// int too large for a float is refused here; ranges are the constructor's.
pub(crate) fn float_arg(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    let number = obj.is_instance_of::<PyFloat>()
        || obj.is_instance_of::<PyInt>()
        || obj.hasattr("__float__").unwrap_or(false);
    if is_bool(obj) || !number {
        return Err(wrong_type(field, obj, "a finite float"));
    }
    obj.extract::<f64>()
        .map_err(|_| CoreError::invalid(field, shown(obj), "a finite float").into())
}
