"""The ``javaNN`` runtimes' launcher: the host's Java NN runs strato's Java runtime client.

The Java home is shown at ``/var/lang`` and the runtime client's directory at
``/var/runtime``, as Lambda lays them out; the client's ``bootstrap`` (a POSIX shell script)
starts ``java`` with the heap sized from the function's memory and the classpath Lambda gives
a function: the runtime client, then ``/var/task``, ``/var/task/lib/*`` and
``/opt/java/lib/*`` (layers). Without a root of the environment's own, the same paths are the
host's.
"""

from __future__ import annotations

from strato.domain.runtimes import java_major
from strato.sandbox.java_client import BOOTSTRAP_NAME, JavaRuntimeClient
from strato.sandbox.jdks import JavaHomes
from strato.sandbox.launch import LANG_DIR, RUNTIME_DIR, Launch

#: The shell that runs the client's bootstrap (every sandbox root binds the system's /bin).
SHELL = "/bin/sh"


class JavaLauncher:
    """A ``RuntimeLauncher`` of ``RuntimeFamily.JAVA``."""

    def __init__(self, homes: JavaHomes, client: JavaRuntimeClient) -> None:
        self._homes = homes
        self._client = client

    def _major(self, runtime: str) -> int:
        major = java_major(runtime)
        if major is None:
            raise KeyError(runtime)
        return major

    def require(self, runtime: str) -> None:
        """This host has a Java of ``runtime``'s major version and the runtime client is
        built (building it the first time: seconds, once per strato version)."""
        self._homes.require(self._major(runtime))
        self._client.directory()

    def launch(self, runtime: str, task_root: str, shown: bool) -> Launch:
        home = self._homes.require(self._major(runtime))
        client = self._client.directory()
        java_home, client_dir = (LANG_DIR, RUNTIME_DIR) if shown else (home, client)
        return Launch(None, (SHELL, f"{client_dir}/{BOOTSTRAP_NAME}", java_home, task_root,
                             client_dir),
                      views=((home, LANG_DIR), (client, RUNTIME_DIR)), runtime_dir=client_dir)
