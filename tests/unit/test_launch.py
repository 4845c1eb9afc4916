"""Which process each runtime family starts (``sandbox.launch``)."""

from __future__ import annotations

import pytest

from strato.errors import InterpreterNotFoundError
from strato.sandbox.interpreters import InterpreterRegistry
from strato.sandbox.launch import Launch, Launchers


def test_python_runtimes_fork_the_built_in_runtime_of_their_version() -> None:
    launch = Launchers.builtin(shown=True).launch("python3.12", "/var/task")
    assert launch == Launch("3.12", None)


def test_custom_runtimes_exec_the_functions_bootstrap() -> None:
    launch = Launchers.builtin(shown=False).launch("provided.al2023", "/data/code/abc")
    assert launch == Launch(None, ("/data/code/abc/bootstrap",))


def test_a_missing_interpreter_is_refused_with_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("PATH", "PYENV_ROOT", "UV_PYTHON_INSTALL_DIR"):
        monkeypatch.setenv(variable, "/nonexistent")
    with pytest.raises(InterpreterNotFoundError, match="STRATO_PYTHON_3_10="):
        Launchers.builtin(InterpreterRegistry()).require("python3.10")


def test_runtimes_without_a_launcher_are_not_supported() -> None:
    launchers = Launchers.builtin()
    assert launchers.supports("python3.13")
    assert not launchers.supports("ruby3.3")
    with pytest.raises(KeyError):
        launchers.require("ruby3.3")
