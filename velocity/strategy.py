"""Aggregation strategies: frozen dataclasses derived from the Rust registry, and the one parser.

The Rust registry (``STRATEGIES`` in ``crates/velocity-core/src/strategy/mod.rs``, one
entry per kernel file) declares every strategy once: its name and aliases, its
parameters (type, default, range, description, in the attacks' ``ParamSchema``
shape), its paper and its capabilities. A :class:`Strategy` is a value (a frozen
dataclass) naming an entry and its parameters; :meth:`Strategy.to_core` builds the
Rust object that aggregates. :func:`parse_strategy` is the single way a string
(``"FedMedian"``, ``"krum:f=2"``), a mapping (``{"type": "Krum", "f": 2}``) or an
instance becomes a Strategy; the CLI, the TOML spec and the MCP server all go
through it.

The classes below are written out for their docstrings (the paper, the math with
every symbol defined, a doctest) and for static typing. Each is checked against its
registry entry when this module is imported (parameter names, types and defaults,
and its summary line), and takes every other fact from it: aliases, other
libraries' parameter names, robustness, the tolerance parameter and the
capabilities (:attr:`Strategy.proximal_mu`, :attr:`Strategy.uses_previous_aggregate`).
A registry entry without a class here gets a generated one. Adding a strategy is
therefore its Rust kernel file and one registry line; a class here is optional.
Nothing in the CLI, the spec, the sweep or the MCP server changes.

Every strategy aggregates an n×d matrix of client updates Δᵢ = wᵢ − w (rows are
clients) into a d-vector; the server then sets w ← w + agg(Δ). Every strategy
rejects non-finite updates with a ``ValueError`` naming the row and coordinate
(a NaN is a bug or an attack to report, not a value to average silently).

**Pipelines.** A strategy may run pre-aggregators (:mod:`velocity.preagg`: NNM,
Bucketing, Clipping, ARC) on the matrix before its rule: agg(Δ) = rule(Pₖ(…P₁(Δ))).
A pipeline *is* a strategy (its :attr:`Strategy.pre` holds the stages), written in
one syntax everywhere (flags, TOML, MCP arguments, labels, run names):

* inline, stages separated by ``>``, the rule last, each stage ``Name[:k=v,...]``:
  ``NNM>Krum:f=2``, ``Bucketing:s=2>NNM:f=1>FedMedian``, ``Clipping>FedAvg``
  (quote it in a shell, where ``>`` redirects);
* a mapping, the stages under ``pre`` (each a name, an inline stage or a mapping):
  ``{"type": "Krum", "f": 2, "pre": ["NNM", {"type": "Bucketing", "s": 2}]}``.
  ``pre`` sits beside ``type``, never under ``params`` (it is not a parameter); a
  ``type`` may itself be a pipeline (``{"type": "NNM>Krum", "f": 2}``), but then
  without a ``pre`` list.

:meth:`Strategy.label` writes the inline form, :meth:`Strategy.to_dict` the mapping;
both read back to an equal strategy. A pipeline's :attr:`~Strategy.robust`,
:attr:`~Strategy.tolerance_param` and :meth:`~Strategy.configured_byzantine` are its
rule's (:meth:`Strategy.tolerances` lists every stage's).

**One Byzantine count.** ``parse_strategy(spec, byzantine=f, clients_per_round=n)``
sets every stage's tolerance parameter the spec does not give: a count (Krum's,
MultiKrum's, Bulyan's, NNM's, ARC's f) to f, a fraction (the trimmed mean's β) to
f/n. Values the spec gives win.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, dataclass_transform

from velocity import _core
from velocity._inline import (
    coerce,
    coerce_params,
    did_you_mean,
    inline_form,
    name_key,
    non_defaults,
    range_text,
    schema_fields,
    short_repr,
    split_inline,
)
from velocity.preagg import (
    ALL_PREAGGREGATORS,
    PreAggregator,
    find_preaggregator,
    parse_preaggregator,
    read_preaggregator,
    split_preaggregator,
)
from velocity.preagg import REGISTRY as PREAGG_REGISTRY

#: The Rust registry: every strategy's schema and capabilities, in catalog order.
REGISTRY: dict[str, _core.StrategySchema] = _core.strategy_schemas()

#: The field holding a pipeline's pre-aggregation stages (no rule may have a parameter so named).
PRE = "pre"
_CLASHES = [name for name, schema in REGISTRY.items() if PRE in schema["params"]]
if _CLASHES:
    raise TypeError(f"strategy {_CLASHES[0]} has a parameter named {PRE!r}, the pipeline's field")

#: Separates the stages of an inline pipeline (``NNM>Krum:f=2``).
STAGE_SEPARATOR = ">"


@dataclass(frozen=True, repr=False)
class Strategy:
    """An aggregation rule and its parameters, after its pre-aggregation stages if any:
    the base of every strategy class.

    Subclasses are frozen dataclasses whose fields are the rule's parameters, plus
    the keyword-only :attr:`pre`. The class attributes come from the rule's registry
    entry: for a pipeline they describe its rule.
    """

    #: The pre-aggregators run on the updates before the rule, in order (empty: the
    #: rule alone). Names, inline stages and mappings are read with
    #: :func:`velocity.preagg.parse_preaggregator`.
    pre: tuple[PreAggregator, ...] = dataclasses.field(default=(), kw_only=True)

    #: The name the rule is written under (labels, catalogs, run names).
    name: ClassVar[str]
    #: The registry entry that aggregates (a subclass that only renames a rule
    #: inherits its parent's).
    core_name: ClassVar[str]
    #: The paper: "Author et al. year, link".
    reference: ClassVar[str]
    #: False for plain means (FedAvg, FedProx): the non-robust reference reports compare to.
    robust: ClassVar[bool]
    #: The parameter that sets how many Byzantine clients the rule tolerates, if any.
    tolerance_param: ClassVar[str | None]
    #: Other names this rule is known by (ByzFL, Flower, papers), accepted like ``name``.
    aliases: ClassVar[tuple[str, ...]]
    #: Parameter names of other libraries -> this rule's parameter: only suggested.
    param_hints: ClassVar[dict[str, str]]

    def __post_init__(self) -> None:
        schema = REGISTRY[self.core_name]["params"]
        for f in param_fields(self):
            param = schema[f.name]
            value = coerce(
                getattr(self, f.name),
                param["type"],
                nullable=param["nullable"],
                where=f"{self.name}.{f.name}",
            )
            object.__setattr__(self, f.name, value)
        pre: Any = self.pre
        if isinstance(pre, str | Mapping | PreAggregator):
            pre = (pre,)
        object.__setattr__(self, PRE, tuple(parse_preaggregator(p) for p in pre))
        self.to_core()  # Rust checks the ranges

    def __repr__(self) -> str:
        shown = [f"{k}={v!r}" for k, v in self.params().items()]
        if self.pre:
            shown.append(f"{PRE}={self.pre!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def params(self) -> dict[str, Any]:
        """The rule's parameters, by name, in registry order."""
        return {f.name: getattr(self, f.name) for f in param_fields(self)}

    def to_core(self) -> _core.Strategy:
        """The Rust object that aggregates with this rule, after the pre-aggregators."""
        return _core.Strategy(self.core_name, self.params(), pre=[p.to_core() for p in self.pre])

    @property
    def proximal_mu(self) -> float:
        """μ of the proximal term μ/2·‖w − wᵗ‖² each client adds to its local loss
        (0.0 for rules whose clients minimise their plain loss)."""
        return self.to_core().proximal_mu

    @property
    def uses_previous_aggregate(self) -> bool:
        """Whether aggregation reads the previous round's aggregate (the orchestrator
        keeps it for such rules)."""
        return self.to_core().uses_previous_aggregate

    def configured_byzantine(self, clients_per_round: int) -> int | None:
        """Byzantine clients per round the rule is set to tolerate.

        The rule's tolerance parameter (f, or ⌊β·n⌋ for the trimmed mean); None for
        rules without one (the median's breakdown point is not a setting). Reports
        warn when an attack puts more in a round. A pipeline's is its rule's (see
        :meth:`tolerances` for every stage).
        """
        return self.to_core().configured_byzantine(clients_per_round)

    def tolerances(self, clients_per_round: int) -> list[tuple[str, int]]:
        """``(stage label, Byzantine clients per round it is set for)`` of every stage
        with a tolerance parameter, pre-aggregators first, the rule last.

        >>> parse_strategy("NNM:f=2>Krum").tolerances(10)
        [('NNM:f=2', 2), ('Krum', 1)]
        """
        stages = [(p.label(), p.params()[p.tolerance_param]) for p in self.pre if p.tolerance_param]
        rule = self.configured_byzantine(clients_per_round)
        return stages + ([(self.rule_label(), rule)] if rule is not None else [])

    def rule_label(self) -> str:
        """The rule's inline form, e.g. ``Krum:f=2``; parameters at their default left out."""
        return inline_form(self.name, {k: v for k, v in non_defaults(self).items() if k != PRE})

    def label(self) -> str:
        """The inline form, e.g. ``Krum:f=2`` or ``NNM>Krum:f=2``; defaults left out."""
        return STAGE_SEPARATOR.join([*(p.label() for p in self.pre), self.rule_label()])

    def to_dict(self) -> dict[str, Any]:
        """``{"type": name, **params}``, plus ``"pre": [stage mappings]`` for a pipeline;
        :func:`parse_strategy` reads it back."""
        stages = {PRE: [p.to_dict() for p in self.pre]} if self.pre else {}
        return {"type": self.name, **self.params(), **stages}


