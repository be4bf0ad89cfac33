//! The one-dimensional search of the optimal attacks (`alie_opt`, `ipm_opt`):
//! ByzFL's expansion/contraction line search plus a fixed grid, keeping the
//! best point seen.
//!
//! With a budget of E evaluations (`evals`) and G grid points (`grid`), the
//! grid takes G' = min(G, E − 1) evaluations and the line search the other
//! E − G' ≥ 1:
//!
//! ```text
//! line search (ByzFL 0.0.11, Optimal_ALittleIsEnough._expansion_phase / _contraction_phase):
//!   x* = start, y* = h(start), δ = delta
//!   expansion:   x = x* + δ; if h(x) > y*: (x*, y*) = (x, h(x)), δ ← 2δ; else δ ← ratio·δ, stop
//!   contraction: x = x* + δ; if h(x) > y*: (x*, y*) = (x, h(x));   δ ← ratio·δ   (until E − G' spent)
//! grid:          x_k = start + k · delta / G,  k = 1 … G'
//! result:        the first x with the largest h among every point evaluated
//! ```
//! where h(x) is the damage of the attack with factor x (one aggregation).
//! The grid makes the result at least as damaging as every grid point, which
//! the line search alone does not guarantee (its steps only move up from the
//! best point). A point met twice is evaluated once. With `grid = 0` the
//! result is ByzFL's.

use super::Params;
use crate::error::{CoreError, Result};
use crate::schema::ParamSpec;

/// The search parameters, shared by the optimal attacks.
pub(super) const PARAMS: [ParamSpec; 5] = [
    ParamSpec::int(
        "evals",
        15,
        "aggregations per round spent on the search (line search + grid)",
    )
    .min(1.0, true)
    .max(1000.0, true),
    ParamSpec::int(
        "grid",
        8,
        "grid points start + k*delta/grid, k = 1..grid, also evaluated",
    )
    .min(0.0, true)
    .max(1000.0, true),
    ParamSpec::float("start", 0.0, "first factor the line search evaluates"),
    ParamSpec::float("delta", 10.0, "first step of the line search (not 0)"),
    ParamSpec::float("ratio", 0.8, "step contraction ratio")
        .min(0.5, false)
        .max(1.0, false),
];

/// ByzFL's rule that the first step is not 0.
pub(super) fn check(p: &Params) -> Result<()> {
    let delta = p.float("delta");
    if delta == 0.0 {
        return Err(CoreError::invalid(
            format!("{}.delta", p.spec().name),
            format!("{delta:?}"),
            "a finite float other than 0.0",
        ));
    }
    Ok(())
}

/// A search configured from an optimal attack's parameters.
pub(super) struct Search {
    evals: usize,
    grid: usize,
    start: f64,
    delta: f64,
    ratio: f64,
}

impl Search {
    /// The search of a validated `alie_opt` / `ipm_opt`.
    pub(super) fn from_params(p: &Params) -> Self {
        let count = |name| usize::try_from(p.int(name)).unwrap_or(0);
        Search {
            evals: count("evals").max(1),
            grid: count("grid"),
            start: p.float("start"),
            delta: p.float("delta"),
            ratio: p.float("ratio"),
        }
    }

    /// The factor x with the largest `h(x)` among the points evaluated (the
    /// first one on ties); `h` is called at most `evals` times.
    pub(super) fn maximise(&self, mut h: impl FnMut(f64) -> Result<f64>) -> Result<f64> {
        let grid = self.grid.min(self.evals - 1);
        let mut seen: Vec<(f64, f64)> = Vec::with_capacity(self.evals);
        let mut eval = |x: f64| -> Result<f64> {
            if let Some(&(_, y)) = seen.iter().find(|(s, _)| *s == x) {
                return Ok(y);
            }
            let y = h(x)?;
            seen.push((x, y));
            Ok(y)
        };
        let mut left = self.evals - grid - 1;
        let (mut best_x, mut best_y) = (self.start, eval(self.start)?);
        let mut step = self.delta;
        while left > 0 {
            let x = best_x + step;
            let y = eval(x)?;
            left -= 1;
            if y > best_y {
                (best_x, best_y) = (x, y);
                step *= 2.0;
            } else {
                step *= self.ratio;
                break;
            }
        }
        while left > 0 {
            let x = best_x + step;
            let y = eval(x)?;
            left -= 1;
            if y > best_y {
                (best_x, best_y) = (x, y);
            }
            step *= self.ratio;
        }
        for k in 1..=grid {
            let x = self.start + k as f64 * self.delta / self.grid as f64;
            let y = eval(x)?;
            if y > best_y {
                (best_x, best_y) = (x, y);
            }
        }
        Ok(best_x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(evals: usize, grid: usize) -> Search {
        Search {
            evals,
            grid,
            start: 0.0,
            delta: 10.0,
            ratio: 0.8,
        }
    }

    #[test]
    fn without_a_grid_it_is_byzfl_line_search() {
        // Reference: ByzFL 0.0.11's _expansion_phase/_contraction_phase run with
        // _evaluate replaced by h(x) = -(x - 37)^2 (evals=20, start=0.0,
        // delta=10.0, ratio=0.8) returns 43.107200000000006 (its contraction
        // only steps up from the best point, so it never comes back to 37).
        let mut calls = 0;
        let x = search(20, 0)
            .maximise(|x| {
                calls += 1;
                Ok(-(x - 37.0f64).powi(2))
            })
            .unwrap();
        assert_eq!(x, 43.107200000000006);
        assert_eq!(calls, 20);
    }

    #[test]
    fn the_result_beats_every_grid_point_within_budget() {
        // A spike that the line search's probes (0, 10, 8, 6.4, 5.12, 4.096,
        // 3.2768, 2.62144, …) step over and the grid point 3 hits.
        let bump = |x: f64| {
            Ok(if (2.7..3.1).contains(&x) {
                5.0
            } else {
                -x.abs()
            })
        };
        let mut calls = 0;
        let x = search(19, 10)
            .maximise(|x| {
                calls += 1;
                bump(x)
            })
            .unwrap();
        assert_eq!(
            calls, 17,
            "start + 8 line steps + 8 new grid points (8 and 10 shared)"
        );
        assert_eq!(x, 3.0);
        assert_eq!(search(19, 0).maximise(bump).unwrap(), 0.0);
        // One evaluation: only the start.
        let mut calls = 0;
        let x = search(1, 10)
            .maximise(|x| {
                calls += 1;
                Ok(x)
            })
            .unwrap();
        assert_eq!((x, calls), (0.0, 1));
        // Errors propagate.
        assert!(search(5, 2)
            .maximise(|_| Err(CoreError::invalid("x", 1, "y")))
            .is_err());
    }
}
