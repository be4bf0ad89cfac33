//! Aggregation strategies: one enum arm and one kernel file per rule.
//!
//! Every kernel works on row slices `rows: &[&[f32]]` (n rows = clients, each
//! of length d = coordinates) and sample weights `weights: &[f64]`, so the
//! orchestrator can substitute attacked rows without copying the honest matrix.
//! Kernels run on the current rayon pool, split coordinates into fixed chunks
//! ([`crate::parallel::CHUNK`]) and never split a per-coordinate reduction, so
//! results are bit-identical for any thread count.
//!
//! **Non-finite input.** All strategies reject an update matrix that holds
//! NaN or ±Inf ([`CoreError::NonFinite`] names the first row and coordinate)
//! rather than silently dropping or propagating it. Kernels detect it in their
//! first pass (for free) and the exact position is then located by a scan.

mod bulyan;
mod centered_clipping;
mod columns;
mod distances;
mod fedavg;
mod geometric_median;
mod krum;
mod median;
mod trimmed_mean;

use crate::error::{CoreError, Result};
use rayon::prelude::*;

/// Marker returned by a kernel that saw NaN/±Inf in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SawNonFinite;

/// A kernel's result before the non-finite check is turned into an error.
pub(crate) type KernelResult<T> = std::result::Result<T, SawNonFinite>;

/// The output of one aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The aggregated d-vector.
    pub value: Vec<f32>,
    /// For selection strategies (Krum, MultiKrum, Bulyan): the kept row indices, sorted.
    pub selected: Option<Vec<usize>>,
}

/// An immutable, validated aggregation rule.
///
/// Build one with a constructor (`Strategy::krum(1)?` …); constructors check
/// everything that does not depend on the number of clients n, and
/// [`Strategy::check_clients`] checks the rest.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Sample-weighted mean, see [`fedavg`](fedavg::weighted_mean).
    FedAvg,
    /// FedAvg aggregation; `mu` is the proximal weight used by client training.
    FedProx { mu: f64 },
    /// Coordinate-wise median, see [`median`](median::median).
    FedMedian,
    /// Coordinate-wise β-trimmed mean, see [`trimmed_mean`](trimmed_mean::trimmed_mean).
    TrimmedMean { beta: f64 },
    /// Krum, see [`krum`](krum::krum).
    Krum { f: usize },
    /// Multi-Krum, see [`multi_krum`](krum::multi_krum). `m = None` means n − f.
    MultiKrum { f: usize, m: Option<usize> },
    /// Bulyan, see [`bulyan`](bulyan::bulyan). `m = None` means θ = n − 2f.
    Bulyan { f: usize, m: Option<usize> },
    /// Smoothed Weiszfeld geometric median, see [`geometric_median`](geometric_median::geometric_median).
    GeometricMedian { eps: f64, max_iter: usize },
    /// Centered clipping, see [`centered_clipping`](centered_clipping::centered_clipping).
    CenteredClipping { tau: f64, iters: usize },
}

fn finite_at_least(field: &str, value: f64, min: f64, inclusive: bool) -> Result<f64> {
    let ok = value.is_finite() && if inclusive { value >= min } else { value > min };
    if ok {
        Ok(value)
    } else {
        let op = if inclusive { "≥" } else { ">" };
        Err(CoreError::invalid(
            field,
            value,
            format!("a finite float {op} {min}"),
        ))
    }
}

impl Strategy {
    /// FedAvg (McMahan et al. 2017).
    pub fn fedavg() -> Self {
        Strategy::FedAvg
    }

    /// FedProx (Li et al. 2020); `mu` ≥ 0, finite.
    pub fn fedprox(mu: f64) -> Result<Self> {
        Ok(Strategy::FedProx {
            mu: finite_at_least("mu", mu, 0.0, true)?,
        })
    }

    /// Coordinate-wise median (Yin et al. 2018).
    pub fn fedmedian() -> Self {
        Strategy::FedMedian
    }

