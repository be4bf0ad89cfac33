"""Import a callable by name, ``package.module:attr.path``, with one-line errors.

Your own dataset loader (:mod:`velocity.sim.userdata`) and your own model
(:mod:`velocity.sim.torch_models`) are named this way. The current working directory
is added to the end of ``sys.path`` first, so a module beside the experiment is
found; every failure is a :class:`ImportByNameError` whose text says what does not
resolve (the module, or an attribute with the close match and the callables there).
Callers prefix it with the id's field (``dataset 'x:y': ...``, ``model 'x:y': ...``).

May import: the standard library and ``velocity._inline``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from velocity._inline import did_you_mean, shown

__all__ = ["ImportByNameError", "exception_text", "resolve_callable"]


class ImportByNameError(ValueError):
    """A ``module:callable`` id that does not resolve to a callable (one line)."""


def resolve_callable(identifier: str, expected: str) -> Callable[..., Any]:
    """The callable ``identifier`` (``module:attr.path``) names.

    ``expected`` says what it should be, for the "not a callable" message (e.g. ``"a
    loader function load(*, seed, **dataset_params)"``).

    >>> resolve_callable("os.path:join", "a function")("a", "b")
    'a/b'
    >>> resolve_callable("os.path:jion", "a function")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    velocity.sim.importer.ImportByNameError: module 'os.path' has no attribute 'jion' (did you mean 'join'?); ...
    """  # noqa: E501
    module_name, _, attr_path = identifier.partition(":")
    obj: Any = _import(identifier, module_name)
    where = f"module '{module_name}'"
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_")]
            callables = sorted(n for n in names if callable(getattr(obj, n, None)))
            listed = f"; callables there: {', '.join(callables[:8])}" if callables else ""
            if len(callables) > 8:
                listed += ", …"
            raise ImportByNameError(
                f"{where} has no attribute '{part}'{did_you_mean(part, names)}{listed}"
            ) from None
        where = f"'{part}' in {where}"
    if not callable(obj):
        raise ImportByNameError(
            f"'{attr_path}' in module '{module_name}' is a {type(obj).__name__}, not a "
            f"callable; expected {expected}"
        )
    return obj  # type: ignore[no-any-return]


def exception_text(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 200 characters of message."""
    text = shown(" ".join(str(exc).split()), 200)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import(identifier: str, module_name: str) -> Any:
    """Import ``module_name`` with the current working directory on ``sys.path``."""
    cwd = os.getcwd()
    if not any(os.path.abspath(p or ".") == cwd for p in sys.path):
        sys.path.append(cwd)
    if module_name not in sys.modules:
        importlib.invalidate_caches()  # a module written since this process looked
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            stem = module_name.removesuffix(".py")
            hint = (
                f" (a module name, not a file name: '{stem}:{identifier.partition(':')[2]}')"
                if stem != module_name
                else ""
            )
            raise ImportByNameError(
                f"no module named '{missing}'{hint} (looked in the current directory {cwd} "
                "and sys.path); put the module in the directory you run velocity from, "
                "install it, or add its directory to PYTHONPATH"
            ) from None
        raise ImportByNameError(
            f"importing module '{module_name}' failed: {exception_text(exc)}"
        ) from None
    except Exception as exc:  # SyntaxError, an ImportError or anything its top level raises
        raise ImportByNameError(
            f"importing module '{module_name}' failed: {exception_text(exc)}"
        ) from None
