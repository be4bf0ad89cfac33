"""Attacks: a thin, typed face over the Rust registry (``crates/velocity-core/src/security/``).

The registry in Rust is the single source of truth for attack names, kinds
(``update`` attacks rewrite a Byzantine client's update; ``data`` attacks poison
its labels before training), parameter schemas and implementations: one file per
attack plus one line in ``ATTACKS`` (``security/mod.rs``). This module only reads
it: adding an attack changes nothing here. Parameters go through the same
:func:`velocity._inline.coerce_params` as the strategies' (one dialect), then Rust
checks the ranges.

Two words stand for sets of attacks in an attack list: ``"adaptive"`` for every
attack whose registry entry says ``adaptive`` (it computes its update from what the
run's own rule pipeline would do with it), in registry order, and, in a
strategy × attack matrix, ``"none"`` for the no-attack baseline (always run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator

from velocity import _core
from velocity._inline import coerce_params, did_you_mean, name_key, short_repr, split_inline
from velocity.byzantine import attack_share
from velocity.errors import format_validation_error

#: The word for the set of adaptive attacks in an attack list.
ADAPTIVE = "adaptive"

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
    ``InnerProductManipulation``, ``SignFlipping``). ValueError with the close match
    (the set word ``adaptive`` included)."""
    try:
        return _core.attack_name(name)
    except ValueError as exc:
        if did_you_mean(name, {ADAPTIVE: ADAPTIVE}) and "did you mean" not in str(exc):
            raise ValueError(
                f"unknown attack {short_repr(name)} (did you mean {ADAPTIVE!r}, every attack "
                f"that adapts to the rule?); valid: {', '.join(valid_attacks())}, {ADAPTIVE}"
            ) from None
        raise


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
    def _validate(cls, data: Any, info: ValidationInfo) -> Any:
        """Coerce and check the parameters; with ``byzantine`` in the validation context
        (:func:`parse_attack`), an attack without its own share gets that share."""
        if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
            return data  # pydantic reports the missing or mistyped field
        name, params = _coerced(data["type"], data.get("params") or {})
        byzantine = (info.context or {}).get("byzantine")
        if byzantine is not None and not _share_given(params):
            params = {**params, **attack_share(byzantine)}
        return {"type": name, "params": dict(_core.validate_attack(name, params))}

    @property
    def adaptive(self) -> bool:
        """Whether the attack computes its update from the run's own rule pipeline."""
        return attack_schemas()[self.type]["adaptive"]

    @property
    def kind(self) -> str:
        """``"update"`` or ``"data"``."""
        return attack_schemas()[self.type]["kind"]

    def label(self) -> str:
        """The inline form with the parameters that differ from their defaults."""
        defaults = attack_schemas()[self.type]["params"]
        changed = [f"{k}={v}" for k, v in self.params.items() if v != defaults[k]["default"]]
        return self.type + (":" + ",".join(changed) if changed else "")


def _coerced(name: str, params: Any) -> tuple[str, dict[str, Any]]:
    """The registered name and the parameters converted to their declared types."""
    name = attack_name(name)
    if not isinstance(params, Mapping):
        raise ValueError(f"{name}.params must be a table of key = value, got {short_repr(params)}")
    schema = attack_schemas()[name]["params"]
    return name, coerce_params(
        params, schema, owner=name, what=f"attack {name!r}", hints=PARAM_HINTS
    )


def _share_given(params: Mapping[str, Any]) -> bool:
    """Whether coerced parameters set how many clients are Byzantine (fraction or count)."""
    return params.get("fraction") is not None or params.get("count") is not None


