//! What a strategy's registry entry declares: its names, parameters, paper,
//! kernel, preconditions and capabilities.
//!
//! An entry is built with [`StrategySpec::new`] and the `const` builder
//! methods, so a plain rule is one expression:
//!
//! ```text
//! pub(super) const SPEC: StrategySpec =
//!     StrategySpec::new("FedMedian", "Coordinate-wise median …", "Yin et al. 2018, …", run)
//!         .aliases(&["Median"]);
//! ```
//!
//! **Capabilities** are how the rest of the system learns what a strategy needs
//! beyond aggregating one round's rows, without naming it:
//!
//! * [`ClientObjective`]: what each client minimises locally. `Proximal` adds
//!   μ/2 · ‖w − wᵗ‖² to the local loss (FedProx); the Python simulation reads
//!   μ from `Strategy.proximal_mu`.
//! * [`StrategySpec::uses_previous_aggregate`]: the orchestrator passes the
//!   previous round's aggregate to the kernel ([`Inputs::previous`], zero in the
//!   first round); CenteredClipping clips around it.
//! * [`Tolerance`]: which parameter sets how many Byzantine clients per round
//!   the rule is configured to tolerate (reports warn when an attack puts more).
//! * `selection`: the rule keeps a subset of the rows and reports it, so
//!   Byzantine detection can be measured.

use super::{Aggregate, KernelResult, Strategy};
use crate::error::{CoreError, Result};
use crate::schema::ParamSpec;

/// What the kernel reads: the round's rows, their weights and, for strategies
/// that declare [`StrategySpec::uses_previous_aggregate`], the previous aggregate.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// n rows (clients) of d coordinates, checked: same length, finite.
    pub rows: &'a [&'a [f32]],
    /// n sample counts, checked: finite, ≥ 0, positive sum.
    pub weights: &'a [f64],
    /// The previous round's aggregate (length d, finite), `None` in the first
    /// round or for a one-off aggregation. Only given to strategies that use it.
    pub previous: Option<&'a [f32]>,
}

/// A strategy's kernel: aggregates validated inputs with validated parameters.
/// `Err(SawNonFinite)` when it met NaN/±Inf (located and reported by the caller).
pub type Kernel = fn(&Strategy, &Inputs<'_>) -> KernelResult<Aggregate>;

/// A precondition on the number of clients n (beyond n ≥ 1), e.g. Krum's n ≥ 2f + 3.
pub type ClientCheck = fn(&Strategy, usize) -> Result<()>;

/// A check across parameters that needs no n, run when the strategy is built.
pub type ParamCheck = fn(&Strategy) -> Result<()>;

/// What each client minimises in local training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientObjective {
    /// Its own loss F_i(w).
    Local,
    /// F_i(w) + μ/2 · ‖w − wᵗ‖², wᵗ the round's global model; `mu` names the
    /// float parameter that holds μ.
    Proximal { mu: &'static str },
}

/// The parameter that sets how many Byzantine clients per round a rule tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    /// An int parameter that is that number (Krum's f).
    Count(&'static str),
    /// A float parameter β: ⌊β · n⌋ of the n clients (the trimmed mean's β).
    Fraction(&'static str),
}

impl Tolerance {
    /// The parameter's name.
    pub fn param(self) -> &'static str {
        match self {
            Tolerance::Count(p) | Tolerance::Fraction(p) => p,
        }
    }

    /// "count" or "fraction".
    pub fn kind(self) -> &'static str {
        match self {
            Tolerance::Count(_) => "count",
            Tolerance::Fraction(_) => "fraction",
        }
    }
}

