//! Pre-aggregators: transforms of the update matrix run before a rule, one
//! kernel file each, and the [`Pipeline`] that composes them with a rule.
//!
//! **The registry.** [`PREAGGREGATORS`] lists every pre-aggregator once. Each
//! entry (a [`PreAggSpec`], declared in its kernel file next to its kernel)
//! holds its name and aliases, its parameters in the shared [`crate::schema`]
//! dialect, its paper, how it changes the number of rows ([`RowCount`]), its
//! precondition on the number of rows it receives, the parameter that sets the
//! Byzantine rows it is tuned for, and whether it draws randomness. The Python
//! bindings export it as `preaggregator_schemas()`.
//!
//! **Adding a pre-aggregator** is its kernel file (the kernel, its `SPEC`), its
//! `mod` line and one line in [`PREAGGREGATORS`]. Nothing else names it.
//!
//! **A kernel** reads n checked rows (same length d, non-negative weights with
//! a positive sum) and returns m rows, m weights and, when it merges rows, which
//! input rows each output row stands for ([`Members`]); a selection rule's kept
//! rows are mapped back through them to clients. Kernels follow the strategies'
//! rules: fixed [`crate::parallel::CHUNK`]s of coordinates, no per-coordinate
//! reduction split across tasks (bit-identical for any thread count), NaN/±Inf
//! reported as [`SawNonFinite`] and located by the caller.
//!
//! ```
//! use _core::preagg::{Pipeline, PreAgg, RoundKey};
//! use _core::schema::RawValue;
//! use _core::strategy::Strategy;
//!
//! let nnm = PreAgg::new("NNM", &[("f", RawValue::Int(1))]).unwrap();
//! let pipeline = Pipeline::new(vec![nnm], Strategy::new("FedAvg", &[]).unwrap());
//! let rows: Vec<&[f32]> = vec![&[0.0], &[2.0], &[30.0]];
//! let out = pipeline.aggregate(&rows, &[1.0; 3], None, RoundKey::default()).unwrap();
//! assert_eq!(out.value, vec![(1.0 + 1.0 + 16.0) / 3.0]);
//! let e = PreAgg::new("NNM", &[("f", RawValue::Int(2))]).unwrap().check_clients(2).unwrap_err();
//! assert_eq!(e.to_string(), "NNM needs at least 3 clients (n ≥ f+1 with f = 2), got n = 2");
//! ```

mod arc;
mod bucketing;
mod clipping;
mod nnm;
mod pipeline;

pub(crate) use bucketing::permutation;
pub use pipeline::Pipeline;

use crate::error::{closest_in, name_key, CoreError, Result};
use crate::schema::{ParamSpec, RawValue, Value, Values};
use crate::strategy::{dict_literal, KernelResult, SawNonFinite};

/// The registry, one entry per pre-aggregator (each declared in its kernel file).
pub static PREAGGREGATORS: &[PreAggSpec] = &[nnm::SPEC, bucketing::SPEC, clipping::SPEC, arc::SPEC];

/// Pre-aggregator names in registry order.
pub fn valid_preaggregators() -> Vec<&'static str> {
    PREAGGREGATORS.iter().map(|s| s.name).collect()
}

/// The registry entry for `name` or one of its aliases, ignoring case, `_`, `-`,
/// spaces and dots, or an error with a close match.
pub fn find_preaggregator(name: &str) -> Result<&'static PreAggSpec> {
    let key = name_key(name);
    PREAGGREGATORS
        .iter()
        .find(|s| name_key(s.name) == key || s.aliases.iter().any(|a| name_key(a) == key))
        .ok_or_else(|| {
            let spellings = PREAGGREGATORS.iter().flat_map(|s| {
                std::iter::once((s.name, s.name)).chain(s.aliases.iter().map(|a| (*a, s.name)))
            });
            CoreError::UnknownName {
                kind: "pre-aggregator",
                name: name.to_string(),
                suggestion: closest_in(name, spellings),
                valid: valid_preaggregators()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            }
        })
}

