"""Finding the host interpreter that runs each ``python3.X`` runtime.

Looked for, in order: an explicit setting (``STRATO_PYTHON_3_12``), ``python3.X`` on PATH,
pyenv's versions (``$PYENV_ROOT/versions``), and uv's managed Pythons. Shims (pyenv's) are
resolved to the real executable by asking the interpreter for ``sys.executable``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from strato.errors import InterpreterNotFoundError


def _candidates(version: str, explicit: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    if version in explicit:
        found.append(explicit[version])
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    found += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    uv_dir = os.environ.get("UV_PYTHON_INSTALL_DIR", str(Path.home() / ".local/share/uv/python"))
    found += sorted(glob.glob(f"{uv_dir}/cpython-{version}.*/bin/python{version}"), reverse=True)
    return found


def _real_executable(candidate: str, version: str) -> str | None:
    """The interpreter's own path if it really is Python ``version``, else None."""
    try:
        out = subprocess.run(
            [candidate, "-E", "-s", "-S", "-c",
             "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    return out[1] if out[0] == version and out[1] else None


class InterpreterRegistry:
    """Resolves and caches one interpreter per Python version. Thread-safe enough: a race
    only resolves the same answer twice."""

    def __init__(self, explicit: Mapping[str, str] | None = None) -> None:
        self._explicit = dict(explicit or {})
        self._cache: dict[str, str | None] = {}

    def find(self, version: str) -> str | None:
        if version not in self._cache:
            self._cache[version] = next(
                (real for c in _candidates(version, self._explicit)
                 if (real := _real_executable(c, version))),
                None,
            )
        return self._cache[version]

    def require(self, version: str) -> str:
        """The interpreter for ``version``; InterpreterNotFoundError says how to provide one."""
        path = self.find(version)
        if path is None:
            raise InterpreterNotFoundError(
                f"strato found no Python {version} interpreter on this host to run the "
                f"python{version} runtime. Install one (for example `pyenv install {version}` "
                f"or `uv python install {version}`, or put python{version} on PATH), or set "
                f"STRATO_PYTHON_{version.replace('.', '_')}=/path/to/python{version}, then "
                f"restart strato."
            )
        return path