def param_fields(strategy: Strategy | type[Strategy]) -> list[dataclasses.Field[Any]]:
    """A strategy's dataclass fields that are its rule's parameters (all but :data:`PRE`)."""
    return [f for f in dataclasses.fields(strategy) if f.name != PRE]  # type: ignore[arg-type]


_S = TypeVar("_S", bound=type[Strategy])

#: The classes written out below, by registry name.
_WRITTEN: dict[str, type[Strategy]] = {}


def _adopt(cls: type[Strategy], name: str, schema: _core.StrategySchema) -> None:
    """Give ``cls`` the facts its registry entry declares."""
    tolerance = schema["tolerance"]
    cls.name = name
    cls.core_name = name
    cls.reference = schema["reference"]
    cls.robust = schema["robust"]
    cls.tolerance_param = tolerance["param"] if tolerance else None
    cls.aliases = tuple(schema["aliases"])
    cls.param_hints = dict(schema["param_hints"])


def _field_type(cls: type, name: str) -> tuple[str, bool]:
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    nullable = type(None) in args
    base = next((a for a in args if a is not type(None)), hint)
    return ("int" if base is int else "float"), nullable


def registry_mismatches(cls: type[Strategy], schema: _core.StrategySchema) -> list[str]:
    """How a written-out class differs from its registry entry (empty: it agrees)."""
    fields = param_fields(cls)
    names, declared = [f.name for f in fields], list(schema["params"])
    if names != declared:
        return [f"fields {names} but the registry declares {declared}"]
    problems = []
    for f in fields:
        param = schema["params"][f.name]
        if _field_type(cls, f.name) != (param["type"], param["nullable"]):
            problems.append(f"{f.name} is typed {_field_type(cls, f.name)}, not {param['type']}")
        if f.default != param["default"] or type(f.default) is not type(param["default"]):
            problems.append(f"{f.name} defaults to {f.default!r}, not {param['default']!r}")
    doc = inspect.getdoc(cls) or ""
    summary = doc.splitlines()[0] if doc else ""
    if summary != schema["description"]:
        problems.append(f"its summary line is {summary!r}, not {schema['description']!r}")
    return problems


