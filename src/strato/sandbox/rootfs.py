"""The minimal root file system of an environment, as a plan the forked child carries out.

Only what runtimes need is bound in, read-only: the system's program and library
directories, a handful of files from ``/etc`` (TLS roots, resolver and loader
configuration, time zone), and any directory the operator lists; each zygote adds its
interpreter's prefix at ``/var/lang`` and strato's guest runtime at ``/var/runtime`` (with
the AWS SDKs merged in, ``runtime_deps.py``), as Lambda lays them out
(``guest/zygote.py``). Never the host's root as a whole: the data dir, the store, ``/root``,
``/home`` and other functions' code stay out of sight. The function's
code is at ``/var/task``; ``/tmp`` is a private tmpfs; ``/opt`` (layers) is empty.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from typing import Any

#: Where a namespaces-tier environment finds the runtime (with the SDKs merged in), the
#: interpreter and the layers, as on Lambda (``lambda_paths.py`` makes the search paths).
LAMBDA_RUNTIME_DIR = "/var/runtime"
LAMBDA_LANG_DIR = "/var/lang"
LAMBDA_OPT_DIR = "/opt"

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ENTRIES = (
    "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/crypto-policies",
    "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
    "/etc/localtime", "/etc/nsswitch.conf", "/etc/resolv.conf", "/etc/host.conf",
    "/etc/gai.conf", "/etc/protocols", "/etc/services", "/etc/mime.types",
)


def system_binds(extra: Iterable[str] = ()) -> tuple[list[list[str]], list[list[str]]]:
    """``(binds, symlinks)`` for the host's system directories and ``extra`` paths.

    A top-level system directory that is a symlink (``/bin -> usr/bin`` on merged-/usr
    systems) becomes the same symlink; ``/etc`` entries are bound at their resolved target
    so that a link into ``/run`` still works."""
    binds: list[list[str]] = []
    symlinks: list[list[str]] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            symlinks.append([path, os.readlink(path)])
        elif os.path.isdir(path):
            binds.append([path, path, "dir"])
    # Debian's Java packages keep their configuration (jvm.cfg, java.security, ...) under
    # /etc/java-<N>-openjdk, linked from inside the Java home: a Java runtime needs it.
    for path in (*ETC_ENTRIES, *sorted(glob.glob("/etc/java-*"))):
        real = os.path.realpath(path)
        if os.path.isdir(real):
            binds.append([real, path, "dir"])
        elif os.path.isfile(real):
            binds.append([real, path, "file"])
    for path in extra:
        real = os.path.realpath(path)
        if os.path.isdir(real):
            binds.append([real, os.path.abspath(path), "dir"])
        elif os.path.isfile(real):
            binds.append([real, os.path.abspath(path), "file"])
    return binds, symlinks


def root_plan(staging: str, task_root: str, tmp_mb: int, binds: list[list[str]],
              symlinks: list[list[str]], *, runtime_trees: list[str] | None = None,
              ) -> dict[str, Any]:
    """The ``root`` member of a namespaces-tier spawn request (see ``guest/confine.py``)."""
    return {**system_root_plan(staging, binds, symlinks, runtime_trees=runtime_trees),
            "task_root": task_root, "tmp_mb": tmp_mb}


def system_root_plan(staging: str, binds: list[list[str]], symlinks: list[list[str]], *,
                     runtime_trees: list[str] | None = None) -> dict[str, Any]:
    """The function-independent part of a root plan: the ``root`` of a prepare request.
    ``runtime_trees``: host directories whose contents the zygote merges into
    ``/var/runtime`` below its guest runtime (``runtime_deps.py``)."""
    return {"staging": staging, "binds": binds, "symlinks": symlinks,
            "runtime_trees": list(runtime_trees or ())}


def readable_paths(binds: list[list[str]]) -> list[str]:
    """What a fallback-tier environment may read: the host paths of the same binds."""
    paths = [source for source, _, _ in binds]
    paths += ["/proc", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
              "/etc/passwd", "/etc/group", "/etc/hosts"]
    return paths
