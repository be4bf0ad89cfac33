"""Aggregation strategies: one frozen dataclass each, and the one parser.

A :data:`Strategy` is a value (a frozen dataclass) that names an aggregation rule
and its parameters. The arithmetic lives in Rust (``crates/velocity-core/src/
strategy.rs``); :func:`_map_strategy` turns each dataclass into its Rust factory,
one arm each. :func:`parse_strategy` is the single way a string (``"FedMedian"``,
``"krum:f=2"``), a mapping (``{"type": "Krum", "f": 2}``) or an instance becomes a
Strategy; the CLI, the TOML spec and the MCP server all go through it.

Every strategy aggregates an n×d matrix of client updates Δᵢ = wᵢ − w (rows are
clients) into a d-vector; the server then sets w ← w + agg(Δ). Every strategy
rejects non-finite updates with a ``ValueError`` naming the row and coordinate
(a NaN is a bug or an attack to report, not a value to average silently).

Adding a strategy: one arm in strategy.rs, one dataclass here, one arm in
:func:`_map_strategy`, and its name in :data:`ALL_STRATEGIES`. Nothing in the CLI,
the spec, the sweep or the MCP server changes.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from velocity import _core
from velocity._inline import coerce, did_you_mean, name_key, short_repr, split_inline


def _param(default: Any, help: str, allowed: str) -> Any:
    return field(default=default, metadata={"help": help, "allowed": allowed})


class _StrategyBase:
    """Shared behaviour: validation through the Rust factory, and the inline form."""

    name: ClassVar[str]
    reference: ClassVar[str]
    #: False for plain means (FedAvg, FedProx): the non-robust reference reports compare to.
    robust: ClassVar[bool] = True

    #: The parameter that sets how many Byzantine clients the rule tolerates, if any.
    tolerance_param: ClassVar[str | None] = None

    #: Other names this rule is known by (ByzFL, Flower, papers), accepted like ``name``.
    aliases: ClassVar[tuple[str, ...]] = ()

    #: Parameter names of other libraries -> this rule's parameter: only suggested.
    param_hints: ClassVar[dict[str, str]] = {}

    def configured_byzantine(self, clients_per_round: int) -> int | None:
        """Byzantine clients per round this configuration is set to tolerate.

        None for rules without such a parameter (the median's breakdown point is
        not a setting). Reports warn when an attack puts more in a round.
        """
        return None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            kind, nullable = _field_type(type(self), f.name)
            value = coerce(
                getattr(self, f.name), kind, nullable=nullable, where=f"{self.name}.{f.name}"
            )
            object.__setattr__(self, f.name, value)
        _map_strategy(self)  # type: ignore[arg-type]  # the Rust factory validates ranges

    def to_core(self) -> _core.Strategy:
        """The Rust object that aggregates with this rule."""
        return _map_strategy(self)  # type: ignore[arg-type]

    def label(self) -> str:
        """The inline form, e.g. ``Krum:f=2``; parameters at their default are left out."""
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if getattr(self, f.name) != f.default
        ]
        return self.name + (":" + ",".join(changed) if changed else "")

    def to_dict(self) -> dict[str, Any]:
        """``{"type": name, **params}``; :func:`parse_strategy` reads it back."""
        return {"type": self.name, **dataclasses.asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class FedAvg(_StrategyBase):
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
    """

    name: ClassVar[str] = "FedAvg"
    reference: ClassVar[str] = "McMahan et al. 2017, https://arxiv.org/abs/1602.05629"
    robust: ClassVar[bool] = False


@dataclass(frozen=True)
class FedProx(_StrategyBase):
    r"""FedProx: FedAvg aggregation; clients add a proximal term to their local loss.

    .. math:: \min_w \; F_i(w) + \frac{\mu}{2} \lVert w - w^t \rVert^2

    where :math:`F_i` is client i's local loss and :math:`w^t` the global model
    of the round. The server aggregates exactly as :class:`FedAvg`.

    Parameters
    ----------
    mu : float (default: 0.01)
        Proximal strength, ≥ 0. 0 is FedAvg.

    Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020.
    Paper: https://arxiv.org/abs/1812.06127
    """

    mu: float = _param(0.01, "proximal term strength added to each client's loss", ">= 0")
    name: ClassVar[str] = "FedProx"
    aliases: ClassVar[tuple[str, ...]] = ()
    param_hints: ClassVar[dict[str, str]] = {"proximal_mu": "mu"}  # Flower's FedProx
    reference: ClassVar[str] = "Li et al. 2020, https://arxiv.org/abs/1812.06127"
    robust: ClassVar[bool] = False