@dataclass_transform(frozen_default=True)
def _registered(cls: _S) -> _S:
    """Make ``cls`` a frozen dataclass of the registry entry of the same name,
    refusing (at import) a class that disagrees with the entry."""
    name = cls.__name__
    schema = REGISTRY.get(name)
    if schema is None:
        raise TypeError(
            f"velocity.strategy.{name} has no entry in the Rust strategy registry "
            "(STRATEGIES in crates/velocity-core/src/strategy/mod.rs)"
        )
    dataclass(frozen=True, repr=False)(cls)  # in place: cls is now the frozen dataclass
    _adopt(cls, name, schema)
    problems = registry_mismatches(cls, schema)
    if problems:
        raise TypeError(
            f"velocity.strategy.{name} disagrees with its Rust registry entry: "
            + "; ".join(problems)
        )
    _WRITTEN[name] = cls
    return cls


@_registered
class FedAvg(Strategy):
    r"""Federated averaging: the sample-weighted mean of the client updates.

    .. math:: \mathrm{agg}(\Delta) = \frac{\sum_{i=1}^{n} n_i \Delta_i}{\sum_{i=1}^{n} n_i}

    where :math:`\Delta_i` is client i's update and :math:`n_i` its number of
    training samples. Not robust: one Byzantine client can move the aggregate
    arbitrarily far.

    McMahan et al., "Communication-Efficient Learning of Deep Networks from
    Decentralized Data", AISTATS 2017. Paper: https://arxiv.org/abs/1602.05629

    >>> import numpy as np, velocity
    >>> velocity.aggregate("FedAvg", np.array([[1, 2], [3, 4]], np.float32), [1, 3])
    array([2.5, 3.5], dtype=float32)
    >>> velocity.aggregate("FedAvg", np.array([[1, 2], [3, 4], [1000, 1000]], np.float32))
    array([334.66666, 335.33334], dtype=float32)
    """


