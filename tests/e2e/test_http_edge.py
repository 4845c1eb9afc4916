"""The HTTP edge against hostile clients: a real ``strato serve``, raw sockets.

The server here runs with short deadlines (``--http-header-timeout 1``,
``--http-request-timeout 2``, ``--http-idle-timeout 2``) so that slow clients meet them
quickly; the size limits are the defaults (``strato.http.limits``). Each refusal is checked
for its status, for the connection being closed after it, and for nothing having run.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.http.limits import HttpLimits
from strato.runtime_api import http_limits as rt_limits
from tests.conftest import make_zip
from tests.e2e.async_support import starts
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.support.raw_http import RawConnection, request_bytes, signed_invoke
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 1.0
REQUEST_TIMEOUT = 2.0
IDLE_TIMEOUT = 2.0
#: A deadline is checked about twice a second: it fires up to one check late.
SWEEP_SLACK = 1.5
LIMITS = HttpLimits()
NOOP = {"app.py": "def handler(event, context):\n    return {'ok': True}\n"}


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    server = start_server(
        tmp_path_factory.mktemp("edge"), "--keep-alive", "120",
        "--http-header-timeout", str(HEADER_TIMEOUT),
        "--http-request-timeout", str(REQUEST_TIMEOUT),
        "--http-idle-timeout", str(IDLE_TIMEOUT),
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def lam(edge: StratoServer) -> Any:
    return client_for(edge.endpoint)


def _create(lam: Any, name: str, files: dict[str, str | bytes] = NOOP, **kwargs: Any) -> str:
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                        Handler="app.handler", Code={"ZipFile": make_zip(files)}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name,
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


@pytest.fixture(scope="module")
def noop(lam: Any) -> str:
    name = _create(lam, "edge-noop")
    assert lam.invoke(FunctionName=name)["StatusCode"] == 200  # warm
    return name


def _timed_invoke(edge: StratoServer, function: str, connection: RawConnection | None = None) -> float:
    """Seconds a signed invoke takes on ``connection`` (a new one by default); asserts 200."""
    own = connection is None
    connection = connection or RawConnection(edge.endpoint)
    try:
        started = time.monotonic()
        connection.send(signed_invoke(edge.endpoint, function))
        response = connection.read_response(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if own:
            connection.close()
    assert response.status == 200, response.body
    assert json.loads(response.body) == {"ok": True}
    return elapsed


def _refused(connection: RawConnection, status: int, timeout: float = 10.0) -> None:
    """The next answer is ``status`` and the server closes the connection after it."""
    response = connection.read_response(timeout=timeout)
    assert response.status == status, (response.status, response.body[:300])
    assert response.headers.get("connection") == "close"
    connection.wait_closed(timeout=LIMITS.linger_s + 5)


def _head(target: str = "/2015-03-31/functions", extra: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: strato\r\n{extra}".encode()


# sizes -------------------------------------------------------------------------------------
def test_a_1_mb_header_is_refused_431(edge: StratoServer) -> None:
    with RawConnection(edge.endpoint) as connection:
        connection.send_all_tolerating_close(_head(extra="X-Big: " + "a" * 1024 * 1024 + "\r\n\r\n"))
        _refused(connection, 431)


def test_a_1_mb_request_line_is_refused_414(edge: StratoServer) -> None:
    with RawConnection(edge.endpoint) as connection:
        connection.send_all_tolerating_close(_head("/" + "a" * 1024 * 1024, "\r\n"))
        _refused(connection, 414)


def test_ten_thousand_headers_are_refused_431(edge: StratoServer) -> None:
    fields = "".join(f"X-Field-{i}: {i}\r\n" for i in range(10_000))
    with RawConnection(edge.endpoint) as connection:
        connection.send_all_tolerating_close(_head(extra=fields + "\r\n"))
        _refused(connection, 431)


def test_one_header_repeated_300000_times_is_refused_at_once_and_others_are_served(
    edge: StratoServer, noop: str
) -> None:
    """4.8 MB of one repeated field: refused after the first hundred fields, without reading
    the rest as headers; a signed invoke on another connection meanwhile is served as usual."""
    flood = _head(extra="X-Amz-Repeat: abcdefg\r\n" * 300_000 + "\r\n")
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def hostile() -> None:
        with RawConnection(edge.endpoint) as connection:
            started = time.monotonic()
            sender = threading.Thread(target=connection.send_all_tolerating_close, args=(flood,))
            sender.start()
            outcome["status"] = connection.read_response(timeout=20).status
            outcome["seconds"] = time.monotonic() - started
            answered.set()
            connection.wait_closed(timeout=LIMITS.linger_s + 5)
            sender.join()

    thread = threading.Thread(target=hostile)
    thread.start()
    try:
        latencies = [_timed_invoke(edge, noop) for _ in range(5)]
        assert answered.wait(20)
    finally:
        thread.join(30)
    assert outcome["status"] == 431
    assert outcome["seconds"] < 5
    assert max(latencies) < 2, latencies


def test_a_declared_gigabyte_body_is_refused_413_at_once_in_aws_form(
    edge: StratoServer, noop: str
) -> None:
    invoke = signed_invoke(edge.endpoint, noop, b"")
    head = invoke.replace(b"Content-Length: 0\r\n", b"Content-Length: 1000000000\r\n")
    with RawConnection(edge.endpoint) as connection:
        started = time.monotonic()
        connection.send(head)  # and no body at all
        response = connection.read_response(timeout=10)
        assert time.monotonic() - started < 5
        assert response.status == 413
        assert response.headers["x-amzn-errortype"].startswith("RequestEntityTooLargeException")
        assert "6291456 bytes" in json.loads(response.body)["message"]
        assert response.headers.get("connection") == "close"
        connection.wait_closed(timeout=LIMITS.linger_s + 5)


# deadlines ---------------------------------------------------------------------------------
def test_200_slowloris_connections_get_408_and_normal_clients_are_served_meanwhile(
    edge: StratoServer, noop: str
) -> None:
    """Each slow client sends its head a field at a time and never finishes; each gets 408
    and is closed after the header deadline, while signed invokes take milliseconds."""
    slow = [RawConnection(edge.endpoint) for _ in range(200)]
    selector = selectors.DefaultSelector()
    try:
        for connection in slow:
            connection.send(b"POST /2015-03-31/functions/x/invocations HTTP/1.1\r\nHost: strato\r\n")
            connection.sock.setblocking(False)
            selector.register(connection.sock, selectors.EVENT_READ, connection)
        latencies = []
        with RawConnection(edge.endpoint) as normal:
            for _ in range(20):
                latencies.append(_timed_invoke(edge, noop, normal))
        answers: dict[RawConnection, bytes] = {}
        closed: set[RawConnection] = set()
        deadline = time.monotonic() + HEADER_TIMEOUT + SWEEP_SLACK + 10
        trickle = 0
        while len(closed) < len(slow) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                connection = key.data
                try:
                    data = connection.sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                answers[connection] = answers.get(connection, b"") + data
                if not data:
                    closed.add(connection)
                    selector.unregister(connection.sock)
            trickle += 1
            for connection in slow:  # one more field each, as a slowloris does
                if connection not in closed and connection not in answers:
                    with contextlib.suppress(BlockingIOError, BrokenPipeError,
                                             ConnectionResetError):
                        connection.sock.send(f"X-Slow-{trickle}: y\r\n".encode())
    finally:
        selector.close()
        for connection in slow:
            connection.close()
    assert len(closed) == len(slow), f"{len(slow) - len(closed)} slow connections still open"
    statuses = {answer.split(b" ", 2)[1] for answer in answers.values()}
    assert statuses == {b"408"}, statuses
    assert statistics.median(latencies) < 0.25, latencies
    assert max(latencies) < 2, latencies


def test_a_body_shorter_than_its_length_then_closed_runs_nothing(
    edge: StratoServer, lam: Any
) -> None:
    name = _create(lam, "edge-partial")
    request = signed_invoke(edge.endpoint, name, b'{"partial": "' + b"x" * 100 + b'"}')
    with RawConnection(edge.endpoint) as connection:
        connection.send(request[:-50])
    # The server is fine, and what it ran since is only the invocation below.
    assert lam.invoke(FunctionName=name)["StatusCode"] == 200
    logs = client_for(edge.endpoint, "logs")
    assert len(wait_until(lambda: starts(logs, name), "the START of the invocation")) == 1


def test_a_body_shorter_than_its_length_held_open_gets_408(edge: StratoServer, noop: str) -> None:
    request = signed_invoke(edge.endpoint, noop, b'{"held": "' + b"x" * 100 + b'"}')
    with RawConnection(edge.endpoint) as connection:
        started = time.monotonic()
        connection.send(request[:-50])
        _refused(connection, 408, timeout=REQUEST_TIMEOUT + SWEEP_SLACK + 5)
        assert time.monotonic() - started >= REQUEST_TIMEOUT - 0.1


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    edge: StratoServer,
) -> None:
    with RawConnection(edge.endpoint) as connection:
        connection.send(request_bytes("GET", "/_strato/health", {"Host": "strato"}))
        assert connection.read_response().status == 200
        answered = time.monotonic()
        connection.wait_closed(timeout=IDLE_TIMEOUT + SWEEP_SLACK + 5)
        assert time.monotonic() - answered >= IDLE_TIMEOUT - 0.1


def test_a_connection_that_never_sends_is_closed_after_the_idle_timeout(
    edge: StratoServer,
) -> None:
    with RawConnection(edge.endpoint) as connection:
        connection.wait_closed(timeout=IDLE_TIMEOUT + SWEEP_SLACK + 5)


# back-pressure -----------------------------------------------------------------------------
def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_pipelining_without_reading_keeps_the_server_small(
    edge: StratoServer, lam: Any, noop: str
) -> None:
    """A signed client pipelines invokes for 20 s and reads no answer: for 10 s of a no-op
    function (the server reads no further than its pipelining bound ahead of the function),
    then for 10 s of one that answers 64 KB (its answers back up: the server stops reading,
    and drops the client once they have stood unread for the request timeout; the client
    reconnects at once and carries on). The server's memory stays bounded and is back once
    the client goes, and other clients are served meanwhile."""
    big = _create(lam, "edge-big-answers",
                  {"app.py": "def handler(event, context):\n    return 'x' * 65536\n"})
    assert lam.invoke(FunctionName=big)["StatusCode"] == 200
    pid = edge.process.pid
    before = _rss_mb(pid)
    peak = before
    sent = 0
    connections = {noop: 0, big: 0}
    for function in (noop, big):
        batch = signed_invoke(edge.endpoint, function) * 200
        end = time.monotonic() + 10
        next_sample = 0.0
        while time.monotonic() < end:
            connections[function] += 1
            with RawConnection(edge.endpoint, receive_buffer=4096) as connection, \
                    selectors.DefaultSelector() as selector:
                connection.sock.setblocking(False)
                selector.register(connection.sock, selectors.EVENT_WRITE)
                offset = 0
                while (now := time.monotonic()) < end:
                    if now >= next_sample:
                        peak = max(peak, _rss_mb(pid))
                        next_sample = now + 0.5
                    if not selector.select(timeout=0.2):
                        continue
                    try:
                        count = connection.sock.send(batch[offset:offset + 65536])
                    except BlockingIOError:
                        continue
                    except (ConnectionResetError, BrokenPipeError):
                        break  # dropped for leaving its answers unread: reconnect
                    sent += count
                    offset = (offset + count) % len(batch)
                if time.monotonic() >= end:
                    assert _timed_invoke(edge, noop) < 2  # served beside the pipeliner
                    peak = max(peak, _rss_mb(pid))
    assert sent > 1024 * 1024, sent
    assert connections[big] >= 2, connections  # dropped at least once
    assert peak - before < 100, (before, peak, connections)
    wait_until(lambda: _rss_mb(pid) - before < 50, "the server's memory back near where it was",
               timeout=20)
    _timed_invoke(edge, noop)


def test_connections_over_the_cap_wait_unread_until_a_slot_frees(tmp_path: Path) -> None:
    """With ``--max-connections 4``, a fifth connection is accepted but not read until one
    of the four closes; with four more waiting, the next is answered 503 and closed."""
    server = start_server(tmp_path / "data", "--max-connections", "4",
                          "--http-idle-timeout", "60")
    health = request_bytes("GET", "/_strato/health", {"Host": "strato"})
    held: list[RawConnection] = []
    try:
        held += [RawConnection(server.endpoint) for _ in range(4)]
        for connection in held:  # each is served: four slots taken
            connection.send(health)
            assert connection.read_response().status == 200
        waiting = RawConnection(server.endpoint)
        held.append(waiting)
        waiting.send(health)
        readable = selectors.DefaultSelector()
        readable.register(waiting.sock, selectors.EVENT_READ)
        assert readable.select(timeout=1.0) == [], "a connection over the cap was served"
        readable.close()
        held.pop(0).close()  # a slot frees: the waiting connection is read and answered
        assert waiting.read_response(timeout=10).status == 200
        # Five newcomers: four wait, one is turned away (which one depends on the order the
        # server accepts them in).
        newcomers = [RawConnection(server.endpoint) for _ in range(5)]
        held += newcomers
        for connection in newcomers:
            connection.send(health)
        selector = selectors.DefaultSelector()
        for connection in newcomers:
            selector.register(connection.sock, selectors.EVENT_READ, connection)
        ready = selector.select(timeout=10)
        assert len(ready) == 1, f"{len(ready)} newcomers answered"
        turned_away = ready[0][0].data
        response = turned_away.read_response(timeout=10)
        assert response.status == 503
        turned_away.wait_closed()
        selector.unregister(turned_away.sock)
        assert selector.select(timeout=0.5) == [], "a waiting connection was served"
        selector.close()
    finally:
        for connection in held:
            connection.close()
        stop_server(server)


# the Runtime API ---------------------------------------------------------------------------
PROBING_BOOTSTRAP = r"""#!/bin/bash
# Sends hostile requests to its own Runtime API, then serves each invocation the statuses.
host="${AWS_LAMBDA_RUNTIME_API%:*}"
port="${AWS_LAMBDA_RUNTIME_API##*:}"
status_of() {  # the status line's code of the answer to the request on stdin
  exec 3<>"/dev/tcp/$host/$port"
  cat >&3 2>/dev/null
  read -r _ code _ <&3
  exec 3<&- 3>&-
  echo "${code:-none}"
}
big_field=$(head -c "$FIELD_BYTES" /dev/zero | tr '\0' a)
long_target=$(head -c "$TARGET_BYTES" /dev/zero | tr '\0' a)
header=$(printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: r\r\nX-Big: %s\r\n\r\n' "$big_field" | status_of)
line=$(printf 'GET /2018-06-01/runtime/%s HTTP/1.1\r\nHost: r\r\n\r\n' "$long_target" | status_of)
many=$( { printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: r\r\n'; for i in $(seq "$FIELDS"); do printf 'X-%d: y\r\n' "$i"; done; printf '\r\n'; } | status_of)
answer="{\"header\": \"$header\", \"line\": \"$line\", \"many\": \"$many\"}"
while true; do
  exec 4<>"/dev/tcp/$host/$port"
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: r\r\n\r\n' >&4
  id="" length=0
  while IFS= read -r field <&4; do
    field="${field%$'\r'}"
    [ -z "$field" ] && break
    case "${field,,}" in
      lambda-runtime-aws-request-id:*) id="${field#*: }" ;;
      content-length:*) length="${field#*: }" ;;
    esac
  done
  [ "$length" -gt 0 ] && read -r -N "$length" _ <&4
  printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: r\r\nContent-Length: %d\r\n\r\n%s' \
    "$id" "${#answer}" "$answer" >&4
  read -r _ _ _ <&4
  exec 4<&- 4>&-
done
"""


def test_an_environments_runtime_api_has_its_own_tighter_limits(lam: Any) -> None:
    """A custom runtime sends a header section, a request target and a number of header
    fields each one over the Runtime API's own limits (``runtime_api/http_limits.py``, below
    the edge's) to its own Runtime API, and reports what it was answered."""
    name = "edge-runtime-api"
    sizes = {"FIELD_BYTES": str(rt_limits.MAX_HEADER_BYTES + 1),
             "TARGET_BYTES": str(rt_limits.MAX_URL_BYTES + 1),
             "FIELDS": str(rt_limits.MAX_HEADERS + 1)}
    assert LIMITS.max_url_bytes > rt_limits.MAX_URL_BYTES
    assert LIMITS.max_headers > rt_limits.MAX_HEADERS
    lam.create_function(
        FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="probe",
        Code={"ZipFile": make_zip({"bootstrap": PROBING_BOOTSTRAP}, modes={"bootstrap": 0o755})},
        Environment={"Variables": sizes},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name,
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    response = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"header": "431", "line": "414", "many": "431"}


def test_bad_http_settings_stop_the_server_with_a_clear_message(tmp_path: Path) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "strato.cli.main", "serve", "--data-dir", str(tmp_path),
         "--port", "0", "--max-connections", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert refused.returncode == 2
    assert "max_connections must be at least 1, not 0" in refused.stderr
