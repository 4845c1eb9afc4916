"""Secret environment variables through a real server: the function sees them, GetFunction
shows them, and neither a file of the data dir, nor a file any strato process holds open, nor
the command line of any strato process (server, zygote, execution environment) has them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction, StratoServer, client_for, start_server, stop_server

SHOW_SECRET = {"app.py": "import os\n\ndef handler(event, context):\n    return os.environ.get('DB_PASSWORD')\n"}


def _secret() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


def _invoke(client: Any, name: str) -> Any:
    response = client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response
    return json.loads(response["Payload"].read())


def _parent_of(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return int(text.rpartition(")")[2].split()[1])  # the name, in parentheses, may hold spaces


def _descendants(root: int) -> list[int]:
    parents = {pid: _parent_of(pid) for pid in (int(p) for p in os.listdir("/proc") if p.isdigit())}
    found: list[int] = []
    frontier = [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _open_regular_files(pid: int) -> Iterator[Path]:
    """The regular files ``pid`` has open, deleted ones included (read through /proc).
    Namespace handles (the zygote keeps one of its own pid namespace) read as regular files
    but hold no data: they are left out."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return
    for fd in fds:
        path = Path(f"/proc/{pid}/fd/{fd}")
        try:
            if stat.S_ISREG(path.stat().st_mode) and not os.readlink(path).startswith(
                    ("pid:[", "net:[", "mnt:[")):
                yield path
        except OSError:
            continue


def _files_holding(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and not p.is_symlink()
            and needle in p.read_bytes()]


def _assert_no_process_or_file_leaks(server: StratoServer, secret: str) -> None:
    needle = secret.encode()
    processes = _descendants(server.process.pid)
    zygotes = [pid for pid in processes
               if _parent_of(pid) == server.process.pid and b"zygote.py" in _cmdline(pid)]
    environments = [pid for zygote in zygotes for pid in _descendants(zygote)]
    assert zygotes and environments, "a zygote and a warm environment are running"
    for pid in [server.process.pid, *processes]:
        assert needle not in _cmdline(pid), f"process {pid} has the secret in its argv"
        for path in _open_regular_files(pid):
            with path.open("rb") as file:
                assert needle not in file.read(), f"{path} ({os.readlink(path)}) holds the secret"
    assert _files_holding(server.data_dir, needle) == []


def test_a_secret_variable_reaches_the_function_and_nothing_else(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    secret = _secret()
    create_function(SHOW_SECRET, Environment={"Variables": {"DB_PASSWORD": secret}})
    assert _invoke(lambda_client, function_name) == secret
    configuration = lambda_client.get_function_configuration(FunctionName=function_name)
    assert configuration["Environment"]["Variables"] == {"DB_PASSWORD": secret}
    state = (strato.data_dir / "state.db").read_bytes()
    assert len(state) > 0 and secret.encode() not in state
    _assert_no_process_or_file_leaks(strato, secret)


def test_an_updated_secret_replaces_the_old_one_everywhere(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    old, new = _secret(), _secret()
    create_function(SHOW_SECRET, Environment={"Variables": {"DB_PASSWORD": old}})
    lambda_client.update_function_configuration(
        FunctionName=function_name, Environment={"Variables": {"DB_PASSWORD": new}})
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert _invoke(lambda_client, function_name) == new
    _assert_no_process_or_file_leaks(strato, new)
    assert _files_holding(strato.data_dir, old.encode()) == []


def test_secrets_survive_a_restart_under_a_private_master_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    secret, name = _secret(), f"secret-restart-{uuid.uuid4().hex[:8]}"
    server = start_server(data, "--keep-alive", "60")
    client = client_for(server.endpoint)
    try:
        client.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                               Handler="app.handler", Code={"ZipFile": make_zip(SHOW_SECRET)},
                               Environment={"Variables": {"DB_PASSWORD": secret}})
        client.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        assert _invoke(client, name) == secret
        _assert_no_process_or_file_leaks(server, secret)
    finally:
        client.close()  # its pooled connection would outlive the server
        stop_server(server)
    key = data / "master.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    assert _files_holding(data, secret.encode()) == []

    server = start_server(data, "--keep-alive", "60")
    client = client_for(server.endpoint)
    try:
        configuration = client.get_function_configuration(FunctionName=name)
        assert configuration["Environment"]["Variables"] == {"DB_PASSWORD": secret}
        assert _invoke(client, name) == secret
    finally:
        client.close()
        stop_server(server)


@pytest.mark.parametrize("problem", ["world-readable", "truncated"])
def test_a_server_refuses_a_bad_master_key(tmp_path: Path, problem: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = data / "master.key"
    key.write_bytes(os.urandom(32 if problem == "world-readable" else 12))
    key.chmod(0o644 if problem == "world-readable" else 0o600)
    done = subprocess.run(
        [sys.executable, "-m", "strato.cli.main", "serve", "--port", "0", "--data-dir", str(data),
         "--log-level", "warning"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0 and "listening" not in done.stdout
    assert ("must be 0600" if problem == "world-readable" else "12 bytes, not 32") in done.stderr
    assert not (data / "state.db").exists()
