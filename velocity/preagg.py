"""Pre-aggregators: the stages a pipeline runs on the update matrix before its rule.

A pre-aggregator maps the n×d matrix of client updates Δ to another matrix (of n
rows, or fewer for Bucketing) that the pipeline's rule then aggregates:
``NNM>Krum:f=2`` mixes each update with its nearest neighbours, then runs Krum on the
mixed rows. The Rust registry (``crates/velocity-core/src/preagg/``) declares every
pre-aggregator once: its name and aliases, its parameters (the strategies'
``ParamSchema`` shape), its paper, the parameter that counts the Byzantine clients it
tolerates and whether it draws random numbers (Bucketing's permutation, seeded from
the run's seed and the round). The classes here are frozen dataclasses generated from
it, one per entry, importable under their names (``velocity.preagg.NNM``); nothing
else in Python names a pre-aggregator.

The pipeline syntax, its parser and the rule a pipeline ends with live in
:mod:`velocity.strategy` (:func:`velocity.strategy.parse_strategy`); this module
reads one stage (:func:`parse_preaggregator`). Types are checked here, ranges by
Rust when the pipeline is built (every :class:`velocity.strategy.Strategy` builds its
Rust object when it is made, so a bad value is refused before anything runs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

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

#: The Rust registry: every pre-aggregator's schema, in catalog order.
REGISTRY: dict[str, _core.PreAggSchema] = _core.preaggregator_schemas()


class PreAggregator:
    """A pre-aggregation stage and its parameters: the base of the generated classes.

    Subclasses are frozen dataclasses whose fields are the stage's parameters; the
    class attributes come from its registry entry.
    """

    #: The registered name (labels, catalogs, the Rust pipeline).
    name: ClassVar[str]
    #: The paper: "Author et al. year, link".
    reference: ClassVar[str]
    #: Other accepted names (ByzFL's, papers'), case-insensitive like ``name``.
    aliases: ClassVar[tuple[str, ...]]
    #: The parameter counting the Byzantine clients this stage tolerates (NNM's f), if any.
    tolerance_param: ClassVar[str | None]
    #: Whether the stage draws random numbers (seeded from the run's seed and round).
    seeded: ClassVar[bool]

    def __post_init__(self) -> None:
        schema = REGISTRY[self.name]["params"]
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            param = schema[f.name]
            value = coerce(
                getattr(self, f.name),
                param["type"],
                nullable=param["nullable"],
                where=f"{self.name}.{f.name}",
            )
            object.__setattr__(self, f.name, value)

    def params(self) -> dict[str, Any]:
        """The parameters, by name, in registry order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def label(self) -> str:
        """The inline form, e.g. ``NNM`` or ``Bucketing:s=2``; defaults left out."""
        return inline_form(self.name, non_defaults(self))

    def to_dict(self) -> dict[str, Any]:
        """``{"type": name, **params}``; :func:`parse_preaggregator` reads it back."""
        return {"type": self.name, **self.params()}

    def to_core(self) -> tuple[str, dict[str, Any]]:
        """The ``(name, params)`` pair a Rust pipeline (``_core.Strategy(pre=...)``) takes."""
        return self.name, self.params()


def _generated(name: str, schema: _core.PreAggSchema) -> type[PreAggregator]:
    """The frozen dataclass of one registry entry."""
    cls: type[PreAggregator] = dataclasses.make_dataclass(
        name,
        schema_fields(schema["params"]),
        bases=(PreAggregator,),
        frozen=True,
        namespace={"__doc__": f"{schema['description']}\n\n{schema['reference']}"},
    )
    cls.__module__, cls.__qualname__ = __name__, name
    cls.name = name
    cls.reference = schema["reference"]
    cls.aliases = tuple(schema["aliases"])
    cls.tolerance_param = schema["tolerance"]
    cls.seeded = schema["seeded"]
    return cls


#: Every pre-aggregator, in registry order (importable from this module under its name).
ALL_PREAGGREGATORS: tuple[type[PreAggregator], ...] = tuple(
    _generated(name, schema) for name, schema in REGISTRY.items()
)
globals().update({cls.__name__: cls for cls in ALL_PREAGGREGATORS})

