"""One function tries to hijack another's invocations through its Runtime API.

B is a custom runtime (curl in a shell loop) parked on ``GET …/invocation/next``. From the
host the test reads where B's Runtime API is (its ``AWS_LAMBDA_RUNTIME_API`` in the fallback
tier, a host port; its address on the egress bridge in the namespaces tier, where its
endpoint listens on 127.0.0.1:9001 inside its own network). Function A connects there, asks
for B's next event and, if it gets one, posts a forged response; meanwhile B is invoked with a
secret. A must get nothing (its connection refused, or closed unanswered), and B's caller must
receive B's own response.

In the fallback tier with egress ``internet`` nothing stops A's connection but strato: each
environment runs as a uid of its own and a host port serves only sockets of its
environment's uid (``runtime_api/endpoints.py``). With egress ``none`` Landlock (ABI 4+)
already refuses A's connect to any port but its own.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE
from tests.e2e.hostile import (
    TierServer,
    create,
    host_ids,
    internet,
    serve_tier,
    succeed,
    unique,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

MODES = [("fallback", "internet"), ("fallback", "none"), ("namespaces", "internet")]
TAG = os.getpid() % 250 + 1
#: How long A waits for an answer from B's endpoint (strato refuses at once).
WAIT_S = 8.0

VICTIM = """#!/bin/sh
set -eu
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  id=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | tr -d '\\r' | cut -d' ' -f2)
  rm -f "$headers"
  curl -sS -X POST "$api/invocation/$id/response" -d "{\\"echo\\": $event}" >/dev/null
done
"""

HIJACKER = r'''
import json, socket


def read_answer(sock):
    """(status, headers, body) of the next answer, or (what happened, {}, b"")."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return "closed", {}, b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return lines[0].split(" ")[1], headers, body
    except socket.timeout:
        return "no answer", {}, b""
    except ConnectionResetError:
        return "reset", {}, b""
    except OSError as exc:
        return f"failed: {exc}", {}, b""


def handler(event, context):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(event["wait"])
    try:
        sock.connect((event["host"], event["port"]))
    except OSError as exc:
        sock.close()
        return {"connect": f"{type(exc).__name__}: {exc}"}
    with sock:
        sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: r\r\n\r\n")
        status, headers, body = read_answer(sock)
        outcome = {"connect": "ok", "next": status}
        request_id = headers.get("lambda-runtime-aws-request-id")
        if request_id is None:
            return outcome
        outcome["event"] = body.decode("latin-1")
        forged = b'{"forged": true}'
        sock.sendall(b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: r\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (request_id.encode(), len(forged), forged))
        outcome["forged"] = read_answer(sock)[0]
        return outcome
'''


@pytest.fixture(scope="module", params=MODES, ids=["-".join(m) for m in MODES])
def hostile(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    tier, egress = request.param
    env = {}
    if egress == "internet" and tier == "namespaces":
        env = internet(f"si{TAG}", "10.215.0.0/16")
    with serve_tier(tier, tmp_path_factory, egress=egress, env=env) as server:
        yield server


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode("latin-1").split("\0") if "=" in item)


def _runtime_of(hostile: TierServer, function: str) -> tuple[int, dict[str, str]]:
    """A process of ``function``'s environment and its environment variables."""
    found: list[tuple[int, dict[str, str]]] = []

    def look() -> bool:
        for pid in hostile.host.environment_processes():
            environ = _environ(pid)
            if environ.get("AWS_LAMBDA_FUNCTION_NAME") == function:
                found.append((pid, environ))
                return True
        return False

    wait_until(look, timeout=10, what=f"a process of {function}")
    return found[0]


def _bridge_address(pid: int) -> str:
    """The IPv4 address of ``pid``'s network namespace other than loopback."""
    lines = Path(f"/proc/{pid}/net/fib_trie").read_text().splitlines()
    for previous, line in zip(lines, lines[1:], strict=False):
        address = previous.split()[-1]
        if "/32 host LOCAL" in line and not address.startswith("127."):
            return address
    raise AssertionError(f"no address but loopback in the network of {pid}")


def _foreign_connections(port: int, allowed: set[int]) -> int:
    """Established TCP connections to local ``port`` made by a uid not in ``allowed``."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if remote_port == port and fields[3] == "01" and int(fields[7]) not in allowed:
            count += 1
    return count


def test_a_function_cannot_take_another_functions_invocation(hostile: TierServer) -> None:
    client = hostile.client
    victim = unique("rtapi-victim")
    client.create_function(
        FunctionName=victim, Runtime="provided.al2023", Role=ROLE, Handler="function.handler",
        Code={"ZipFile": make_zip({"bootstrap": VICTIM}, modes={"bootstrap": 0o755})})
    client.get_waiter("function_active_v2").wait(
        FunctionName=victim, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    attacker = unique("rtapi-hijacker")
    create(client, attacker, {"app.py": HIJACKER}, Timeout=30)
    assert succeed(client, victim, {"warm": True}) == {"echo": {"warm": True}}
    # B's runtime is now parked on its next event.
    pid, environ = _runtime_of(hostile, victim)
    if hostile.tier == "fallback":
        host, port = environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
        target = {"host": host, "port": int(port)}
    else:
        target = {"host": _bridge_address(pid), "port": 9001}
    ids = host_ids(pid)
    assert ids is not None
    victim_uid = ids[0][0]

    outcome: dict[str, Any] = {}

    def hijack() -> None:
        try:
            outcome.update(succeed(client, attacker, {**target, "wait": WAIT_S}))
        except BaseException as exc:
            outcome["error"] = repr(exc)

    thread = threading.Thread(target=hijack)
    thread.start()
    try:
        if hostile.tier == "fallback":
            # A has had its say once it is done, or while its connection is open (an
            # endpoint that served A would have A parked on B's next event by then).
            wait_until(lambda: not thread.is_alive()
                       or _foreign_connections(target["port"], {0, victim_uid}) > 0,
                       timeout=30, what="the attacker's attempt")
        secret = secrets.token_hex(16)
        answer = succeed(client, victim, {"secret": secret})
    finally:
        thread.join(timeout=60)
    assert answer == {"echo": {"secret": secret}}, (answer, outcome)
    assert "error" not in outcome, outcome
    assert secret not in json.dumps(outcome), outcome
    assert "event" not in outcome and "forged" not in outcome, outcome
    if (hostile.tier, hostile.egress) == ("fallback", "internet"):
        # Connected (nothing but strato is in the way on the host's loopback), then closed
        # unanswered (a reset, as A's request was unread): a peer socket of another uid.
        assert outcome in ({"connect": "ok", "next": "closed"},
                           {"connect": "ok", "next": "reset"}), outcome
    elif hostile.tier == "fallback":
        assert outcome["connect"].startswith("PermissionError"), outcome  # Landlock
    else:
        assert outcome["connect"] != "ok", outcome  # B's endpoint is in B's network only
