"""Finding interpreters for python3.X runtimes, and the message when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.errors import InterpreterNotFoundError
from strato.sandbox.interpreters import InterpreterRegistry


def test_a_missing_interpreter_says_how_to_provide_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "uv"))
    registry = InterpreterRegistry({"3.12": str(tmp_path / "nothing-here")})
    with pytest.raises(InterpreterNotFoundError) as missing:
        registry.require("3.12")
    text = str(missing.value)
    assert "pyenv install 3.12" in text and "STRATO_PYTHON_3_12" in text


def test_an_explicit_interpreter_of_the_wrong_version_is_not_taken(tmp_path: Path) -> None:
    import sys

    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    registry = InterpreterRegistry({"3.99": sys.executable})
    assert registry.find("3.99") is None
    assert InterpreterRegistry({running: sys.executable}).find(running) is not None