    /// Coordinate-wise trimmed mean (Yin et al. 2018); `beta` in [0, 0.5).
    pub fn trimmed_mean(beta: f64) -> Result<Self> {
        if (0.0..0.5).contains(&beta) {
            Ok(Strategy::TrimmedMean { beta })
        } else {
            Err(CoreError::invalid("beta", beta, "a float in [0, 0.5)"))
        }
    }

    /// Krum (Blanchard et al. 2017); `f` ≥ 0 Byzantine clients tolerated.
    pub fn krum(f: usize) -> Self {
        Strategy::Krum { f }
    }

    /// Multi-Krum; `m` ≥ 1 rows kept (`None`: n − f).
    pub fn multi_krum(f: usize, m: Option<usize>) -> Result<Self> {
        if m == Some(0) {
            return Err(CoreError::invalid("m", 0, "None or an integer ≥ 1"));
        }
        Ok(Strategy::MultiKrum { f, m })
    }

    /// Bulyan (El Mhamdi et al. 2018); `m` = θ ≥ 2f + 1 rows selected (`None`: n − 2f).
    pub fn bulyan(f: usize, m: Option<usize>) -> Result<Self> {
        if let Some(theta) = m {
            let least = affine(2, f, 1);
            if (theta as u128) < least {
                return Err(CoreError::invalid(
                    "m",
                    theta,
                    format!("None or an integer ≥ 2f+1 = {least} (f = {f})"),
                ));
            }
        }
        Ok(Strategy::Bulyan { f, m })
    }

    /// Geometric median (Pillutla et al. 2022); `eps` > 0, `max_iter` ≥ 1.
    pub fn geometric_median(eps: f64, max_iter: usize) -> Result<Self> {
        let eps = finite_at_least("eps", eps, 0.0, false)?;
        if max_iter == 0 {
            return Err(CoreError::invalid("max_iter", 0, "an integer ≥ 1"));
        }
        Ok(Strategy::GeometricMedian { eps, max_iter })
    }

    /// Centered clipping (Karimireddy et al. 2021); `tau` > 0, `iters` ≥ 1.
    pub fn centered_clipping(tau: f64, iters: usize) -> Result<Self> {
        let tau = finite_at_least("tau", tau, 0.0, false)?;
        if iters == 0 {
            return Err(CoreError::invalid("iters", 0, "an integer ≥ 1"));
        }
        Ok(Strategy::CenteredClipping { tau, iters })
    }

