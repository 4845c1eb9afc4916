"""End-to-end fixtures: a real ``strato serve`` process, driven by boto3 and the AWS CLI.

The server is started once per test session on a free port with its own data dir; readiness
is its banner line on stdout (no sleeping). Each test names its functions uniquely. Servers
authenticate with SigV4 and know the administrator key pair ``test``/``test``
(``STRATO_ADMIN_CREDENTIALS``), which every client here signs with.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import make_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
ADMIN_KEY_PAIR = "test:test"


@dataclass
class StratoServer:
    endpoint: str
    data_dir: Path
    process: subprocess.Popen[str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None,
    admin: str | None = ADMIN_KEY_PAIR, stderr: IO[str] | None = None,
) -> StratoServer:
    """Start ``strato serve`` and wait for its banner. ``admin`` is the administrator key pair
    it is given (None: none, so that it generates one on a fresh data dir); ``stderr`` is
    where its stderr goes (inherited by default)."""
    port = _free_port()
    # Internet egress (a bridge and firewall per server) only where a test asks for it, with
    # its own bridge name: several servers run at once here.
    environment = {**os.environ, "STRATO_EGRESS": "none", **(env or {})}
    environment.pop("STRATO_ADMIN_CREDENTIALS", None)
    if admin is not None:
        environment["STRATO_ADMIN_CREDENTIALS"] = admin
    process = subprocess.Popen(
        [sys.executable, "-m", "strato.cli.main", "serve", "--port", str(port),
         "--data-dir", str(data_dir), "--log-level", "warning", *extra],
        stdout=subprocess.PIPE, stderr=stderr, text=True, env=environment,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    if not re.search(r"listening on http://", banner):
        process.kill()
        raise RuntimeError(f"strato did not start: {banner!r}")
    return StratoServer(f"http://127.0.0.1:{port}", data_dir, process)


def stop_server(server: StratoServer) -> None:
    if server.process.stdout is not None:
        server.process.stdout.close()
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def strato(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    server = start_server(tmp_path_factory.mktemp("strato-data"), "--keep-alive", "60")
    yield server
    stop_server(server)


def client_for(
    endpoint: str, service: str = "lambda", *, access_key: str = "test", secret_key: str = "test",
    **config: Any,
) -> Any:
    """A boto3 client of ``endpoint``, signing with the administrator key pair by default."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1}, read_timeout=120, **config),
    )


@pytest.fixture(scope="session")
def lambda_client(strato: StratoServer) -> Any:
    """boto3's Lambda client without its own parameter checks: strato must do them."""
    return client_for(strato.endpoint, parameter_validation=False)


@pytest.fixture
def function_name(request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^a-zA-Z0-9-_]", "-", request.node.name)[:40]
    return f"{base}-{uuid.uuid4().hex[:8]}"


CreateFunction = Callable[..., dict[str, Any]]


@pytest.fixture
def create_function(lambda_client: Any, function_name: str) -> Iterator[CreateFunction]:
    """Create a function from source files and wait until it is Active."""
    created: list[str] = []

    def create(files: dict[str, str | bytes] | None = None, *, name: str | None = None,
               handler: str = "app.handler", runtime: str = "python3.11",
               modes: dict[str, int] | None = None, **kwargs: Any) -> dict[str, Any]:
        name = name or function_name
        package = make_zip(files or {"app.py": "def handler(event, context):\n    return event\n"},
                           modes=modes)
        response = lambda_client.create_function(
            FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
            Code={"ZipFile": package}, **kwargs,
        )
        created.append(name)
        lambda_client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        return dict(response)

    yield create
    for name in created:
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=name)