#: Every accepted spelling's :func:`name_key` -> its class.
BY_KEY: dict[str, type[PreAggregator]] = {
    name_key(spelling): cls for cls in ALL_PREAGGREGATORS for spelling in (*cls.aliases, cls.name)
}


def find_preaggregator(name: str) -> type[PreAggregator] | None:
    """The class a name or alias spells (ignoring case, ``_``, ``-``), else None."""
    return BY_KEY.get(name_key(name))


def unknown_preaggregator(name: str) -> ValueError:
    """The error for a name that is no pre-aggregator: the close match and the valid names."""
    spellings = {s: cls.name for cls in ALL_PREAGGREGATORS for s in (*cls.aliases, cls.name)}
    return ValueError(
        f"unknown pre-aggregator {short_repr(name)}{did_you_mean(name, spellings)}; "
        f"valid: {', '.join(cls.name for cls in ALL_PREAGGREGATORS)}"
    )


def split_preaggregator(
    spec: str | Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """A stage's name and raw parameters from ``"NNM:f=1"`` or ``{"type": "NNM", "f": 1}``
    (or ``{"type": "NNM", "params": {"f": 1}}``), before the name is looked up."""
    if isinstance(spec, str):
        if ">" in spec:
            raise ValueError(
                f"pre-aggregator {short_repr(spec)} is a pipeline; "
                "give one stage per item, e.g. ['NNM', 'Bucketing:s=2']"
            )
        return split_inline(spec)
    if isinstance(spec, Mapping):
        raw = dict(spec)
        name = raw.pop("type", None) or raw.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(
                f"pre-aggregator mapping needs a 'type' name, got {short_repr(dict(spec))}"
            )
        nested = raw.pop("params", None)
        if nested is not None:
            if not isinstance(nested, Mapping):
                raise ValueError(
                    f"pre-aggregator {name!r}: params must be a table of key = value, "
                    f"got {short_repr(nested)}"
                )
            twice = sorted(set(raw) & set(nested), key=str)
            if twice:
                raise ValueError(
                    f"pre-aggregator {name!r}: parameter {twice[0]!r} given twice "
                    "(flat and under params)"
                )
            raw.update(nested)
        return name, raw
    raise ValueError(f"cannot read a pre-aggregator from {short_repr(spec)}")


def read_preaggregator(
    spec: str | Mapping[str, Any] | PreAggregator,
) -> tuple[PreAggregator, frozenset[str]]:
    """One stage, and the names of the parameters ``spec`` gives (the rest are defaults;
    an instance gives all of its parameters)."""
    if isinstance(spec, PreAggregator):
        return spec, frozenset(spec.params())
    name, raw = split_preaggregator(spec)
    cls = find_preaggregator(name)
    if cls is None:
        raise unknown_preaggregator(name)
    params = coerce_params(raw, REGISTRY[cls.name]["params"], owner=cls.name, what=cls.name)
    return cls(**params), frozenset(params)


def parse_preaggregator(spec: str | Mapping[str, Any] | PreAggregator) -> PreAggregator:
    """One pre-aggregation stage from a name, ``"Name:k=v"``, a mapping or an instance.

    Names are case-insensitive and ignore ``_``/``-``; a pipeline is refused here (it
    is a strategy: see :func:`velocity.strategy.parse_strategy`).

    Raises
    ------
    ValueError
        An unknown name (with the close match), an unknown parameter, a value of the
        wrong type.
    """
    return read_preaggregator(spec)[0]


def preaggregator_schemas() -> dict[str, dict[str, Any]]:
    """Every pre-aggregator: description, paper, aliases, parameters, tolerance, seeded.

    Each parameter is the registry's ``ParamSchema`` plus ``allowed``, its range as text.
    """
    return {
        name: {
            "description": schema["description"],
            "reference": schema["reference"],
            "aliases": list(schema["aliases"]),
            "params": {
                pname: {**param, "allowed": range_text(param)}
                for pname, param in schema["params"].items()
            },
            "tolerance": schema["tolerance"],
            "seeded": schema["seeded"],
        }
        for name, schema in REGISTRY.items()
    }
