"""A function attacks its own Runtime API, in both sandbox tiers: endless request heads, an
endless request target, pipelined requests it never reads the answers of, and tens of
thousands of connections held open by forked children.

Each attack runs from inside a real function (``ATTACKER``: the handler forks children, each
opening connections to ``AWS_LAMBDA_RUNTIME_API``) for a few seconds while the test watches
strato from the host: its resident memory and its open file descriptors stay bounded, and an
unrelated API call (ListFunctions) stays fast. The attacker reports what each connection met:
the status it was answered and whether strato closed it, or no answer at all (a connection
past the endpoint's cap waits in the kernel's backlog, unaccepted).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.runtime_api import http_limits
from tests.e2e.hostile import TIERS, TierServer, create, serve_tier, succeed, unique

pytestmark = pytest.mark.e2e

#: Fast enough for a control-plane call while an environment attacks (a shared machine
#: answers one in a few milliseconds).
API_CALL_MAX_S = 1.0

ATTACKER = r'''
import json, os, selectors, socket, time

NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: r\r\n"
FILLER = b"a" * 65536
#: What each attack sends first, then over and over for as long as the socket takes it.
ATTACKS = {
    "hold": (b"", b""),
    "endless_head": (NEXT + b"X-Endless: ", FILLER),
    "endless_target": (b"GET /2018-06-01/runtime/", FILLER),
    "pipelined": (b"", b"GET /2018-06-01/runtime/nowhere HTTP/1.1\r\nHost: r\r\n\r\n" * 1024),
}


def attack(mode, host, port, connections, seconds):
    """Open ``connections`` sockets and run ``mode`` on each for ``seconds``; what each met."""
    first, again = ATTACKS[mode]
    selector = selectors.DefaultSelector()
    outcomes = {}
    opened = 0
    for _ in range(connections):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing anyway
        sock.setblocking(False)
        if sock.connect_ex((host, port)) not in (0, 115):  # EINPROGRESS
            sock.close()
            outcomes["connect failed"] = outcomes.get("connect failed", 0) + 1
            continue
        opened += 1
        state = {"sock": sock, "pending": first, "status": None}
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if first or again else 0)
        selector.register(sock, events, state)
    end = time.monotonic() + seconds
    while time.monotonic() < end and selector.get_map():
        for key, events in selector.select(timeout=0.2):
            state = key.data
            sock = state["sock"]
            try:
                if events & selectors.EVENT_READ and mode != "pipelined":
                    data = sock.recv(65536)
                    if not data:
                        finish(selector, state, outcomes, "closed")
                        continue
                    if state["status"] is None:
                        state["status"] = data.split(b" ", 2)[1].decode()
                if events & selectors.EVENT_WRITE:
                    payload = state["pending"] or again
                    sent = sock.send(payload[:65536])
                    state["pending"] = payload[sent:] if state["pending"] else b""
            except BlockingIOError:
                continue
            except OSError:
                if state["status"] is None and mode != "pipelined":
                    state["status"] = answered(sock)
                finish(selector, state, outcomes, "reset")
    for key in list(selector.get_map().values()):
        finish(selector, key.data, outcomes, "open")
    outcomes["opened"] = opened
    return outcomes


def answered(sock):
    """The status of an answer already received on a connection that failed, if any."""
    try:
        data = sock.recv(65536)
    except OSError:
        return None
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else None


def finish(selector, state, outcomes, how):
    selector.unregister(state["sock"])
    state["sock"].close()
    label = f"{state['status'] or 'no answer'}, {how}"
    outcomes[label] = outcomes.get(label, 0) + 1


def handler(event, context):
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
    children = []
    for _ in range(event["children"]):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                result = attack(event["mode"], host, int(port), event["connections"],
                                event["seconds"])
            except BaseException as exc:
                result = {f"child failed: {exc!r}": 1}
            os.write(write_end, json.dumps(result).encode())
            os._exit(0)
        os.close(write_end)
        children.append((pid, read_end))
    totals = {}
    for pid, read_end in children:
        data = b""
        while chunk := os.read(read_end, 65536):
            data += chunk
        os.close(read_end)
        os.waitpid(pid, 0)
        for label, count in json.loads(data or b"{}").items():
            totals[label] = totals.get(label, 0) + count
    return totals
'''


@pytest.fixture(scope="module", params=TIERS)
def attacked(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TierServer, str]]:
    with serve_tier(request.param, tmp_path_factory) as hostile:
        name = unique("rtapi-attacker")
        create(hostile.client, name, {"app.py": ATTACKER}, MemorySize=1024, Timeout=60)
        succeed(hostile.client, name, {"mode": "hold", "children": 1, "connections": 1,
                                       "seconds": 0.1})  # warm: the attack starts at once
        yield hostile, name


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _watched_attack(hostile: TierServer, name: str, event: dict[str, Any]
                    ) -> tuple[dict[str, int], dict[str, float]]:
    """Run the attack ``event`` in function ``name``; meanwhile sample strato's RSS and fds
    and time ListFunctions calls. Returns the attacker's outcomes and the peaks above the
    figures before the attack (``rss_mb``, ``fds``) and the slowest call (``api_s``)."""
    pid = hostile.pid
    rss_before, fds_before = _rss_mb(pid), _fds(pid)
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["outcomes"] = succeed(hostile.client, name, event)
        except BaseException as exc:
            result["error"] = exc

    attacker = threading.Thread(target=run)
    attacker.start()
    peaks = {"rss_mb": 0.0, "fds": 0.0, "api_s": 0.0}
    while attacker.is_alive():
        peaks["rss_mb"] = max(peaks["rss_mb"], _rss_mb(pid) - rss_before)
        peaks["fds"] = max(peaks["fds"], _fds(pid) - fds_before)
        started = time.monotonic()
        hostile.client.list_functions(MaxItems=10)
        peaks["api_s"] = max(peaks["api_s"], time.monotonic() - started)
        attacker.join(timeout=0.2)
    if "error" in result:
        raise result["error"]
    return result["outcomes"], peaks


def _assert_strato_unharmed(peaks: dict[str, float], outcomes: dict[str, int]) -> None:
    # What one environment's endpoint may hold: its capped connections, each at most a
    # head or a few requests read ahead (about 1 MB each) and the event loop's read buffers.
    assert peaks["rss_mb"] < 40, (peaks, outcomes)
    # Its connections, and a few of the test's own API calls and the invocation.
    assert peaks["fds"] <= http_limits.MAX_CONNECTIONS + 8, (peaks, outcomes)
    assert peaks["api_s"] < API_CALL_MAX_S, (peaks, outcomes)


def test_endless_request_heads_are_refused_431(attacked: tuple[TierServer, str]) -> None:
    """8 children × 50 connections each send a request head whose one field never ends."""
    hostile, name = attacked
    outcomes, peaks = _watched_attack(hostile, name, {
        "mode": "endless_head", "children": 8, "connections": 50, "seconds": 6})
    _assert_strato_unharmed(peaks, outcomes)
    assert outcomes["opened"] == 400, outcomes
    # Served connections are refused and closed (a reset can overtake the answer: the
    # attacker keeps writing); the others are not accepted until a served one closes.
    assert outcomes.get("431, closed", 0) >= http_limits.MAX_CONNECTIONS, outcomes
    assert set(outcomes) <= {"opened", "431, closed", "431, reset", "no answer, reset",
                             "no answer, open"}, outcomes


def test_an_endless_request_target_is_refused_414(attacked: tuple[TierServer, str]) -> None:
    """8 children × 50 connections each send a request target that never ends (the attack
    that once stalled strato's event loop for 28 s with one 160 MB URL)."""
    hostile, name = attacked
    outcomes, peaks = _watched_attack(hostile, name, {
        "mode": "endless_target", "children": 8, "connections": 50, "seconds": 6})
    _assert_strato_unharmed(peaks, outcomes)
    assert outcomes.get("414, closed", 0) >= http_limits.MAX_CONNECTIONS, outcomes
    assert set(outcomes) <= {"opened", "414, closed", "414, reset", "no answer, reset",
                             "no answer, open"}, outcomes


def test_pipelined_requests_never_read_stay_bounded(attacked: tuple[TierServer, str]) -> None:
    """8 children × 50 connections pipeline requests as fast as strato takes them and read
    none of the answers."""
    hostile, name = attacked
    outcomes, peaks = _watched_attack(hostile, name, {
        "mode": "pipelined", "children": 8, "connections": 50, "seconds": 6})
    _assert_strato_unharmed(peaks, outcomes)
    assert outcomes["opened"] == 400, outcomes


def test_25_000_connections_held_open_leave_strato_its_descriptors(
        attacked: tuple[TierServer, str]) -> None:
    """40 children open 625 connections each (under their limit of 1,024 open files) and
    hold them: strato accepts its cap of them and leaves the rest to the kernel, so its
    file descriptors stay where they were and API clients are served throughout."""
    hostile, name = attacked
    outcomes, peaks = _watched_attack(hostile, name, {
        "mode": "hold", "children": 40, "connections": 625, "seconds": 8})
    _assert_strato_unharmed(peaks, outcomes)
    assert outcomes["opened"] + outcomes.get("connect failed", 0) == 25_000, outcomes
