"""How numbers read in every report (markdown, console, HTML, MCP sentences): one place.

Fractions are shown as percentages (``93.1%``) and differences of fractions as
percentage points (``3.4 pp``); ``–`` stands for a missing value; signs use a true
minus (``−0.4``).
"""

from __future__ import annotations

MINUS = "\u2212"


def num(x: float | None) -> str:
    """``0.3196`` (4 significant digits), ``–`` for None."""
    return "–" if x is None else f"{x:.4g}"


def signed(x: float, digits: str = ".3g") -> str:
    """``+0.012`` / ``−0.4`` (a true minus sign)."""
    text = format(abs(x), digits)
    return ("+" if x >= 0 else MINUS) + text


def seconds(x: float | None) -> str:
    """``0.94 s`` / ``12.3 s``, ``–`` for None."""
    if x is None:
        return "–"
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def pct(x: float | None, std: float | None = None) -> str:
    """``93.1%`` or ``93.1 ± 0.4%`` (fractions as percentages), ``–`` for None."""
    if x is None:
        return "–"
    return f"{100 * x:.1f}%" if std is None else f"{100 * x:.1f} ± {100 * std:.1f}%"


def pp(x: float) -> str:
    """``3.4 pp`` / ``−0.4 pp``: a difference of fractions in percentage points."""
    return f"{MINUS if x < 0 else ''}{abs(100 * x):.1f} pp"


def with_std(x: float | None, std: float | None) -> str:
    """``0.32 ± 0.02`` (or just the value without a std)."""
    return num(x) if std is None or x is None else f"{num(x)} ± {std:.2g}"


def cell_accuracy(accuracy: float | None, std: float | None, diverged: int, repeats: int) -> str:
    """``93.1 ± 0.4%``, ``diverged`` (every repeat) or ``61.2% (1/3 diverged)``."""
    if diverged and diverged == repeats:
        return "diverged"
    text = pct(accuracy, std)
    return f"{text} ({diverged}/{repeats} diverged)" if diverged else text
