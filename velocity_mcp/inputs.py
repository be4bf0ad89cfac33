"""Checking what an agent sends before anything runs: arguments, parameters, config files.

Everything here is cheap and pure: no dataset is loaded and no model is built in
the server process (the sweep process does that, and refuses what it cannot run).

* :func:`check_arguments`: every tool refuses arguments it does not have (naming
  them, a close match and the valid ones) and reports a schema violation as one
  line per problem, with the value shown cut short.
* :func:`dataset_params_model` / :func:`model_params_model`: ``dataset_params`` and
  ``model_params`` as bounded pydantic models (the bounds are the server's limits).
* :func:`read_experiment`: an experiment file, with its size, nesting and numbers
  checked before ``velocity.spec`` sees it.
* :func:`check_inline_numbers` / :func:`check_finite_settings`: integers too large
  for the simulation and non-finite floats, refused with the parameter named.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from velocity._inline import did_you_mean
from velocity_mcp.limits import Limits
from velocity_mcp.paths import shown

#: The largest experiment file the server reads.
MAX_CONFIG_BYTES = 1024 * 1024
#: How deeply an experiment file may nest tables and lists (velocity's own use 4).
MAX_CONFIG_DEPTH = 16
#: Integers the simulation takes (a C long); larger ones are refused by name.
INT_LIMIT = 2**63
#: The Settings a sweep_run may not set, and why (operator-only or outside the root).
OPERATOR_ONLY = {
    "storage": "checkpoints are written inside each run's directory under the root",
    "ray_address": "the Ray cluster is the server operator's ($RAY_ADDRESS)",
    "ray_gpus": "what a run reserves on the Ray cluster is the server operator's choice",
}


# --------------------------------------------------------------------------- arguments


def argument_names(model: type[BaseModel]) -> list[str]:
    """The names a tool's argument model accepts (aliases where set)."""
    return [field.alias or name for name, field in model.model_fields.items()]


def check_arguments(tool: str, model: type[BaseModel], arguments: Mapping[str, Any]) -> None:
    """Refuse unknown arguments, then validate against ``model`` with readable errors.

    Raises
    ------
    ToolError
        ``sweep_run has no argument 'bogus' (did you mean ...?); its arguments: ...``,
        or one clause per schema violation.
    """
    valid = argument_names(model)
    unknown = [name for name in arguments if name not in valid]
    if unknown:
        clauses = []
        for name in unknown:
            why = OPERATOR_ONLY.get(name)
            if why is not None:
                clauses.append(f"{name!r} cannot be set through the MCP server ({why})")
            else:
                clauses.append(f"no argument {shown(name, 40)}{did_you_mean(name, valid)}")
        listed = ", ".join(valid) if valid else "none"
        raise ToolError(f"{tool}: {'; '.join(clauses)}. Its arguments: {listed}")
    try:
        model.model_validate(dict(arguments))
    except ValidationError as exc:
        raise ToolError(f"{tool}: invalid arguments: {describe(exc, model)}") from None
    except RecursionError:
        raise ToolError(f"{tool}: an argument is nested too deeply") from None


