"""The search-path variables of each runtime family against environments recorded on AWS
(``aws_path_expectations.json``), and what an environment without a root of its own gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strato.sandbox.lambda_paths import EnvironmentLayout

_RECORDED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_path_expectations.json").read_text())["expectations"]
_PATH_VARIABLES = ("PATH", "LD_LIBRARY_PATH", "LAMBDA_RUNTIME_DIR", "PYTHONPATH", "NODE_PATH",
                   "CLASSPATH", "JAVA_HOME")
LAMBDA = EnvironmentLayout("/var/runtime", lang_dir="/var/lang", opt_dir="/opt")


def _recorded_environment(key: str) -> dict[str, str]:
    value = _RECORDED[key]["value"]
    environment: dict[str, str] = (value.get("environment")
                                   or value["Payload"]["environment"])
    return {name: environment[name] for name in _PATH_VARIABLES if name in environment}


@pytest.mark.parametrize(("runtime", "key"), [
    ("python3.14", "inv.environment"),
    ("nodejs18.x", "rt.nodejs18.x.introspection"),
    ("nodejs20.x", "rt.nodejs20.x.introspection"),
    ("nodejs22.x", "rt.nodejs22.x.introspection"),
    ("java17", "rt.java17.introspection"),
    ("provided.al2023", "rt.provided.al2023.introspection"),
])
def test_a_root_of_its_own_gets_lambdas_values(runtime: str, key: str) -> None:
    assert LAMBDA.variables(runtime, "/var/task") == _recorded_environment(key)


def test_without_a_root_the_runtime_and_sdks_are_host_paths_and_nothing_else_is() -> None:
    layout = EnvironmentLayout("/srv/strato/guest", python_sdk="/srv/deps/python",
                               node_modules="/srv/deps/nodejs/node_modules")
    python = layout.variables("python3.12", "/data/code/abc")
    assert python == {
        "PATH": "/usr/local/bin:/usr/bin/:/bin",
        "LD_LIBRARY_PATH": "/lib64:/usr/lib64:/data/code/abc:/data/code/abc/lib",
        "LAMBDA_RUNTIME_DIR": "/srv/strato/guest",
        "PYTHONPATH": "/srv/strato/guest:/srv/deps/python",
    }
    node = layout.variables("nodejs20.x", "/data/code/abc")
    assert node["NODE_PATH"] == ("/srv/deps/nodejs/node_modules:/srv/strato/guest:"
                                 "/data/code/abc")
    assert "PYTHONPATH" not in node
    assert set(layout.variables("provided.al2", "/c")) == {"PATH", "LD_LIBRARY_PATH",
                                                           "LAMBDA_RUNTIME_DIR"}
