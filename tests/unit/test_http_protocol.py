"""The HTTP protocol's limits, driven byte by byte through a fake transport, with the
deadline sweep's clock in the test's hands (``check_deadline(now)``)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from strato.http.limits import HttpLimits
from strato.http.protocol import Endpoint, HttpProtocol
from strato.http.request import Request, Responder
from strato.http.slots import Arrival, ConnectionSlots
from strato.http.sweep import DeadlineSweep

LIMITS = HttpLimits(max_url_bytes=100, max_header_bytes=200, max_headers=5, max_pipelined=3,
                    header_timeout_s=1, request_timeout_s=2, idle_timeout_s=3, linger_s=4,
                    max_connections=2)


class FakeTransport:
    """What the protocol uses of an asyncio transport, recording what it is asked."""

    def __init__(self) -> None:
        self.written = b""
        self.reading = True
        self.closed = False
        self.aborted = False
        self.eof_written = False
        self.buffered = 0

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 5000) if name == "peername" else None

    def write(self, data: bytes) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def statuses(self) -> list[int]:
        return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", self.written)]


class FakeSweep:
    def __init__(self) -> None:
        self.watched: set[Any] = set()

    def watch(self, item: Any) -> None:
        self.watched.add(item)

    def unwatch(self, item: Any) -> None:
        self.watched.discard(item)


class Handler:
    """Holds every request's responder; answers at once when ``immediate``."""

    def __init__(self, immediate: bool = False) -> None:
        self.immediate = immediate
        self.requests: list[Request] = []
        self.responders: list[Responder] = []

    def __call__(self, request: Request, responder: Responder) -> None:
        self.requests.append(request)
        self.responders.append(responder)
        if self.immediate:
            self.answer(len(self.responders) - 1)

    def answer(self, index: int = -1, status: int = 200) -> None:
        request = self.requests[index]
        status = 413 if request.too_large else status
        self.responders[index].send(status, [("Content-Type", "text/plain")], b"ok")


def connect(handler: Handler, limits: HttpLimits = LIMITS, body_limit: int = 1000,
            endpoint: Endpoint | None = None) -> tuple[HttpProtocol, FakeTransport]:
    endpoint = endpoint or Endpoint(handler, lambda method, path: body_limit, limits,
                                    FakeSweep())  # type: ignore[arg-type]
    protocol = HttpProtocol(endpoint)
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: h\r\n{extra}\r\n".encode()


def post(body: bytes, path: str = "/p") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def assert_refused(transport: FakeTransport, status: int) -> None:
    assert transport.statuses() == [status]
    assert b"Connection: close" in transport.written
    assert transport.eof_written  # lingering close: the write side is shut, reading goes on
    assert transport.reading


# sizes ---------------------------------------------------------------------------------
def test_a_request_target_over_the_limit_is_refused_414_as_its_pieces_arrive() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(b"GET /" + b"a" * 60)
    assert transport.written == b""
    protocol.data_received(b"a" * 60)
    assert_refused(transport, 414)
    protocol.data_received(b"a" * 1000 + b" HTTP/1.1\r\n\r\n")  # discarded
    assert handler.requests == []


def test_more_fields_than_the_limit_are_refused_431_and_repeats_count() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(get(extra="X-Same: 1\r\n" * 5))
    assert_refused(transport, 431)
    assert handler.requests == []


def test_fields_over_the_size_limit_are_refused_431() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(get(extra="X-A: " + "a" * 150 + "\r\nX-B: " + "b" * 60 + "\r\n"))
    assert_refused(transport, 431)


def test_one_endless_field_is_refused_after_about_the_head_limit_not_at_its_end() -> None:
    """The parser holds an incomplete field out of the callbacks' sight: the chunks that are
    all head are counted instead, so the refusal comes within a chunk of the limit."""
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(b"GET / HTTP/1.1\r\nX-Endless: ")
    fed = 0
    while not transport.written:
        protocol.data_received(b"a" * 64)
        fed += 64
        assert fed < 2000
    assert_refused(transport, 431)
    head_limit = LIMITS.max_url_bytes + LIMITS.max_header_bytes + 64 + 4 * LIMITS.max_headers
    assert fed <= head_limit + 64


