"""report.html: self-contained, complete, rebuilt by ``velocity report``, shown by a browser.

One real sweep (a subprocess ``velocity sweep``, 2 strategies × (none + an attack in
rounds 2-3) × 2 repeats, one run made to fail by the test hook) is shared by the
module. Its reports are deleted and rebuilt with ``velocity report DIR``. Another
real sweep makes FedAvg diverge (Gaussian noise of σ = 1e37). The page must open
with the recommendation (title, reason, candidates), then the best strategy under
each attack, the pictures and only then every cell. The browser test opens the page
in headless Chromium (Debian's ``chromium``; ``make ci`` installs it where apt is
available) and skips, saying so, where it is missing.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from velocity.report.comparison import build_comparison
from velocity.report.html import render_html
from velocity.report.markdown import recommendation_title, winner_line
from velocity.report.plots import Plot
from velocity.report.render import render_all

pytest.importorskip("matplotlib", reason="the plots extra: pip install 'velocity-fl[plots]'")

FAILED_RUN = "FedAvg__r1"
DIVERGING = "gaussian_noise:sigma=1e37,count=1"
REPORTS = (
    "results.csv",
    "comparison.json",
    "comparison.md",
    "curves.png",
    "robustness.png",
    "plots.json",
    "report.html",
)


def table_rows(text: str, table_id: str) -> list[str]:
    """The ``<tr ...>`` start tags of one table of the page, header row first."""
    start = text.index(f'<table id="{table_id}">')
    return re.findall(r"<tr[^>]*>", text[start : text.index("</table>", start)])


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


class Page(HTMLParser):
    """Every start tag with its attributes, the text of <style> blocks and all text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real small sweep whose reports were deleted and rebuilt by ``velocity report``."""
    out = tmp_path_factory.mktemp("html") / "sweep"
    env = {**os.environ, "VELOCITY_TEST_RAISE_RUN": FAILED_RUN}
    done = subprocess.run(
        [
            sys.executable, "-m", "velocity", "sweep",
            "--strategies", "FedAvg,FedMedian",
            "--attacks", "gaussian_noise:sigma=10,fraction=0.2,start_round=2,end_round=3",
            "--rounds", "4", "--clients", "5", "--repeats", "2", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=240, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # exit 1: the hooked run failed
    for name in REPORTS:
        assert (out / name).is_file(), f"the sweep did not write {name}"
        (out / name).unlink()
    again = subprocess.run(
        [sys.executable, "-m", "velocity", "report", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Recommendation: "), again.stdout  # the verdict first
    assert (
        "\nWrote results.csv, curves.png, robustness.png, plots.json, report.html" in again.stdout
    )
    assert f"Report: {out / 'report.html'}" in again.stdout
    return out


def test_velocity_report_rewrites_every_file(sweep: Path) -> None:
    for name in REPORTS:
        assert (sweep / name).is_file(), name
    comparison = json.loads((sweep / "comparison.json").read_text())
    assert comparison["header"]["runs_done"] == 7
    assert comparison["failed"][0]["run"] == FAILED_RUN
    markdown = (sweep / "comparison.md").read_text()
    assert "![curves](curves.png)" in markdown and "![robustness](robustness.png)" in markdown


def test_report_html_references_nothing_external(sweep: Path) -> None:
    text = (sweep / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    tags = {name for name, _ in page.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed", "base", "frame", "audio"}
    assert not re.search(r"https?://", text), "a network address in report.html"
    assert "@import" not in text and "url(" not in "".join(page.styles)
    for name, attrs in page.tags:
        for attr in ("src", "href", "srcset", "poster", "data", "action"):
            value = attrs.get(attr)
            if value is not None:
                assert value.startswith(("data:", "#")), (name, attr, value[:80])
        assert not any(a.startswith("on") for a in attrs), f"event handler on <{name}>"
        assert "url(" not in (attrs.get("style") or "")
    images = page.all("img")
    assert len(images) == 2
    for image in images:
        src = image["src"] or ""
        assert src.startswith("data:image/png;base64,")
        width, height = png_size(base64.b64decode(src.split(",", 1)[1]))
        assert width > 200 and height > 200
    assert (sweep / "curves.png").read_bytes() == base64.b64decode(
        (images[0]["src"] or "").split(",", 1)[1]
    )


def test_report_html_shows_the_verdict(sweep: Path) -> None:
    comparison = json.loads((sweep / "comparison.json").read_text())
    manifest = json.loads((sweep / "manifest.json").read_text())
    html_text = (sweep / "report.html").read_text(encoding="utf-8")
    page = Page(html_text)
    text = " ".join(page.text)
    assert "Sweep report: sweep" in text
    assert "4 cells × 2 repeats" in text  # the header line
    rec = comparison["recommendation"]
    assert rec["strategy"] in ("FedAvg", "FedMedian")
    assert recommendation_title(rec).replace("**", "") in "".join(page.text)
    assert rec["reason"] in text
    assert winner_line(comparison) in text
    assert "Most robust" not in text and "Best under each attack" in text
    assert FAILED_RUN in text and "test hook" in text  # the failed run with its error
    assert manifest["git"] is None or manifest["git"]["commit"] in text
    assert manifest["python"]["version"] in text
    assert f"numpy {manifest['packages']['numpy']}" in text


def test_the_recommendation_comes_before_the_cells(sweep: Path) -> None:
    comparison = json.loads((sweep / "comparison.json").read_text())
    text = (sweep / "report.html").read_text(encoding="utf-8")
    order = ['id="verdict"', 'id="reason"', 'id="candidates"', 'id="by-attack"']
    order += ['id="curves"', 'id="robustness"', 'id="winner"', 'id="ranking"', 'id="failed"']
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    rec = comparison["recommendation"]
    candidates = table_rows(text, "candidates")
    assert len(candidates) == 1 + len(rec["candidates"])
    recommended = 1 + [c["strategy"] for c in rec["candidates"]].index(rec["strategy"])
    assert [i for i, tr in enumerate(candidates) if "recommended" in tr] == [recommended]
    assert len(table_rows(text, "by-attack")) == 1 + len(comparison["most_robust"]["by_attack"])
    assert len(table_rows(text, "ranking")) == 1 + len(comparison["ranking"])
    joined = "".join(Page(text).text)  # long names may wrap at <wbr>
    for row in comparison["ranking"]:
        assert row["run"] in joined and row["attack"] in joined
    for score in rec["candidates"]:  # each candidate's worst case and binding condition
        assert score["strategy"] in joined and score["binding"] in joined


def test_a_diverged_run_is_listed_and_marked(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = subprocess.run(
        [
            sys.executable, "-m", "velocity", "sweep", "--strategies", "FedAvg,FedMedian",
            "--attacks", DIVERGING, "--rounds", "3", "--clients", "5", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # a diverged run is a result
    comparison = json.loads((out / "comparison.json").read_text())
    assert [d["run"] for d in comparison["diverged"]] == [
        "FedAvg__gaussian_noise-sigma=1e+37-count=1"
    ]
    text = (out / "report.html").read_text(encoding="utf-8")
    page_text = "".join(Page(text).text)
    assert "Diverged runs (the strategy broke)" in page_text
    assert comparison["diverged"][0]["error"] in page_text
    assert comparison["recommendation"]["strategy"] == "FedMedian"
    rows = table_rows(text, "ranking")[1:]
    broken = [r for r, row in zip(rows, comparison["ranking"], strict=True) if row["diverged"]]
    assert len(broken) == 1 and "diverged" in broken[0]
    assert text.index('id="verdict"') < text.index('id="ranking"') < text.index('id="diverged"')
    assert text.count("data:image/png;base64,") == 2


def test_render_html_escapes_everything() -> None:
    comparison = build_comparison(Path("/nonexistent"))
    comparison["sweep_dir"] = "/x/<b>sweep</b>"
    comparison["recommendation"]["reason"] = "No recommendation: <em>nothing</em>."
    comparison["failed"] = [{"run": "r<1>", "error": "<script>alert('x')</script>"}]
    comparison["diverged"] = [{"run": "d<2>", "error": "<u>nan</u>"}]
    comparison["caveats"] = ["a & b <i>"]
    text = render_html(comparison, [], {"command": ["velocity", "<img src=x>"]})
    for tag in ("<script>", "<img", "<i>", "<em>", "<u>", "<b>"):
        assert tag not in text, tag
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "a &amp; b &lt;i&gt;" in text
    assert "No recommendation: &lt;em&gt;nothing&lt;/em&gt;." in text
    assert "No run finished: nothing to rank." in text
    assert "<strong>No recommendation.</strong>" in text


def test_render_html_escapes_strategy_names_in_the_tables(sweep: Path) -> None:
    comparison = json.loads((sweep / "comparison.json").read_text())
    rec = comparison["recommendation"]
    rec["candidates"][0]["strategy"] = "<b>Evil</b>"
    rec["strategy"] = "<b>Evil</b>"
    comparison["ranking"][0]["strategy"] = "<b>Evil</b>"
    text = render_html(comparison, [], None)
    assert "<b>" not in text
    assert "<strong>Recommendation: &lt;b&gt;Evil&lt;/b&gt;</strong>" in text


def test_old_sweep_without_manifest_or_status(sweep: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(sweep, old, ignore=shutil.ignore_patterns(*REPORTS, "manifest.json"))
    for name in ("status.json", "plan.json"):
        (old / name).unlink()
    rendered = render_all(old)
    assert rendered.notes == []
    text = (old / "report.html").read_text(encoding="utf-8")
    assert "No manifest.json in this sweep directory." in text
    assert text.count("data:image/png;base64,") == 2
    assert build_comparison(old)["winner"] == rendered.comparison["winner"]


def test_render_html_keeps_plot_order_and_titles() -> None:
    png = b"\x89PNG\r\n\x1a\n not drawn here"
    plots = [Plot("b.png", "Second <title>", png, {}), Plot("a.png", "First", png, {})]
    comparison = build_comparison(Path("/nonexistent"))
    text = render_html(comparison, plots, None)
    assert text.index('id="b"') < text.index('id="a"')
    assert "Second &lt;title&gt;" in text


# --------------------------------------------------------------------------- the browser

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "chromium is not installed, so report.html was not opened in a browser "
        "(`make ci` installs Debian's chromium with apt where it can: apt-get install chromium)"
    )


def _browse(chromium: str, tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_errors(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def test_report_html_in_headless_chromium(sweep: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    from matplotlib.image import imread

    url = (sweep / "report.html").resolve().as_uri()
    shot = tmp_path / "report.png"
    done = _browse(chromium, tmp_path, url, f"--screenshot={shot}", "--window-size=1200,1600")
    assert done.returncode == 0, done.stderr[-3000:]
    assert _console_errors(done.stderr) == []
    assert shot.is_file(), done.stderr[-3000:]
    pixels = imread(str(shot))[..., :3].mean(axis=2)  # grey levels in [0, 1]
    assert pixels.shape == (1600, 1200)
    assert pixels.std() > 0.05, "the screenshot is blank"
    assert (pixels < 0.9).mean() > 0.02, "the screenshot is almost all white"

    dom = _browse(chromium, tmp_path, url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert _console_errors(dom.stderr) == []
    assert '<table id="ranking">' in dom.stdout
    comparison = json.loads((sweep / "comparison.json").read_text())
    assert len(table_rows(dom.stdout, "ranking")) == 1 + len(comparison["ranking"])
    assert dom.stdout.index('id="verdict"') < dom.stdout.index('<table id="ranking">')
    assert dom.stdout.count('src="data:image/png;base64,') == 2