@_registered
class FedProx(Strategy):
    r"""FedProx: FedAvg aggregation; clients add a proximal term to their local loss.

    .. math:: \min_w \; F_i(w) + \frac{\mu}{2} \lVert w - w^t \rVert^2

    where :math:`F_i` is client i's local loss and :math:`w^t` the global model
    of the round. The server aggregates exactly as :class:`FedAvg`; the proximal
    term is the rule's client objective (:attr:`Strategy.proximal_mu`), which the
    simulation's local training reads.

    Parameters
    ----------
    mu : float (default: 0.01)
        Proximal strength, ≥ 0. 0 is FedAvg.

    Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020.
    Paper: https://arxiv.org/abs/1812.06127

    >>> import numpy as np, velocity
    >>> prox = velocity.parse_strategy("FedProx:mu=0.1")
    >>> prox.proximal_mu, velocity.parse_strategy("FedAvg").proximal_mu
    (0.1, 0.0)
    >>> velocity.aggregate(prox, np.array([[1, 2], [3, 4]], np.float32), [1, 3])
    array([2.5, 3.5], dtype=float32)
    >>> velocity.parse_strategy("FedProx:mu=-1")
    Traceback (most recent call last):
        ...
    ValueError: invalid FedProx.mu: got -1.0; allowed: a finite float ≥ 0.0
    """

    mu: float = 0.01


@_registered
class FedMedian(Strategy):
    r"""Coordinate-wise median of the client updates (unweighted).

    .. math:: \mathrm{agg}(\Delta)_k = \mathrm{median}(\Delta_{1,k}, \dots, \Delta_{n,k})

    for every coordinate k; with an even n, the mean of the two middle values
    (numpy's convention). Robust while fewer than half the clients are Byzantine.

    Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates", ICML 2018. Paper: https://arxiv.org/abs/1803.01498

    >>> import numpy as np, velocity
    >>> velocity.aggregate("FedMedian", np.array([[1, 9], [2, 0], [100, 1]], np.float32))
    array([2., 1.], dtype=float32)
    >>> velocity.aggregate("FedMedian", np.array([[1, 9], [2, 0], [100, 1], [3, 3]], np.float32))
    array([2.5, 2. ], dtype=float32)
    """


@_registered
class TrimmedMean(Strategy):
    r"""Coordinate-wise trimmed mean: drop the beta fraction at each tail, average the rest.

    .. math:: \mathrm{agg}(\Delta)_k = \frac{1}{n - 2b} \sum_{j=b+1}^{n-b} \Delta_{(j),k}

    where :math:`\Delta_{(j),k}` is the j-th smallest value of coordinate k and
    :math:`b = \lfloor \beta n \rfloor` values are dropped at each end. Unweighted.
    Requires 2b < n, which β < 0.5 guarantees.

    Parameters
    ----------
    beta : float (default: 0.1)
        Fraction trimmed at each tail, in [0, 0.5).

    Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates", ICML 2018. Paper: https://arxiv.org/abs/1803.01498

    >>> import numpy as np, velocity
    >>> x = np.array([[1, 5], [2, 6], [3, 7], [4, 8], [100, -100]], np.float32)
    >>> velocity.aggregate("TrimmedMean:beta=0.2", x)  # b = ⌊0.2·5⌋ = 1 per tail
    array([3., 6.], dtype=float32)
    >>> velocity.parse_strategy("TrimmedMean:beta=0.5")
    Traceback (most recent call last):
        ...
    ValueError: invalid TrimmedMean.beta: got 0.5; allowed: a finite float in [0.0, 0.5)
    """

    beta: float = 0.1


@_registered
class Krum(Strategy):
    r"""Krum: pick the one update closest to its n − f − 2 nearest neighbours.

    .. math:: s(i) = \sum_{j \in N_i} \lVert \Delta_i - \Delta_j \rVert^2, \qquad
              \mathrm{agg}(\Delta) = \Delta_{i^*},\; i^* = \arg\min_i s(i)

    where :math:`N_i` are the n − f − 2 rows nearest to row i and f is the number
    of Byzantine clients tolerated. Ties go to the lowest index. Reports the kept
    client, so Byzantine detection can be measured.

    Parameters
    ----------
    f : int (default: 1)
        Byzantine clients tolerated, ≥ 0. Requires n ≥ 2f + 3.

    Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant
    Gradient Descent", NeurIPS 2017. Paper: https://papers.nips.cc/paper/6617

    >>> import numpy as np, velocity
    >>> x = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [100, 100]], np.float32)
    >>> velocity.aggregate("Krum:f=1", x)
    array([0., 0.], dtype=float32)
    >>> velocity.aggregate("Krum:f=1", x[:4])
    Traceback (most recent call last):
        ...
    ValueError: Krum needs at least 5 clients (n ≥ 2f+3 with f = 1), got n = 4
    """

    f: int = 1


