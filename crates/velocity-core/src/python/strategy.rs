//! `Strategy` and `aggregate`.

use super::arrays::{vector, with_rows};
use super::compute;
use crate::error::count_at_least;
use crate::parallel::threads_from;
use crate::strategy::Strategy;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

/// An immutable, validated aggregation rule. Build it with a factory.
#[pyclass(name = "Strategy", module = "velocity._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyStrategy {
    pub(crate) inner: Strategy,
}

fn optional_count(field: &str, value: Option<i64>, min: usize) -> PyResult<Option<usize>> {
    Ok(value.map(|v| count_at_least(field, v, min)).transpose()?)
}

#[pymethods]
impl PyStrategy {
    #[staticmethod]
    fn fedavg() -> Self {
        PyStrategy {
            inner: Strategy::fedavg(),
        }
    }

    #[staticmethod]
    fn fedprox(mu: f64) -> PyResult<Self> {
        Ok(PyStrategy {
            inner: Strategy::fedprox(mu)?,
        })
    }

    #[staticmethod]
    fn fedmedian() -> Self {
        PyStrategy {
            inner: Strategy::fedmedian(),
        }
    }

    #[staticmethod]
    fn trimmed_mean(beta: f64) -> PyResult<Self> {
        Ok(PyStrategy {
            inner: Strategy::trimmed_mean(beta)?,
        })
    }

    #[staticmethod]
    fn krum(f: i64) -> PyResult<Self> {
        Ok(PyStrategy {
            inner: Strategy::krum(count_at_least("f", f, 0)?),
        })
    }

    #[staticmethod]
    fn multi_krum(f: i64, m: Option<i64>) -> PyResult<Self> {
        let f = count_at_least("f", f, 0)?;
        Ok(PyStrategy {
            inner: Strategy::multi_krum(f, optional_count("m", m, 1)?)?,
        })
    }

    #[staticmethod]
    fn bulyan(f: i64, m: Option<i64>) -> PyResult<Self> {
        let f = count_at_least("f", f, 0)?;
        Ok(PyStrategy {
            inner: Strategy::bulyan(f, optional_count("m", m, 1)?)?,
        })
    }

    #[staticmethod]
    fn geometric_median(eps: f64, max_iter: i64) -> PyResult<Self> {
        let max_iter = count_at_least("max_iter", max_iter, 1)?;
        Ok(PyStrategy {
            inner: Strategy::geometric_median(eps, max_iter)?,
        })
    }

    #[staticmethod]
    fn centered_clipping(tau: f64, iters: i64) -> PyResult<Self> {
        let iters = count_at_least("iters", iters, 1)?;
        Ok(PyStrategy {
            inner: Strategy::centered_clipping(tau, iters)?,
        })
    }

    #[getter]
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    #[getter]
    fn is_selection(&self) -> bool {
        self.inner.is_selection()
    }

    /// Raise ValueError when n clients are too few for this strategy.
    fn check_clients(&self, n: i64) -> PyResult<()> {
        Ok(self.inner.check_clients(count_at_least("n", n, 0)?)?)
    }

    fn __repr__(&self) -> String {
        self.inner.describe()
    }
}

/// The aggregate and the kept rows (selection strategies only).
type AggregateOutput<'py> = (Bound<'py, PyArray1<f32>>, Option<Vec<usize>>);

/// Aggregate an n×d update matrix into a d-vector.
///
/// Returns the aggregate and, for selection strategies (Krum, MultiKrum,
/// Bulyan), the sorted row indices they kept (``None`` otherwise).
#[pyfunction]
#[pyo3(signature = (strategy, updates, weights, num_threads=None))]
pub fn aggregate<'py>(
    py: Python<'py>,
    strategy: &Bound<'py, PyStrategy>,
    updates: PyReadonlyArray2<'py, f32>,
    weights: PyReadonlyArray1<'py, f64>,
    num_threads: Option<i64>,
) -> PyResult<AggregateOutput<'py>> {
    let threads = threads_from(num_threads)?;
    let strategy = &strategy.get().inner;
    let (updates, weights) = (updates.as_array(), weights.as_array());
    let result = compute(py, threads, || {
        let weights = vector(weights);
        with_rows(updates, |rows| strategy.aggregate(rows, &weights, None))
    })?;
    Ok((result.value.into_pyarray(py), result.selected))
}
