//! Parameter values and schemas between Python and [`crate::schema`]: the one
//! conversion both strategies and attacks go through.

use super::args::{is_bool, shown};
use crate::error::CoreError;
use crate::schema::{ParamSpec, ParamType, RawValue, Value};
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
pub(crate) fn raw_value(v: &Bound<'_, PyAny>) -> PyResult<RawValue> {
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

/// `{name: value}` as `(name, raw value)` pairs; a key that is not a str is a
/// ValueError naming `owner`.
pub(crate) fn raw_params(
    owner: &str,
    params: &Bound<'_, PyDict>,
) -> PyResult<Vec<(String, RawValue)>> {
    let mut raw = Vec::with_capacity(params.len());
    for (key, value) in params.iter() {
        let key: String = key.extract().map_err(|_| {
            PyErr::from(CoreError::invalid(
                format!("{owner} parameter name"),
                shown(&key),
                "a str",
            ))
        })?;
        raw.push((key, raw_value(&value)?));
    }
    Ok(raw)
}

/// Validated parameters as a dict, in schema order.
pub(crate) fn values_to_py<'py>(
    py: Python<'py>,
    values: &[(&'static str, Value)],
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, value) in values {
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

/// One parameter as a `ParamSchema` dict.
pub(crate) fn schema_to_py<'py>(py: Python<'py>, spec: &ParamSpec) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("type", spec.ty.as_str())?;
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

/// `{name: ParamSchema}` for `specs`, in order.
pub(crate) fn params_schema<'py, 'a>(
    py: Python<'py>,
    specs: impl IntoIterator<Item = &'a ParamSpec>,
) -> PyResult<Bound<'py, PyDict>> {
    let params = PyDict::new(py);
    for p in specs {
        params.set_item(p.name, schema_to_py(py, p)?)?;
    }
    Ok(params)
}
