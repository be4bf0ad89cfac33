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

**ByzFL** (``bench/byzfl_kernels.py``: pre-aggregators and adaptive attacks) goes
into the same environment without its dependencies (``byzfl-requirements``; its
training framework's torchvision and seaborn are not needed), plus scipy
(``byzfl-kernel-deps``); :func:`load_byzfl` imports its kernels.

``python3 bench/_flower_env.py requirements`` prints the requirement lines;
:func:`load_flower_aggregate` imports Flower's aggregation functions or says why not.

**torch** (only ``bench/e2e_flower_cnn.py`` needs it there) is not downloaded a second
time: ``python3 bench/_flower_env.py link-torch`` (:func:`link_torch`) symlinks the
torch that ``make install`` put in ``.venv`` — the ``torch`` distribution and those
of its requirements that ``.bench-venv`` lacks, nothing else — into
``.bench-venv/venv-torch/`` and lists that folder in a ``.pth`` file, so it comes
last on ``sys.path``: every package ``.bench-venv`` has itself (numpy, Flower's pins)
still wins. Both environments come from the same ``python3``, so the compiled
wheels fit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: The folder of symlinks into ``.venv`` that :func:`link_torch` puts on ``.bench-venv``'s path.
TORCH_LINKS = "venv-torch"
_PTH = "velocity-venv-torch.pth"
# Run in .venv: torch's distribution and its installed requirements, each with the
# top-level entries of site-packages it owns.
_CLOSURE = r"""
import json, re, importlib.metadata as md
todo, seen, out = ["torch"], set(), {}
while todo:
    name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
    if name in seen:
        continue
    seen.add(name)
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    tops = {str(f).split("/")[0] for f in dist.files or () if not str(f).startswith("..")}
    out[name] = sorted(t for t in tops if t != "__pycache__")
    for req in dist.requires or ():
        if "extra ==" not in req:
            todo.append(re.match(r"[A-Za-z0-9._-]+", req).group(0))
import site
print(json.dumps({"site": site.getsitepackages()[0], "dists": out}))
"""
_INSTALLED = r"""
import json, sys, importlib.metadata as md
have = []
for name in json.loads(sys.argv[1]):
    try:
        md.distribution(name)
        have.append(name)
    except md.PackageNotFoundError:
        pass
import site
print(json.dumps({"site": site.getsitepackages()[0], "have": have}))
"""

#: The Flower release the benchmarks compare against (the issues' reference numbers),
#: with its simulation engine (Ray) for the end-to-end comparison.
FLOWER_REQUIREMENT = "flwr[simulation]==1.42.0"

#: The ByzFL release the pre-aggregator and adaptive-attack benchmarks compare against
#: (bench/byzfl_kernels.py). Installed without its dependencies (torchvision, seaborn,
#: matplotlib are only for its training framework): its kernels need numpy, scipy and
#: torch, the last linked from .venv (:func:`link_torch`).
BYZFL_REQUIREMENTS = ["byzfl==0.0.11"]
BYZFL_KERNEL_DEPS = ["scipy"]


def requirements() -> list[str]:
    """Flower plus velocity's runtime dependencies, read from pyproject.toml."""
    with open(REPO / "pyproject.toml", "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    return [FLOWER_REQUIREMENT, *deps]


def load_byzfl() -> tuple[tuple[ModuleType, ModuleType] | None, str]:
    """``((byzfl.aggregators, byzfl.attacks), "byzfl X.Y.Z")`` or ``(None, why not)``.

    ByzFL's package ``__init__`` imports its training framework (torchvision); the
    kernels live in ``byzfl.aggregators`` and ``byzfl.attacks``, which need only
    numpy, scipy and torch. The package is therefore registered without running its
    ``__init__`` and those two subpackages imported from it.
    """
    import importlib.machinery
    import importlib.metadata
    import importlib.util

    try:
        version = importlib.metadata.version("byzfl")
        spec = importlib.util.find_spec("byzfl")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("byzfl has no package directory")
        package = importlib.util.module_from_spec(
            importlib.machinery.ModuleSpec("byzfl", None, is_package=True)
        )
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules.setdefault("byzfl", package)
        import byzfl.aggregators as aggregators
        import byzfl.attacks as attacks
    except Exception as exc:  # not installed, or torch/scipy missing
        return None, (
            f"ByzFL not importable in {sys.executable} ({type(exc).__name__}: {exc}); "
            "run `make bench-byzfl`, which installs it into .bench-venv"
        )
    return (aggregators, attacks), f"byzfl {version}"


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


def _python_json(python: Path, script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", script, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"{python} could not list its packages:\n{done.stderr[-1500:]}")
    return json.loads(done.stdout)


def link_torch(source: Path = REPO / ".venv", target: Path = REPO / ".bench-venv") -> str:
    """Make ``source``'s torch importable in ``target`` without a download; its version.

    Symlinks torch's distribution and the requirements ``target`` lacks into
    ``target/venv-torch`` and appends that folder to ``target``'s path with a ``.pth``
    file (see the module docstring). Idempotent; exits with a message if ``source`` has
    no torch (``make install`` puts it there).
    """
    found = _python_json(source / "bin" / "python", _CLOSURE)
    dists: dict[str, list[str]] = found["dists"]
    if "torch" not in dists:
        sys.exit(f"{source} has no torch to share: run `make install` first")
    there = _python_json(target / "bin" / "python", _INSTALLED, json.dumps(sorted(dists)))
    links = target / TORCH_LINKS
    links.mkdir(exist_ok=True)
    for name, tops in dists.items():
        if name in there["have"]:
            continue  # .bench-venv's own copy stays the one imported
        for top in tops:
            link = links / top
            if not link.exists():
                link.symlink_to(Path(found["site"]) / top)
    (Path(there["site"]) / _PTH).write_text(f"{links.resolve()}\n")
    done = subprocess.run(
        [str(target / "bin" / "python"), "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"torch linked from {source} does not import in {target}:\n{done.stderr[-1500:]}")
    return done.stdout.strip()


if __name__ == "__main__":
    if sys.argv[1:] == ["requirements"]:
        print("\n".join(requirements()))
    elif sys.argv[1:] == ["link-torch"]:
        print(f"torch {link_torch()} from .venv linked into .bench-venv/{TORCH_LINKS}")
    elif sys.argv[1:] == ["byzfl-requirements"]:
        print("\n".join(BYZFL_REQUIREMENTS))
    elif sys.argv[1:] == ["byzfl-kernel-deps"]:
        print("\n".join(BYZFL_KERNEL_DEPS))
    else:
        sys.exit(
            "usage: python bench/_flower_env.py "
            "requirements | link-torch | byzfl-requirements | byzfl-kernel-deps"
        )
