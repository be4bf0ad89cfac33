"""Your own data: the dataset id ``"module:callable"`` names a loader to import and call.

A loader is any function importable by name::

    # mydata.py, in the directory you run velocity from (or installed, or on PYTHONPATH)
    import numpy as np

    def load(*, seed: int, **dataset_params):
        rng = np.random.default_rng(seed)
        ...
        return x_train, y_train, x_test, y_test

and the experiment says ``dataset = "mydata:load"`` (``dataset_params`` are passed on
as keyword arguments). It returns either the tuple ``(x_train, y_train, x_test,
y_test)`` or a mapping with those four keys and, optionally, ``num_classes``:

* ``x_train``, ``x_test``: numbers of any feature shape, ``(n, *feature_shape)``
  (e.g. ``(n, 28, 28, 1)`` images channels-last, or ``(n, d)`` tabular rows). They
  are copied to float32 and used as given: velocity neither scales nor standardises
  your features.
* ``y_train``, ``y_test``: integer class ids in ``[0, num_classes)``, one per sample.
* ``num_classes`` (optional): the number of classes, when a class is absent from
  both splits; by default the largest label + 1.

The loader must be deterministic given its arguments: velocity calls it once in the
sweep process to check the setup before anything is written, then once in every
run's worker process (which imports the module again by name), and the runs of a
repeat share a seed so they must see the same data. To find a module beside your
experiment, the current working directory is added to the end of ``sys.path``.

May import: numpy, the standard library, ``velocity._inline``, ``velocity.catalog``
(what a ``module:callable`` id looks like) and :mod:`velocity.sim.importer` (the
import by name, shared with your own models). :mod:`velocity.sim.data` turns :class:`UserDataError`
into its ``DatasetError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from velocity._inline import did_you_mean, shown
from velocity.catalog import names_code
from velocity.sim.importer import ImportByNameError, exception_text, resolve_callable

__all__ = ["UserArrays", "UserDataError", "is_user_id", "load_user_data"]

_KEYS = ("x_train", "y_train", "x_test", "y_test")
_OPTIONAL_KEYS = ("num_classes",)
_EXPECTED = (
    "a tuple (x_train, y_train, x_test, y_test) of arrays or a mapping with those keys "
    "(and optionally num_classes)"
)


class UserDataError(ValueError):
    """A loader that cannot be imported or called, or whose data cannot be used."""


class UserArrays(NamedTuple):
    """A loader's checked data: float32 C-contiguous flat features, int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    feature_shape: tuple[int, ...]


def is_user_id(dataset_id: str) -> bool:
    """Whether ``dataset_id`` has the form ``module:callable``."""
    return names_code(dataset_id)


def load_user_data(dataset_id: str, *, seed: int, params: Mapping[str, Any]) -> UserArrays:
    """Import the loader ``dataset_id`` names, call it and check what it returns.

    Parameters
    ----------
    dataset_id : str
        ``"module:callable"``, e.g. ``"mydata:load"`` or ``"pkg.sub:Loader.load"``.
    seed : int
        The run's seed, passed as ``seed=``.
    params : mapping
        The run's ``dataset_params``, passed as keyword arguments.

    Returns
    -------
    UserArrays
        The four arrays (features flattened, float32, C-contiguous; labels int64),
        the number of classes and the per-sample feature shape.

    Raises
    ------
    UserDataError
        One line naming the dataset id and what was expected: the module or the
        attribute does not resolve (with the close match), the loader raises, or it
        returns the wrong type or inconsistent arrays.
    """
    try:
        loader = resolve_callable(dataset_id, "a loader function load(*, seed, **dataset_params)")
    except ImportByNameError as exc:
        raise _error(dataset_id, str(exc)) from None
    attr = dataset_id.partition(":")[2]
    try:
        result = loader(seed=seed, **params)
    except Exception as exc:
        hint = (
            f" (velocity calls it as {attr}(seed=<int>, **dataset_params))"
            if isinstance(exc, TypeError)
            else ""
        )
        raise _error(dataset_id, f"the loader raised {exception_text(exc)}{hint}") from None
    return _check_result(dataset_id, result)


# --- what the loader returned ---------------------------------------------------------