def _model_at(model: type[BaseModel] | None, loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that validates the value at ``loc`` under ``model`` (or None)."""
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        model = _model_in(model.model_fields[part].annotation)
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def describe(exc: ValidationError, model: type[BaseModel] | None = None, prefix: str = "") -> str:
    """One clause per problem: ``rounds: Input should be less than or equal to 50 (got 51)``.

    An unknown key of a nested model names the valid keys and a close match; the
    value shown is cut to a few dozen characters (an agent's megabyte string is
    not repeated back to it).
    """
    clauses = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = prefix + ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            valid = argument_names(owner) if owner is not None else []
            msg = f"unknown key{did_you_mean(str(loc[-1]), valid)}"
            if valid:
                msg += f"; valid keys: {', '.join(valid)}"
            clauses.append(f"{path}: {msg}")
            continue
        msg = str(err["msg"]).removeprefix("Value error, ")
        got = err.get("input")
        if err["type"] not in ("missing", "value_error") and not isinstance(got, dict | list):
            text = shown(got) if isinstance(got, str) else _number(got)
            msg += f" (got {text})"
        clauses.append(f"{path}: {msg}" if path else msg)
    return "; ".join(clauses)


def _number(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"


# --------------------------------------------------------------------------- params


def dataset_params_model(limits: Limits) -> type[BaseModel]:
    """``dataset_params``: the synthetic dataset's size and the Hugging Face columns."""

    def bound(name: str) -> str:
        return (
            f"; at most {getattr(limits, name)} on this server (limit {name}: "
            f"{Limits.flag(name)} / {Limits.env_var(name)})"
        )

    class DatasetParams(BaseModel):
        """Options of the dataset; each dataset takes only its own (the sweep refuses others)."""

        model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

        n_samples: StrictInt | None = Field(
            None,
            ge=4,
            le=limits.max_samples,
            description="synthetic: samples (default 2000); n_samples × n_features at most "
            f"{limits.max_dataset_values} (limit max_dataset_values)" + bound("max_samples"),
        )
        n_features: StrictInt | None = Field(
            None,
            ge=1,
            le=limits.max_features,
            description="synthetic: features per sample (default 20)" + bound("max_features"),
        )
        n_classes: StrictInt | None = Field(
            None, ge=2, le=1000, description="synthetic: classes (default 10), 2 to 1000"
        )
        class_sep: float | None = Field(
            None,
            ge=0,
            le=1e6,
            description="synthetic: spread of the class centres (default 1.0), 0 to 1e6",
        )
        config: str | None = Field(
            None, min_length=1, max_length=200, description="Hugging Face: dataset config name"
        )
        label_column: str | None = Field(
            None, min_length=1, max_length=200, description="Hugging Face: the label column"
        )
        feature_column: str | None = Field(
            None, min_length=1, max_length=200, description="Hugging Face: the feature column"
        )

    return DatasetParams


def model_params_model(limits: Limits) -> type[BaseModel]:
    """``model_params``: the MLP's hidden units and backend, the torch models' vectorize."""

    class ModelParams(BaseModel):
        """Options of the model; logreg takes none."""

        model_config = ConfigDict(extra="forbid")

        hidden: StrictInt | None = Field(
            None,
            ge=1,
            le=limits.max_hidden,
            description="mlp: hidden units (default 64); at most "
            f"{limits.max_hidden} on this server (limit max_hidden: "
            f"{Limits.flag('max_hidden')} / {Limits.env_var('max_hidden')})",
        )
        backend: Literal["numpy", "torch"] | None = Field(
            None, description="mlp: numpy (default) or torch (the torch extra)"
        )
        vectorize: StrictBool | None = Field(
            None,
            description="torch models (cnn, mlp with backend torch): train a round's clients "
            "together with vmap; default: yes, except a convolutional model on the CPU",
        )

    return ModelParams


def check_params(
    shared: Any, limits: Limits, dataset_model: type[BaseModel], model_model: type[BaseModel]
) -> None:
    """Bound a sweep's ``dataset_params`` and ``model_params`` (a config file's included)."""
    for name, model in (("dataset_params", dataset_model), ("model_params", model_model)):
        try:
            model.model_validate(getattr(shared, name) or {})
        except ValidationError as exc:
            raise ToolError(f"invalid sweep: {describe(exc, model, f'{name}.')}") from None
    params = shared.dataset_params or {}
    values = int(params.get("n_samples") or 2000) * int(params.get("n_features") or 20)
    if shared.dataset == "synthetic" and values > limits.max_dataset_values:
        raise ToolError(
            limits.refusal(
                "max_dataset_values",
                values,
                "the synthetic dataset's n_samples × n_features",
            )
        )


# --------------------------------------------------------------------------- numbers

_INLINE_INT = re.compile(r"([A-Za-z_]\w*)\s*=\s*([+-]?\d+)\s*(?:,|$)")


def check_inline_numbers(kind: str, items: Iterable[str]) -> None:
    """Refuse an inline ``Name:key=<int>`` whose integer does not fit the simulation
    (in each stage of a pipeline ``Pre:key=<int>>Rule:key=<int>`` too)."""
    for item in items:
        for stage in item.split(">"):
            _, _, params = stage.partition(":")
            for key, digits in _INLINE_INT.findall(params):
                if abs(int(digits)) >= INT_LIMIT:
                    raise ToolError(
                        f"invalid sweep: {kind} {shown(stage.partition(':')[0], 40)}: parameter "
                        f"{key}={_number(int(digits))} is too large (at most {INT_LIMIT - 1})"
                    )


def check_data_numbers(data: Any, where: str) -> None:
    """Refuse, by its key path, an integer over a C long or a non-finite float in ``data``."""
    stack: list[tuple[str, Any]] = [(where, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and abs(value) >= INT_LIMIT:
            raise ToolError(
                f"invalid sweep: {path}={_number(value)} is too large (at most {INT_LIMIT - 1})"
            )
        elif isinstance(value, float) and not math.isfinite(value):
            raise ToolError(f"invalid sweep: {path}={value} is not a finite number")


def check_finite_settings(shared: Any) -> None:
    """Refuse a non-finite float among the ``[shared]`` settings (alpha, lr, ...)."""
    for name, value in shared.model_dump().items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ToolError(f"invalid sweep: shared.{name}={value} is not a finite number")


# --------------------------------------------------------------------------- config files


def _depth_over(data: Any, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return False


def read_experiment(path: Path, shown_as: str) -> dict[str, Any]:
    """The mapping in an experiment file (``.toml`` or ``.json``), checked before validation.

    Raises
    ------
    ToolError
        Too large, unreadable, malformed, nested too deeply, not a table, or holding
        an integer over a C long or a non-finite float (the message names the key).
    """
    label = f"config {shown(shown_as)}"
    kind = "JSON" if path.suffix == ".json" else "TOML"
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ToolError(
                f"{label} is {size} bytes; an experiment file may have at most "
                f"{MAX_CONFIG_BYTES} bytes"
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{label} is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise ToolError(f"{label} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except RecursionError:
        raise ToolError(
            f"{label}: malformed {kind}: nested too deeply (at most {MAX_CONFIG_DEPTH} levels)"
        ) from None
    except ValueError as exc:  # JSONDecodeError, TOMLDecodeError, an over-long integer
        raise ToolError(f"{label}: malformed {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ToolError(
            f"{label} must hold a JSON object with 'shared' and 'runs', not "
            f"{'null' if data is None else type(data).__name__}"
        )
    if _depth_over(data, MAX_CONFIG_DEPTH):
        raise ToolError(
            f"{label} nests tables and lists more than {MAX_CONFIG_DEPTH} levels deep; an "
            "experiment file needs 4 ([shared], [[runs]], their params and attacks)"
        )
    check_data_numbers(data, "")
    return data
