//! Python bindings (feature `python`): thin wrappers over the pure-Rust core.
//!
//! Each wrapper borrows numpy views, leaves the interpreter through
//! [`compute`] (detach + thread pool + panic guard + error conversion), and
//! converts the result back. [`CoreError`] becomes `ValueError` (bad input),
//! its subclass `NonFiniteError` (a NaN/±Inf update or a diverged global model),
//! or `RuntimeError` here, at the boundary only.

mod args;
mod arrays;
mod attacks;
mod orchestrator;
mod preagg;
mod schema;
mod strategy;

pub use attacks::{attack_name, attack_schemas, byzantine_counts, valid_attacks, validate_attack};
pub use orchestrator::PyOrchestrator;
pub use preagg::{preaggregator_name, preaggregator_schemas};
pub use strategy::{aggregate, strategy_schemas, PyStrategy};

use crate::error::{CoreError, Result};
use crate::parallel::install;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

pyo3::create_exception!(
    velocity._core,
    NonFiniteError,
    PyValueError,
    "A NaN or ±Inf value: an update to aggregate, or the new global model (the run diverged)."
);

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> PyErr {
        if matches!(e, CoreError::NonFinite { .. } | CoreError::Diverged { .. }) {
            NonFiniteError::new_err(e.to_string())
        } else if e.is_input_error() {
            PyValueError::new_err(e.to_string())
        } else {
            PyRuntimeError::new_err(e.to_string())
        }
    }
}

/// Runs `f` without the interpreter, on `threads` workers (None: the global
/// pool), turning a Rust panic into `RuntimeError` and a [`CoreError`] into
/// its Python exception.
pub(crate) fn compute<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    f: impl FnOnce() -> Result<T> + Send,
) -> PyResult<T> {
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(|| install(threads, f))));
    match outcome {
        Ok(result) => Ok(result??),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!(
                "internal error in velocity._core (please report): {what}"
            )))
        }
    }
}
