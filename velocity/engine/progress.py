"""Live progress of runs: a rich display on a terminal, plain lines otherwise.

Plain lines keep logs (and sweeps started detached by the MCP server) readable:
one line when a run starts, a line every quarter of its rounds, one when it ends.
Every method may be called from any thread.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    """What the sweep and ``velocity run`` report as runs advance."""

    def run_started(self, name: str, rounds: int) -> None: ...
    def run_round(self, name: str, rnd: int, rounds: int) -> None: ...
    def run_finished(self, name: str, state: str, detail: str) -> None: ...
    def add_runs(self, count: int) -> None: ...
    def close(self) -> None: ...


def make_progress(
    total: int, *, enabled: bool = True, done: int = 0, stream: TextIO | None = None
) -> Progress:
    """A rich display when ``stream`` (stdout) is a terminal, plain lines otherwise."""
    stream = stream or sys.stdout
    if not enabled:
        return _Silent()
    if stream.isatty():
        try:
            return _Rich(total, done, stream)
        except Exception:
            pass
    return _Plain(total, done, stream)


def describe(summary: dict[str, Any] | None) -> str:
    """``loss 0.312  acc 93.1%  1.2s`` for a finished run's summary (a diverged one says where)."""
    if not summary:
        return ""
    if summary.get("status") == "diverged":
        return f"{summary.get('error') or 'diverged'}  {summary.get('elapsed_s') or 0:.1f}s"
    parts = []
    if summary.get("final_loss") is not None:
        parts.append(f"loss {summary['final_loss']:.4g}")
    if summary.get("final_accuracy") is not None:
        parts.append(f"acc {100 * summary['final_accuracy']:.1f}%")
    if summary.get("elapsed_s") is not None:
        parts.append(f"{summary['elapsed_s']:.1f}s")
    return "  ".join(parts)


class _Silent:
    def run_started(self, name: str, rounds: int) -> None:
        pass

    def run_round(self, name: str, rnd: int, rounds: int) -> None:
        pass

    def run_finished(self, name: str, state: str, detail: str) -> None:
        pass

    def add_runs(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Plain:
    """One line per event, flushed, so a log file shows progress as it happens."""

    def __init__(self, total: int, done: int, stream: TextIO) -> None:
        self._total, self._done, self._stream = total, done, stream
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            print(f"[{self._done}/{self._total}] {text}", file=self._stream, flush=True)

    def run_started(self, name: str, rounds: int) -> None:
        self._line(f"start {name} ({rounds} rounds)")

    def run_round(self, name: str, rnd: int, rounds: int) -> None:
        step = max(1, rounds // 4)
        if rnd % step == 0 and rnd < rounds:
            self._line(f"{name} round {rnd}/{rounds}")

    def run_finished(self, name: str, state: str, detail: str) -> None:
        with self._lock:
            self._done += 1
        self._line(f"{state} {name}" + (f"  {detail}" if detail else ""))

    def add_runs(self, count: int) -> None:
        with self._lock:
            self._total += count

    def close(self) -> None:
        pass


class _Rich:
    """An overall bar (runs done) plus one bar per running run (its current round)."""

    def __init__(self, total: int, done: int, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._console = Console(file=stream)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._total = total
        self._overall = (
            self._progress.add_task("runs", total=total, completed=done) if total > 1 else None
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._started = False

    def _start(self) -> None:
        # Started at the first event, not before: a sweep forks its workers first, and
        # forking is only safe while the parent has a single thread.
        if not self._started:
            self._started = True
            self._progress.start()

    def run_started(self, name: str, rounds: int) -> None:
        with self._lock:
            self._start()
            if name not in self._tasks:
                from rich.markup import escape

                self._tasks[name] = self._progress.add_task(f"  {escape(name)}", total=rounds)

    def run_round(self, name: str, rnd: int, rounds: int) -> None:
        self.run_started(name, rounds)
        self._progress.update(self._tasks[name], completed=rnd, total=rounds)

    def run_finished(self, name: str, state: str, detail: str) -> None:
        from rich.markup import escape

        with self._lock:
            self._start()
            task = self._tasks.pop(name, None)
        if task is not None:
            self._progress.remove_task(task)
        mark = {
            "done": "[green]done[/]",
            "diverged": "[yellow]diverged[/]",
            "failed": "[red]FAILED[/]",
        }.get(state, escape(state))
        text = f"{mark} {escape(name)}" + (f"  {escape(detail)}" if detail else "")
        self._progress.console.print(text, markup=True, highlight=False)
        if self._overall is not None:
            self._progress.advance(self._overall)

    def add_runs(self, count: int) -> None:
        with self._lock:
            if self._overall is None:
                self._overall = self._progress.add_task("runs", total=self._total + count)
            else:
                self._progress.update(self._overall, total=self._total + count)
            self._total += count

    def close(self) -> None:
        if self._started:
            self._progress.stop()
