"""A module-level server for ``mcp dev`` / ``mcp run`` (they look for a global ``server``).

    mcp dev velocity_mcp/dev.py --with-editable .

The root and limits come from the environment (``VELOCITY_MCP_ROOT``, default
``./out``; ``VELOCITY_MCP_MAX_*``). Clients normally start ``velocity-mcp`` instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from velocity_mcp.limits import Limits

with contextlib.redirect_stdout(sys.stderr):
    from velocity_mcp.server import build_server

    server = build_server(Path(os.environ.get("VELOCITY_MCP_ROOT", "out")), Limits.from_env())

if __name__ == "__main__":
    server.run("stdio")
