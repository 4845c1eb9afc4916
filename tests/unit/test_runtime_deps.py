"""Where strato looks for the AWS SDKs it gives environments, and what it says when they are
missing."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from strato.config import Settings
from strato.sandbox.runtime_deps import RuntimeDeps, find_runtime_deps


def test_the_directory_is_configurable_and_defaults_below_the_prefix() -> None:
    assert Settings.from_environment({}).runtime_deps == Path(sys.prefix) / "strato-runtime-deps"
    assert Settings.from_environment({"STRATO_RUNTIME_DEPS": "/srv/deps"}).runtime_deps == \
        Path("/srv/deps")
    assert Settings.from_environment({"STRATO_RUNTIME_DEPS": "/srv/deps"},
                                     runtime_deps=Path("/x")).runtime_deps == Path("/x")


def test_installed_sdks_are_found_and_python_merged_into_the_runtime_dir(tmp_path: Path) -> None:
    (tmp_path / "python" / "boto3").mkdir(parents=True)
    (tmp_path / "nodejs" / "node_modules").mkdir(parents=True)
    found = find_runtime_deps(tmp_path)
    assert found == RuntimeDeps(python=str(tmp_path / "python"),
                                nodejs=str(tmp_path / "nodejs" / "node_modules"))
    assert found.trees == [str(tmp_path / "python")]  # Node.js environments show theirs


def test_a_missing_sdk_is_said_once_and_is_not_an_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "python").mkdir()
    with caplog.at_level(logging.WARNING):
        found = find_runtime_deps(tmp_path)
    assert found == RuntimeDeps(python=str(tmp_path / "python"))
    assert found.trees == [str(tmp_path / "python")]
    [record] = caplog.records
    assert "JavaScript" in record.getMessage() and "make runtime-deps" in record.getMessage()
    with caplog.at_level(logging.WARNING):
        assert find_runtime_deps(tmp_path / "nowhere") == RuntimeDeps()
    assert "boto3" in caplog.records[1].getMessage()
