"""What a new user meets in the first hour: the ``strato`` command's errors, a service strato
does not offer, keys created from another directory, a taken port, the README's examples.

Every command here is the installed ``strato`` script (or the AWS CLI) run as a process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import CreateFunction, StratoServer, client_for, start_server, stop_server

STRATO = str(Path(sys.executable).parent / "strato")
ADMIN_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
             "AWS_DEFAULT_REGION": "us-east-1"}


def _run(*command: str, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AWS_", "STRATO_"))}
    environment.update(env or {})
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=cwd,
                          timeout=timeout, check=False)


def test_a_service_strato_does_not_offer_is_named(strato: StratoServer) -> None:
    """The AWS CLI's CloudWatch (JSON protocol, signed for ``monitoring``) and ElastiCache
    (query protocol) are told that strato does not offer them, not that their signature is
    wrong."""
    done = _run(sys.executable, "-m", "awscli", "--endpoint-url", strato.endpoint,
                "cloudwatch", "list-metrics", env=ADMIN_ENV)
    assert done.returncode != 0
    assert "UnsupportedOperationException" in done.stderr, done.stderr
    assert "does not offer the 'monitoring' service" in done.stderr, done.stderr
    assert "InvalidSignature" not in done.stderr
    with pytest.raises(ClientError) as caught:
        client_for(strato.endpoint, "elasticache").describe_cache_clusters()
    error = caught.value.response["Error"]
    assert "does not offer the 'elasticache' service" in error["Message"], error


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once it is closed


@pytest.mark.parametrize("command", [("logs", "hello"), ("events", "hello")])
def test_a_client_command_fails_in_one_line(strato: StratoServer, command: tuple[str, ...]) -> None:
    """No server at the endpoint, a key the server does not know, no key at all: one line on
    stderr that says what to do, never a traceback."""
    nowhere = _closed_port()
    for endpoint, env, expected in [
        (nowhere, ADMIN_ENV, "STRATO_ENDPOINT"),
        (strato.endpoint, {**ADMIN_ENV, "AWS_ACCESS_KEY_ID": "AKIANOSUCHKEY"},
         "UnrecognizedClientException"),
        (strato.endpoint, {}, "AWS_ACCESS_KEY_ID"),
    ]:
        done = _run(STRATO, *command, env={**env, "STRATO_ENDPOINT": endpoint,
                                           "HOME": "/nonexistent"})
        assert done.returncode == 1, done
        assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("strato: ") and expected in done.stderr, done.stderr


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(STRATO, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
                    "--egress", "none", "--log-level", "warning",
                    env={"STRATO_ADMIN_CREDENTIALS": "test:test"})
    assert done.returncode == 1, done
    assert done.stderr == (
        f"strato: 127.0.0.1:{port} is already in use (another strato or another server listens "
        "there): stop it, or choose another port with --port (`make run PORT=9001`)\n"), done.stderr


def test_credentials_create_finds_the_servers_data_dir_or_refuses(tmp_path: Path) -> None:
    """Run elsewhere, ``strato credentials create`` refuses in one line instead of making a data
    dir no server reads; run below the directory ``make run`` started in, it finds ``.strato``
    there, and the running server accepts the key it prints."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = _run(STRATO, "credentials", "create", "--name", "lost", cwd=elsewhere)
    assert refused.returncode == 2 and refused.stdout == "", refused
    assert refused.stderr.count("\n") == 1 and "--data-dir or STRATO_DATA_DIR" in refused.stderr
    assert list(elsewhere.iterdir()) == []

    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    server = start_server(project / ".strato")
    try:
        created = _run(STRATO, "credentials", "create", "--name", "found", cwd=project / "src")
        assert created.returncode == 0, created
        values = dict(line.split("=", 1) for line in created.stdout.splitlines())
        client = client_for(server.endpoint, access_key=values["AWS_ACCESS_KEY_ID"],
                            secret_key=values["AWS_SECRET_ACCESS_KEY"])
        deadline = time.monotonic() + 10  # the server reads the file again within about a second
        while True:
            try:
                assert client.list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200
                break
            except ClientError as error:
                assert error.response["Error"]["Code"] == "UnrecognizedClientException"
                assert time.monotonic() < deadline, "the server never accepted the key"
                time.sleep(0.1)  # polling for a condition, bounded
    finally:
        stop_server(server)


def test_strato_events_shows_a_finished_events_run_time_as_its_age(
    strato: StratoServer, create_function: CreateFunction, function_name: str
) -> None:
    """AGE of a finished event is its finish time minus its accept time: it covers the
    function's run (here over 1 s) and stops growing once the event is done."""
    create_function({"app.py": "import time\ndef handler(event, context):\n    time.sleep(1.2)\n"})
    client_for(strato.endpoint).invoke(FunctionName=function_name, InvocationType="Event",
                                       Payload=b"{}")
    env = {**ADMIN_ENV, "STRATO_ENDPOINT": strato.endpoint}
    deadline = time.monotonic() + 30
    while True:
        listed = _run(STRATO, "events", function_name, "--state", "succeeded", env=env)
        assert listed.returncode == 0, listed.stderr
        rows = listed.stdout.splitlines()[2:]
        if rows:
            break
        assert time.monotonic() < deadline, listed.stdout
        time.sleep(0.2)  # polling for a condition, bounded
    age = rows[0].split()[3]
    assert age.endswith("s") and 1.2 <= float(age[:-1]) < 10, rows
    again = _run(STRATO, "events", function_name, "--state", "succeeded", env=env)
    assert again.stdout.splitlines()[2].split()[3] == age
