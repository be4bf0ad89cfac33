//! `Strategy` (a rule and its pre-aggregators), `aggregate` and `strategy_schemas`.

use super::args::{count_arg, float_arg, is_bool, optional_count_arg, shown, wrong_type};
use super::arrays::{vector, with_rows};
use super::compute;
use super::orchestrator::{RoundArg, SeedArg};
use super::preagg::{pre_from_py, pre_to_py};
use super::schema::{params_schema, raw_params, values_to_py};
use crate::parallel::{threads_from, MAX_THREADS};
use crate::preagg::{Pipeline, RoundKey};
use crate::schema::{ParamSpec, ParamType, RawValue};
use crate::strategy::{find_strategy, ClientObjective, Strategy, STRATEGIES};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList};

/// An immutable, validated aggregation rule: `Strategy(name, params, pre)` checks
/// the parameters against the strategy's registry entry and fills the defaults;
/// `pre` lists the pre-aggregators run before it, as `(name, params)` pairs.
///
/// Integer parameters are ints in [min, 1000000] (a bool, a float or a larger int
/// is refused with the parameter's name); float parameters must be finite and in
/// their range. The properties describe the rule; `pre` the stages before it.
#[pyclass(name = "Strategy", module = "velocity._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyStrategy {
    pub(crate) inner: Pipeline,
}

/// `None` or a thread count in [1, MAX_THREADS].
pub(crate) fn threads_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let threads = optional_count_arg("num_threads", value, 1, MAX_THREADS)?;
    Ok(threads_from(threads.map(|t| t as i64))?)
}

/// A named factory's argument, typed strictly as those factories always were:
/// a value of the wrong type is a `TypeError` naming `Name.param` (the generic
/// constructor, like `validate_attack`, makes it a `ValueError`). Ranges are the
/// registry's.
fn factory_arg(
    field: &str,
    spec: &ParamSpec,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<RawValue> {
    let obj = match obj {
        Some(o) if !(o.is_none() && spec.nullable) => o,
        _ if spec.nullable => return Ok(RawValue::None),
        _ => {
            return Err(PyRuntimeError::new_err(format!(
                "internal error: {field} has no value"
            )))
        }
    };
    match spec.ty {
        ParamType::Int => {
            let integer =
                obj.is_instance_of::<PyInt>() || obj.hasattr("__index__").unwrap_or(false);
            if is_bool(obj) || !integer {
                return Err(wrong_type(field, obj, &spec.allowed()));
            }
            Ok(match obj.extract::<i64>() {
                Ok(i) => RawValue::Int(i),
                Err(_) => RawValue::BigInt(shown(obj)),
            })
        }
        ParamType::Float => Ok(RawValue::Float(float_arg(field, obj)?)),
    }
}

impl PyStrategy {
    /// The registered strategy `name` from a named factory's arguments.
    fn from_factory(name: &str, args: &[(&str, Option<&Bound<'_, PyAny>>)]) -> PyResult<Self> {
        let spec = find_strategy(name)?;
        let mut raw = Vec::with_capacity(args.len());
        for &(key, obj) in args {
            let field = format!("{}.{key}", spec.name);
            let Some(param) = spec.params.iter().find(|p| p.name == key) else {
                return Err(PyRuntimeError::new_err(format!(
                    "internal error: {field} is not in the registry"
                )));
            };
            raw.push((key, factory_arg(&field, param, obj)?));
        }
        Ok(PyStrategy {
            inner: Pipeline::plain(Strategy::new(name, &raw)?),
        })
    }
}

#[pymethods]
impl PyStrategy {
    #[new]
    #[pyo3(signature = (name, params=None, pre=None))]
    fn new(
        name: &str,
        params: Option<&Bound<'_, PyDict>>,
        pre: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let raw = match params {
            Some(p) => raw_params(name, p)?,
            None => Vec::new(),
        };
        let pairs: Vec<(&str, RawValue)> =
            raw.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let rule = Strategy::new(name, &pairs)?;
        let stages = match pre {
            Some(p) if !p.is_none() => pre_from_py(p)?,
            _ => Vec::new(),
        };
        Ok(PyStrategy {
            inner: Pipeline::new(stages, rule),
        })
    }

    // The named factories of the nine original strategies, kept for callers of
    // the typed API; a new strategy needs none (`Strategy(name, params)`).

    #[staticmethod]
    fn fedavg() -> PyResult<Self> {
        Self::from_factory("FedAvg", &[])
    }

    #[staticmethod]
    fn fedprox(mu: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::from_factory("FedProx", &[("mu", Some(mu))])
    }

    #[staticmethod]
    fn fedmedian() -> PyResult<Self> {
        Self::from_factory("FedMedian", &[])
    }

    #[staticmethod]
    fn trimmed_mean(beta: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::from_factory("TrimmedMean", &[("beta", Some(beta))])
    }

    #[staticmethod]
    fn krum(f: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::from_factory("Krum", &[("f", Some(f))])
    }

    #[staticmethod]
    #[pyo3(signature = (f, m))]
    fn multi_krum(f: &Bound<'_, PyAny>, m: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::from_factory("MultiKrum", &[("f", Some(f)), ("m", m)])
    }

    #[staticmethod]
    #[pyo3(signature = (f, m))]
    fn bulyan(f: &Bound<'_, PyAny>, m: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Self::from_factory("Bulyan", &[("f", Some(f)), ("m", m)])
    }

    #[staticmethod]
    fn geometric_median(eps: &Bound<'_, PyAny>, max_iter: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::from_factory(
            "GeometricMedian",
            &[("eps", Some(eps)), ("max_iter", Some(max_iter))],
        )
    }

    #[staticmethod]
    fn centered_clipping(tau: &Bound<'_, PyAny>, iters: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::from_factory(
            "CenteredClipping",
            &[("tau", Some(tau)), ("iters", Some(iters))],
        )
    }

    /// The rule's registered name.
    #[getter]
    fn name(&self) -> &'static str {
        self.inner.rule().name()
    }

    /// Every parameter of the rule with its value (defaults filled), in schema order.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        values_to_py(py, self.inner.rule().values())
    }

    /// The pre-aggregators run before the rule, in order: (registered name,
    /// every parameter with its value).
    #[getter]
    fn pre<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        pre_to_py(py, self.inner.pre())
    }

    #[getter]
    fn is_selection(&self) -> bool {
        self.inner.is_selection()
    }

    #[getter]
    fn is_robust(&self) -> bool {
        self.inner.rule().is_robust()
    }

    /// μ of the proximal term μ/2·‖w − wᵗ‖² each client adds to its local loss
    /// (0.0 when clients minimise their plain loss).
    #[getter]
    fn proximal_mu(&self) -> f64 {
        self.inner.rule().proximal_mu()
    }

    /// Whether aggregation reads the previous round's aggregate.
    #[getter]
    fn uses_previous_aggregate(&self) -> bool {
        self.inner.rule().uses_previous_aggregate()
    }

    /// Raise ValueError when n clients are too few for this strategy (each
    /// pre-aggregator on the rows it receives, then the rule).
    fn check_clients(&self, n: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = count_arg("n", n, 0, usize::MAX)?;
        Ok(self.inner.check_clients(n)?)
    }

    /// Byzantine clients per round among n this configuration tolerates (None
    /// for rules without such a parameter).
    fn configured_byzantine(&self, n: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let n = count_arg("n", n, 0, usize::MAX)?;
        Ok(self.inner.configured_byzantine(n))
    }

    fn __repr__(&self) -> String {
        self.inner.describe()
    }
}