@_registered
class MultiKrum(Strategy):
    r"""Multi-Krum: the sample-weighted mean of the m updates with the best Krum scores.

    .. math:: \mathrm{agg}(\Delta) = \frac{\sum_{i \in S} n_i \Delta_i}{\sum_{i \in S} n_i}

    where S holds the m rows with the lowest Krum score s(i) (see :class:`Krum`)
    and :math:`n_i` is client i's number of samples.

    Parameters
    ----------
    f : int (default: 1)
        Byzantine clients tolerated, ≥ 0. Requires n ≥ 2f + 3.
    m : int | None (default: None)
        Updates kept, 1 ≤ m ≤ n; None keeps n − f.

    Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant
    Gradient Descent", NeurIPS 2017. Paper: https://papers.nips.cc/paper/6617

    >>> import numpy as np, velocity
    >>> x = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [100, 100]], np.float32)
    >>> velocity.aggregate("MultiKrum:f=1", x)  # m = n − f = 4 kept: the outlier is out
    array([0.5, 0.5], dtype=float32)
    >>> velocity.aggregate("MultiKrum:f=1,m=6", x)
    Traceback (most recent call last):
        ...
    ValueError: invalid m: got 6; allowed: None or an integer in [1, n] with n = 5 clients
    """

    f: int = 1
    m: int | None = None


@_registered
class Bulyan(Strategy):
    r"""Bulyan: select θ updates by iterated Krum, then a trimmed mean around the median.

    .. math:: \mathrm{agg}(\Delta)_k = \frac{1}{\beta} \sum_{i \in M_k} \Delta_{i,k}

    where the selection set S (|S| = θ) is built by repeatedly taking the Krum
    winner among the remaining rows, :math:`\beta = \theta - 2f`, and
    :math:`M_k \subset S` holds the β values of coordinate k closest to the
    coordinate's median over S. Pairwise distances are computed once.

    Parameters
    ----------
    f : int (default: 1)
        Byzantine clients tolerated, ≥ 0. Requires n ≥ 4f + 3.
    m : int | None (default: None)
        θ, the size of the selection set, 2f + 1 ≤ θ ≤ n; None gives n − 2f.

    El Mhamdi et al., "The Hidden Vulnerability of Distributed Learning in
    Byzantium", ICML 2018. Paper: https://arxiv.org/abs/1802.07927

    >>> import numpy as np, velocity
    >>> x = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 2], [1, 2], [100, 100]], np.float32)
    >>> velocity.aggregate("Bulyan:f=1", x)  # θ = 5 selected, β = 3 averaged per coordinate
    array([0.6666667, 0.6666667], dtype=float32)
    >>> velocity.aggregate("Bulyan:f=1", x[:6])
    Traceback (most recent call last):
        ...
    ValueError: Bulyan needs at least 7 clients (n ≥ 4f+3 with f = 1), got n = 6
    >>> velocity.parse_strategy("Bulyan:f=1,m=2")
    Traceback (most recent call last):
        ...
    ValueError: invalid Bulyan.m: got 2; allowed: None or an integer ≥ 2f+1 = 3 (f = 1)
    """

    f: int = 1
    m: int | None = None


@_registered
class GeometricMedian(Strategy):
    r"""Geometric median by smoothed Weiszfeld iterations (RFA).

    .. math:: \mathrm{agg}(\Delta) = \arg\min_z \sum_i n_i \max(\varepsilon,
              \lVert z - \Delta_i \rVert)

    solved from the weighted mean by :math:`z \leftarrow \sum_i \beta_i \Delta_i /
    \sum_i \beta_i`, :math:`\beta_i = n_i / \max(\varepsilon, \lVert z - \Delta_i \rVert)`,
    until a step is shorter than ε·(1 + ‖z‖) or max_iter is reached; :math:`n_i`
    is client i's number of samples.

    Parameters
    ----------
    eps : float (default: 1e-6)
        Smoothing floor on distances and stopping tolerance on the step, > 0.
    max_iter : int (default: 100)
        Most Weiszfeld iterations, ≥ 1.

    Pillutla et al., "Robust Aggregation for Federated Learning", IEEE TSP 2022.
    Paper: https://arxiv.org/abs/1912.13445

    >>> import numpy as np, velocity
    >>> x = np.array([[0, 0], [1, 0], [0, 1], [100, 100]], np.float32)
    >>> velocity.aggregate("GeometricMedian", x)  # the mean would be (25.25, 25.25)
    array([0.5000004, 0.5000004], dtype=float32)
    """

    eps: float = 1e-6
    max_iter: int = 100


