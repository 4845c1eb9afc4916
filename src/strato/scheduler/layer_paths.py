"""Where an execution environment finds its version's layers, and the paths that name them.

Lambda extracts a function's layers into ``/opt`` and lists their conventional directories in
the environment's search paths ("Layer paths for each Lambda runtime",
https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html): ``/opt/bin`` on
``PATH``, ``/opt/lib`` on ``LD_LIBRARY_PATH``, ``/opt/python`` and
``/opt/python/lib/python3.X/site-packages`` on Python's path, ``/opt/nodejs/node_modules``
on ``NODE_PATH``.

strato merges a version's layers into one tree on the host (``CodeStore.merged``). Where the
sandbox builds a root of the environment's own, that tree is shown at ``/opt``
(``EnvironmentSpec.views``). Where it does not (the fallback tier), no ``/opt`` can exist: the
environment reads the tree at its host path, and the same search-path entries name the host
path in place of ``/opt`` (Landlock lets the environment read it, as it does its code).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from strato.domain.models import CodeRef, FunctionVersion

#: Where Lambda puts a function's layers.
OPT = "/opt"


class LayerPlacement:
    """The layers of a version as an environment sees them. ``merged`` builds (or finds) the
    merged tree of packages; ``shown`` says whether the sandbox shows views at their paths.
    Called on the loop's thread: the function service builds the tree when the version is
    settled, so that here it is only looked up."""

    def __init__(self, merged: Callable[[Sequence[CodeRef]], Path], *, shown: bool) -> None:
        self._merged = merged
        self._shown = shown

    def host_dir(self, version: FunctionVersion) -> str | None:
        """The merged tree of ``version``'s layers on the host; None without layers."""
        if not version.layers:
            return None
        return str(self._merged([layer.code for layer in version.layers]))

    def views(self, version: FunctionVersion) -> tuple[tuple[str, str], ...]:
        """``EnvironmentSpec.views`` entries for the layers: the tree at ``/opt``."""
        host = self.host_dir(version)
        return () if host is None else ((host, OPT),)

    def seen_at(self, version: FunctionVersion) -> str | None:
        """Where the environment finds the layers: ``/opt``, or the host path where the
        sandbox shows no views; None without layers."""
        host = self.host_dir(version)
        if host is None:
            return None
        return OPT if self._shown else host


def layer_variables(variables: Mapping[str, str], opt: str, runtime: str) -> dict[str, str]:
    """The search-path variables of ``variables`` with the layer directories under ``opt``
    appended where missing (entries already there stay where they are, so Lambda's own
    ``/opt`` entries are not repeated)."""
    wanted = {"PATH": [f"{opt}/bin"], "LD_LIBRARY_PATH": [f"{opt}/lib"]}
    if runtime.startswith("python"):
        wanted["PYTHONPATH"] = [f"{opt}/python/lib/{runtime}/site-packages", f"{opt}/python"]
    if runtime.startswith("nodejs"):
        wanted["NODE_PATH"] = [f"{opt}/nodejs/node_modules"]
    changed: dict[str, str] = {}
    for name, entries in wanted.items():
        current = [e for e in variables.get(name, "").split(os.pathsep) if e]
        missing = [e for e in entries if e not in current]
        if missing:
            changed[name] = os.pathsep.join(current + missing)
    return changed