/// One registry entry: everything about a strategy except its kernel's code.
#[derive(Debug, Clone, Copy)]
pub struct StrategySpec {
    pub name: &'static str,
    /// Other accepted names (ByzFL's, Flower's, papers'), matched like `name`
    /// ignoring case, `_`, `-`, spaces and dots.
    pub aliases: &'static [&'static str],
    /// Names of similar but different rules of other libraries: suggested for
    /// this strategy, never accepted (ByzFL's unweighted `Average` for FedAvg).
    pub suggested_for: &'static [&'static str],
    /// One line: what the rule computes.
    pub description: &'static str,
    /// The paper: "Author et al. year, link".
    pub reference: &'static str,
    pub params: &'static [ParamSpec],
    /// Parameter names of other libraries → this rule's parameter: only suggested.
    pub param_hints: &'static [(&'static str, &'static str)],
    /// False for plain means (FedAvg, FedProx): the non-robust reference.
    pub robust: bool,
    /// Keeps a subset of the rows and reports them (Krum, MultiKrum, Bulyan).
    pub selection: bool,
    pub tolerance: Option<Tolerance>,
    pub client_objective: ClientObjective,
    /// The kernel reads the previous round's aggregate ([`Inputs::previous`]).
    pub uses_previous_aggregate: bool,
    pub check: Option<ParamCheck>,
    pub check_clients: Option<ClientCheck>,
    pub kernel: Kernel,
}

impl StrategySpec {
    /// A robust, parameterless rule that needs only this round's rows.
    pub const fn new(
        name: &'static str,
        description: &'static str,
        reference: &'static str,
        kernel: Kernel,
    ) -> Self {
        StrategySpec {
            name,
            aliases: &[],
            suggested_for: &[],
            description,
            reference,
            params: &[],
            param_hints: &[],
            robust: true,
            selection: false,
            tolerance: None,
            client_objective: ClientObjective::Local,
            uses_previous_aggregate: false,
            check: None,
            check_clients: None,
            kernel,
        }
    }

    /// Its parameters.
    pub const fn params(mut self, params: &'static [ParamSpec]) -> Self {
        self.params = params;
        self
    }

    /// Other accepted names.
    pub const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    /// Names that only suggest this strategy.
    pub const fn suggested_for(mut self, names: &'static [&'static str]) -> Self {
        self.suggested_for = names;
        self
    }

    /// Other libraries' parameter names, suggested as this rule's.
    pub const fn param_hints(mut self, hints: &'static [(&'static str, &'static str)]) -> Self {
        self.param_hints = hints;
        self
    }

    /// A plain mean: the non-robust reference of the reports.
    pub const fn not_robust(mut self) -> Self {
        self.robust = false;
        self
    }

    /// Keeps a subset of the rows and reports it.
    pub const fn selection(mut self) -> Self {
        self.selection = true;
        self
    }

    /// The parameter that sets the Byzantine clients tolerated.
    pub const fn tolerance(mut self, tolerance: Tolerance) -> Self {
        self.tolerance = Some(tolerance);
        self
    }

    /// Clients add μ/2 · ‖w − wᵗ‖² to their loss, μ the float parameter `mu`.
    pub const fn proximal(mut self, mu: &'static str) -> Self {
        self.client_objective = ClientObjective::Proximal { mu };
        self
    }

    /// The kernel reads the previous round's aggregate.
    pub const fn uses_previous_aggregate(mut self) -> Self {
        self.uses_previous_aggregate = true;
        self
    }

    /// A check across parameters, run when the strategy is built.
    pub const fn check(mut self, check: ParamCheck) -> Self {
        self.check = Some(check);
        self
    }

    /// A precondition on the number of clients.
    pub const fn check_clients(mut self, check: ClientCheck) -> Self {
        self.check_clients = Some(check);
        self
    }
}

/// `a·f + b` in u128: exact for every usize f (a precondition bound never wraps).
pub(crate) fn affine(a: u128, f: usize, b: u128) -> u128 {
    a * f as u128 + b
}

/// `n ≥ a·f + b` for the count parameter `f`, else [`CoreError::TooFewClients`]
/// naming the formula ("n ≥ 2f+3 with f = 1") and both numbers.
pub(crate) fn at_least(s: &Strategy, n: usize, a: u128, param: &str, b: u128) -> Result<()> {
    let f = s.count(param);
    let required = affine(a, f, b);
    if (n as u128) < required {
        return Err(CoreError::TooFewClients {
            strategy: s.name(),
            n,
            required,
            formula: format!("n ≥ {a}{param}+{b} with {param} = {f}"),
        });
    }
    Ok(())
}
