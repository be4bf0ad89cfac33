//! The pre-aggregators across the boundary: `Strategy(..., pre=[...])`'s stages,
//! `preaggregator_schemas` and `preaggregator_name`.

use super::args::shown;
use super::schema::{params_schema, raw_params, values_to_py};
use crate::error::CoreError;
use crate::preagg::{find_preaggregator, PreAgg, PREAGGREGATORS};
use crate::schema::RawValue;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

const PAIR: &str = "a (name, params) pair: a str and a dict of parameters or None";

/// `pre` as validated stages: a list (or tuple) of `(name, params)` pairs,
/// `params` a dict or None. Errors name `pre[i]`, or `Name.param` for a value.
pub(crate) fn pre_from_py(pre: &Bound<'_, PyAny>) -> PyResult<Vec<PreAgg>> {
    if !(pre.is_instance_of::<PyList>() || pre.is_instance_of::<PyTuple>()) {
        return Err(CoreError::invalid(
            "pre",
            shown(pre),
            format!("None or a list of pre-aggregators, each {PAIR}"),
        )
        .into());
    }
    let mut stages = Vec::new();
    for (i, item) in pre.try_iter()?.enumerate() {
        let item = item?;
        let bad = || PyErr::from(CoreError::invalid(format!("pre[{i}]"), shown(&item), PAIR));
        let sequence = item.is_instance_of::<PyTuple>() || item.is_instance_of::<PyList>();
        if !(sequence && item.len().ok() == Some(2)) {
            return Err(bad());
        }
        let (name, params) = (item.get_item(0)?, item.get_item(1)?);
        if !name.is_instance_of::<PyString>() {
            return Err(bad());
        }
        let name: String = name.extract()?;
        let raw = if params.is_none() {
            Vec::new()
        } else {
            let dict = params.cast::<PyDict>().map_err(|_| bad())?;
            raw_params(&name, dict)?
        };
        let pairs: Vec<(&str, RawValue)> =
            raw.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        stages.push(PreAgg::new(&name, &pairs)?);
    }
    Ok(stages)
}

/// The stages as `[(registered name, {param: value})]`.
pub(crate) fn pre_to_py<'py>(py: Python<'py>, pre: &[PreAgg]) -> PyResult<Bound<'py, PyList>> {
    let items = pre
        .iter()
        .map(|p| Ok((p.name(), values_to_py(py, p.values())?)))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// Every pre-aggregator in registry order: description, paper, parameter
/// schemas (the strategies' `ParamSchema` shape), aliases, the parameter that
/// sets the Byzantine clients it is tuned for, and whether it is seeded.
#[pyfunction]
pub fn preaggregator_schemas(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for spec in PREAGGREGATORS {
        let entry = PyDict::new(py);
        entry.set_item("description", spec.description)?;
        entry.set_item("reference", spec.reference)?;
        entry.set_item("params", params_schema(py, spec.params)?)?;
        entry.set_item("aliases", spec.aliases.to_vec())?;
        entry.set_item("tolerance", spec.tolerance)?;
        entry.set_item("seeded", spec.seeded)?;
        out.set_item(spec.name, entry)?;
    }
    Ok(out)
}

/// The registered name for a pre-aggregator name or alias, ignoring case, `_`,
/// `-`, spaces and dots (ValueError with the close match otherwise).
#[pyfunction]
pub fn preaggregator_name(name: &str) -> PyResult<&'static str> {
    Ok(find_preaggregator(name)?.name)
}
