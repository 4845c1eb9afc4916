"""How each runtime's first process starts in an environment, and whether this host can run it.

Three ways, one per ``RuntimeFamily`` kind:

- the built-in Python runtime, forked from the warm zygote of the runtime's interpreter;
- a custom runtime (``provided.*``): the function's own ``bootstrap`` executable;
- a language runtime strato ships (Node.js, Java): the host's installation of the language,
  shown at ``/var/lang``, runs strato's runtime client, shown at ``/var/runtime``, as Lambda
  lays them out. Where the sandbox builds no root of the environment's own, both are read at
  their host paths instead.

A ``RuntimeLauncher`` knows one family: where its host installation is, how to say what is
missing, and the command line. ``Launchers`` picks the launcher of a runtime identifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from strato.domain.runtimes import SUPPORTED, RuntimeFamily
from strato.sandbox.base import Standby
from strato.sandbox.interpreters import InterpreterRegistry

#: Where Lambda puts a language's installation and its runtime client.
LANG_DIR = "/var/lang"
RUNTIME_DIR = "/var/runtime"


@dataclass(frozen=True)
class Launch:
    """What ``EnvironmentSpec`` needs to start one runtime: the built-in Python runtime of
    ``python_version`` when ``argv`` is None, else ``argv`` exec'd (paths as the environment
    sees them), with ``views`` shown in its root (``EnvironmentSpec.views``) and its
    runtime directory at ``runtime_dir``."""

    python_version: str | None
    argv: tuple[str, ...] | None
    views: tuple[tuple[str, str], ...] = ()
    #: The runtime's directory as the environment sees it (``LAMBDA_RUNTIME_DIR``), when it
    #: is not the sandbox's own (the built-in runtime's): a language runtime's client.
    runtime_dir: str | None = None
    #: How the runtime boots ahead of its function (``EnvironmentSpec.standby``), or None.
    standby: Standby | None = None


class RuntimeLauncher(Protocol):
    """One runtime family's launcher."""

    def require(self, runtime: str) -> None:
        """Return if this host can run ``runtime``; else raise InterpreterNotFoundError
        saying how to install what is missing."""

    def launch(self, runtime: str, task_root: str, shown: bool) -> Launch:
        """How an environment of ``runtime`` starts, its code at ``task_root``; ``shown``
        says whether ``Launch.views`` appear at their paths inside (else argv must name the
        host paths). May raise InterpreterNotFoundError like ``require``."""


class PythonLauncher:
    """``python3.X``: the built-in runtime, forked from the zygote of the host's Python 3.X."""

    def __init__(self, interpreters: InterpreterRegistry) -> None:
        self._interpreters = interpreters

    def require(self, runtime: str) -> None:
        self._interpreters.require(runtime.removeprefix("python"))

    def launch(self, runtime: str, task_root: str, shown: bool) -> Launch:
        return Launch(runtime.removeprefix("python"), None)


class BootstrapLauncher:
    """``provided.*``: the function's ``bootstrap``, which every host can run."""

    def require(self, runtime: str) -> None:
        return None

    def launch(self, runtime: str, task_root: str, shown: bool) -> Launch:
        return Launch(None, (f"{task_root}/bootstrap",))


class Launchers:
    """The launcher of each runtime family, for a sandbox that shows views (``shown``) or
    not. ``require`` is what CreateFunction checks; ``launch`` is what the pool starts."""

    def __init__(self, by_family: Mapping[RuntimeFamily, RuntimeLauncher], *,
                 shown: bool) -> None:
        self._by_family = dict(by_family)
        self._shown = shown

    @classmethod
    def builtin(cls, interpreters: InterpreterRegistry | None = None, *,
                shown: bool = False) -> Launchers:
        """Launchers of the Python and custom runtimes only."""
        return cls({RuntimeFamily.PYTHON: PythonLauncher(interpreters or InterpreterRegistry()),
                    RuntimeFamily.PROVIDED: BootstrapLauncher()}, shown=shown)

    def _launcher(self, runtime: str) -> RuntimeLauncher:
        family = SUPPORTED.get(runtime)
        launcher = self._by_family.get(family) if family is not None else None
        if launcher is None:
            raise KeyError(runtime)
        return launcher

    def supports(self, runtime: str) -> bool:
        """Whether a launcher of ``runtime``'s family is wired in."""
        family = SUPPORTED.get(runtime)
        return family is not None and family in self._by_family

    def require(self, runtime: str) -> None:
        """Raise InterpreterNotFoundError when this host cannot run ``runtime`` (a runtime
        no launcher handles is the caller's to refuse first: KeyError)."""
        self._launcher(runtime).require(runtime)

    def launch(self, runtime: str, task_root: str) -> Launch:
        return self._launcher(runtime).launch(runtime, task_root, self._shown)