def _raw(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The name and the parameters as given, from an inline string or a mapping."""
    if isinstance(spec, str):
        name, inline = split_inline(spec)
        return name, dict(inline)
    if not isinstance(spec, Mapping):
        raise ValueError(f"cannot read an attack from {short_repr(spec)}")
    params = dict(spec)
    name = params.pop("type", None)
    if not isinstance(name, str):
        raise ValueError(f"attack needs a 'type' name, got {short_repr(dict(spec))}")
    nested = params.pop("params", None)
    if nested is not None and not isinstance(nested, Mapping):
        raise ValueError(f"{name}.params must be a table of key = value, got {short_repr(nested)}")
    twice = sorted(set(params) & set(nested or {}), key=str)
    if twice:
        raise ValueError(f"{name}: parameter {twice[0]!r} given twice (flat and under params)")
    return name, {**params, **(nested or {})}


def parse_attack(
    spec: str | Mapping[str, Any] | AttackSpec, *, byzantine: int | float | None = None
) -> AttackSpec:
    """Turn ``"gaussian_noise:sigma=0.5,fraction=0.3"``, a mapping or a spec into an AttackSpec.

    A mapping may hold the parameters flat (``{"type": "alie", "z": 1.5}``) or under
    ``"params"``. Raises ``ValueError`` with a close match for unknown names.

    ``byzantine`` (a fraction in (0, 1) or a count, :mod:`velocity.byzantine`) is the
    share of Byzantine clients for an attack that gives neither ``fraction`` nor
    ``count`` itself; one that does keeps its own. An AttackSpec is kept as it is.

    >>> parse_attack("alie", byzantine=0.3).params["fraction"]
    0.3
    >>> parse_attack("alie:fraction=0.1", byzantine=0.3).params["fraction"]
    0.1
    >>> parse_attack("alie", byzantine=2).params["count"]
    2
    """
    if isinstance(spec, AttackSpec):
        return spec
    name, raw = _raw(spec)
    try:
        return AttackSpec.model_validate(
            {"type": name, "params": raw}, context={"byzantine": byzantine}
        )
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc)) from None


def gives_byzantine_share(spec: str | Mapping[str, Any] | AttackSpec) -> bool:
    """Whether an attack sets its own Byzantine share (``fraction`` or ``count``).

    An AttackSpec is resolved: its share is its own.

    >>> gives_byzantine_share("alie"), gives_byzantine_share("alie:count=2")
    (False, True)
    """
    if isinstance(spec, AttackSpec):
        return True
    return _share_given(_coerced(*_raw(spec))[1])


def adaptive_attacks() -> list[str]:
    """Every attack whose registry entry says ``adaptive``, in registry order."""
    return [name for name, schema in attack_schemas().items() if schema["adaptive"]]


def is_word(item: Any, word: str) -> bool:
    """Whether a list item is the bare ``word`` (``adaptive``, ``none``; case ignored).

    ``adaptive:fraction=0.1`` is refused: such a word takes no parameters.
    """
    if not isinstance(item, str):
        return False
    name, _, params = item.strip().partition(":")
    if name_key(name) != name_key(word):
        return False
    if params.strip():
        raise ValueError(
            f"{short_repr(item)}: {word!r} takes no parameters; give them to an attack by "
            "name (e.g. alie:fraction=0.1)"
        )
    return True


def _members() -> list[str]:
    members = adaptive_attacks()
    if not members:
        raise ValueError(f"{ADAPTIVE!r}: no registered attack is adaptive")
    return members


def expand_adaptive(items: Sequence[Any]) -> list[Any]:
    """A matrix's attack columns: the word ``adaptive`` becomes every adaptive attack
    (in registry order) not also listed as it is.

    >>> expand_adaptive(["alie"])
    ['alie']
    """
    expanded: list[Any] = []
    for item in items:
        if not is_word(item, ADAPTIVE):
            expanded.append(item)
            continue
        expanded += [m for m in _members() if m not in items and m not in expanded]
    return expanded


def adaptive_variants(items: Sequence[Any]) -> list[tuple[str | None, list[Any]]]:
    """The attack lists of one run whose attacks act together, each with the adaptive
    attack it stands for: without the word ``adaptive``, ``items`` itself (``None``);
    with it, one list per adaptive attack, which takes the word's place.

    >>> adaptive_variants(["label_flipping"])
    [(None, ['label_flipping'])]
    """
    at = [i for i, item in enumerate(items) if is_word(item, ADAPTIVE)]
    if not at:
        return [(None, list(items))]
    if len(at) > 1:
        raise ValueError(f"{ADAPTIVE!r} is listed {len(at)} times; once stands for every member")
    i = at[0]
    return [(member, [*items[:i], member, *items[i + 1 :]]) for member in _members()]