def _check_result(dataset_id: str, result: Any) -> UserArrays:
    values, num_classes = _unpack(dataset_id, result)
    arrays = {
        key: _as_array(dataset_id, key, value) for key, value in zip(_KEYS, values, strict=True)
    }
    x_train = _features(dataset_id, "x_train", arrays["x_train"])
    x_test = _features(dataset_id, "x_test", arrays["x_test"])
    if x_test.shape[1:] != x_train.shape[1:]:
        raise _error(
            dataset_id,
            f"x_test has samples of shape {x_test.shape[1:]}, x_train of shape "
            f"{x_train.shape[1:]}; both splits need the same feature shape",
        )
    y_train = _labels(dataset_id, "y_train", arrays["y_train"], x_train.shape[0])
    y_test = _labels(dataset_id, "y_test", arrays["y_test"], x_test.shape[0])
    if x_train.shape[0] == 0:
        raise _error(dataset_id, "x_train is empty: the clients need training samples")
    if x_test.shape[0] == 0:
        raise _error(dataset_id, "x_test is empty: the global model is evaluated on it")
    largest = int(max(y_train.max(), y_test.max()))
    classes = _num_classes(dataset_id, num_classes, largest)
    feature_shape = tuple(int(d) for d in x_train.shape[1:])
    return UserArrays(
        _flat_float32(dataset_id, "x_train", x_train),
        y_train,
        _flat_float32(dataset_id, "x_test", x_test),
        y_test,
        classes,
        feature_shape,
    )


def _unpack(dataset_id: str, result: Any) -> tuple[list[Any], Any]:
    if isinstance(result, Mapping):
        keys = [k for k in result if not (isinstance(k, str) and k in (*_KEYS, *_OPTIONAL_KEYS))]
        if keys:
            key = str(keys[0])
            raise _error(
                dataset_id,
                f"the loader returned a mapping with the unknown key {shown(key)!r}"
                f"{did_you_mean(key, (*_KEYS, *_OPTIONAL_KEYS))}; expected {_EXPECTED}",
            )
        missing = [k for k in _KEYS if k not in result]
        if missing:
            raise _error(
                dataset_id,
                f"the loader returned a mapping without {', '.join(map(repr, missing))}; "
                f"expected {_EXPECTED}",
            )
        return [result[k] for k in _KEYS], result.get("num_classes")
    if isinstance(result, tuple | list):
        if len(result) != len(_KEYS):
            raise _error(
                dataset_id,
                f"the loader returned a {type(result).__name__} of {len(result)} items; "
                f"expected {_EXPECTED}",
            )
        return list(result), None
    raise _error(dataset_id, f"the loader returned a {type(result).__name__}; expected {_EXPECTED}")


def _as_array(dataset_id: str, key: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:  # a ragged list, an object numpy cannot read
        raise _error(
            dataset_id, f"{key} cannot be read as a numpy array ({exception_text(exc)})"
        ) from None
    if array.dtype.kind not in "biuf":  # bool, signed, unsigned, float
        raise _error(
            dataset_id,
            f"{key} has dtype {array.dtype}; expected a numeric array "
            f"(got a {type(value).__name__})",
        )
    return array


def _features(dataset_id: str, key: str, x: np.ndarray) -> np.ndarray:
    if x.ndim < 2:
        raise _error(
            dataset_id,
            f"{key} has shape {x.shape}; expected (samples, *feature_shape), one row per "
            "sample (x.reshape(-1, 1) for a single feature)",
        )
    if 0 in x.shape[1:]:
        raise _error(dataset_id, f"{key} has shape {x.shape}: samples without features")
    return x


def _labels(dataset_id: str, key: str, y: np.ndarray, samples: int) -> np.ndarray:
    if y.ndim != 1:
        raise _error(
            dataset_id, f"{key} has shape {y.shape}; expected one label per sample, shape (n,)"
        )
    if y.shape[0] != samples:
        features = "x_" + key.removeprefix("y_")
        raise _error(
            dataset_id,
            f"{key} has {y.shape[0]:,} labels for the {samples:,} samples of {features}; "
            "they must match one to one",
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise _error(
            dataset_id,
            f"{key} has dtype {y.dtype}; labels must be integer class ids 0..C-1 "
            "(e.g. y.astype(np.int64))",
        )
    if y.size and int(y.min()) < 0:
        raise _error(
            dataset_id,
            f"{key} holds the label {int(y.min())}; labels must be class ids 0..C-1",
        )
    return np.array(y, dtype=np.int64, order="C")


def _num_classes(dataset_id: str, given: Any, largest: int) -> int:
    if given is None:
        return largest + 1
    if isinstance(given, bool) or not isinstance(given, int | np.integer) or given < 1:
        raise _error(
            dataset_id,
            f"num_classes={given!r} is invalid: expected a positive integer",
        )
    if largest >= given:
        raise _error(
            dataset_id,
            f"a label is {largest}, not below num_classes={int(given)}; labels must be "
            f"class ids 0..{int(given) - 1}",
        )
    return int(given)


def _flat_float32(dataset_id: str, key: str, x: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous ``(n, features)`` copy, refused if any value is not finite."""
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, as non-finite
        flat = np.array(x.reshape(x.shape[0], -1), dtype=np.float32, order="C")
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        first = int(np.argmin(finite))
        raise _error(
            dataset_id,
            f"{key} holds non-finite values (NaN or ±inf in float32, first in sample {first}); "
            "features must be finite",
        )
    return flat


def _error(dataset_id: str, what: str) -> UserDataError:
    return UserDataError(f"dataset '{shown(dataset_id, 200)}': {what}")