/// What keys a seeded pre-aggregator's randomness (Bucketing's permutation):
/// the run's seed and the round, so a round's buckets depend on nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundKey {
    pub seed: u64,
    pub round: u64,
}

/// What a kernel reads.
#[derive(Debug, Clone, Copy)]
pub struct PreInputs<'a> {
    /// n rows of d coordinates, checked: same length (finiteness is the kernel's to detect).
    pub rows: &'a [&'a [f32]],
    /// n sample counts, checked: finite, ≥ 0, positive sum.
    pub weights: &'a [f64],
    pub key: RoundKey,
}

/// Which input rows each output row stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    /// Output row i stands for input row i (NNM, Clipping, ARC).
    Same,
    /// Output row b stands for the input rows of group b (Bucketing's buckets).
    Groups(Vec<Vec<usize>>),
}

impl Members {
    /// The input rows that the output rows `rows` stand for, sorted and distinct.
    pub fn input_rows(&self, rows: &[usize]) -> Vec<usize> {
        let mut out: Vec<usize> = match self {
            Members::Same => rows.to_vec(),
            Members::Groups(groups) => rows.iter().flat_map(|&r| groups[r].clone()).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A kernel's output rows.
#[derive(Debug, Clone, PartialEq)]
pub enum StageRows {
    /// m new rows of length d (row-major), written into the buffer the kernel was lent.
    New,
    /// The input rows, row i scaled by `scale[i]` (Clipping, ARC): the pipeline copies
    /// only the rows whose factor is not 1 and passes the others on as they are.
    Scaled(Vec<f64>),
}

/// A kernel's output: its rows, their weights, their members.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixed {
    pub rows: StageRows,
    pub weights: Vec<f64>,
    pub members: Members,
}

/// A pre-aggregator's kernel. `buffer` is lent (any length, any contents): a
/// kernel that makes [`StageRows::New`] rows leaves them there, m × d.
/// `Err(SawNonFinite)` when it met NaN/±Inf.
pub type PreKernel = fn(&PreAgg, &PreInputs<'_>, buffer: &mut Vec<f32>) -> KernelResult<Mixed>;

/// A precondition on the number of rows n a stage receives (beyond n ≥ 1).
pub type PreClientCheck = fn(&PreAgg, usize) -> Result<()>;

/// How a pre-aggregator changes the number of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowCount {
    /// n rows out of n.
    Same,
    /// ⌈n / s⌉ rows out of n, s the count parameter named here.
    Groups(&'static str),
}

/// One registry entry.
#[derive(Debug, Clone, Copy)]
pub struct PreAggSpec {
    pub name: &'static str,
    /// Other accepted names (ByzFL's, papers'), matched like `name`.
    pub aliases: &'static [&'static str],
    /// One line: what it computes.
    pub description: &'static str,
    /// The paper: "Author et al. year, link".
    pub reference: &'static str,
    pub params: &'static [ParamSpec],
    /// The count parameter that sets the Byzantine rows it is tuned for (NNM's f).
    pub tolerance: Option<&'static str>,
    /// Draws randomness, keyed by [`RoundKey`] (Bucketing).
    pub seeded: bool,
    pub rows: RowCount,
    pub check_clients: Option<PreClientCheck>,
    pub kernel: PreKernel,
}

/// An immutable, validated pre-aggregator: a registry entry and its parameters.
#[derive(Clone)]
pub struct PreAgg {
    spec: &'static PreAggSpec,
    values: Values,
}

impl PartialEq for PreAgg {
    fn eq(&self, other: &Self) -> bool {
        self.spec.name == other.spec.name && self.values == other.values
    }
}

impl std::fmt::Debug for PreAgg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PreAgg {
    /// The pre-aggregator `name` (or an alias) with `params` checked against its
    /// registry entry and the defaults filled in; errors name `Name.param`.
    pub fn new(name: &str, params: &[(&str, RawValue)]) -> Result<Self> {
        let spec = find_preaggregator(name)?;
        let specs: Vec<&'static ParamSpec> = spec.params.iter().collect();
        let values = Values::validate("pre-aggregator", spec.name, &specs, params)?;
        Ok(PreAgg { spec, values })
    }

    /// The registry entry.
    pub fn spec(&self) -> &'static PreAggSpec {
        self.spec
    }

    /// The registered name ("NNM", "Bucketing", …).
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Every parameter with its value, in schema order.
    pub fn values(&self) -> &[(&'static str, Value)] {
        self.values.as_slice()
    }

    /// A float parameter.
    pub fn float(&self, name: &str) -> f64 {
        self.values.float(name)
    }

    /// A count parameter.
    pub fn count(&self, name: &str) -> usize {
        self.values.count(name)
    }

    /// The name and parameters as in Python's `pre=[...]`: `("NNM", {"f": 1})`.
    pub fn describe(&self) -> String {
        format!("(\"{}\", {})", self.name(), dict_literal(self.values()))
    }

    /// A short label for messages: `Bucketing(s = 2)`.
    pub fn label(&self) -> String {
        let params: Vec<String> = self
            .values()
            .iter()
            .map(|(name, value)| match value {
                Value::Float(x) => format!("{name} = {x:?}"),
                Value::Int(i) => format!("{name} = {i}"),
                Value::None => format!("{name} = None"),
            })
            .collect();
        format!("{}({})", self.name(), params.join(", "))
    }

    /// Rows out of `n` rows in (no precondition checked).
    pub fn rows_out(&self, n: usize) -> usize {
        match self.spec.rows {
            RowCount::Same => n,
            RowCount::Groups(s) => n.div_ceil(self.count(s).max(1)),
        }
    }

    /// The fewest rows in that give at least `rows` rows out (exact in u128).
    pub fn rows_needed(&self, rows: u128) -> u128 {
        match self.spec.rows {
            RowCount::Same => rows,
            // ⌈n/s⌉ ≥ r ⇔ n ≥ s·(r − 1) + 1 for r ≥ 1.
            RowCount::Groups(s) => match rows {
                0 => 0,
                r => (self.count(s).max(1) as u128).saturating_mul(r - 1) + 1,
            },
        }
    }

    /// Checks that `n` rows satisfy this stage's precondition (n ≥ 1, then the
    /// entry's own: NNM n ≥ f + 1, Bucketing n ≥ s, ARC n ≥ f); returns the
    /// number of rows it outputs.
    pub fn check_clients(&self, n: usize) -> Result<usize> {
        if n < 1 {
            return Err(CoreError::TooFewClients {
                strategy: self.name(),
                n,
                required: 1,
                formula: "n ≥ 1".into(),
            });
        }
        if let Some(check) = self.spec.check_clients {
            check(self, n)?;
        }
        Ok(self.rows_out(n))
    }

    /// Runs the kernel on checked inputs (the [`Pipeline`] checks them), lending
    /// it `buffer` for new rows.
    pub(crate) fn run(&self, inputs: &PreInputs<'_>, buffer: &mut Vec<f32>) -> KernelResult<Mixed> {
        (self.spec.kernel)(self, inputs, buffer)
    }
}

/// `n ≥ a·p + b` for the count parameter `p`, else [`CoreError::TooFewClients`]
/// naming the formula ("n ≥ f+1 with f = 2") and both numbers (u128: never wraps).
fn at_least(pre: &PreAgg, n: usize, a: u128, param: &str, b: u128) -> Result<()> {
    let p = pre.count(param);
    let required = a * p as u128 + b;
    if (n as u128) >= required {
        return Ok(());
    }
    let coefficient = if a == 1 { String::new() } else { a.to_string() };
    let offset = if b == 0 {
        String::new()
    } else {
        format!("+{b}")
    };
    Err(CoreError::TooFewClients {
        strategy: pre.name(),
        n,
        required,
        formula: format!("n ≥ {coefficient}{param}{offset} with {param} = {p}"),
    })
}

/// Σ_k x_k² of `row` in f64: per fixed [`crate::parallel::CHUNK`] in 4 lanes
/// (chunks in parallel), chunk partials summed in order, so the bits do not
/// depend on the thread count. Non-finite iff the row holds NaN/±Inf (finite
/// f32 squares cannot overflow f64).
fn sq_norm(row: &[f32]) -> f64 {
    use rayon::prelude::*;
    let partials: Vec<f64> = row
        .par_chunks(crate::parallel::CHUNK)
        .map(|chunk| {
            let mut acc = [0f64; 4];
            let quads = chunk.chunks_exact(4);
            let tail: f64 = quads
                .remainder()
                .iter()
                .map(|&x| f64::from(x).powi(2))
                .sum();
            for q in quads {
                for k in 0..4 {
                    acc[k] += f64::from(q[k]) * f64::from(q[k]);
                }
            }
            (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
        })
        .collect();
    partials.iter().fold(0.0, |a, b| a + b)
}

/// Euclidean norms of the rows (f64), rows in parallel; `SawNonFinite` if one
/// is not finite.
pub(crate) fn row_norms(rows: &[&[f32]]) -> KernelResult<Vec<f64>> {
    use rayon::prelude::*;
    let norms: Vec<f64> = rows.par_iter().map(|r| sq_norm(r).sqrt()).collect();
    let finite = norms.iter().all(|v| v.is_finite());
    finite.then_some(norms).ok_or(SawNonFinite)
}

/// `out_k = x_{which_k} · scale_{which_k}` for each listed row (f64 product
/// rounded to f32), rows and chunks in parallel; `out` is |which| × d.
pub(crate) fn scale_rows_into(rows: &[&[f32]], which: &[usize], scale: &[f64], out: &mut [f32]) {
    use rayon::prelude::*;
    let d = rows[0].len();
    out.par_chunks_mut(d)
        .zip(which.par_iter())
        .for_each(|(o, &i)| {
            let s = scale[i];
            o.par_chunks_mut(crate::parallel::CHUNK)
                .zip(rows[i].par_chunks(crate::parallel::CHUNK))
                .for_each(|(o, x)| {
                    for (o, &x) in o.iter_mut().zip(x) {
                        *o = (f64::from(x) * s) as f32;
                    }
                })
        });
}

/// `buffer` resized to `len` values (kept as they are where it is long enough:
/// the kernel overwrites every one).
pub(crate) fn sized(mut buffer: Vec<f32>, len: usize) -> Vec<f32> {
    buffer.resize(len, 0.0);
    buffer
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::PreAgg;
    use crate::schema::RawValue;

    /// The registered pre-aggregator `name` with `params` (panics on invalid input).
    pub fn preagg(name: &str, params: &[(&str, RawValue)]) -> PreAgg {
        PreAgg::new(name, params).unwrap()
    }

    /// A kernel's output rows as row vectors.
    pub fn out_rows(flat: &[f32], d: usize) -> Vec<Vec<f32>> {
        flat.chunks_exact(d).map(<[f32]>::to_vec).collect()
    }

    /// Every row scaled by its factor, n × d row-major (what a pipeline passes on).
    pub fn scaled(rows: &[&[f32]], scale: &[f64]) -> Vec<f32> {
        let which: Vec<usize> = (0..rows.len()).collect();
        let mut out = vec![0f32; rows.len() * rows[0].len()];
        super::scale_rows_into(rows, &which, scale, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::preagg;
    use super::*;
    use crate::error::MAX_COUNT;

    #[test]
    fn names_aliases_and_close_matches() {
        for (name, want) in [
            ("nnm", "NNM"),
            ("NearestNeighborMixing", "NNM"),
            ("bucket", "Bucketing"),
            ("clip", "Clipping"),
            ("Adaptive_Robust_Clipping", "ARC"),
        ] {
            assert_eq!(find_preaggregator(name).unwrap().name, want, "{name}");
        }
        let e = find_preaggregator("Buckting").unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown pre-aggregator 'Buckting'; did you mean 'Bucketing'? \
             valid: NNM, Bucketing, Clipping, ARC"
        );
        let e = PreAgg::new("NNM", &[("F", RawValue::Int(1))]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown parameter 'F' for pre-aggregator 'NNM'; did you mean 'f'? valid: f"
        );
    }

    #[test]
    fn parameters_are_validated_with_their_owner() {
        let bad: &[(&str, (&str, RawValue))] = &[
            ("NNM", ("f", RawValue::Int(-1))),
            ("NNM", ("f", RawValue::Int(MAX_COUNT as i64 + 1))),
            ("Bucketing", ("s", RawValue::Int(0))),
            ("Clipping", ("tau", RawValue::Float(0.0))),
            ("Clipping", ("tau", RawValue::Float(f64::INFINITY))),
            ("ARC", ("f", RawValue::Bool(true))),
        ];
        for (name, param) in bad {
            assert!(
                PreAgg::new(name, std::slice::from_ref(param)).is_err(),
                "{name}"
            );
        }
        let e = PreAgg::new("Bucketing", &[("s", RawValue::Int(0))]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid Bucketing.s: got 0; allowed: an int in [1, 1000000]"
        );
        assert_eq!(preagg("NNM", &[]).describe(), "(\"NNM\", {\"f\": 1})");
        assert_eq!(
            preagg("Clipping", &[]).describe(),
            "(\"Clipping\", {\"tau\": 2.0})"
        );
    }

    #[test]
    fn preconditions_name_the_formula_and_never_wrap() {
        let max = RawValue::Int(MAX_COUNT as i64);
        for (name, param, n_ok, msg) in [
            (
                "NNM",
                "f",
                3,
                "NNM needs at least 3 clients (n ≥ f+1 with f = 2), got n = 2",
            ),
            (
                "Bucketing",
                "s",
                2,
                "Bucketing needs at least 2 clients (n ≥ s with s = 2), got n = 1",
            ),
            (
                "ARC",
                "f",
                2,
                "ARC needs at least 2 clients (n ≥ f with f = 2), got n = 1",
            ),
        ] {
            let p = preagg(name, &[(param, RawValue::Int(2))]);
            assert_eq!(p.check_clients(n_ok - 1).unwrap_err().to_string(), msg);
            assert!(p.check_clients(n_ok).is_ok(), "{name}");
            let huge = preagg(name, &[(param, max.clone())]);
            assert!(
                matches!(huge.check_clients(10), Err(CoreError::TooFewClients { required, .. }) if required > 10),
                "{name}"
            );
        }
        assert!(preagg("Clipping", &[]).check_clients(0).is_err());
        assert_eq!(preagg("Clipping", &[]).check_clients(1).unwrap(), 1);
    }

    #[test]
    fn row_counts_and_their_inverse_agree() {
        for s in [1i64, 2, 3, 7] {
            let b = preagg("Bucketing", &[("s", RawValue::Int(s))]);
            for n in 1..40usize {
                let r = b.rows_out(n);
                assert_eq!(r, n.div_ceil(s as usize));
                // n is enough for r rows, and rows_needed(r) is the least such n.
                assert!(b.rows_needed(r as u128) <= n as u128);
                let least = b.rows_needed(r as u128) as usize;
                assert_eq!(b.rows_out(least), r, "s={s} n={n}");
                assert!(least == 1 || b.rows_out(least - 1) < r);
            }
        }
        assert_eq!(preagg("NNM", &[]).rows_needed(7), 7);
    }

    #[test]
    fn norms_are_exact_enough_and_reject_non_finite() {
        let data = [vec![3.0f32, 4.0], vec![0.0, 0.0], vec![f32::MAX, f32::MAX]];
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let norms = row_norms(&rows).unwrap();
        assert_eq!(norms[..2], [5.0, 0.0]);
        let m = f64::from(f32::MAX);
        assert_eq!(norms[2], (m * m + m * m).sqrt());
        let bad: Vec<&[f32]> = vec![&[1.0, f32::NAN]];
        assert_eq!(row_norms(&bad), Err(SawNonFinite));
        assert_eq!(
            test_util::scaled(&rows[..2], &[0.5, 1.0]),
            vec![1.5, 2.0, 0.0, 0.0]
        );
        let mut out = vec![9f32; 2];
        scale_rows_into(&rows, &[0], &[2.0, 1.0, 1.0], &mut out);
        assert_eq!(out, vec![6.0, 8.0]);
    }
}
