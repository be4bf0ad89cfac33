"""manifest.json: what it records, and that a missing git or lock file never breaks it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from velocity.engine.manifest import capture_manifest


def test_manifest_records_host_versions_and_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "exp.toml"
    config.write_text("[[runs]]\nstrategy = 'FedAvg'\n")
    (tmp_path / "uv.lock").write_text("lock")
    monkeypatch.chdir(tmp_path)
    manifest = capture_manifest(["velocity", "sweep", "exp.toml"], config)
    json.dumps(manifest)  # serialisable as is
    assert manifest["command"] == ["velocity", "sweep", "exp.toml"]
    assert manifest["config"]["sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert manifest["lock_file"] == {
        "path": "uv.lock",
        "sha256": hashlib.sha256(b"lock").hexdigest(),
    }
    host = manifest["host"]
    assert host["cpu_count"] >= 1 and host["ram_bytes"] > 0 and host["os"]
    assert manifest["python"]["version"].count(".") == 2
    assert manifest["packages"]["velocity"] and manifest["packages"]["numpy"]
    assert set(manifest["packages"]) == {"velocity", "numpy", "pydantic", "mcp"}
    assert manifest["created_at"].endswith("+00:00")
    git = manifest["git"]
    if git is not None:  # the source checkout is a git repository
        assert len(git["commit"]) == 40 and isinstance(git["dirty"], bool)


def test_manifest_without_git_or_lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere
    monkeypatch.chdir(tmp_path)
    manifest = capture_manifest(["velocity"], None)
    assert manifest["git"] is None
    assert manifest["lock_file"] is None and manifest["config"] is None


def test_requirements_file_counts_as_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "requirements-dev.txt").write_text("numpy==2.0\n")
    monkeypatch.chdir(tmp_path)
    assert capture_manifest([], None)["lock_file"]["path"] == "requirements-dev.txt"
