"""The AWS SDK a Python function imports without bundling it, and the search paths every
environment gets, read from inside real functions in both sandbox tiers.

boto3 is strato's pinned copy (``make runtime-deps``), found through the runtime directory
after the function's own code: a function that bundles a boto3 of its own imports that one.
``PATH``, ``LD_LIBRARY_PATH`` and ``PYTHONPATH`` are Lambda's values in the namespaces tier
(recorded on AWS: ``tests/unit/aws_path_expectations.json``); in the fallback tier, which has
no root of its own, they name the host's system directories, the function's code and strato's
runtime and SDK, and nothing of the environment strato was started with (pyenv's shims, a
virtualenv's ``bin``, ``~/.cargo/bin``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.sandbox.interpreters import InterpreterRegistry
from tests.conftest import make_zip
from tests.e2e.conftest import ROLE
from tests.e2e.hostile import TierServer, serve_tier, succeed, unique

LAMBDA_PATH = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
LAMBDA_LD_LIBRARY_PATH = ("/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
                          "/var/task:/var/task/lib:/opt/lib")
#: Where ``make runtime-deps`` puts the SDK for the servers these tests start (they run on
#: this interpreter, whose prefix is the default's).
SDK_DIR = Path(sys.prefix) / "strato-runtime-deps" / "python"
#: The runtime each tier's functions use: the fallback tier's must be an interpreter other
#: users can reach, which ``serve_tier`` finds for python3.11.
RUNTIMES = {"namespaces": "python3.12", "fallback": "python3.11"}

REPORTER = '''
import os, sys

def handler(event, context):
    import boto3, botocore
    return {"boto3": boto3.__version__, "boto3_file": boto3.__file__,
            "botocore": botocore.__version__,
            "service": boto3.client("s3", region_name="us-east-1").meta.service_model.service_name,
            "environ": dict(os.environ), "path": sys.path}
'''
BUNDLED = 'def handler(event, context):\n    import boto3\n    return boto3.__version__\n'
#: A custom runtime's view: a bootstrap that hands its environment back as the result.
PROVIDED_BOOTSTRAP = '''#!/bin/sh
exec /usr/bin/python3 -S -c '
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
with urllib.request.urlopen(api + "next") as answer:
    request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
body = json.dumps(dict(os.environ)).encode()
urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", body)).read()
'
'''


def _pinned_version() -> str:
    """The boto3 version ``make runtime-deps`` installed (a missing install fails in CI)."""
    found = sorted(SDK_DIR.glob("boto3-*.dist-info"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"no boto3 in {SDK_DIR}: `make runtime-deps` did not run")
        pytest.skip(f"no boto3 in {SDK_DIR} (`make runtime-deps` installs it)")
    return found[0].name.removeprefix("boto3-").removesuffix(".dist-info")


@pytest.fixture(scope="module", params=list(RUNTIMES))
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    version = RUNTIMES[request.param].removeprefix("python")
    if InterpreterRegistry().find(version) is None:
        pytest.skip(f"no Python {version} on this host")
    with serve_tier(request.param, tmp_path_factory) as tier_server:
        yield tier_server


def _function(server: TierServer, files: dict[str, str], *, runtime: str | None = None,
              handler: str = "app.handler") -> str:
    name = unique("sdk")
    executable = {"bootstrap": 0o755} if "bootstrap" in files else None
    server.client.create_function(
        FunctionName=name, Runtime=runtime or RUNTIMES[server.tier], Role=ROLE,
        Handler=handler, Code={"ZipFile": make_zip(files, modes=executable)},
        # Importing boto3 takes a fraction of a CPU second, CPU is in proportion to memory.
        MemorySize=2048, Timeout=60)
    server.client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


def _report(server: TierServer) -> dict[str, Any]:
    report: dict[str, Any] = succeed(server.client, _function(server, {"app.py": REPORTER}))
    return report


def test_boto3_imports_without_bundling_and_is_the_pinned_version(server: TierServer) -> None:
    version = _pinned_version()
    report = _report(server)
    assert report["boto3"] == report["botocore"] == version
    assert report["service"] == "s3"  # botocore's data files load too
    if server.tier == "namespaces":
        assert report["boto3_file"] == "/var/runtime/boto3/__init__.py"
    else:
        assert report["boto3_file"] == str(SDK_DIR.resolve() / "boto3" / "__init__.py")


def test_a_bundled_boto3_wins_over_the_runtimes(server: TierServer) -> None:
    _pinned_version()
    name = _function(server, {"app.py": BUNDLED,
                              "boto3/__init__.py": '__version__ = "0.0.1-bundled"\n'})
    assert succeed(server.client, name) == "0.0.1-bundled"


def test_python_search_paths_are_lambdas(server: TierServer) -> None:
    report = _report(server)
    environ, path = report["environ"], report["path"]
    minor = RUNTIMES[server.tier].removeprefix("python")
    if server.tier == "namespaces":
        assert environ["PATH"] == LAMBDA_PATH
        assert environ["LD_LIBRARY_PATH"] == LAMBDA_LD_LIBRARY_PATH
        assert environ["PYTHONPATH"] == "/var/runtime"
        assert path[:4] == ["/var/task", f"/opt/python/lib/python{minor}/site-packages",
                            "/opt/python", "/var/runtime"]
    else:
        task, runtime_dir = environ["LAMBDA_TASK_ROOT"], environ["LAMBDA_RUNTIME_DIR"]
        assert environ["PATH"] == "/usr/local/bin:/usr/bin/:/bin"
        assert environ["LD_LIBRARY_PATH"] == f"/lib64:/usr/lib64:{task}:{task}/lib"
        assert environ["PYTHONPATH"] == f"{runtime_dir}:{SDK_DIR.resolve()}"
        assert path[:5] == [task, f"/opt/python/lib/python{minor}/site-packages",
                            "/opt/python", runtime_dir, str(SDK_DIR.resolve())]
    assert "NODE_PATH" not in environ
    _no_entry_of_strato_s_own_environment(environ)


def test_a_custom_runtime_gets_lambdas_paths(server: TierServer) -> None:
    if not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("the reporting bootstrap runs /usr/bin/python3, which this host lacks")
    name = _function(server, {"bootstrap": PROVIDED_BOOTSTRAP}, runtime="provided.al2023",
                     handler="function.handler")
    environ: dict[str, str] = succeed(server.client, name)
    if server.tier == "namespaces":
        assert environ["PATH"] == LAMBDA_PATH
        assert environ["LD_LIBRARY_PATH"] == LAMBDA_LD_LIBRARY_PATH
    else:
        task = environ["LAMBDA_TASK_ROOT"]
        assert environ["PATH"] == "/usr/local/bin:/usr/bin/:/bin"
        assert environ["LD_LIBRARY_PATH"] == f"/lib64:/usr/lib64:{task}:{task}/lib"
    assert "PYTHONPATH" not in environ and "NODE_PATH" not in environ
    _no_entry_of_strato_s_own_environment(environ)


def _no_entry_of_strato_s_own_environment(environ: dict[str, str]) -> None:
    """``PATH`` and ``LD_LIBRARY_PATH`` name no directory of the PATH this test (and so the
    server, which inherits it) runs with other than the system's, nothing below this
    interpreter's prefix (a virtualenv, pyenv) and nothing below the home directory.
    (``PYTHONPATH`` is checked whole above.)"""
    system = {"/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/sbin"}
    own = {os.path.normpath(p) for p in os.environ.get("PATH", "").split(":") if p} - system
    own |= {sys.prefix, sys.base_prefix, str(Path.home())}
    for variable in ("PATH", "LD_LIBRARY_PATH"):
        for entry in filter(None, environ.get(variable, "").split(":")):
            entry = os.path.normpath(entry)
            assert not [p for p in own if entry == p or entry.startswith(p + "/")], \
                (variable, entry)
