//! `valid_attacks`, `attack_schemas`, `validate_attack`, `attack_name`, `byzantine_counts`.

use super::args::count_arg;
use super::schema::{params_schema, raw_params, values_to_py};
use crate::error::MAX_COUNT;
use crate::security::{find_attack, Params, ATTACKS};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Validates `(name, params)` into core [`Params`].
pub(crate) fn params_from_py(name: &str, params: &Bound<'_, PyDict>) -> PyResult<Params> {
    Ok(Params::validate(name, &raw_params(name, params)?)?)
}

/// Sorted attack names.
#[pyfunction]
pub fn valid_attacks() -> Vec<&'static str> {
    crate::security::valid_attacks()
}

/// Every attack: kind, whether it is in the adaptive set, description,
/// reference and parameter schemas.
#[pyfunction]
pub fn attack_schemas(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for name in crate::security::valid_attacks() {
        let Some(spec) = ATTACKS.iter().find(|a| a.name == name) else {
            continue;
        };
        let entry = PyDict::new(py);
        entry.set_item("kind", spec.kind().as_str())?;
        entry.set_item("adaptive", spec.adaptive)?;
        entry.set_item("description", spec.description)?;
        entry.set_item("reference", spec.reference)?;
        entry.set_item("params", params_schema(py, spec.all_params())?)?;
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
    values_to_py(py, params_from_py(name, params)?.values())
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
