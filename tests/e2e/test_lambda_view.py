"""What a function sees of the host: Lambda's layout, and nothing of the host's paths or name.

A function reports, from inside its environment, its mount table (``/proc/self/mountinfo``
and ``/proc/self/mounts``), its variables, the interpreter as it sees itself, and the host
name (``uname``, ``/proc/sys/kernel/hostname``). In the namespaces tier the mount table names
none of the host paths an attacker would want (the data dir, the code tree's hash, strato's
install path, the interpreter's prefix), the layout is Lambda's (code at ``/var/task``, the
interpreter at ``/var/lang``, the runtime at ``/var/runtime``), and the host name is not the
host's. The fallback tier has no root of its own: only its variables are checked there.

A server run from a copy of strato below ``/tmp`` (where the environment's own ``/tmp``
hides the host's) still gives its functions a runtime directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import strato
from tests.e2e.hostile import (
    TierServer,
    cmdline_of,
    create,
    interpreter_prefix,
    serve_tier,
    succeed,
    unique,
)

#: The host's name, before any server ran.
HOST_NAME = socket.gethostname()
LAMBDA_PATH = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
LAMBDA_LD_LIBRARY_PATH = ("/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
                          "/var/task:/var/task/lib:/opt/lib")

VIEWER = r'''
import os, socket, sys

def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as exc:
        return f"error: {exc}"

def handler(event, context):
    runtime_dir = os.environ.get("LAMBDA_RUNTIME_DIR", "")
    return {
        "mountinfo": read("/proc/self/mountinfo"),
        "mounts": read("/proc/self/mounts"),
        "environ": dict(os.environ),
        "nodename": os.uname().nodename,
        "hostname": read("/proc/sys/kernel/hostname").strip(),
        "domainname": read("/proc/sys/kernel/domainname").strip(),
        "gethostname": socket.gethostname(),
        "runtime_dir_exists": os.path.isdir(runtime_dir),
        "runtime_dir_listing": sorted(os.listdir(runtime_dir)) if os.path.isdir(runtime_dir) else [],
        "executable": sys.executable,
        "prefix": sys.prefix,
        "argv": sys.argv,
        "path": sys.path,
        "lang_python": os.path.exists("/var/lang/bin/" + os.path.basename(sys.executable)),
        "imported_late": __import__("encodings.cp1252").cp1252.__name__,
        "pwd": os.getcwd(),
    }
'''


@pytest.fixture(scope="module")
def namespaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier("namespaces", tmp_path_factory) as server:
        yield server


def _view(server: TierServer) -> tuple[dict[str, Any], str]:
    """A new function's report, and the hash of its code."""
    name = unique("viewer")
    package = create(server.client, name, {"app.py": VIEWER})
    report: dict[str, Any] = succeed(server.client, name)
    return report, hashlib.sha256(package).hexdigest()


def test_the_mount_table_names_no_host_path(namespaces: TierServer) -> None:
    report, sha = _view(namespaces)
    install = str(Path(strato.__file__).resolve().parent)
    secrets = {"data dir": str(namespaces.data_dir.resolve()), "install path": install,
               "interpreter prefix": interpreter_prefix(), "code hash": sha}
    for table in ("mountinfo", "mounts"):
        text = report[table]
        assert not text.startswith("error"), text
        for what, needle in secrets.items():
            assert needle not in text, (table, what, needle, text)
    targets = {line.split()[4] for line in report["mountinfo"].splitlines()}
    assert {"/var/task", "/var/lang", "/var/runtime", "/tmp", "/proc"} <= targets


def test_lambda_layout_and_variables(namespaces: TierServer) -> None:
    report, _ = _view(namespaces)
    environ = report["environ"]
    assert environ["PATH"] == LAMBDA_PATH
    assert environ["LD_LIBRARY_PATH"] == LAMBDA_LD_LIBRARY_PATH
    assert environ["LAMBDA_TASK_ROOT"] == "/var/task" == report["pwd"]
    assert environ["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert report["runtime_dir_exists"] and "lambda_runtime" in report["runtime_dir_listing"]
    assert report["executable"].startswith("/var/lang/bin/python3.11"), report["executable"]
    assert report["lang_python"] and report["prefix"] == "/var/lang"
    assert report["argv"] == ["/var/runtime/lambda_runtime/bootstrap.py"]
    prefix = interpreter_prefix()
    assert not [entry for entry in report["path"] if entry.startswith(prefix)], report["path"]
    assert report["imported_late"] == "encodings.cp1252"  # the stdlib still imports


def test_the_host_name_is_not_the_hosts(namespaces: TierServer) -> None:
    report, _ = _view(namespaces)
    host = os.uname()
    assert report["nodename"] == report["hostname"] == report["gethostname"] == "localhost"
    assert report["nodename"] != host.nodename
    assert report["domainname"] == "(none)"


def test_the_fallback_tier_gets_no_host_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    with serve_tier("fallback", tmp_path_factory) as server:
        report, _ = _view(server)
    environ = report["environ"]
    assert environ["PATH"] == "/usr/local/bin:/usr/bin/:/bin"
    task = environ["LAMBDA_TASK_ROOT"]
    assert environ["LD_LIBRARY_PATH"] == f"/lib64:/usr/lib64:{task}:{task}/lib"
    assert report["runtime_dir_exists"]


def test_a_runtime_installed_below_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """strato run from a copy below /tmp: its environments' /tmp hides the copy, and the
    runtime directory is still there (at /var/runtime)."""
    copy = Path(f"/tmp/strato-view-{unique('copy')}")
    shutil.copytree(Path(strato.__file__).resolve().parent, copy / "strato",
                    ignore=shutil.ignore_patterns("__pycache__"))
    try:
        os.chmod(copy, 0o755)
        with serve_tier("namespaces", tmp_path_factory,
                        env={"PYTHONPATH": str(copy)}) as server:
            report, _ = _view(server)
            zygotes = server.host.zygotes()
            assert zygotes and all(str(copy) in " ".join(cmdline_of(z)) for z in zygotes)
        assert report["environ"]["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
        assert report["runtime_dir_exists"] and "lambda_runtime" in report["runtime_dir_listing"]
        assert str(copy) not in report["mountinfo"]
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def test_the_host_keeps_its_name(namespaces: TierServer) -> None:
    """Control: naming environments never renamed the host."""
    _view(namespaces)
    assert socket.gethostname() == os.uname().nodename == HOST_NAME