@dataclass(frozen=True)
class FedMedian(_StrategyBase):
    r"""Coordinate-wise median of the client updates (unweighted).

    .. math:: \mathrm{agg}(\Delta)_k = \mathrm{median}(\Delta_{1,k}, \dots, \Delta_{n,k})

    for every coordinate k; with an even n, the mean of the two middle values
    (numpy's convention). Robust while fewer than half the clients are Byzantine.

    Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates", ICML 2018. Paper: https://arxiv.org/abs/1803.01498

    >>> import numpy as np, velocity
    >>> velocity.aggregate("FedMedian", np.array([[1, 9], [2, 0], [100, 1]], np.float32))
    array([2., 1.], dtype=float32)
    """

    name: ClassVar[str] = "FedMedian"
    aliases: ClassVar[tuple[str, ...]] = ("Median", "CoordinateWiseMedian")  # ByzFL, papers
    reference: ClassVar[str] = "Yin et al. 2018, https://arxiv.org/abs/1803.01498"


@dataclass(frozen=True)
class TrimmedMean(_StrategyBase):
    r"""Coordinate-wise trimmed mean: drop the beta fraction at each tail, average the rest.

    .. math:: \mathrm{agg}(\Delta)_k = \frac{1}{n - 2b} \sum_{j=b+1}^{n-b} \Delta_{(j),k}

    where :math:`\Delta_{(j),k}` is the j-th smallest value of coordinate k and
    :math:`b = \lfloor \beta n \rfloor` values are dropped at each end. Unweighted.

    Parameters
    ----------
    beta : float (default: 0.1)
        Fraction trimmed at each tail, in [0, 0.5).

    Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates", ICML 2018. Paper: https://arxiv.org/abs/1803.01498
    """

    beta: float = _param(0.1, "fraction of values dropped at each tail per coordinate", "[0, 0.5)")
    name: ClassVar[str] = "TrimmedMean"
    aliases: ClassVar[tuple[str, ...]] = ("TrMean", "FedTrimmedAvg", "TrimmedAvg")  # ByzFL, Flower
    param_hints: ClassVar[dict[str, str]] = {"f": "beta", "trim": "beta", "trim_ratio": "beta"}
    reference: ClassVar[str] = "Yin et al. 2018, https://arxiv.org/abs/1803.01498"

    tolerance_param: ClassVar[str | None] = "beta"

    def configured_byzantine(self, clients_per_round: int) -> int | None:
        """⌊βn⌋: the values trimmed at each tail."""
        return math.floor(self.beta * clients_per_round)


@dataclass(frozen=True)
class Krum(_StrategyBase):
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
    """

    f: int = _param(1, "number of Byzantine clients tolerated (needs n >= 2f+3)", ">= 0")
    name: ClassVar[str] = "Krum"
    param_hints: ClassVar[dict[str, str]] = {
        "num_malicious_clients": "f",  # Flower's Krum
        "num_byzantine": "f",
        "byzantine": "f",
    }
    reference: ClassVar[str] = "Blanchard et al. 2017, https://papers.nips.cc/paper/6617"

    tolerance_param: ClassVar[str | None] = "f"

    def configured_byzantine(self, clients_per_round: int) -> int | None:
        return self.f


@dataclass(frozen=True)
class MultiKrum(_StrategyBase):
    r"""Multi-Krum: the sample-weighted mean of the m updates with the best Krum scores.

    .. math:: \mathrm{agg}(\Delta) = \frac{\sum_{i \in S} n_i \Delta_i}{\sum_{i \in S} n_i}

    where S holds the m rows with the lowest Krum score s(i) (see :class:`Krum`).

    Parameters
    ----------
    f : int (default: 1)
        Byzantine clients tolerated, ≥ 0. Requires n ≥ 2f + 3.
    m : int | None (default: None)
        Updates kept, 1 ≤ m ≤ n; None keeps n − f.

    Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant
    Gradient Descent", NeurIPS 2017. Paper: https://papers.nips.cc/paper/6617
    """

    f: int = _param(1, "number of Byzantine clients tolerated (needs n >= 2f+3)", ">= 0")
    m: int | None = _param(None, "updates kept and averaged; None keeps n - f", "1..n or None")
    name: ClassVar[str] = "MultiKrum"
    param_hints: ClassVar[dict[str, str]] = {
        "num_malicious_clients": "f",  # Flower's Krum
        "num_clients_to_keep": "m",
        "num_byzantine": "f",
    }
    reference: ClassVar[str] = "Blanchard et al. 2017, https://papers.nips.cc/paper/6617"

    tolerance_param: ClassVar[str | None] = "f"

    def configured_byzantine(self, clients_per_round: int) -> int | None:
        return self.f


@dataclass(frozen=True)
class Bulyan(_StrategyBase):
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
        θ, the size of the selection set; None gives n − 2f. Needs θ − 2f ≥ 1.

    El Mhamdi et al., "The Hidden Vulnerability of Distributed Learning in
    Byzantium", ICML 2018. Paper: https://arxiv.org/abs/1802.07927
    """

    f: int = _param(1, "number of Byzantine clients tolerated (needs n >= 4f+3)", ">= 0")
    m: int | None = _param(None, "selection set size theta; None gives n - 2f", "2f+1..n or None")
    name: ClassVar[str] = "Bulyan"
    param_hints: ClassVar[dict[str, str]] = {
        "num_malicious_clients": "f",  # Flower's Bulyan
        "to_keep": "m",
        "theta": "m",
    }
    reference: ClassVar[str] = "El Mhamdi et al. 2018, https://arxiv.org/abs/1802.07927"

    tolerance_param: ClassVar[str | None] = "f"

    def configured_byzantine(self, clients_per_round: int) -> int | None:
        return self.f


