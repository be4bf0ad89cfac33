//! `Orchestrator`.

use super::arrays::{vector, with_rows};
use super::attacks::params_from_py;
use super::compute;
use super::strategy::PyStrategy;
use crate::error::{count_at_least, CoreError};
use crate::orchestrator::{Orchestrator, RoundReport};
use crate::parallel::threads_from;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};
use std::collections::BTreeMap;

/// One run's server side: strategy, attack plan, seeded RNG.
#[pyclass(name = "Orchestrator", module = "velocity._core")]
pub struct PyOrchestrator {
    inner: Orchestrator,
}

fn round_from(round: i64) -> PyResult<u64> {
    Ok(count_at_least("round", round, 0)? as u64)
}

fn seed_from(seed: &Bound<'_, PyAny>) -> PyResult<u64> {
    let value = if seed.is_instance_of::<PyBool>() {
        None
    } else {
        seed.extract::<u64>().ok()
    };
    value.ok_or_else(|| {
        CoreError::invalid(
            "seed",
            seed.repr().map(|r| r.to_string()).unwrap_or_default(),
            "an int in [0, 2**64)",
        )
        .into()
    })
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
        num_clients: i64,
        seed: &Bound<'_, PyAny>,
        num_threads: Option<i64>,
    ) -> PyResult<Self> {
        let plan = attacks
            .iter()
            .map(|(name, params)| params_from_py(name, params))
            .collect::<PyResult<Vec<_>>>()?;
        let inner = Orchestrator::new(
            strategy.get().inner.clone(),
            plan,
            count_at_least("num_clients", num_clients, 1)?,
            seed_from(seed)?,
            threads_from(num_threads)?,
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
        round: i64,
        client_id: i64,
        labels: PyReadonlyArray1<'py, i64>,
        num_classes: i64,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let round = round_from(round)?;
        let num_classes = count_at_least("num_classes", num_classes, 1)?;
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
        round: i64,
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
            self.inner.strategy().describe(),
            self.inner.num_clients(),
            self.inner.byzantine_clients().len()
        )
    }
}