    /// The display name ("FedAvg", "Krum", …).
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::FedAvg => "FedAvg",
            Strategy::FedProx { .. } => "FedProx",
            Strategy::FedMedian => "FedMedian",
            Strategy::TrimmedMean { .. } => "TrimmedMean",
            Strategy::Krum { .. } => "Krum",
            Strategy::MultiKrum { .. } => "MultiKrum",
            Strategy::Bulyan { .. } => "Bulyan",
            Strategy::GeometricMedian { .. } => "GeometricMedian",
            Strategy::CenteredClipping { .. } => "CenteredClipping",
        }
    }

    /// A constructor-call-like description, e.g. `Strategy.krum(f=1)`.
    pub fn describe(&self) -> String {
        let opt = |m: &Option<usize>| m.map_or("None".to_string(), |v| v.to_string());
        match self {
            Strategy::FedAvg => "Strategy.fedavg()".into(),
            Strategy::FedProx { mu } => format!("Strategy.fedprox(mu={mu:?})"),
            Strategy::FedMedian => "Strategy.fedmedian()".into(),
            Strategy::TrimmedMean { beta } => format!("Strategy.trimmed_mean(beta={beta:?})"),
            Strategy::Krum { f } => format!("Strategy.krum(f={f})"),
            Strategy::MultiKrum { f, m } => format!("Strategy.multi_krum(f={f}, m={})", opt(m)),
            Strategy::Bulyan { f, m } => format!("Strategy.bulyan(f={f}, m={})", opt(m)),
            Strategy::GeometricMedian { eps, max_iter } => {
                format!("Strategy.geometric_median(eps={eps:?}, max_iter={max_iter})")
            }
            Strategy::CenteredClipping { tau, iters } => {
                format!("Strategy.centered_clipping(tau={tau:?}, iters={iters})")
            }
        }
    }

    /// True for strategies that keep a subset of the rows (Krum, MultiKrum, Bulyan).
    pub fn is_selection(&self) -> bool {
        matches!(
            self,
            Strategy::Krum { .. } | Strategy::MultiKrum { .. } | Strategy::Bulyan { .. }
        )
    }

    /// Checks that `n` clients satisfy this strategy's precondition.
    ///
    /// n ≥ 1 always; Krum and MultiKrum n ≥ 2f + 3 (and MultiKrum m ≤ n);
    /// Bulyan n ≥ 4f + 3 and 2f + 1 ≤ θ ≤ n. The bounds are computed in u128,
    /// so no f (up to `usize::MAX`) can wrap them into a small number.
    pub fn check_clients(&self, n: usize) -> Result<()> {
        let too_few = |required: u128, formula: String| {
            if (n as u128) < required {
                Err(CoreError::TooFewClients {
                    strategy: self.name(),
                    n,
                    required,
                    formula,
                })
            } else {
                Ok(())
            }
        };
        too_few(1, "n ≥ 1".into())?;
        match *self {
            Strategy::Krum { f } => too_few(affine(2, f, 3), format!("n ≥ 2f+3 with f = {f}")),
            Strategy::MultiKrum { f, m } => {
                too_few(affine(2, f, 3), format!("n ≥ 2f+3 with f = {f}"))?;
                match m {
                    Some(m) if m > n => Err(CoreError::invalid(
                        "m",
                        m,
                        format!("None or an integer in [1, n] with n = {n} clients"),
                    )),
                    _ => Ok(()),
                }
            }
            Strategy::Bulyan { f, m } => {
                too_few(affine(4, f, 3), format!("n ≥ 4f+3 with f = {f}"))?;
                match m {
                    Some(theta) if theta > n => Err(CoreError::invalid(
                        "m",
                        theta,
                        format!(
                            "None or an integer in [2f+1, n] = [{}, {n}] (f = {f}, n = {n})",
                            affine(2, f, 1)
                        ),
                    )),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Aggregates `rows` (n × d) with sample `weights` (n) into a d-vector.
    ///
    /// `reference` is CenteredClipping's starting point v₀ (`None`: the zero
    /// vector); other strategies ignore it. Runs on the current rayon pool.
    ///
    /// Errors: n = 0 or d = 0, ragged rows, `weights.len() != n`, negative or
    /// non-finite weights or a zero weight sum, NaN/Inf in `rows`, and the
    /// strategy's own precondition ([`Strategy::check_clients`]).
    pub fn aggregate(
        &self,
        rows: &[&[f32]],
        weights: &[f64],
        reference: Option<&[f32]>,
    ) -> Result<Aggregate> {
        let d = check_inputs(rows, weights)?;
        self.check_clients(rows.len())?;
        if let Some(r) = reference {
            if r.len() != d {
                return Err(CoreError::shape(
                    "reference",
                    format!("length {d}"),
                    r.len(),
                ));
            }
            if let Some(j) = r.iter().position(|v| !v.is_finite()) {
                return Err(CoreError::invalid(
                    format!("reference[{j}]"),
                    r[j],
                    "a finite float",
                ));
            }
        }
        let n = rows.len();
        let result = match *self {
            Strategy::FedAvg | Strategy::FedProx { .. } => {
                fedavg::weighted_mean(rows, weights).map(plain)
            }
            Strategy::FedMedian => median::median(rows).map(plain),
            Strategy::TrimmedMean { beta } => {
                trimmed_mean::trimmed_mean(rows, trim_count(beta, n)).map(plain)
            }
            Strategy::Krum { f } => krum::krum(rows, f),
            // check_clients guarantees n ≥ 2f + 3 (n ≥ 4f + 3 for Bulyan): no underflow.
            Strategy::MultiKrum { f, m } => {
                krum::multi_krum(rows, weights, f, m.unwrap_or(n.saturating_sub(f)))
            }
            Strategy::Bulyan { f, m } => {
                bulyan::bulyan(rows, f, m.unwrap_or(n.saturating_sub(f.saturating_mul(2))))
            }
            Strategy::GeometricMedian { eps, max_iter } => {
                geometric_median::geometric_median(rows, weights, eps, max_iter).map(plain)
            }
            Strategy::CenteredClipping { tau, iters } => {
                centered_clipping::centered_clipping(rows, reference, tau, iters).map(plain)
            }
        };
        result.map_err(|SawNonFinite| locate_non_finite(rows))
    }
}

/// `a·f + b` in u128: exact for every usize f (a precondition bound never wraps).
fn affine(a: u128, f: usize, b: u128) -> u128 {
    a * f as u128 + b
}

/// k = ⌊β·n⌋ values trimmed at each tail.
fn trim_count(beta: f64, n: usize) -> usize {
    ((beta * n as f64).floor() as usize).min(n.saturating_sub(1) / 2)
}

fn plain(value: Vec<f32>) -> Aggregate {
    Aggregate {
        value,
        selected: None,
    }
}

/// Validates the matrix shape and the weights; returns d.
fn check_inputs(rows: &[&[f32]], weights: &[f64]) -> Result<usize> {
    let n = rows.len();
    if n == 0 {
        return Err(CoreError::shape(
            "updates",
            "at least one row (n ≥ 1)",
            "n = 0",
        ));
    }
    let d = rows[0].len();
    if d == 0 {
        return Err(CoreError::shape(
            "updates",
            "at least one column (d ≥ 1)",
            "d = 0",
        ));
    }
    if let Some(i) = rows.iter().position(|r| r.len() != d) {
        return Err(CoreError::shape(
            format!("updates row {i}"),
            format!("length {d}"),
            rows[i].len(),
        ));
    }
    if weights.len() != n {
        return Err(CoreError::shape(
            "weights",
            format!("length n = {n}"),
            weights.len(),
        ));
    }
    if let Some(i) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(CoreError::invalid(
            format!("weights[{i}]"),
            weights[i],
            "a finite float ≥ 0",
        ));
    }
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return Err(CoreError::invalid(
            "weights",
            format!("sum {total}"),
            "weights whose sum is finite and > 0",
        ));
    }
    Ok(d)
}

/// The first (row, coordinate) holding NaN/±Inf, as an error.
pub(crate) fn locate_non_finite(rows: &[&[f32]]) -> CoreError {
    let found = rows.par_iter().enumerate().find_map_first(|(i, row)| {
        row.chunks(crate::parallel::CHUNK)
            .enumerate()
            .find(|(_, chunk)| !all_finite(chunk))
            .and_then(|(c, chunk)| {
                let j = chunk.iter().position(|v| !v.is_finite())?;
                Some((i, c * crate::parallel::CHUNK + j))
            })
    });
    match found {
        Some((row, col)) => CoreError::NonFinite { row, col },
        None => CoreError::Runtime {
            message: "internal error: a kernel reported a non-finite value but none was found"
                .into(),
        },
    }
}

/// True when every value is finite (branch-free, vectorisable).
#[inline]
pub(crate) fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(0u32, |acc, v| {
        acc | u32::from(v.to_bits() & 0x7f80_0000 == 0x7f80_0000)
    }) == 0
}