@_registered
class CenteredClipping(Strategy):
    r"""Centered clipping: average the updates after clipping them around a centre.

    .. math:: v_{l+1} = v_l + \frac{1}{n} \sum_i (\Delta_i - v_l)
              \min\!\left(1, \frac{\tau}{\lVert \Delta_i - v_l \rVert}\right)

    for l = 0 … iters − 1, where :math:`v_0` is the previous round's aggregate in a
    run (zero in a one-off :func:`velocity.aggregate` call): the rule declares
    :attr:`Strategy.uses_previous_aggregate`, so the orchestrator keeps it. Unweighted.

    Parameters
    ----------
    tau : float (default: 1.0)
        Clipping radius, > 0.
    iters : int (default: 3)
        Clipping iterations per round, ≥ 1.

    Karimireddy et al., "Learning from History for Byzantine Robust
    Optimization", ICML 2021. Paper: https://arxiv.org/abs/2012.10333

    >>> import numpy as np, velocity
    >>> x = np.array([[1, 0], [0, 1], [30, 40]], np.float32)  # ‖(30, 40)‖ = 50: clipped to 1
    >>> velocity.aggregate("CenteredClipping:tau=1,iters=1", x)
    array([0.53333336, 0.6       ], dtype=float32)
    >>> velocity.parse_strategy("CC").uses_previous_aggregate
    True
    """

    tau: float = 1.0
    iters: int = 3


def _generated(name: str, schema: _core.StrategySchema) -> type[Strategy]:
    """A frozen dataclass for a registry entry without a class above."""
    cls = dataclasses.make_dataclass(
        name,
        schema_fields(schema["params"]),
        bases=(Strategy,),
        frozen=True,
        repr=False,
        namespace={"__doc__": f"{schema['description']}\n\n{schema['reference']}"},
    )
    cls.__module__, cls.__qualname__ = __name__, name
    _adopt(cls, name, schema)
    return cls


#: Every strategy, in registry order: the classes above, and a generated one for
#: each other registry entry (importable from this module under its name).
ALL_STRATEGIES: tuple[type[Strategy], ...] = tuple(
    _WRITTEN.get(name) or _generated(name, schema) for name, schema in REGISTRY.items()
)
globals().update({cls.__name__: cls for cls in ALL_STRATEGIES if cls.__name__ not in _WRITTEN})

_BY_KEY: dict[str, type[Strategy]] = {
    name_key(spelling): cls for cls in ALL_STRATEGIES for spelling in (*cls.aliases, cls.name)
}

#: Names of other libraries' rules that are close to one of ours but not the same rule:
#: suggested, never accepted (ByzFL's Average is unweighted, FedAvg weights by samples;
#: FedAvgM adds server momentum). Declared in the registry (``suggested_for``).
SUGGESTED_FOR: dict[str, str] = {
    other: name for name, schema in REGISTRY.items() for other in schema["suggested_for"]
}


def _spellings() -> dict[str, str]:
    """Every spelling a suggestion may start from -> the strategy name to suggest."""
    spellings = dict(SUGGESTED_FOR)
    for cls in ALL_STRATEGIES:
        spellings.update({alias: cls.name for alias in cls.aliases})
        spellings[cls.name] = cls.name
    return spellings


def parse_strategy(
    spec: str | Mapping[str, Any] | Strategy,
    *,
    byzantine: int | None = None,
    clients_per_round: int | None = None,
) -> Strategy:
    """Turn a name, an inline string, a mapping or an instance into a :class:`Strategy`.

    Names are case-insensitive and ignore ``_``/``-``: ``"fedmedian"``,
    ``"Trimmed_Mean:beta=0.2"``, ``{"type": "Krum", "f": 2}``. A pipeline is its
    stages joined by ``>``, the rule last (``"NNM>Krum:f=2"``), or a mapping with a
    ``pre`` list (``{"type": "Krum", "pre": ["NNM"]}``).

    Parameters
    ----------
    spec : str | Mapping | Strategy
        What to read; an instance is returned as it is (all its values count as given).
    byzantine : int, optional
        Byzantine clients per round, f: every stage's tolerance parameter ``spec``
        does not give is set from it, a count to f (Krum's f, NNM's f), a fraction to
        β = f/n (the trimmed mean's; refused unless in its range, β < 0.5). Given
        values win.
    clients_per_round : int, optional
        n, the clients aggregated per round: needed to fill a fraction.

    Raises
    ------
    ValueError
        Unknown strategy or pre-aggregator (with the closest name), a rule where a
        pre-aggregator goes or the reverse, an empty pipeline stage, unknown
        parameter, or a value of the wrong type or out of range.

    >>> parse_strategy("trmean:beta=0.2")
    TrimmedMean(beta=0.2)
    >>> parse_strategy({"type": "Krum", "params": {"f": "2"}}).label()
    'Krum:f=2'
    >>> parse_strategy({"type": "krum", "f": 2, "pre": ["nnm"]}).label()
    'NNM>Krum:f=2'
    >>> parse_strategy("NNM>TrimmedMean", byzantine=2, clients_per_round=10).label()
    'NNM:f=2>TrimmedMean:beta=0.2'
    >>> parse_strategy("Average")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: unknown strategy 'Average' (did you mean 'FedAvg'?); valid: FedAvg, FedProx, ...
    >>> parse_strategy("NNM")
    Traceback (most recent call last):
        ...
    ValueError: 'NNM' is a pre-aggregator: put a rule after it, e.g. 'NNM>Krum'
    """
    if isinstance(spec, Strategy):
        return spec
    stages, name, raw = _split_strategy(spec)
    pre = [_read_stage(stage) for stage in stages]
    cls = _rule_class(name)
    params = coerce_params(
        raw, REGISTRY[cls.core_name]["params"], owner=cls.name, what=cls.name, hints=cls.param_hints
    )
    if byzantine is not None:
        fill = _ByzantineFill(byzantine, clients_per_round)
        pre = [(fill.stage(stage, given), given) for stage, given in pre]
        params = fill.rule(cls, params)
    return cls(**params, pre=tuple(stage for stage, _ in pre))


