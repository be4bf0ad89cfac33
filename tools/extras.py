"""Print the requirements of pyproject.toml's optional extras, one per line.

``make install`` installs them with pip beside the editable extension, so that adding
the dev tools or torch never rebuilds the Rust extension::

    python tools/extras.py dev torch   # -> maturin>=1.9,<2  pytest>=8  ...  torch>=2.4,<3
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def extras_requirements(names: list[str]) -> list[str]:
    """The requirements of the extras ``names``, in order, without duplicates."""
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    unknown = [name for name in names if name not in extras]
    if unknown:
        raise SystemExit(f"tools/extras.py: unknown extra {unknown[0]!r}; valid: {sorted(extras)}")
    return list(dict.fromkeys(req for name in names for req in extras[name]))


if __name__ == "__main__":
    print("\n".join(extras_requirements(sys.argv[1:])))