#[cfg(test)]
pub(crate) mod test_util {
    /// Rows of a row-major matrix.
    pub fn rows(data: &[Vec<f32>]) -> Vec<&[f32]> {
        data.iter().map(Vec::as_slice).collect()
    }

    /// A deterministic pseudo-random matrix (no rand dependency in tests' math).
    pub fn matrix(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                (0..d)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{matrix, rows};
    use super::*;
    use crate::parallel::install;

    fn all_strategies() -> Vec<Strategy> {
        vec![
            Strategy::fedavg(),
            Strategy::fedprox(0.1).unwrap(),
            Strategy::fedmedian(),
            Strategy::trimmed_mean(0.2).unwrap(),
            Strategy::krum(2),
            Strategy::multi_krum(2, None).unwrap(),
            Strategy::multi_krum(2, Some(4)).unwrap(),
            Strategy::bulyan(2, None).unwrap(),
            Strategy::geometric_median(1e-6, 20).unwrap(),
            Strategy::centered_clipping(0.5, 3).unwrap(),
        ]
    }

    #[test]
    fn bit_identical_for_any_thread_count() {
        // Spans several CHUNKs and tiles, with a ragged last chunk.
        let (n, d) = (11, 3 * crate::parallel::CHUNK + 123);
        let data = matrix(n, d, 7);
        let r = rows(&data);
        let w: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
        for s in all_strategies() {
            let one = install(Some(1), || s.aggregate(&r, &w, None))
                .unwrap()
                .unwrap();
            let four = install(Some(4), || s.aggregate(&r, &w, None))
                .unwrap()
                .unwrap();
            let bits = |a: &Aggregate| a.value.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&four), "{}", s.name());
            assert_eq!(one.selected, four.selected, "{}", s.name());
            assert!(one.value.iter().all(|v| v.is_finite()), "{}", s.name());
        }
    }

    #[test]
    fn non_finite_input_is_rejected_by_every_strategy() {
        let (n, d) = (11, crate::parallel::CHUNK + 10);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut data = matrix(n, d, 3);
            data[4][crate::parallel::CHUNK + 2] = bad;
            data[9][1] = bad;
            let r = rows(&data);
            let w = vec![1.0; n];
            for s in all_strategies() {
                let err = s.aggregate(&r, &w, None).unwrap_err();
                assert_eq!(
                    err,
                    CoreError::NonFinite {
                        row: 4,
                        col: crate::parallel::CHUNK + 2
                    },
                    "{}",
                    s.name()
                );
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let data = matrix(5, 3, 1);
        let r = rows(&data);
        let s = Strategy::fedavg();
        assert!(s.aggregate(&[], &[], None).is_err());
        let empty: Vec<&[f32]> = vec![&[], &[]];
        assert!(s.aggregate(&empty, &[1.0, 1.0], None).is_err());
        assert!(s.aggregate(&r, &[1.0; 4], None).is_err());
        assert!(s.aggregate(&r, &[1.0, -1.0, 1.0, 1.0, 1.0], None).is_err());
        assert!(s
            .aggregate(&r, &[1.0, f64::NAN, 1.0, 1.0, 1.0], None)
            .is_err());
        assert!(s.aggregate(&r, &[0.0; 5], None).is_err());
        let ragged: Vec<&[f32]> = vec![&data[0], &data[1][..2]];
        assert!(s.aggregate(&ragged, &[1.0, 1.0], None).is_err());
        let cc = Strategy::centered_clipping(1.0, 1).unwrap();
        assert!(cc.aggregate(&r, &[1.0; 5], Some(&[0.0; 2])).is_err());
        assert!(cc
            .aggregate(&r, &[1.0; 5], Some(&[0.0, f32::NAN, 0.0]))
            .is_err());
        for s in all_strategies() {
            for n in 0..3 {
                let _ = s.aggregate(&r[..n], &vec![1.0; n], None);
            }
        }
    }

    #[test]
    fn constructors_validate() {
        assert!(Strategy::fedprox(-0.1).is_err());
        assert!(Strategy::fedprox(f64::NAN).is_err());
        assert!(Strategy::trimmed_mean(0.5).is_err());
        assert!(Strategy::trimmed_mean(-0.01).is_err());
        assert!(Strategy::trimmed_mean(0.0).is_ok());
        assert!(Strategy::multi_krum(1, Some(0)).is_err());
        assert!(Strategy::bulyan(1, Some(2)).is_err());
        assert!(Strategy::bulyan(1, Some(3)).is_ok());
        assert!(Strategy::geometric_median(0.0, 5).is_err());
        assert!(Strategy::geometric_median(1e-5, 0).is_err());
        assert!(Strategy::centered_clipping(0.0, 1).is_err());
        assert!(Strategy::centered_clipping(1.0, 0).is_err());
    }

    #[test]
    fn preconditions_name_both_numbers_and_formula() {
        let msg = Strategy::krum(1).check_clients(4).unwrap_err().to_string();
        assert!(
            msg.contains("at least 5") && msg.contains("n = 4") && msg.contains("2f+3"),
            "{msg}"
        );
        assert!(Strategy::krum(1).check_clients(5).is_ok());
        let msg = Strategy::bulyan(1, None)
            .unwrap()
            .check_clients(6)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("at least 7") && msg.contains("4f+3"), "{msg}");
        assert!(Strategy::bulyan(1, None).unwrap().check_clients(7).is_ok());
        assert!(Strategy::bulyan(1, Some(8))
            .unwrap()
            .check_clients(7)
            .is_err());
        assert!(Strategy::multi_krum(1, Some(6))
            .unwrap()
            .check_clients(5)
            .is_err());
        assert!(Strategy::fedavg().check_clients(0).is_err());
        assert!(Strategy::fedavg().check_clients(1).is_ok());
    }

    #[test]
    fn preconditions_use_checked_arithmetic() {
        // 2f + 3 and 4f + 3 with f near usize::MAX would wrap to a small number in
        // usize arithmetic (release builds) and let the kernels run with f > n.
        for f in [
            usize::MAX,
            usize::MAX / 2,
            usize::MAX / 4 + 1,
            1 << 62,
            (1 << 63) - 1,
        ] {
            let krum = Strategy::krum(f).check_clients(10).unwrap_err();
            assert!(matches!(krum, CoreError::TooFewClients { required, .. } if required > 10));
            let multi = Strategy::multi_krum(f, None).unwrap();
            assert!(multi.check_clients(10).is_err(), "MultiKrum f = {f}");
            let bulyan = Strategy::bulyan(f, None).unwrap();
            assert!(bulyan.check_clients(10).is_err(), "Bulyan f = {f}");
            assert!(
                Strategy::bulyan(f, Some(5)).is_err(),
                "Bulyan f = {f}, m = 5"
            );
            let data = matrix(10, 4, 1);
            let r = rows(&data);
            for s in [Strategy::krum(f), multi, bulyan] {
                assert!(s.aggregate(&r, &[1.0; 10], None).is_err(), "{}", s.name());
            }
        }
        let e = Strategy::krum((1 << 63) - 1).check_clients(10).unwrap_err();
        assert!(
            e.to_string().contains("at least 18446744073709551617"),
            "{e}"
        );
        let e = Strategy::bulyan(1 << 62, None)
            .unwrap()
            .check_clients(7)
            .unwrap_err();
        assert!(
            e.to_string().contains("at least 18446744073709551619"),
            "{e}"
        );
        assert!(Strategy::bulyan(usize::MAX, Some(usize::MAX)).is_err());
        assert!(Strategy::multi_krum(3, Some(usize::MAX))
            .unwrap()
            .check_clients(9)
            .is_err());
    }

    #[test]
    fn names_and_selection_flags() {
        let names: Vec<_> = all_strategies()
            .iter()
            .map(|s| (s.name(), s.is_selection()))
            .collect();
        assert!(names.contains(&("Krum", true)));
        assert!(names.contains(&("FedMedian", false)));
        assert!(names.contains(&("Bulyan", true)));
        assert_eq!(
            Strategy::multi_krum(1, None).unwrap().describe(),
            "Strategy.multi_krum(f=1, m=None)"
        );
    }

    #[test]
    fn trim_count_is_floor_of_beta_n() {
        assert_eq!(trim_count(0.2, 10), 2);
        assert_eq!(trim_count(0.29, 10), 2);
        assert_eq!(trim_count(0.0, 10), 0);
        assert_eq!(trim_count(0.49, 2), 0);
        assert_eq!(trim_count(0.49, 1), 0);
    }
}
