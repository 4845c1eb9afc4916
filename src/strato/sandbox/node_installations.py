"""Finding the host's ``node`` that runs each ``nodejs<major>.x`` runtime.

Looked for, in order: an explicit setting (``STRATO_NODE_20=/path/to/node``), ``node`` and
``nodejs`` on PATH, and nvm's installations (``$NVM_DIR/versions/node/v20.*``, newest first).
A candidate counts only if it says it is that major version (``process.versions.node``);
the answer is the real executable (symlinks resolved) and the installation's prefix, the
directory shown at ``/var/lang`` as Lambda lays a runtime out.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from strato.sandbox.installations import Installations


@dataclass(frozen=True)
class NodeInstallation:
    """One node: ``executable`` (real path) inside ``prefix`` (its ``bin``'s parent, or its
    own directory when it is not in a ``bin``), and its full version (``20.11.1``)."""

    executable: str
    prefix: str
    version: str

    @property
    def relative_executable(self) -> str:
        """The executable's path below ``prefix``."""
        return os.path.relpath(self.executable, self.prefix)


def _candidates(major: str, explicit: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    if major in explicit:
        found.append(explicit[major])
    found += [path for name in ("node", "nodejs") if (path := shutil.which(name))]
    nvm_dir = os.environ.get("NVM_DIR", str(Path.home() / ".nvm"))
    # Newest first: v20.9 sorts before v20.10 as text, so compare the numbers.
    nvm = glob.glob(f"{nvm_dir}/versions/node/v{major}.*/bin/node")
    found += sorted(nvm, key=lambda p: [int(x) if x.isdigit() else 0 for x in
                                        Path(p).parent.parent.name[1:].split(".")], reverse=True)
    return found


def _inspect(candidate: str, major: str) -> NodeInstallation | None:
    """``candidate`` as an installation if it runs and is node ``major``, else None."""
    try:
        version = subprocess.run(
            [candidate, "-e", "process.stdout.write(process.versions.node)"],
            capture_output=True, text=True, timeout=20, check=True,
            env={"PATH": os.environ.get("PATH", "")},
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if version.split(".")[0] != major:
        return None
    real = os.path.realpath(candidate)
    directory = os.path.dirname(real)
    prefix = os.path.dirname(directory) if os.path.basename(directory) == "bin" else directory
    return NodeInstallation(real, prefix, version)


def _missing(major: str) -> str:
    return (f"strato found no Node.js {major} on this host to run the nodejs{major}.x "
            f"runtime. Install it (for example `nvm install {major}`, or the nodejs "
            f"package of your distribution if its version is {major}, or put node "
            f"{major} on PATH), or set STRATO_NODE_{major}=/path/to/node, then restart "
            f"strato.")


class NodeRegistry(Installations[str, NodeInstallation]):
    """One installation per node major version (``"20"``)."""

    def __init__(self, explicit: Mapping[str, str] | None = None) -> None:
        given = dict(explicit or {})
        super().__init__(lambda major: _candidates(major, given), _inspect, _missing)
