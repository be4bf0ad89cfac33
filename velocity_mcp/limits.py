"""Host-protection limits: what one agent may ask of this machine.

Every limit has a command-line flag and an environment variable
(``--max-rounds`` / ``VELOCITY_MCP_MAX_ROUNDS``, ...). A refusal names the limit,
its value and how to raise it (:meth:`Limits.refusal`), so an agent can shrink its
request and a human knows what to configure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


def _default_parallel() -> int:
    return max(1, min(8, os.cpu_count() or 1))


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one ``sweep_run`` may start.

    Every limit is an integer >= 1; a value over a C long (2**63) is refused too.

    Attributes
    ----------
    max_runs : int (default: 64)
        Runs per sweep, after expansion (strategies × (1 + attacks) × repeats).
    max_rounds : int (default: 500)
        FL rounds per run.
    max_clients : int (default: 100)
        Clients per run.
    max_parallel : int (default: min(8, CPU count))
        Worker processes per sweep; also the default ``parallel``.
    max_concurrent_sweeps : int (default: 2)
        Sweeps running at the same time under the root, counted from the sweep
        directories' locks: every server process on the root and CLI sweeps included.
    max_samples : int (default: 1,000,000)
        ``dataset_params.n_samples`` (the synthetic dataset's size).
    max_features : int (default: 4,096)
        ``dataset_params.n_features``.
    max_dataset_values : int (default: 50,000,000)
        ``n_samples × n_features`` of a synthetic dataset (its float32 array: 200 MB at
        the default; each worker process of the sweep holds one).
    max_hidden : int (default: 4,096)
        ``model_params.hidden`` (the MLP's hidden units).
    """

    max_runs: int = 64
    max_rounds: int = 500
    max_clients: int = 100
    max_parallel: int = _default_parallel()
    max_concurrent_sweeps: int = 2
    max_samples: int = 1_000_000
    max_features: int = 4_096
    max_dataset_values: int = 50_000_000
    max_hidden: int = 4_096

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < 2**63:
                raise ValueError(f"limit {f.name} must be an integer in [1, 2**63), got {value!r}")

    @staticmethod
    def flag(name: str) -> str:
        """``max_rounds`` -> ``--max-rounds``."""
        return "--" + name.replace("_", "-")

    @staticmethod
    def env_var(name: str) -> str:
        """``max_rounds`` -> ``VELOCITY_MCP_MAX_ROUNDS``."""
        return "VELOCITY_MCP_" + name.upper()

    def refusal(self, name: str, asked: object, what: str) -> str:
        """The message for a request over limit ``name``: value, request and how to raise it."""
        value = getattr(self, name)
        return (
            f"limit {name}={value} exceeded: {what} is {asked}. Ask for at most {value}, "
            f"or have the server's operator raise it ({self.flag(name)} or "
            f"{self.env_var(name)})."
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, overridden by ``VELOCITY_MCP_MAX_*`` environment variables."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = environ.get(cls.env_var(f.name))
            if raw is None or not raw.strip():
                continue
            try:
                values[f.name] = int(raw)
            except ValueError:
                raise ValueError(
                    f"{cls.env_var(f.name)} must be an integer >= 1, got {raw!r}"
                ) from None
        return cls(**values)

    def as_dict(self) -> dict[str, int]:
        """The limits by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