@dataclass(frozen=True)
class GeometricMedian(_StrategyBase):
    r"""Geometric median by smoothed Weiszfeld iterations (RFA).

    .. math:: \mathrm{agg}(\Delta) = \arg\min_z \sum_i n_i \max(\varepsilon,
              \lVert z - \Delta_i \rVert)

    solved from the weighted mean by :math:`z \leftarrow \sum_i \beta_i \Delta_i /
    \sum_i \beta_i`, :math:`\beta_i = n_i / \max(\varepsilon, \lVert z - \Delta_i \rVert)`,
    until a step is shorter than ε·(1 + ‖z‖) or max_iter is reached.

    Parameters
    ----------
    eps : float (default: 1e-6)
        Smoothing floor on distances and stopping tolerance on the step, > 0.
    max_iter : int (default: 100)
        Most Weiszfeld iterations, ≥ 1.

    Pillutla et al., "Robust Aggregation for Federated Learning", IEEE TSP 2022.
    Paper: https://arxiv.org/abs/1912.13445
    """

    eps: float = _param(1e-6, "distance smoothing and stopping tolerance", "> 0")
    max_iter: int = _param(100, "maximum Weiszfeld iterations", ">= 1")
    name: ClassVar[str] = "GeometricMedian"
    aliases: ClassVar[tuple[str, ...]] = ("GeoMed", "RFA")  # common short name; Pillutla et al.
    param_hints: ClassVar[dict[str, str]] = {"nu": "eps", "T": "max_iter", "tol": "eps"}
    reference: ClassVar[str] = "Pillutla et al. 2022, https://arxiv.org/abs/1912.13445"


@dataclass(frozen=True)
class CenteredClipping(_StrategyBase):
    r"""Centered clipping: average the updates after clipping them around a centre.

    .. math:: v_{l+1} = v_l + \frac{1}{n} \sum_i (\Delta_i - v_l)
              \min\!\left(1, \frac{\tau}{\lVert \Delta_i - v_l \rVert}\right)

    for l = 0 … iters − 1, where :math:`v_0` is the previous round's aggregate in a
    run (zero in a one-off :func:`velocity.aggregate` call). Unweighted.

    Parameters
    ----------
    tau : float (default: 1.0)
        Clipping radius, > 0.
    iters : int (default: 3)
        Clipping iterations per round, ≥ 1.

    Karimireddy et al., "Learning from History for Byzantine Robust
    Optimization", ICML 2021. Paper: https://arxiv.org/abs/2012.10333
    """

    tau: float = _param(1.0, "clipping radius around the centre", "> 0")
    iters: int = _param(3, "clipping iterations per round", ">= 1")
    name: ClassVar[str] = "CenteredClipping"
    aliases: ClassVar[tuple[str, ...]] = ("CC",)  # Karimireddy et al.'s abbreviation
    param_hints: ClassVar[dict[str, str]] = {"L_iter": "iters", "radius": "tau", "clip": "tau"}
    reference: ClassVar[str] = "Karimireddy et al. 2021, https://arxiv.org/abs/2012.10333"


Strategy = (
    FedAvg
    | FedProx
    | FedMedian
    | TrimmedMean
    | Krum
    | MultiKrum
    | Bulyan
    | GeometricMedian
    | CenteredClipping
)

ALL_STRATEGIES: tuple[type[Strategy], ...] = typing.get_args(Strategy)


def _key(name: str) -> str:
    return name_key(name)


_BY_KEY: dict[str, type[Strategy]] = {
    _key(spelling): cls for cls in ALL_STRATEGIES for spelling in (*cls.aliases, cls.name)
}

#: Names of other libraries' rules that are close to one of ours but not the same rule:
#: suggested, never accepted (ByzFL's Average is unweighted, FedAvg weights by samples;
#: FedAvgM adds server momentum).
SUGGESTED_FOR: dict[str, str] = {
    "Average": "FedAvg",
    "Mean": "FedAvg",
    "FedAvgM": "FedAvg",
    "FedAverage": "FedAvg",
}


