"""``python -m velocity``: the same as the ``velocity`` command.

A Ctrl-C while the program is still starting (importing numpy, pydantic and the
Rust core takes a noticeable fraction of a second) ends it quietly, as one
``velocity: error: interrupted`` line and status 130, like a Ctrl-C later on: the
handler installed here covers the imports, and ``velocity.cli.main`` takes over
once its own ``try`` is in place. Nothing heavy is imported before it.
"""

import os
import sys

try:  # the C module: importing ``signal`` builds its enums first, a window of its own
    import _signal as signal
except ImportError:  # pragma: no cover - other interpreters
    import signal  # type: ignore[no-redef]


def _interrupted(signum: int, frame: object) -> None:
    """SIGINT before the command's own handling is in place: one line, status 130."""
    try:
        os.write(2, b"velocity: error: interrupted\n")
    finally:
        os._exit(130)


_interrupted.velocity_startup = True  # type: ignore[attr-defined]  # cli.main replaces it


def install_startup_interrupt_handler() -> None:
    """Make a Ctrl-C during start-up quiet (main thread only; a no-op elsewhere)."""
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # not the main thread of the main interpreter
        pass


def main() -> int:
    """The ``velocity`` command, safe against a Ctrl-C while it imports."""
    install_startup_interrupt_handler()
    from velocity.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
