"""Finding the host's Java installation (a JDK or JRE home) that runs each ``javaNN`` runtime.

Looked for, in order: an explicit setting (``STRATO_JAVA_21=/path/to/java-home``), the homes
under ``/usr/lib/jvm`` (Debian's and Adoptium's packages), ``JAVA_HOME``, and the ``java`` on
PATH (its home is two levels above the resolved executable). A home's major version comes from
its ``release`` file, else from asking its ``java -version``; only a home of exactly the
runtime's major version runs that runtime. Answers are cached for the life of the process.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from strato.sandbox.installations import Installations

_RELEASE_VERSION = re.compile(r'^JAVA_VERSION="([^"]+)"', re.MULTILINE)
_SPOKEN_VERSION = re.compile(r'version "([^"]+)"')
#: Where distributions install Java homes.
JVM_DIR = "/usr/lib/jvm"


def major_of(version: str) -> int | None:
    """``"17.0.15"`` → 17, ``"1.8.0_392"`` → 8, ``"25"`` → 25; None for anything else."""
    parts = re.findall(r"\d+", version)
    if not parts:
        return None
    first = int(parts[0])
    if first == 1 and len(parts) > 1:
        return int(parts[1])
    return first


def home_major(home: str) -> int | None:
    """The major version of the Java home ``home``, or None when it is not one."""
    java = Path(home, "bin", "java")
    if not os.access(java, os.X_OK):
        return None
    try:
        found = _RELEASE_VERSION.search(Path(home, "release").read_text(errors="replace"))
    except OSError:
        found = None
    if found is not None:
        return major_of(found.group(1))
    try:
        done = subprocess.run([str(java), "-version"], capture_output=True, text=True,
                              timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    spoken = _SPOKEN_VERSION.search(done.stderr)
    return major_of(spoken.group(1)) if spoken else None


def _candidates(major: int, explicit: Mapping[int, str], jvm_dir: str) -> list[str]:
    found: list[str] = []
    if major in explicit:
        found.append(explicit[major])
    found += sorted(glob.glob(f"{jvm_dir}/*/"), reverse=True)
    if os.environ.get("JAVA_HOME"):
        found.append(os.environ["JAVA_HOME"])
    on_path = shutil.which("java")
    if on_path:
        found.append(str(Path(os.path.realpath(on_path)).parent.parent))
    return [os.path.realpath(path) for path in found]


def _inspect(home: str, major: int) -> str | None:
    return home if home_major(home) == major else None


def _missing(major: int) -> str:
    return (f"strato found no Java {major} on this host to run the java{major} runtime. "
            f"Install one (for example `apt-get install openjdk-{major}-jre-headless`, or "
            f"Adoptium's temurin-{major}-jre), or set STRATO_JAVA_{major}=/path/to/java-home, "
            f"then restart strato.")


class JavaHomes(Installations[int, str]):
    """One Java home per major version (resolved), and the compiler that builds strato's
    Java runtime client."""

    def __init__(self, explicit: Mapping[int, str] | None = None, *,
                 jvm_dir: str = JVM_DIR) -> None:
        self._explicit = dict(explicit or {})
        self._jvm_dir = jvm_dir
        super().__init__(lambda major: _candidates(major, self._explicit, self._jvm_dir),
                         _inspect, _missing)

    def compiler(self, minimum: int) -> tuple[str, int] | None:
        """A ``javac`` of Java ``minimum`` or later and its major version (the oldest such
        found, so that what it compiles runs on every newer one), or None."""
        best: tuple[str, int] | None = None
        homes = [*self._explicit.values(), *glob.glob(f"{self._jvm_dir}/*/")]
        if os.environ.get("JAVA_HOME"):
            homes.append(os.environ["JAVA_HOME"])
        on_path = shutil.which("javac")
        if on_path:
            homes.append(str(Path(os.path.realpath(on_path)).parent.parent))
        for home in dict.fromkeys(os.path.realpath(h) for h in homes):
            javac = Path(home, "bin", "javac")
            major = home_major(home)
            if (os.access(javac, os.X_OK) and major is not None and major >= minimum
                    and (best is None or major < best[1])):
                best = (str(javac), major)
        return best