/// Every strategy in registry order: description, paper, parameter schemas (the
/// attacks' `ParamSchema` shape), names and capabilities.
#[pyfunction]
pub fn strategy_schemas(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    for spec in STRATEGIES {
        let entry = PyDict::new(py);
        entry.set_item("description", spec.description)?;
        entry.set_item("reference", spec.reference)?;
        entry.set_item("params", params_schema(py, spec.params)?)?;
        entry.set_item("aliases", spec.aliases.to_vec())?;
        entry.set_item("suggested_for", spec.suggested_for.to_vec())?;
        let hints = PyDict::new(py);
        for (theirs, ours) in spec.param_hints {
            hints.set_item(*theirs, *ours)?;
        }
        entry.set_item("param_hints", hints)?;
        entry.set_item("robust", spec.robust)?;
        entry.set_item("selection", spec.selection)?;
        let tolerance = match spec.tolerance {
            Some(t) => {
                let d = PyDict::new(py);
                d.set_item("param", t.param())?;
                d.set_item("kind", t.kind())?;
                d.into_any()
            }
            None => py.None().into_bound(py),
        };
        entry.set_item("tolerance", tolerance)?;
        let proximal = match spec.client_objective {
            ClientObjective::Local => None,
            ClientObjective::Proximal { mu } => Some(mu),
        };
        entry.set_item("proximal_param", proximal)?;
        entry.set_item("uses_previous_aggregate", spec.uses_previous_aggregate)?;
        out.set_item(spec.name, entry)?;
    }
    Ok(out)
}

/// The aggregate and the kept rows (selection strategies only).
type AggregateOutput<'py> = (Bound<'py, PyArray1<f32>>, Option<Vec<usize>>);

/// Aggregate an n×d update matrix into a d-vector.
///
/// Runs the strategy's pre-aggregators, then its rule; `seed` and `round` key
/// the seeded pre-aggregators (Bucketing's permutation). Returns the aggregate
/// and, for selection strategies (Krum, MultiKrum, Bulyan), the sorted input
/// row indices they kept (``None`` otherwise).
#[pyfunction]
#[pyo3(
    signature = (strategy, updates, weights, num_threads=None, seed=SeedArg(0), round=RoundArg(0)),
    text_signature = "(strategy, updates, weights, num_threads=None, seed=0, round=0)"
)]
pub fn aggregate<'py>(
    py: Python<'py>,
    strategy: &Bound<'py, PyStrategy>,
    updates: PyReadonlyArray2<'py, f32>,
    weights: PyReadonlyArray1<'py, f64>,
    num_threads: Option<&Bound<'py, PyAny>>,
    seed: SeedArg,
    round: RoundArg,
) -> PyResult<AggregateOutput<'py>> {
    let threads = threads_arg(num_threads)?;
    let key = RoundKey {
        seed: seed.0,
        round: round.0,
    };
    let pipeline = &strategy.get().inner;
    let (updates, weights) = (updates.as_array(), weights.as_array());
    let result = compute(py, threads, || {
        let weights = vector(weights);
        with_rows(updates, |rows| {
            pipeline.aggregate(rows, &weights, None, key)
        })
    })?;
    Ok((result.value.into_pyarray(py), result.selected))
}