def _split_strategy(spec: Any) -> tuple[list[str | Mapping[str, Any]], str, dict[str, Any]]:
    """``(pre stages, rule name, rule's raw parameters)`` of an inline string or a mapping."""
    if isinstance(spec, str):
        *stages, rule = _split_pipeline(spec)
        name, params = split_inline(rule)
        return list(stages), name, dict(params)
    if not isinstance(spec, Mapping):
        raise ValueError(f"cannot read a strategy from {short_repr(spec)}")
    raw = dict(spec)
    name = raw.pop("type", None) or raw.pop("name", None)
    if not isinstance(name, str):
        raise ValueError(f"strategy mapping needs a 'type' name, got {short_repr(dict(spec))}")
    where = f"strategy {name!r}"
    nested = raw.pop("params", None)
    if isinstance(nested, Mapping) and PRE in nested:
        raise ValueError(f"{where}: {PRE!r} goes beside 'type', not under 'params'")
    listed = _pre_list(raw.pop(PRE, None), where=where)
    raw = _merge_params(raw, nested, where=where)
    typed, inline_name, inline = _split_strategy(name)
    if typed and listed:
        raise ValueError(
            f"{where}: give the pre-aggregators either in 'type' ({name!r}) or in {PRE!r}, not both"
        )
    params = _merge_params(inline, raw, where=where, ways="in 'type' and beside it")
    return [*typed, *listed], inline_name, params


def _split_pipeline(text: str) -> list[str]:
    """The stages of ``"A>B>Rule"``; an empty stage is refused, naming where it is."""
    stages = [stage.strip() for stage in text.split(STAGE_SEPARATOR)]
    if len(stages) > 1 and not all(stages):
        shown = short_repr(text.strip())
        if not stages[0]:
            problem = "starts with '>' (a pre-aggregator goes before each '>')"
        elif not stages[-1]:
            problem = "ends with '>' (the rule goes after the last '>')"
        else:
            problem = "has an empty stage between two '>'"
        raise ValueError(f"pipeline {shown} {problem}; e.g. {_EXAMPLE!r}")
    return stages


def _pre_list(value: Any, *, where: str) -> list[str | Mapping[str, Any]]:
    """The ``pre`` of a mapping: a list of stages (one stage alone is a list of one)."""
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise ValueError(
        f"{where}: {PRE} must be a list of pre-aggregators (names or tables), "
        f"got {short_repr(value)}"
    )


def _read_stage(spec: str | Mapping[str, Any]) -> tuple[PreAggregator, frozenset[str]]:
    """One pre stage and the parameters it gives; a rule's name here is refused."""
    name, _ = split_preaggregator(spec)
    if find_preaggregator(name) is None and name_key(name) in _BY_KEY:
        rule = _BY_KEY[name_key(name)].name
        raise ValueError(
            f"{rule!r} is a rule, not a pre-aggregator: only a pipeline's last stage "
            f"aggregates, e.g. {_EXAMPLE!r} (pre-aggregators: "
            f"{', '.join(p.name for p in ALL_PREAGGREGATORS)})"
        )
    return read_preaggregator(spec)


def _rule_class(name: str) -> type[Strategy]:
    """The strategy class ``name`` spells; a pre-aggregator's name here is refused."""
    cls = _BY_KEY.get(name_key(name))
    if cls is not None:
        return cls
    pre = find_preaggregator(name)
    if pre is not None:
        raise ValueError(
            f"{pre.name!r} is a pre-aggregator: put a rule after it, "
            f"e.g. '{pre.name}{STAGE_SEPARATOR}{Krum.name}'"
        )
    names = [c.name for c in ALL_STRATEGIES]
    raise ValueError(
        f"unknown strategy {short_repr(name)}{did_you_mean(name, _spellings())}; "
        f"valid: {', '.join(names)}"
    )


