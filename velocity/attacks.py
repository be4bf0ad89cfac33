"""Attacks: a thin, typed face over the Rust registry (``crates/velocity-core/src/security/``).

The registry in Rust is the single source of truth for attack names, kinds
(``update`` attacks rewrite a Byzantine client's update; ``data`` attacks poison
its labels before training), parameter schemas and implementations: one file per
attack plus one line in ``ATTACKS`` (``security/mod.rs``). This module only reads
it: adding an attack changes nothing here. Parameters go through the same
:func:`velocity._inline.coerce_params` as the strategies' (one dialect), then Rust
checks the ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from velocity import _core
from velocity._inline import coerce_params, short_repr, split_inline
from velocity.errors import format_validation_error

#: Parameter names of other libraries (ByzFL, Flower, papers) -> ours: suggested when
#: a parameter is unknown, never accepted.
PARAM_HINTS = {
    "num_byzantine": "count",
    "n_byzantine": "count",
    "nb_byz": "count",
    "f": "count",
    "byzantine_fraction": "fraction",
    "start": "start_round",
    "end": "end_round",
    "std": "sigma",
}


def attack_name(name: str) -> str:
    """The registered name for ``name``: case, ``_``/``-`` and spaces are ignored and
    aliases resolve (``ALIE``, ``Gaussian-Noise``, ByzFL's ``ALittleIsEnough``,
    ``InnerProductManipulation``, ``SignFlipping``). ValueError with the close match."""
    return _core.attack_name(name)


def valid_attacks() -> list[str]:
    """The names of every attack, sorted."""
    return list(_core.valid_attacks())


def attack_schemas() -> dict[str, _core.AttackSchema]:
    """Per attack: kind, description, paper and parameters (type, default, range, help)."""
    return _core.attack_schemas()


class AttackSpec(BaseModel):
    """One attack in a run: its registered name and its parameters, all filled in.

    Validation happens in Rust (``_core.validate_attack``), so the Python side can
    never disagree with what the simulation accepts. ``params`` holds every
    parameter of the attack after validation, defaults included.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    params: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _validate(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
            return data  # pydantic reports the missing or mistyped field
        name = attack_name(data["type"])
        params = data.get("params") or {}
        if not isinstance(params, Mapping):
            raise ValueError(
                f"{name}.params must be a table of key = value, got {short_repr(params)}"
            )
        params = coerce_params(
            params,
            attack_schemas()[name]["params"],
            owner=name,
            what=f"attack {name!r}",
            hints=PARAM_HINTS,
        )
        return {"type": name, "params": dict(_core.validate_attack(name, params))}

    @property
    def kind(self) -> str:
        """``"update"`` or ``"data"``."""
        return attack_schemas()[self.type]["kind"]

    def label(self) -> str:
        """The inline form with the parameters that differ from their defaults."""
        defaults = attack_schemas()[self.type]["params"]
        changed = [f"{k}={v}" for k, v in self.params.items() if v != defaults[k]["default"]]
        return self.type + (":" + ",".join(changed) if changed else "")


def parse_attack(spec: str | Mapping[str, Any] | AttackSpec) -> AttackSpec:
    """Turn ``"gaussian_noise:sigma=0.5,fraction=0.3"``, a mapping or a spec into an AttackSpec.

    A mapping may hold the parameters flat (``{"type": "alie", "z": 1.5}``) or under
    ``"params"``. Raises ``ValueError`` with a close match for unknown names.
    """
    if isinstance(spec, AttackSpec):
        return spec
    raw: dict[str, Any]
    if isinstance(spec, str):
        name, inline = split_inline(spec)
        raw = dict(inline)
    elif isinstance(spec, Mapping):
        params = dict(spec)
        name = params.pop("type", None)
        if not isinstance(name, str):
            raise ValueError(f"attack needs a 'type' name, got {short_repr(dict(spec))}")
        nested = params.pop("params", None)
        if nested is not None and not isinstance(nested, Mapping):
            raise ValueError(
                f"{name}.params must be a table of key = value, got {short_repr(nested)}"
            )
        twice = sorted(set(params) & set(nested or {}), key=str)
        if twice:
            raise ValueError(f"{name}: parameter {twice[0]!r} given twice (flat and under params)")
        raw = {**params, **(nested or {})}
    else:
        raise ValueError(f"cannot read an attack from {short_repr(spec)}")
    try:
        return AttackSpec(type=name, params=raw)
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc)) from None