def test_a_chunk_that_completes_a_large_body_and_starts_a_head_is_not_counted_as_head() -> None:
    handler = Handler(immediate=True)
    protocol, transport = connect(handler)
    body = b"x" * 900  # more than the head limit, within the body limit
    request = post(body)
    protocol.data_received(request[:20])
    protocol.data_received(request[20:] + b"GET / HTTP/1.1\r\nHost: h\r\n")
    protocol.data_received(b"\r\n")
    assert transport.statuses() == [200, 200]
    assert handler.requests[0].body == body


def test_repeated_fields_are_joined_in_order() -> None:
    handler = Handler()
    protocol, _ = connect(handler)
    protocol.data_received(get(extra="X-Rep: a\r\nX-Other: o\r\nx-rep: b\r\nX-REP: c\r\n"))
    assert handler.requests[0].headers["x-rep"] == "a,b,c"
    assert handler.requests[0].headers["x-other"] == "o"


def test_a_declared_length_over_the_limit_reaches_the_handler_at_once_without_its_body() -> None:
    handler = Handler()
    protocol, transport = connect(handler, body_limit=100)
    protocol.data_received(b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000\r\n\r\n")
    assert len(handler.requests) == 1
    assert handler.requests[0].too_large
    assert handler.requests[0].body == b""
    assert not transport.reading
    handler.answer()
    assert_refused(transport, 413)


def test_a_chunked_body_growing_over_the_limit_is_refused_when_it_crosses_it() -> None:
    handler = Handler(immediate=True)
    protocol, transport = connect(handler, body_limit=100)
    protocol.data_received(b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    protocol.data_received(b"40\r\n" + b"a" * 64 + b"\r\n")
    assert handler.requests == []
    protocol.data_received(b"40\r\n" + b"a" * 64 + b"\r\n")
    assert [r.too_large for r in handler.requests] == [True]
    assert_refused(transport, 413)


def test_a_malformed_request_is_refused_400() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(b"NOT HTTP AT ALL\r\n\r\n")
    assert_refused(transport, 400)


# order, pipelining and back-pressure ----------------------------------------------------
def test_a_refusal_after_pipelined_requests_waits_for_their_answers() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(get("/first") + b"GET /" + b"a" * 200)
    assert [r.path for r in handler.requests] == ["/first"]
    assert transport.written == b""  # the 414 may not overtake the first answer
    handler.answer()
    assert transport.statuses() == [200, 414]
    assert transport.eof_written


def test_reading_pauses_while_max_pipelined_requests_wait_and_resumes_as_they_drain() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(get("/0"))  # dispatched
    for i in range(1, 4):
        assert transport.reading
        protocol.data_received(get(f"/{i}"))  # queued
    assert not transport.reading
    handler.answer(0)
    assert transport.reading
    assert [r.path for r in handler.requests] == ["/0", "/1"]


def test_a_full_write_buffer_stops_reading_and_dispatching_until_it_drains() -> None:
    handler = Handler(immediate=True)
    protocol, transport = connect(handler)
    protocol.pause_writing()
    assert not transport.reading
    protocol.data_received(get("/a") + get("/b"))
    assert handler.requests == []
    protocol.resume_writing()
    assert transport.reading
    assert [r.path for r in handler.requests] == ["/a", "/b"]


def test_connection_close_ends_the_connection_after_its_answer() -> None:
    handler = Handler(immediate=True)
    protocol, transport = connect(handler)
    protocol.data_received(get("/a", "Connection: close\r\n") + get("/ignored"))
    assert [r.path for r in handler.requests] == ["/a"]
    assert b"Connection: close" in transport.written
    assert transport.eof_written


def test_an_answer_sent_with_close_is_the_connections_last() -> None:
    """A handler that closes with its answer (the Runtime API's refusals): the requests
    pipelined after it, in the same read or queued behind a held one, are never handled."""
    handled: list[str] = []

    def refuse(request: Request, responder: Responder) -> None:
        handled.append(request.path)
        responder.send(404, [], b"no", close=True)

    protocol, transport = connect(refuse)  # type: ignore[arg-type]
    protocol.data_received(get("/bogus") * 50)
    assert handled == ["/bogus"]
    assert transport.statuses() == [404]
    assert b"Connection: close" in transport.written
    assert transport.eof_written
    held = Handler()
    protocol, transport = connect(held)
    protocol.data_received(get("/held") + get("/queued"))
    held.responders[0].send(400, [], b"refused", close=True)
    assert [r.path for r in held.requests] == ["/held"]
    assert transport.statuses() == [400] and transport.eof_written


def test_a_client_that_shuts_its_side_is_closed_even_with_a_request_held() -> None:
    """A runtime that dies while parked on ``next``: its connection must not stay open."""
    handler = Handler()
    protocol, _ = connect(handler)
    protocol.data_received(get("/a"))
    assert not protocol.eof_received()


# deadlines ------------------------------------------------------------------------------
def test_a_head_not_complete_in_time_gets_408() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n")
    protocol.check_deadline(100.0)  # the sweep first sees this state
    protocol.data_received(b"X-Slow: 1\r\n")  # a field more does not move the deadline
    protocol.check_deadline(100.9)
    assert transport.written == b""
    protocol.check_deadline(101.0)
    assert_refused(transport, 408)
    assert handler.requests == []


def test_a_body_not_complete_in_time_gets_408() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(post(b"0123456789")[:-5])
    protocol.check_deadline(10.0)
    protocol.check_deadline(11.5)
    assert transport.written == b""
    protocol.check_deadline(12.0)
    assert_refused(transport, 408)
    assert handler.requests == []


def test_an_idle_connection_is_closed_without_an_answer() -> None:
    handler = Handler(immediate=True)
    protocol, transport = connect(handler)
    protocol.data_received(get())
    protocol.check_deadline(0.0)
    protocol.check_deadline(2.9)
    assert not transport.closed
    protocol.check_deadline(3.0)
    assert transport.closed
    assert transport.statuses() == [200]


def test_a_request_the_handler_holds_has_no_deadline() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(get())
    protocol.check_deadline(0.0)
    protocol.check_deadline(10_000.0)
    assert not transport.closed and transport.written == b""
    handler.answer()  # the idle deadline starts now
    protocol.check_deadline(10_001.0)
    protocol.check_deadline(10_003.9)
    assert not transport.closed
    protocol.check_deadline(10_004.0)
    assert transport.closed


def test_a_client_that_reads_no_answers_is_dropped_after_the_request_timeout() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(get())
    handler.answer()
    protocol.pause_writing()
    transport.buffered = 70_000
    protocol.check_deadline(0.0)
    protocol.check_deadline(2.0)
    assert transport.aborted


def test_a_lingering_connection_is_closed_after_linger_s() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(b"BAD\r\n\r\n")
    protocol.check_deadline(0.0)
    protocol.check_deadline(3.9)
    assert not transport.closed
    protocol.check_deadline(4.0)
    assert transport.closed


# connection slots -----------------------------------------------------------------------
class Conn:
    def __init__(self) -> None:
        self.admitted = False

    def admit(self) -> None:
        self.admitted = True


def test_slots_admit_up_to_the_limit_then_queue_in_order_then_turn_away() -> None:
    slots = ConnectionSlots(2)
    conns = [Conn() for _ in range(5)]
    assert [slots.arrive(c) for c in conns] == [
        Arrival.ADMITTED, Arrival.ADMITTED, Arrival.WAITING, Arrival.WAITING, Arrival.TURNED_AWAY]
    slots.leave(conns[3])  # a waiting one gives up: nothing moves
    assert not any(c.admitted for c in conns)
    slots.leave(conns[0])
    assert conns[2].admitted
    assert (slots.served, slots.waiting) == (2, 0)
    slots.leave(conns[0])  # idempotent
    assert (slots.served, slots.waiting) == (2, 0)


def test_a_waiting_connection_is_read_once_admitted_including_what_it_sent_meanwhile() -> None:
    handler = Handler(immediate=True)
    endpoint = Endpoint(handler, lambda method, path: 1000, LIMITS, FakeSweep())  # type: ignore[arg-type]
    first, _ = connect(handler, endpoint=endpoint)
    connect(handler, endpoint=endpoint)
    waiting, transport = connect(handler, endpoint=endpoint)
    assert not transport.reading
    waiting.data_received(get("/waited"))  # delivered before the pause took effect
    assert handler.requests == []
    first.connection_lost(None)
    assert [r.path for r in handler.requests] == ["/waited"]
    assert transport.reading


def test_limits_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        HttpLimits(max_connections=0)
    with pytest.raises(ValueError, match="idle_timeout_s"):
        HttpLimits(idle_timeout_s=0)
    assert HttpLimits(idle_timeout_s=5).idle_at_least(30).idle_timeout_s == 30
    assert HttpLimits(idle_timeout_s=50).idle_at_least(30).idle_timeout_s == 50


def test_refusals_carry_a_json_message() -> None:
    protocol, transport = connect(Handler())
    protocol.data_received(get(extra="X-Same: 1\r\n" * 9))
    body = transport.written.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body) == {"message": "request header fields too large"}


# the sweep ------------------------------------------------------------------------------
def test_the_sweep_checks_each_watched_item_and_drops_one_that_fails() -> None:
    async def run() -> tuple[list[float], int]:
        sweep = DeadlineSweep(interval_s=0.01)
        done = asyncio.Event()
        times: list[float] = []

        class Item:
            def check_deadline(self, now: float) -> None:
                times.append(now)
                if len(times) == 3:
                    sweep.unwatch(self)
                    done.set()

        class Broken:
            def check_deadline(self, now: float) -> None:
                raise RuntimeError("broken")

        sweep.watch(Item())
        sweep.watch(Broken())
        await asyncio.wait_for(done.wait(), 5)
        return times, len(sweep)

    times, left = asyncio.run(run())
    assert times == sorted(times) and len(times) == 3
    assert left == 0


def test_fields_over_the_size_limit_across_two_reads_each_under_it_are_refused_431() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(b"GET / HTTP/1.1\r\nX-A: " + b"a" * 150 + b"\r\n")
    protocol.data_received(b"X-B: " + b"b" * 150 + b"\r\n\r\n")
    assert_refused(transport, 431)
    assert handler.requests == []


# --- streamed bodies and chunked answers ---------------------------------------------------

def _streaming_endpoint(handler: Handler) -> Endpoint:
    return Endpoint(handler, lambda method, path: 10, LIMITS, FakeSweep(),  # type: ignore[arg-type]
                    lambda method, path, headers: "x-stream" in headers)


def test_a_streamed_body_reaches_the_handler_as_it_arrives_with_its_trailers() -> None:
    handler = Handler()
    protocol, transport = connect(handler, endpoint=_streaming_endpoint(handler))
    protocol.data_received(b"POST /s HTTP/1.1\r\nHost: h\r\nX-Stream: 1\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n")
    (request,) = handler.requests  # dispatched with its head, before any body
    assert request.stream is not None and request.body == b""
    chunks: list[bytes] = []
    ends: list[dict[str, str] | None] = []
    request.stream.consume(chunks.append, ends.append)
    protocol.data_received(b"5\r\nhello\r\n")
    assert chunks == [b"hello"] and ends == []
    # Over the route's body limit (10): the handler bounds a streamed body, not the transport.
    protocol.data_received(b"c\r\n, world, all\r\n0\r\nX-Error: boom\r\n\r\n")
    assert chunks == [b"hello", b", world, all"]
    assert ends == [{"x-error": "boom"}]
    handler.answer()
    protocol.data_received(get())  # the connection serves its next request
    assert transport.statuses() == [200]
    handler.answer()
    assert transport.statuses() == [200, 200]


def test_a_streamed_body_cut_off_ends_without_trailers() -> None:
    handler = Handler()
    protocol, _ = connect(handler, endpoint=_streaming_endpoint(handler))
    protocol.data_received(b"POST /s HTTP/1.1\r\nHost: h\r\nX-Stream: 1\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    ends: list[dict[str, str] | None] = []
    chunks: list[bytes] = []
    stream = handler.requests[0].stream
    assert stream is not None
    stream.consume(chunks.append, ends.append)  # what came before is given at once
    protocol.connection_lost(None)
    assert chunks == [b"abc"] and ends == [None]


def test_other_requests_are_not_streamed() -> None:
    handler = Handler()
    protocol, _ = connect(handler, endpoint=_streaming_endpoint(handler))
    protocol.data_received(post(b"12345"))
    assert handler.requests[0].stream is None and handler.requests[0].body == b"12345"


def test_a_chunked_answer_is_written_chunk_by_chunk() -> None:
    handler = Handler()
    protocol, transport = connect(handler)
    protocol.data_received(get())
    responder = handler.responders[0]
    responder.begin(200, [("Content-Type", "text/plain")])
    assert transport.written.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    responder.write(b"first")
    responder.write(b"")  # skipped: an empty chunk would end the body
    assert transport.written.endswith(b"5\r\nfirst\r\n")
    protocol.data_received(get("/next"))
    assert len(handler.requests) == 1  # the next waits for the end of this answer
    responder.end()
    assert transport.written.endswith(b"0\r\n\r\n")
    assert len(handler.requests) == 2