#: The pipeline the syntax errors show.
_EXAMPLE = f"{ALL_PREAGGREGATORS[0].name}{STAGE_SEPARATOR}{Krum.name}:f=2"


class _ByzantineFill:
    """Sets the tolerance parameters a spec leaves out from one Byzantine count f."""

    def __init__(self, byzantine: Any, clients_per_round: Any) -> None:
        self.f = coerce(byzantine, "int", nullable=False, where="byzantine")
        if self.f < 0:
            raise ValueError(f"byzantine must be a count of clients >= 0, got {self.f}")
        self.n = (
            None
            if clients_per_round is None
            else coerce(clients_per_round, "int", nullable=False, where="clients_per_round")
        )
        if self.n is not None and self.n < 1:
            raise ValueError(f"clients_per_round must be >= 1, got {self.n}")

    def stage(self, stage: PreAggregator, given: frozenset[str]) -> PreAggregator:
        """``stage`` with its tolerance parameter set to f unless given."""
        param = stage.tolerance_param
        if param is None or param in given:
            return stage
        schema = PREAGG_REGISTRY[stage.name]["params"][param]
        kind = "count" if schema["type"] == "int" else "fraction"
        value = self.value(stage.name, param, kind, schema)
        return dataclasses.replace(stage, **{param: value})  # type: ignore[type-var]

    def rule(self, cls: type[Strategy], params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the rule's tolerance parameter set from f unless given."""
        tolerance = REGISTRY[cls.core_name]["tolerance"]
        if tolerance is None or tolerance["param"] in params:
            return params
        param = tolerance["param"]
        schema = REGISTRY[cls.core_name]["params"][param]
        return {**params, param: self.value(cls.name, param, tolerance["kind"], schema)}

    def value(self, owner: str, param: str, kind: str, schema: Mapping[str, Any]) -> int | float:
        """f itself (a count), or β = f/n (a fraction), checked against the range."""
        if kind == "count":
            return self.f
        if self.n is None:
            raise ValueError(
                f"{owner}.{param} is a fraction of the clients: setting it from byzantine "
                "needs clients_per_round"
            )
        beta = self.f / self.n
        if math.floor(beta * self.n) < self.f:  # f/n·n rounded below f: ⌊β·n⌋ must be f
            beta = math.nextafter(beta, math.inf)
        hi, inclusive = schema.get("max"), schema.get("max_inclusive", True)
        if hi is not None and (beta > hi or (beta == hi and not inclusive)):
            raise ValueError(
                f"{owner}.{param} = byzantine / clients_per_round = {self.f}/{self.n} = "
                f"{beta:.4g} is out of its range {range_text(schema)}: {owner} cannot "
                f"tolerate {self.f} Byzantine clients among {self.n}"
            )
        return beta


def _merge_params(
    flat: dict[str, Any], nested: Any, *, where: str, ways: str = "flat and under params"
) -> dict[str, Any]:
    """Flat parameters plus those under ``params``; a key given both ways is refused."""
    if nested is None:
        return flat
    if not isinstance(nested, Mapping):
        raise ValueError(
            f"{where}: params must be a table of key = value, got {short_repr(nested)}"
        )
    twice = sorted(set(flat) & set(nested), key=str)
    if twice:
        raise ValueError(f"{where}: parameter {twice[0]!r} given twice ({ways})")
    return {**flat, **nested}


def strategy_schemas() -> dict[str, dict[str, Any]]:
    """Every strategy: description, paper, selection flag, parameters and capabilities.

    Each parameter is the registry's ``ParamSchema`` (type, default, min, max,
    inclusiveness, nullable, description) plus ``allowed``, its range as text.
    """
    schemas: dict[str, dict[str, Any]] = {}
    for cls in ALL_STRATEGIES:
        entry = REGISTRY[cls.core_name]
        doc = inspect.getdoc(cls) or ""
        schemas[cls.name] = {
            "description": doc.splitlines()[0] if doc else cls.name,
            "reference": cls.reference,
            "selection": entry["selection"],
            "params": {
                name: {**param, "allowed": range_text(param)}
                for name, param in entry["params"].items()
            },
            "aliases": list(cls.aliases),
            "robust": cls.robust,
            "tolerance": entry["tolerance"],
            "proximal_param": entry["proximal_param"],
            "uses_previous_aggregate": entry["uses_previous_aggregate"],
        }
    return schemas
