"""Runtimes: every python3.X with an interpreter on the host, custom runtimes through a
``bootstrap`` (shell), and AWS's own awslambdaric run unchanged as a custom runtime."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from strato.sandbox.interpreters import InterpreterRegistry
from tests.e2e.conftest import CreateFunction

_INTERPRETERS = InterpreterRegistry()


def _invoke(client: Any, name: str, payload: Any) -> tuple[dict[str, Any], Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    return response, json.loads(response["Payload"].read())


@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13"])
def test_python_runtimes_run_on_their_own_interpreter(
    lambda_client: Any, create_function: CreateFunction, function_name: str, version: str
) -> None:
    if _INTERPRETERS.find(version) is None:
        pytest.skip(f"no Python {version} on this host")
    create_function({"app.py": (
        "import sys\ndef handler(event, context):\n"
        "    return '%d.%d' % sys.version_info[:2]\n")}, runtime=f"python{version}")
    assert _invoke(lambda_client, function_name, {})[1] == version


SHELL_BOOTSTRAP = """#!/bin/sh
set -eu
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  id=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | tr -d '\\r' | cut -d' ' -f2)
  echo "handling $id"
  curl -sS -X POST "$api/invocation/$id/response" \\
    -d "{\\"echo\\": $event, \\"handler\\": \\"$_HANDLER\\", \\"execution_env\\": \\"${AWS_EXECUTION_ENV:-unset}\\"}" >/dev/null
done
"""


def test_provided_runtime_runs_a_shell_bootstrap(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    create_function({"bootstrap": SHELL_BOOTSTRAP}, modes={"bootstrap": 0o755},
                    runtime="provided.al2023", handler="function.handler")
    response, payload = _invoke(lambda_client, function_name, {"x": 1})
    # AWS sets no AWS_EXECUTION_ENV for an OS-only runtime (recorded rt.provided.al2023.introspection).
    assert payload == {"echo": {"x": 1}, "handler": "function.handler", "execution_env": "unset"}
    assert "FunctionError" not in response


def test_awslambdaric_runs_unchanged_as_a_custom_runtime(
    lambda_client: Any, create_function: CreateFunction, function_name: str, tmp_path: Path
) -> None:
    """AWS's own runtime interface client, installed into the package like a user would."""
    target = tmp_path / "package"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         "awslambdaric", "simplejson"],
        check=True,
    )
    files: dict[str, str | bytes] = {
        str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()
    }
    files["app.py"] = (
        "def handler(event, context):\n"
        "    return {'got': event, 'fn': context.function_name, 'ms': context.get_remaining_time_in_millis() > 0}\n"
    )
    files["bootstrap"] = (
        f"#!/bin/sh\ncd \"$LAMBDA_TASK_ROOT\"\n"
        f"export PYTHONPATH=\"$LAMBDA_TASK_ROOT\"\n"
        f"exec {Path(sys.executable).resolve()} -m awslambdaric \"$_HANDLER\"\n"
    )
    modes = {"bootstrap": 0o755}
    create_function(files, runtime="provided.al2023", handler="app.handler", modes=modes)
    response, payload = _invoke(lambda_client, function_name, {"hello": "ric"})
    assert payload == {"got": {"hello": "ric"}, "fn": function_name, "ms": True}
    failing = create_function(
        {**files, "app.py": "def handler(event, context):\n    raise KeyError('boom')\n"},
        name=function_name + "-err", runtime="provided.al2023", handler="app.handler", modes=modes)
    response, payload = _invoke(lambda_client, failing["FunctionName"], {})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "KeyError"
