"""One Byzantine count for a sweep: ``--byzantine X`` (``[shared] byzantine``, MCP ``byzantine``).

X says how many of the federation's clients are Byzantine, once, and velocity sets
both sides from it:

* **the attacks** choose their Byzantine clients among *all* N clients, fixed for the
  run by the seed. An attack that gives neither ``fraction`` nor ``count`` gets
  ``fraction = X`` (X a fraction) or ``count = X`` (X a count).
* **the rules** see one round: the n = ``clients_per_round`` clients sampled in it.
  Each rule's tolerance parameter that is not given explicitly (Krum's f, the
  trimmed mean's β = f/n, ...) is set to the *expected* number of Byzantine clients
  in a round,

  .. math:: f = \\operatorname{round}(X \\cdot n) \\quad\\text{(a fraction)}, \\qquad
            f = \\operatorname{round}(X \\cdot n / N) \\quad\\text{(a count)},

  rounding halves up. With every client in every round (``fraction_fit = 1``, n = N)
  both give the attack's own count; with sampling, a round may hold more than f
  Byzantine clients, which the comparison's caveats report.

X is either a fraction in (0, 1) (a float: ``0.2``) or a count, an integer from 1
to N − 1 (``2``; ByzFL's convention is a count f). ``1.0`` is neither: as a fraction
it is not below 1, and a count is written as an integer. Booleans and non-finite
values are refused.
"""

from __future__ import annotations

import math
from typing import Any

#: The largest count accepted (the most clients a run may have).
MAX_COUNT = 100_000

#: What the setting is, for messages: its name in [shared] and on the command line.
WHERE = "byzantine"


def check_byzantine(value: Any) -> Any:
    """``value`` if it is a fraction in (0, 1) or an integer count >= 1; else ValueError.

    A ``BeforeValidator``: ``None`` (unset) passes through.

    >>> check_byzantine(0.2), check_byzantine(2)
    (0.2, 2)
    >>> check_byzantine(1.0)
    Traceback (most recent call last):
        ...
    ValueError: byzantine = 1.0 is not a fraction in (0, 1); a count is an integer (write 1)
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"{WHERE} must be a fraction of the clients in (0, 1) or an integer count >= 1, "
            f"got {value!r}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{WHERE} = {value} is not a finite number; give a fraction in (0, 1)")
    if isinstance(value, int):
        if not 1 <= value <= MAX_COUNT:
            raise ValueError(
                f"{WHERE} = {value}: a count of Byzantine clients is an integer in "
                f"[1, {MAX_COUNT}] (or give a fraction in (0, 1))"
            )
        return value
    if not 0 < value < 1:
        hint = (
            f"; a count is an integer (write {int(value)})"
            if value >= 1 and value.is_integer()
            else f" or an integer count in [1, {MAX_COUNT}]"
        )
        raise ValueError(f"{WHERE} = {value} is not a fraction in (0, 1){hint}")
    return value


def _round(x: float) -> int:
    """Round halves up, as the Rust core rounds a fraction of the clients."""
    return math.floor(x + 0.5)


def check_against_clients(byzantine: int | float, clients: int) -> None:
    """Refuse an X that leaves no Byzantine client, or no honest one, among ``clients``."""
    count = federation_count(byzantine, clients)
    if isinstance(byzantine, float) and count < 1:
        raise ValueError(
            f"{WHERE} = {byzantine} of {clients} clients is {byzantine * clients:.3g} clients, "
            f"which rounds to none; give at least {0.5 / clients:.3g} or a count (1)"
        )
    if count >= clients:
        raise ValueError(
            f"{WHERE} = {byzantine} makes {count} of {clients} clients Byzantine: no honest "
            f"client is left; allowed: at most {clients - 1} (or a fraction below "
            f"{(clients - 0.5) / clients:.3g})"
        )


def federation_count(byzantine: int | float, clients: int) -> int:
    """Byzantine clients among the federation's ``clients``: the count, or round(X · N)."""
    return byzantine if isinstance(byzantine, int) else _round(byzantine * clients)


def per_round(byzantine: int | float, clients: int, clients_per_round: int) -> int:
    """The rules' f: the expected Byzantine clients among the ``clients_per_round`` sampled.

    >>> per_round(0.2, 10, 10), per_round(0.2, 100, 10), per_round(3, 30, 10)
    (2, 2, 1)
    """
    if isinstance(byzantine, int):
        return _round(byzantine * clients_per_round / clients)
    return _round(byzantine * clients_per_round)


def per_round_formula(byzantine: int | float, clients: int, clients_per_round: int) -> str:
    """How :func:`per_round` got its f, for messages: ``round(0.5 × 8 clients per round) = 4``."""
    f = per_round(byzantine, clients, clients_per_round)
    if isinstance(byzantine, int):
        return (
            f"round({byzantine} Byzantine of {clients} clients × {clients_per_round} per round)"
            f" = {f}"
        )
    return f"round({byzantine} × {clients_per_round} clients per round) = {f}"


def from_text(text: str) -> int | float:
    """X as written on a command line: an integer spells a count (``2``), anything
    else is read as a fraction (``0.2``); ValueError when it is no number.

    >>> from_text("2"), from_text("0.2")
    (2, 0.2)
    """
    stripped = text.strip()
    return int(stripped) if stripped.lstrip("+-").isdigit() else float(stripped)


def attack_share(byzantine: int | float) -> dict[str, Any]:
    """The parameters an attack without its own share gets: ``fraction`` or ``count``."""
    return {"count": byzantine} if isinstance(byzantine, int) else {"fraction": byzantine}
