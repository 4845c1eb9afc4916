"""strato's Java runtime client, built once from the Java sources shipped in the package.

The sources (``strato/runtimes/java``: the public ``com.amazonaws.services.lambda.runtime``
interfaces and strato's ``strato.runtime`` client, stdlib only) are compiled with ``--release
17`` by the oldest ``javac`` of Java 17 or later on the host, on first use, into
``<cache dir>/<hash of the sources>/``: ``strato-runtime.jar`` and the ``bootstrap`` script
that starts it. A JRE alone cannot compile: the host needs one JDK (``apt-get install
openjdk-17-jdk-headless``) until the jar exists; later sources get a new directory, so an
upgrade of strato rebuilds it and a data dir shared by two versions keeps both.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import zipfile
from pathlib import Path

from strato.errors import InterpreterNotFoundError, SandboxError
from strato.sandbox.jdks import JavaHomes

#: The Java sources in the package.
SOURCES = Path(__file__).resolve().parent.parent / "runtimes" / "java"
JAR_NAME = "strato-runtime.jar"
BOOTSTRAP_NAME = "bootstrap"
#: The oldest Java the client runs on (the oldest java runtime strato offers).
RELEASE = 17
#: A fixed time for the jar's entries: the same sources make the same bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def sources_digest(sources: Path) -> str:
    """A hash of every file under ``sources`` (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in sources.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(sources)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class JavaRuntimeClient:
    """The built runtime client of this strato. ``directory`` builds it on first call (once,
    under a lock) and returns where it is; every later call only checks the directory."""

    def __init__(self, cache_dir: Path, homes: JavaHomes, sources: Path = SOURCES) -> None:
        self._cache_dir = cache_dir
        self._homes = homes
        self._sources = sources
        self._lock = threading.Lock()
        self._built: str | None = None

    def directory(self) -> str:
        """The directory holding ``strato-runtime.jar`` and ``bootstrap``, readable by every
        user. Raises InterpreterNotFoundError (no javac: how to install one) or SandboxError
        (the compiler failed)."""
        if self._built is not None:
            return self._built
        with self._lock:
            if self._built is None:
                target = self._cache_dir / sources_digest(self._sources)
                if not (target / JAR_NAME).is_file():
                    self._build(target)
                self._built = str(target)
        return self._built

    def _build(self, target: Path) -> None:
        compiler = self._homes.compiler(RELEASE)
        if compiler is None:
            raise InterpreterNotFoundError(
                f"strato builds its Java runtime client once with a Java {RELEASE} or later "
                f"compiler (javac), and this host has none: install a JDK (for example "
                f"`apt-get install openjdk-{RELEASE}-jdk-headless`), then retry.")
        # The environments' users (the fallback tier reads the client at its host path) must
        # traverse to it: strato's own files are private (umask 077).
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._cache_dir.parent, 0o711)
        os.chmod(self._cache_dir, 0o711)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=self._cache_dir))
        try:
            classes = work / "classes"
            sources = sorted(str(p) for p in self._sources.rglob("*.java"))
            done = subprocess.run(
                [compiler[0], "--release", str(RELEASE), "-encoding", "UTF-8", "-nowarn",
                 "-d", str(classes), *sources],
                capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                raise SandboxError(f"compiling the Java runtime client failed: {done.stderr.strip()}")
            built = work / "built"
            built.mkdir()
            with zipfile.ZipFile(built / JAR_NAME, "w", zipfile.ZIP_DEFLATED) as jar:
                for path in sorted(p for p in classes.rglob("*.class")):
                    info = zipfile.ZipInfo(str(path.relative_to(classes)), _ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    jar.writestr(info, path.read_bytes())
            shutil.copyfile(self._sources / BOOTSTRAP_NAME, built / BOOTSTRAP_NAME)
            for path in built.iterdir():
                os.chmod(path, 0o644)
            os.chmod(built, 0o755)
            try:
                os.rename(built, target)
            except OSError:
                if not (target / JAR_NAME).is_file():  # not another process's build: a failure
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