def _spellings() -> dict[str, str]:
    """Every spelling a suggestion may start from -> the strategy name to suggest."""
    spellings = dict(SUGGESTED_FOR)
    for cls in ALL_STRATEGIES:
        spellings.update({alias: cls.name for alias in cls.aliases})
        spellings[cls.name] = cls.name
    return spellings


def _map_strategy(strategy: Strategy) -> _core.Strategy:
    """The Rust factory for each strategy: one arm each. Raises ValueError on bad params."""
    match strategy:
        case FedAvg():
            return _core.Strategy.fedavg()
        case FedProx(mu=mu):
            return _core.Strategy.fedprox(mu)
        case FedMedian():
            return _core.Strategy.fedmedian()
        case TrimmedMean(beta=beta):
            return _core.Strategy.trimmed_mean(beta)
        case Krum(f=f):
            return _core.Strategy.krum(f)
        case MultiKrum(f=f, m=m):
            return _core.Strategy.multi_krum(f, m)
        case Bulyan(f=f, m=m):
            return _core.Strategy.bulyan(f, m)
        case GeometricMedian(eps=eps, max_iter=max_iter):
            return _core.Strategy.geometric_median(eps, max_iter)
        case CenteredClipping(tau=tau, iters=iters):
            return _core.Strategy.centered_clipping(tau, iters)
    raise TypeError(f"not a velocity strategy: {strategy!r}")


def parse_strategy(spec: str | Mapping[str, Any] | Strategy) -> Strategy:
    """Turn a name, an inline string, a mapping or an instance into a :data:`Strategy`.

    Names are case-insensitive and ignore ``_``/``-``: ``"fedmedian"``,
    ``"Trimmed_Mean:beta=0.2"``, ``{"type": "Krum", "f": 2}``.

    Raises
    ------
    ValueError
        Unknown strategy (with the closest name), unknown parameter, or a value
        of the wrong type or out of range.
    """
    if isinstance(spec, ALL_STRATEGIES):
        return spec
    if isinstance(spec, str):
        name, params = split_inline(spec)
        raw: dict[str, Any] = dict(params)
    elif isinstance(spec, Mapping):
        raw = dict(spec)
        name = raw.pop("type", None) or raw.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"strategy mapping needs a 'type' name, got {short_repr(dict(spec))}")
        raw = _merge_params(raw, raw.pop("params", None), where=f"strategy {name!r}")
    else:
        raise ValueError(f"cannot read a strategy from {short_repr(spec)}")
    cls = _BY_KEY.get(_key(name))
    if cls is None:
        names = [c.name for c in ALL_STRATEGIES]
        raise ValueError(
            f"unknown strategy {short_repr(name)}{did_you_mean(name, _spellings())}; "
            f"valid: {', '.join(names)}"
        )
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(allowed), key=str)
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        key = str(unknown[0])
        hint = did_you_mean(key, {**cls.param_hints, **{a: a for a in allowed}})
        raise ValueError(
            f"unknown parameter {short_repr(unknown[0])} for {cls.name}{hint}; valid: {valid}"
        )
    try:
        return cls(**raw)
    except TypeError as exc:  # the Rust factory refusing a value's type
        raise ValueError(str(exc)) from None


def _merge_params(flat: dict[str, Any], nested: Any, *, where: str) -> dict[str, Any]:
    """Flat parameters plus those under ``params``; a key given both ways is refused."""
    if nested is None:
        return flat
    if not isinstance(nested, Mapping):
        raise ValueError(
            f"{where}: params must be a table of key = value, got {short_repr(nested)}"
        )
    twice = sorted(set(flat) & set(nested), key=str)
    if twice:
        raise ValueError(f"{where}: parameter {twice[0]!r} given twice (flat and under params)")
    return {**flat, **nested}


def _field_type(cls: type, name: str) -> tuple[Any, bool]:
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    nullable = type(None) in args
    base = next((a for a in args if a is not type(None)), hint)
    return ("int" if base is int else "float"), nullable


def strategy_schemas() -> dict[str, dict[str, Any]]:
    """Every strategy with its description, paper and parameters (type, default, range)."""
    schemas: dict[str, dict[str, Any]] = {}
    for cls in ALL_STRATEGIES:
        doc = inspect.getdoc(cls) or ""
        params = {}
        for f in dataclasses.fields(cls):
            kind, nullable = _field_type(cls, f.name)
            params[f.name] = {
                "type": kind,
                "default": f.default,
                "nullable": nullable,
                "allowed": f.metadata["allowed"],
                "description": f.metadata["help"],
            }
        schemas[cls.name] = {
            "description": doc.splitlines()[0] if doc else cls.name,
            "reference": cls.reference,
            "selection": cls().to_core().is_selection,
            "params": params,
        }
    return schemas
