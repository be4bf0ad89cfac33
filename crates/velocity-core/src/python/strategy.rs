//! `Strategy` and `aggregate`.

use super::args::{count_arg, float_arg, optional_count_arg};
use super::arrays::{vector, with_rows};
use super::compute;
use crate::error::{CoreError, MAX_COUNT};
use crate::parallel::{threads_from, MAX_THREADS};
use crate::strategy::Strategy;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

/// An immutable, validated aggregation rule. Build it with a factory.
///
/// Every integer parameter is an int in [min, 1000000] (a bool, a float or a
/// larger int is refused with the parameter's name); float parameters must be
/// finite and in their range.
#[pyclass(name = "Strategy", module = "velocity._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyStrategy {
    pub(crate) inner: Strategy,
}

/// Names a factory's parameter errors after the strategy: `invalid Krum.f: …`.
fn named<T>(strategy: &str, result: Result<T, CoreError>) -> PyResult<T> {
    result.map_err(|e| match e {
        CoreError::InvalidParam {
            field,
            value,
            allowed,
        } => CoreError::InvalidParam {
            field: format!("{strategy}.{field}"),
            value,
            allowed,
        }
        .into(),
        other => other.into(),
    })
}

/// `None` or a thread count in [1, MAX_THREADS].
pub(crate) fn threads_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let threads = optional_count_arg("num_threads", value, 1, MAX_THREADS)?;
    Ok(threads_from(threads.map(|t| t as i64))?)
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
    fn fedprox(mu: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyStrategy {
            inner: named("FedProx", Strategy::fedprox(float_arg("FedProx.mu", mu)?))?,
        })
    }

    #[staticmethod]
    fn fedmedian() -> Self {
        PyStrategy {
            inner: Strategy::fedmedian(),
        }
    }

    #[staticmethod]
    fn trimmed_mean(beta: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyStrategy {
            inner: named(
                "TrimmedMean",
                Strategy::trimmed_mean(float_arg("TrimmedMean.beta", beta)?),
            )?,
        })
    }

    #[staticmethod]
    fn krum(f: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyStrategy {
            inner: Strategy::krum(count_arg("Krum.f", f, 0, MAX_COUNT)?),
        })
    }

    #[staticmethod]
    #[pyo3(signature = (f, m))]
    fn multi_krum(f: &Bound<'_, PyAny>, m: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let f = count_arg("MultiKrum.f", f, 0, MAX_COUNT)?;
        let m = optional_count_arg("MultiKrum.m", m, 1, MAX_COUNT)?;
        Ok(PyStrategy {
            inner: named("MultiKrum", Strategy::multi_krum(f, m))?,
        })
    }

    #[staticmethod]
    #[pyo3(signature = (f, m))]
    fn bulyan(f: &Bound<'_, PyAny>, m: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let f = count_arg("Bulyan.f", f, 0, MAX_COUNT)?;
        let m = optional_count_arg("Bulyan.m", m, 1, MAX_COUNT)?;
        Ok(PyStrategy {
            inner: named("Bulyan", Strategy::bulyan(f, m))?,
        })
    }

    #[staticmethod]
    fn geometric_median(eps: &Bound<'_, PyAny>, max_iter: &Bound<'_, PyAny>) -> PyResult<Self> {
        let eps = float_arg("GeometricMedian.eps", eps)?;
        let max_iter = count_arg("GeometricMedian.max_iter", max_iter, 1, MAX_COUNT)?;
        Ok(PyStrategy {
            inner: named("GeometricMedian", Strategy::geometric_median(eps, max_iter))?,
        })
    }

    #[staticmethod]
    fn centered_clipping(tau: &Bound<'_, PyAny>, iters: &Bound<'_, PyAny>) -> PyResult<Self> {
        let tau = float_arg("CenteredClipping.tau", tau)?;
        let iters = count_arg("CenteredClipping.iters", iters, 1, MAX_COUNT)?;
        Ok(PyStrategy {
            inner: named("CenteredClipping", Strategy::centered_clipping(tau, iters))?,
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
    fn check_clients(&self, n: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = count_arg("n", n, 0, usize::MAX)?;
        Ok(self.inner.check_clients(n)?)
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
    num_threads: Option<&Bound<'py, PyAny>>,
) -> PyResult<AggregateOutput<'py>> {
    let threads = threads_arg(num_threads)?;
    let strategy = &strategy.get().inner;
    let (updates, weights) = (updates.as_array(), weights.as_array());
    let result = compute(py, threads, || {
        let weights = vector(weights);
        with_rows(updates, |rows| strategy.aggregate(rows, &weights, None))
    })?;
    Ok((result.value.into_pyarray(py), result.selected))
}
