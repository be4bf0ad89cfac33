"""The bench-only environment: Flower, kept out of velocity's own dependencies.

Flower (``flwr``) is never a dependency of velocity. The benchmarks that compare
against it run in a separate virtual environment, ``.bench-venv`` (gitignored),
which ``make bench-kernels`` creates with::

    python3 -m venv .bench-venv
    .bench-venv/bin/pip install $(python3 bench/_flower_env.py requirements)

i.e. the pinned Flower with its simulation engine (``flwr[simulation]``: Ray) plus
velocity's own runtime dependencies. velocity itself
is not installed there: the benchmarks put the repository root on ``sys.path``
and import the extension that ``make install`` built in the tree
(``velocity/_core.*.so``), which works because both environments come from the
same ``python3``.

``python3 bench/_flower_env.py requirements`` prints the requirement lines;
:func:`load_flower_aggregate` imports Flower's aggregation functions or says why not.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent

#: The Flower release the benchmarks compare against (the issues' reference numbers),
#: with its simulation engine (Ray) for the end-to-end comparison.
FLOWER_REQUIREMENT = "flwr[simulation]==1.42.0"


def requirements() -> list[str]:
    """Flower plus velocity's runtime dependencies, read from pyproject.toml."""
    with open(REPO / "pyproject.toml", "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    return [FLOWER_REQUIREMENT, *deps]


def use_repo_velocity() -> None:
    """Import velocity from this checkout (the extension built in place by ``make install``)."""
    root = str(REPO)
    if root not in sys.path:
        sys.path.insert(0, root)


def load_flower_aggregate() -> tuple[ModuleType | None, str]:
    """``(flwr.server.strategy.aggregate, "flwr X.Y.Z")``, or ``(None, why it is missing)``."""
    try:
        import flwr
        from flwr.server.strategy import aggregate
    except Exception as exc:  # ImportError, or a broken install of one of its deps
        return None, (
            f"Flower not importable in {sys.executable} ({type(exc).__name__}: {exc}); "
            "run `make bench-kernels`, which installs it into .bench-venv"
        )
    return aggregate, f"flwr {flwr.__version__}"


if __name__ == "__main__":
    if sys.argv[1:] == ["requirements"]:
        print("\n".join(requirements()))
    else:
        sys.exit("usage: python bench/_flower_env.py requirements")
