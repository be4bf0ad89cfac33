"""sweep_compare(include_heatmap=true): the robustness heatmap as MCP image content.

One real sweep (a ``velocity sweep`` subprocess under the server's root) is compared
in-process through ``mcp.Client(build_server(...))``, with and without the image,
with its robustness.png deleted (drawn on the fly) and with matplotlib hidden (the
verdict still comes, with a caveat saying why there is no image).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from velocity_mcp.limits import Limits
from velocity_mcp.server import build_server

pytest.importorskip("matplotlib", reason="the plots extra: pip install 'velocity-fl[plots]'")

pytestmark = pytest.mark.anyio

SWEEP_ID = "heatmap-sweep"
LIMITS = Limits(max_runs=12, max_rounds=50, max_clients=20, max_parallel=2, max_concurrent_sweeps=1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def made_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp-images")
    done = subprocess.run(
        [
            sys.executable, "-m", "velocity", "sweep",
            "--strategies", "FedAvg,FedMedian", "--attacks", "gaussian_noise:sigma=10",
            "--rounds", "3", "--clients", "5", "--out", str(root / SWEEP_ID),
        ],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def root(made_root: Path, tmp_path: Path) -> Path:
    """A private copy of the sweep's root, so tests may delete files."""
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(made_root, copy)
    return copy


@pytest.fixture
async def client(root: Path) -> AsyncIterator[Client]:
    server = build_server(root, LIMITS)
    try:
        async with Client(server) as c:
            yield c
    finally:
        server.service.launcher.kill_all()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


async def compare(client: Client, **args: Any) -> tuple[dict[str, Any], list[bytes], list[Any]]:
    """(structured verdict, PNG bytes of each image block, all content blocks)."""
    result = await client.call_tool("sweep_compare", {"sweep_id": SWEEP_ID, **args})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    images = []
    for block in result.content:
        if block.type == "image":
            assert block.mime_type == "image/png"
            images.append(base64.b64decode(block.data))
    return result.structured_content, images, list(result.content)


async def test_schema_offers_the_heatmap_and_keeps_the_output_schema(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    tool = tools["sweep_compare"]
    prop = tool.input_schema["properties"]["include_heatmap"]
    assert prop["type"] == "boolean" and prop["default"] is False
    assert "heatmap" in prop["description"]
    assert tool.input_schema.get("required") == ["sweep_id"]
    assert tool.output_schema is not None
    props = tool.output_schema["properties"]
    assert {"recommendation", "ranking", "by_attack", "caveats"} <= set(props)
    assert next(iter(props)) == "recommendation"


async def test_default_is_the_verdict_alone(client: Client, root: Path) -> None:
    verdict, images, content = await compare(client)
    assert images == []
    assert [block.type for block in content] == ["text"]
    assert verdict["sweep_id"] == SWEEP_ID and verdict["recommendation"]["strategy"] is not None


async def test_heatmap_comes_beside_the_same_verdict(client: Client, root: Path) -> None:
    plain, _, _ = await compare(client)
    verdict, images, content = await compare(client, include_heatmap=True)
    assert [block.type for block in content] == ["text", "image"]
    assert len(images) == 1
    assert images[0] == (root / SWEEP_ID / "robustness.png").read_bytes()
    width, height = png_size(images[0])
    assert width > 200 and height > 200
    assert verdict == plain


async def test_heatmap_drawn_when_the_sweep_has_no_png(client: Client, root: Path) -> None:
    (root / SWEEP_ID / "robustness.png").unlink()
    verdict, images, _ = await compare(client, include_heatmap=True)
    assert len(images) == 1
    width, height = png_size(images[0])
    assert width > 200 and height > 200
    assert not any("heatmap" in c for c in verdict["caveats"])
    assert not (root / SWEEP_ID / "robustness.png").exists()  # compare writes nothing


async def test_without_matplotlib_the_verdict_says_why(
    client: Client, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / SWEEP_ID / "robustness.png").unlink()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    verdict, images, _ = await compare(client, include_heatmap=True)
    assert images == []
    assert verdict["recommendation"]["strategy"] is not None
    assert verdict["caveats"][-1] == (
        "heatmap not included: matplotlib is not installed on the server "
        "(pip install 'velocity-fl[plots]')"
    )
