//! velocity-core: robust federated-learning aggregation kernels, the
//! pre-aggregators and the rule pipeline, the attack registry and the per-run
//! orchestrator. Imported in Python as
//! `velocity._core` (feature `python`); the pure-Rust API builds and tests
//! without Python.

pub mod error;
pub mod orchestrator;
pub mod parallel;
pub mod preagg;
pub mod schema;
pub mod security;
pub mod strategy;

#[cfg(feature = "python")]
mod python;

/// The `velocity._core` extension module: registration only.
#[cfg(feature = "python")]
#[pyo3::pymodule]
mod _core {
    #[pymodule_export]
    use crate::python::{
        aggregate, attack_name, attack_schemas, byzantine_counts, preaggregator_name,
        preaggregator_schemas, strategy_schemas, valid_attacks, validate_attack, NonFiniteError,
        PyOrchestrator, PyStrategy,
    };

    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        use pyo3::types::PyModuleMethods;
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }
}
