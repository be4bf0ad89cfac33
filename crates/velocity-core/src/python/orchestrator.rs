//! `Orchestrator`.

use super::args::{count_arg, int_in, is_bool, shown};
use super::arrays::{vector, with_rows};
use super::attacks::params_from_py;
use super::compute;
use super::strategy::{threads_arg, PyStrategy};
use crate::error::{CoreError, MAX_COUNT};
use crate::orchestrator::{Orchestrator, RoundReport};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeMap;

/// One run's server side: strategy (with its pre-aggregators), attack plan, seeded RNG.
#[pyclass(name = "Orchestrator", module = "velocity._core")]
pub struct PyOrchestrator {
    inner: Orchestrator,
}

fn round_from(round: &Bound<'_, PyAny>) -> PyResult<u64> {
    let round = int_in("round", round, 0, i64::MAX, || "an integer ≥ 0".into())?;
    Ok(u64::try_from(round).unwrap_or(0))
}

fn client_from(client_id: &Bound<'_, PyAny>, num_clients: usize) -> PyResult<i64> {
    int_in("client_id", client_id, i64::MIN, i64::MAX, || {
        format!("a client id in [0, num_clients) = [0, {num_clients})")
    })
}

fn seed_from(seed: &Bound<'_, PyAny>) -> PyResult<u64> {
    let value = if is_bool(seed) {
        None
    } else {
        seed.extract::<u64>().ok()
    };
    value.ok_or_else(|| CoreError::invalid("seed", shown(seed), "an int in [0, 2**64)").into())
}

/// A `seed` keyword argument: an int in [0, 2**64), never a bool.
pub(crate) struct SeedArg(pub u64);

impl<'a, 'py> FromPyObject<'a, 'py> for SeedArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        seed_from(&obj).map(SeedArg)
    }
}

/// A `round` keyword argument: an int ≥ 0, never a bool.
pub(crate) struct RoundArg(pub u64);

impl<'a, 'py> FromPyObject<'a, 'py> for RoundArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        round_from(&obj).map(RoundArg)
    }
}

fn report_to_py<'py>(py: Python<'py>, r: &RoundReport) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("round", r.round)?;
    dict.set_item("num_clients", r.num_clients)?;
    dict.set_item("byzantine", &r.byzantine)?;
    let attacked = r
        .attacked
        .iter()
        .map(|(client, attack)| {
            let d = PyDict::new(py);
            d.set_item("client", client)?;
            d.set_item("attack", attack)?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    dict.set_item("attacked", attacked)?;
    dict.set_item("selected", &r.selected)?;
    let detection = match &r.detection {
        Some(det) => {
            let d = PyDict::new(py);
            d.set_item("kept_honest", det.kept_honest)?;
            d.set_item("kept_byzantine", det.kept_byzantine)?;
            d.set_item("excluded_honest", det.excluded_honest)?;
            d.set_item("excluded_byzantine", det.excluded_byzantine)?;
            d.into_any()
        }
        None => py.None().into_bound(py),
    };
    dict.set_item("detection", detection)?;
    Ok(dict)
}

#[pymethods]
impl PyOrchestrator {
    #[new]
    #[pyo3(signature = (strategy, attacks, num_clients, seed, num_threads=None))]
    fn new(
        strategy: &Bound<'_, PyStrategy>,
        attacks: Vec<(String, Bound<'_, PyDict>)>,
        num_clients: &Bound<'_, PyAny>,
        seed: &Bound<'_, PyAny>,
        num_threads: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let plan = attacks
            .iter()
            .map(|(name, params)| params_from_py(name, params))
            .collect::<PyResult<Vec<_>>>()?;
        let inner = Orchestrator::new(
            strategy.get().inner.clone(),
            plan,
            count_arg("num_clients", num_clients, 1, MAX_COUNT)?,
            seed_from(seed)?,
            threads_arg(num_threads)?,
        )?;
        Ok(PyOrchestrator { inner })
    }

    /// Byzantine client id -> the attack it runs (fixed for the run).
    #[getter]
    fn byzantine_clients(&self) -> BTreeMap<usize, &'static str> {
        self.inner.byzantine_clients().into_iter().collect()
    }

    /// The labels this client trains on in this round (a new array).
    fn poison_labels<'py>(
        &self,
        py: Python<'py>,
        round: &Bound<'py, PyAny>,
        client_id: &Bound<'py, PyAny>,
        labels: PyReadonlyArray1<'py, i64>,
        num_classes: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let round = round_from(round)?;
        let client_id = client_from(client_id, self.inner.num_clients())?;
        let num_classes = count_arg("num_classes", num_classes, 1, usize::MAX)?;
        let labels = labels.as_array();
        let inner = &self.inner;
        let out = compute(py, None, || {
            inner.poison_labels(round, client_id, &vector(labels), num_classes)
        })?;
        Ok(out.into_pyarray(py))
    }

    /// Attack the Byzantine rows, aggregate, return (global + aggregate, report).
    fn run_round<'py>(
        &mut self,
        py: Python<'py>,
        round: &Bound<'py, PyAny>,
        global_params: PyReadonlyArray1<'py, f32>,
        updates: PyReadonlyArray2<'py, f32>,
        num_samples: PyReadonlyArray1<'py, f64>,
        client_ids: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<(Bound<'py, PyArray1<f32>>, Bound<'py, PyDict>)> {
        let round = round_from(round)?;
        let global = global_params.as_array();
        let updates = updates.as_array();
        let num_samples = num_samples.as_array();
        let client_ids = client_ids.as_array();
        let inner = &mut self.inner;
        let (new_global, report) = compute(py, None, || {
            let (global, weights, ids) = (vector(global), vector(num_samples), vector(client_ids));
            with_rows(updates, |rows| {
                inner.run_round(round, &global, rows, &weights, &ids)
            })
        })?;
        Ok((new_global.into_pyarray(py), report_to_py(py, &report)?))
    }

    fn __repr__(&self) -> String {
        format!(
            "Orchestrator({}, num_clients={}, byzantine={})",
            self.inner.pipeline().describe(),
            self.inner.num_clients(),
            self.inner.byzantine_clients().len()
        )
    }
}
