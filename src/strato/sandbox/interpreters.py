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

from strato.sandbox.installations import Installations


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


def _missing(version: str) -> str:
    return (f"strato found no Python {version} interpreter on this host to run the "
            f"python{version} runtime. Install one (for example `pyenv install {version}` "
            f"or `uv python install {version}`, or put python{version} on PATH), or set "
            f"STRATO_PYTHON_{version.replace('.', '_')}=/path/to/python{version}, then "
            f"restart strato.")


class InterpreterRegistry(Installations[str, str]):
    """One interpreter per Python version (``"3.12"``): its real executable."""

    def __init__(self, explicit: Mapping[str, str] | None = None) -> None:
        given = dict(explicit or {})
        super().__init__(lambda version: _candidates(version, given), _real_executable,
                         _missing)
