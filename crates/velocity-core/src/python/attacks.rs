//! `valid_attacks`, `attack_schemas`, `validate_attack` and Python ⇄ parameter values.

use super::args::{count_arg, is_bool, shown};
use crate::error::{CoreError, MAX_COUNT};
use crate::security::{find_attack, ParamSpec, ParamType, Params, RawValue, Value, ATTACKS};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt};

/// A parameter value as a Python object (int, float or None).
pub(crate) fn value_to_py(py: Python<'_>, value: Value) -> PyResult<Bound<'_, PyAny>> {
    Ok(match value {
        Value::Float(x) => PyFloat::new(py, x).into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::None => py.None().into_bound(py),
    })
}

/// A Python value as the validator sees it. Bools (Python or numpy) are
/// kept apart so they are never taken for numbers.
fn raw_value(v: &Bound<'_, PyAny>) -> PyResult<RawValue> {
    if v.is_none() {
        return Ok(RawValue::None);
    }
    let type_name = v.get_type().name()?.to_string();
    if is_bool(v) {
        return Ok(RawValue::Bool(v.is_truthy()?));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(RawValue::Float(v.extract::<f64>()?));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(match v.extract::<i64>() {
            Ok(i) => RawValue::Int(i),
            Err(_) => RawValue::BigInt(shown(v)),
        });
    }
    if v.hasattr("__index__")? {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(RawValue::Int(i));
        }
    }
    if type_name.starts_with("float") {
        if let Ok(x) = v.extract::<f64>() {
            return Ok(RawValue::Float(x));
        }
    }
    Ok(RawValue::Other(type_name))
}

/// Validates `(name, params)` into core [`Params`].
pub(crate) fn params_from_py(name: &str, params: &Bound<'_, PyDict>) -> PyResult<Params> {
    let mut raw = Vec::with_capacity(params.len());
    for (key, value) in params.iter() {
        let key: String = key.extract().map_err(|_| {
            PyErr::from(CoreError::invalid(
                format!("{name} parameter name"),
                shown(&key),
                "a str",
            ))
        })?;
        raw.push((key, raw_value(&value)?));
    }
    Ok(Params::validate(name, &raw)?)
}

/// The validated parameters as a dict, in schema order.
pub(crate) fn params_to_py<'py>(py: Python<'py>, params: &Params) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, value) in params.values() {
        dict.set_item(*name, value_to_py(py, *value)?)?;
    }
    Ok(dict)
}

fn bound_to_py<'py>(
    py: Python<'py>,
    spec: &ParamSpec,
    bound: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match (bound, spec.ty) {
        (None, _) => py.None().into_bound(py),
        (Some(b), ParamType::Int) => (b as i64).into_pyobject(py)?.into_any(),
        (Some(b), ParamType::Float) => PyFloat::new(py, b).into_any(),
    })
}

fn schema_to_py<'py>(py: Python<'py>, spec: &ParamSpec) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let ty = match spec.ty {
        ParamType::Float => "float",
        ParamType::Int => "int",
    };
    dict.set_item("type", ty)?;
    dict.set_item("default", value_to_py(py, spec.default)?)?;
    dict.set_item("min", bound_to_py(py, spec, spec.min)?)?;
    dict.set_item("max", bound_to_py(py, spec, spec.max)?)?;
    dict.set_item("min_inclusive", spec.min_inclusive)?;
    dict.set_item("max_inclusive", spec.max_inclusive)?;
    dict.set_item("nullable", spec.nullable)?;
    dict.set_item("class_id", spec.class_id)?;
    dict.set_item("description", spec.description)?;
    Ok(dict)
}

/// Sorted attack names.
#[pyfunction]
pub fn valid_attacks() -> Vec<&'static str> {
    crate::security::valid_attacks()
}

/// Every attack: kind, description, reference and parameter schemas.
#[pyfunction]
pub fn attack_schemas(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for name in crate::security::valid_attacks() {
        let Some(spec) = ATTACKS.iter().find(|a| a.name == name) else {
            continue;
        };
        let params = PyDict::new(py);
        for p in spec.all_params() {
            params.set_item(p.name, schema_to_py(py, p)?)?;
        }
        let entry = PyDict::new(py);
        entry.set_item("kind", spec.kind().as_str())?;
        entry.set_item("description", spec.description)?;
        entry.set_item("reference", spec.reference)?;
        entry.set_item("params", params)?;
        out.set_item(spec.name, entry)?;
    }
    Ok(out)
}

/// Check an attack against its schema; return all its parameters, defaults filled.
#[pyfunction]
pub fn validate_attack<'py>(
    py: Python<'py>,
    name: &str,
    params: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    params_to_py(py, &params_from_py(name, params)?)
}

/// The registered name of an attack given by name or alias, ignoring case, `_`,
/// `-` and spaces (`ALIE` → `alie`); an unknown name raises ValueError with the
/// closest match.
#[pyfunction]
pub fn attack_name(name: &str) -> PyResult<&'static str> {
    Ok(find_attack(name)?.name)
}

/// Byzantine clients of each attack among `num_clients` (count, else
/// max(1, round_half_up(fraction · num_clients))); ValueError when they add up
/// to more than `num_clients`.
#[pyfunction]
pub fn byzantine_counts(
    attacks: Vec<(String, Bound<'_, PyDict>)>,
    num_clients: &Bound<'_, PyAny>,
) -> PyResult<Vec<usize>> {
    let plan = attacks
        .iter()
        .map(|(name, params)| params_from_py(name, params))
        .collect::<PyResult<Vec<_>>>()?;
    let n = count_arg("num_clients", num_clients, 1, MAX_COUNT)?;
    Ok(crate::security::byzantine_counts(&plan, n)?)
}
