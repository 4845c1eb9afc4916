"""One HTTP/1.1 connection on httptools, with the limits of ``HttpLimits`` enforced as it parses.

No framework sits on the invoke path: a request is parsed by httptools into a ``Request`` and
handed to the endpoint's handler with a ``Responder``. Requests on one keep-alive connection
are answered in order: the next is dispatched only after the previous response is written.

Limits are checked as the parser goes, never after buffering a whole request: the request
target as its pieces arrive (414); the header fields after every read that leaves a head
incomplete (their count, and the bytes of reads that were all head, which include a field
the parser still holds) and once more when the head completes (431); the declared or the
running body size against the route's limit (the request goes to the handler at once as
``too_large``, which answers 413 in its own form; the body is never read). A read is at most
256 KiB (the event loop's buffer), so a head is refused within one read of its limit. Checking
fields per read rather than per field keeps the common case (a whole head in one read) at one
comparison. A refused request stops the parser: nothing after it is read as a request,
nothing of it reaches the handler.

Deadlines (408 for a slow head or body, closing an idle connection, dropping a client that
reads no answers) are checked by the endpoint's ``DeadlineSweep``; the connection only bumps
``_mark`` when its state changes, and the sweep times how long a mark has stood.

Reading pauses while any of these hold, and resumes when none does: ``max_pipelined`` requests
wait for the handler; the transport's write buffer is over its high-water mark (the client
reads no answers); the connection waits for a slot (``ConnectionSlots``); it will serve no
more requests. An answer that ends the connection is followed by a lingering close: strato
shuts its side, discards what the client still sends for up to ``linger_s``, then closes, so
that the client reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus

import httptools

from strato.http.limits import HttpLimits
from strato.http.request import BodyLimit, BodyStream, Handler, Request, Responder, Streams
from strato.http.slots import Arrival, ConnectionSlots
from strato.http.sweep import DeadlineSweep

log = logging.getLogger(__name__)

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}

# Why reading is paused (bits of ``_paused``).
_QUEUE_FULL = 1
_WRITE_FULL = 2
_NO_SLOT = 4
_STOPPED = 8

# Where the parser is: between requests, in a request's head, in its body.
_BETWEEN, _HEAD, _BODY = 0, 1, 2

#: Bytes of a head besides its target and header fields: method, version, line ends, the
#: ``": "`` of each field.
_HEAD_FRAMING = 64


class _Stop(Exception):
    """Raised in a parser callback to stop parsing at once; the connection has recorded why."""


class Endpoint:
    """What every connection of one server shares: its handler, body limits, ``HttpLimits``,
    deadline sweep and connection slots."""

    __slots__ = ("handler", "body_limit", "limits", "sweep", "slots", "head_limit", "closed",
                 "streams")

    def __init__(self, handler: Handler, body_limit: BodyLimit, limits: HttpLimits,
                 sweep: DeadlineSweep, streams: Streams | None = None) -> None:
        self.handler = handler
        self.body_limit = body_limit
        #: Picks the requests whose body the handler takes as it arrives (none without it);
        #: their size is for the handler to bound.
        self.streams = streams
        self.limits = limits
        self.sweep = sweep
        self.slots = ConnectionSlots(limits.max_connections)
        #: The most a head may hold: target, fields and framing.
        self.head_limit = (limits.max_url_bytes + limits.max_header_bytes
                           + _HEAD_FRAMING + 4 * limits.max_headers)
        #: Told when one of the connections closes (a ``Listener`` counts them).
        self.closed: Callable[[], None] | None = None


class HttpProtocol(asyncio.Protocol):
    """One connection. Created by ``strato.http.server.serve`` for its endpoint."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._handler = endpoint.handler
        self._body_limit = endpoint.body_limit
        self._streams = endpoint.streams
        #: The body being streamed to the handler, and its trailer fields.
        self._stream: BodyStream | None = None
        self._trailers: dict[str, str] = {}
        limits = self._limits = endpoint.limits
        self._max_url_bytes = limits.max_url_bytes
        self._max_headers = limits.max_headers
        self._max_header_bytes = limits.max_header_bytes
        self._max_pipelined = limits.max_pipelined
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        # The request being parsed.
        self._reader = _BETWEEN
        self._method = ""
        self._url = b""
        self._headers: dict[str, str] = {}
        self._repeated: dict[str, list[str]] | None = None
        #: Whether this head is coming in more than one read; the bytes of its reads that
        #: were all head; the size of the current read.
        self._head_split = False
        self._head_bytes = 0
        self._read_size = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._limit = 0
        # Requests read and not yet dispatched, and the one the handler holds.
        self._queue: deque[Request] = deque()
        self._busy = False
        self._advancing = False
        # Connection state. ``_diverted``: data is not parsed (held while waiting for a slot,
        # discarded once stopped).
        self._paused = 0
        self._held: list[bytes] = []
        self._write_paused = False
        self._stopped = False
        self._diverted = False
        self._refusal: tuple[int, str] | None = None
        self._lingering = False
        # Deadlines: ``_mark`` changes with the state; the sweep notes when it last saw it change.
        self._mark = 0
        self._seen_mark = -1
        self._since = 0.0

    # asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if isinstance(peer, tuple) else ""
        arrival = self._endpoint.slots.arrive(self)
        if arrival is Arrival.ADMITTED:
            self._endpoint.sweep.watch(self)
        elif arrival is Arrival.WAITING:
            self._diverted = True
            self._pause(_NO_SLOT)
        else:
            self._stopped = self._diverted = True
            self._write_refusal(503, "the server has too many connections; try again")
            self._close_now()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.end(None)
        self._queue.clear()
        self._held.clear()
        self._endpoint.slots.leave(self)
        self._endpoint.sweep.unwatch(self)
        if self._endpoint.closed is not None:
            self._endpoint.closed()

    def eof_received(self) -> bool | None:
        # The transport closes itself. A client that shuts its side gets no more answers: a
        # runtime that dies while parked on ``next`` must not leave its connection open.
        return None

    def pause_writing(self) -> None:
        self._write_paused = True
        self._mark += 1
        self._pause(_WRITE_FULL)

    def resume_writing(self) -> None:
        self._write_paused = False
        self._mark += 1
        self._unpause(_WRITE_FULL)
        self._advance()

    def data_received(self, data: bytes) -> None:
        if self._diverted:
            if self._stopped:
                return  # a refused or last request was answered or is due: the rest is dropped
            # Waiting for a slot: the loop may deliver one chunk before the pause asked for in
            # connection_made takes effect.
            self._held.append(data)
            if self._transport is not None:
                self._transport.pause_reading()
            return
        whole_read_in_head = self._reader == _HEAD
        mark = self._mark
        self._read_size = len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if not self._stopped:
                log.error("HTTP parser callback failed", exc_info=error.__context__)
                self._refuse(500, "internal error")
            return
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
            return
        except httptools.HttpParserError:
            self._refuse(400, "malformed HTTP request")
            return
        if self._reader == _HEAD:  # a head split across reads: check what it holds so far
            self._head_split = True
            if whole_read_in_head and self._mark == mark:
                # This read was all head, including any field the parser still holds unseen.
                self._head_bytes += len(data)
            if self._head_bytes > self._endpoint.head_limit or self._field_count() > self._max_headers:
                self._refuse(431, "request header fields too large")

    # httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._reader = _HEAD
        self._mark += 1
        self._url = b""
        self._headers = {}
        self._repeated = None
        self._head_split = False
        self._head_bytes = 0
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._max_url_bytes:
            self._refuse(414, "request target too long")
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        if self._stream is not None:  # a trailer field of a streamed body
            self._trailers[key] = text
            return
        headers = self._headers
        previous = headers.get(key)
        if previous is None:
            headers[key] = text
        else:
            self._repeat(key, previous, text)

    def _repeat(self, key: str, first: str, text: str) -> None:
        """A field seen before: its values are joined once, when the head is complete, so
        that the work stays linear in the number of fields."""
        if self._repeated is None:
            self._repeated = {}
        values = self._repeated.get(key)
        if values is None:
            self._repeated[key] = [first, text]
        else:
            values.append(text)

    def _field_count(self) -> int:
        """Header fields so far, a repeated one counted each time."""
        count = len(self._headers)
        if self._repeated is not None:
            count += sum(len(values) - 1 for values in self._repeated.values())
        return count

    def _complete_unusual_head(self) -> None:
        """The end of a head with repeated fields, or many, or that came in more than one
        read or in one larger than ``max_header_bytes`` (a smaller single read cannot hold
        more bytes of fields than that): refuse it over a limit, else join repeated fields."""
        headers = self._headers
        repeated = self._repeated or {}
        size = sum(len(key) + len(value) for key, value in headers.items())
        size += sum(len(value) for values in repeated.values() for value in values[1:])
        if self._field_count() > self._max_headers or size > self._max_header_bytes:
            self._refuse(431, "request header fields too large")
            raise _Stop
        for key, values in repeated.items():
            headers[key] = ",".join(values)

    def on_headers_complete(self) -> None:
        self._reader = _BODY
        if (self._repeated is not None or self._head_split
                or len(self._headers) > self._max_headers
                or self._read_size > self._max_header_bytes):
            self._complete_unusual_head()
        method = self._method = self._parser.get_method().decode()
        # An upgrade needs CONNECT or an Upgrade field; the parser has the last word.
        if (method == "CONNECT" or "upgrade" in self._headers) and self._parser.should_upgrade():
            self._refuse(400, "protocol upgrades are not supported")
            raise _Stop
        path = self._url.split(b"?", 1)[0].decode("latin-1")
        self._limit = self._body_limit(method, path)
        if self._streams is not None and self._streams(method, path, self._headers):
            self._begin_stream(path)
            return
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._limit:
            self._refuse_body()

    def _begin_stream(self, path: str) -> None:
        """Hand the request to its handler now, its body to follow through a ``BodyStream``."""
        stream = self._stream = BodyStream()
        self._trailers = {}
        query = self._url.decode("latin-1").partition("?")[2]
        request = Request(self._method, path, query, self._headers, b"", False, self._peer)
        request.stream = stream
        self._enqueue(request)

    def on_body(self, body: bytes) -> None:
        if self._stream is not None:
            self._stream.feed(body)
            return
        size = self._body_size + len(body)
        if size > self._limit:
            self._refuse_body()
        self._body_size = size
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._reader = _BETWEEN
        self._mark += 1
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.end(self._trailers)
            if not self._parser.should_keep_alive():
                self._stop()
                raise _Stop
            return
        body = self._body
        path, _, query = self._url.decode("latin-1").partition("?")
        request = Request(self._method, path, query, self._headers,
                          body[0] if len(body) == 1 else b"".join(body), False, self._peer)
        if not self._parser.should_keep_alive():
            self._stop()
            self._enqueue(request)
            raise _Stop
        if self._busy or self._write_paused or self._queue:
            self._enqueue(request)
        else:  # the common case, without a call more
            self._dispatch(request)
            if self._stopped:  # answered with ``close``: parse nothing after it
                raise _Stop

    # requests --------------------------------------------------------------------------
    def _refuse_body(self) -> None:
        """The body is over the route's limit: the handler gets the request now, as
        ``too_large`` and without a body, and answers; nothing more is read."""
        self._stop()
        self._body = []
        path, _, query = self._url.decode("latin-1").partition("?")
        self._enqueue(Request(self._method, path, query, self._headers, b"", True, self._peer))
        raise _Stop

    def _enqueue(self, request: Request) -> None:
        if self._busy or self._write_paused or self._queue:
            self._queue.append(request)
            if len(self._queue) >= self._max_pipelined:
                self._pause(_QUEUE_FULL)
        else:
            self._dispatch(request)

    def _advance(self) -> None:
        """Dispatch queued requests while the handler is free and answers can be written;
        once the last one is answered, send any refusal and close. Not re-entrant: an answer
        written from inside a dispatch continues this loop instead of recursing."""
        if self._advancing:
            return
        self._advancing = True
        try:
            while not self._busy and not self._write_paused and self._transport is not None:
                if self._queue:
                    self._dispatch(self._queue.popleft())
                    if self._paused & _QUEUE_FULL and len(self._queue) < self._max_pipelined:
                        self._unpause(_QUEUE_FULL)
                    continue
                if self._stopped and not self._lingering:
                    if self._refusal is not None:
                        self._write_refusal(*self._refusal)
                    self._linger()
                return
        finally:
            self._advancing = False

    def _dispatch(self, request: Request) -> None:
        self._busy = True
        try:
            self._handler(request, Responder(self))
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            if self._busy:
                self.write_response(500, [("Content-Type", "text/plain")], b"internal error")

    # responses -------------------------------------------------------------------------
    def write_response(self, status: int, headers: Iterable[tuple[str, str]], body: bytes, *,
                       close: bool = False) -> None:
        """Write the answer of the request the handler holds (``Responder.send``); with
        ``close``, the connection's last: requests read after it are dropped."""
        transport = self._transport
        self._busy = False
        self._mark += 1
        if transport is None or transport.is_closing():
            return
        if close:
            self._stop()
            self._queue.clear()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
        for name, value in headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(b"Content-Length: %d\r\n" % len(body))
        if self._stopped and not self._queue:
            head.append(b"Connection: close\r\n")
        head.append(b"\r\n")
        if len(body) < 65536:
            transport.write(b"".join(head) + body)
        else:
            transport.write(b"".join(head))
            transport.write(body)
        if self._queue or self._stopped:
            self._advance()

    def write_head_chunked(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """Begin the answer of the request the handler holds with a chunked body; the handler
        still holds it until ``end_chunked``."""
        transport = self._transport
        self._mark += 1
        if transport is None or transport.is_closing():
            return
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
        for name, value in headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(b"Transfer-Encoding: chunked\r\n")
        if self._stopped and not self._queue:
            head.append(b"Connection: close\r\n")
        head.append(b"\r\n")
        transport.write(b"".join(head))

    def write_chunk(self, data: bytes) -> None:
        """One chunk of a body ``write_head_chunked`` began (never empty: that ends it)."""
        transport = self._transport
        self._mark += 1
        if transport is None or transport.is_closing():
            return
        transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self) -> None:
        """End a chunked answer: the connection serves its next request."""
        transport = self._transport
        self._busy = False
        self._mark += 1
        if transport is None or transport.is_closing():
            return
        transport.write(b"0\r\n\r\n")
        self._advance()

    def _write_refusal(self, status: int, message: str) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        body = json.dumps({"message": message}).encode()
        transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
        )

    # refusing and closing --------------------------------------------------------------
    def _stop(self) -> None:
        """Read no more requests: what was read is answered, then the connection closes."""
        self._stopped = True
        self._diverted = True
        self._pause(_STOPPED)

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` after the requests already read, then close; the request being
        parsed is dropped. Idempotent: the first reason stands."""
        if self._stopped:
            return
        self._stop()
        self._refusal = (status, message)
        self._advance()

    def _linger(self) -> None:
        """Everything is answered: shut the write side, discard what the client still sends
        until it closes or ``linger_s`` passes (``check_deadline``)."""
        transport = self._transport
        if transport is None:
            return
        self._lingering = True
        self._mark += 1
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._paused = 0
        transport.resume_reading()

    def _close_now(self) -> None:
        """Close without waiting for a client that may never read what is left to send."""
        transport = self._transport
        if transport is None:
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def _pause(self, reason: int) -> None:
        if self._lingering:
            return  # reading goes on until the close, to discard what the client sends
        if not self._paused and self._transport is not None:
            self._transport.pause_reading()
        self._paused |= reason

    def _unpause(self, reason: int) -> None:
        if self._paused & reason:
            self._paused &= ~reason
            if not self._paused and self._transport is not None:
                self._transport.resume_reading()

    # ConnectionSlots and DeadlineSweep -------------------------------------------------
    def admit(self) -> None:
        """A slot is free for this waiting connection: serve it, starting with what it sent
        while it waited."""
        if self._transport is None:
            return
        self._endpoint.sweep.watch(self)
        self._mark += 1
        held, self._held = self._held, []
        self._diverted = False
        self._unpause(_NO_SLOT)
        for chunk in held:
            self.data_received(chunk)

    def check_deadline(self, now: float) -> None:
        """Called by the sweep: act on the deadline of the current state, timed from when
        the sweep first saw that state (so up to one sweep interval late)."""
        if self._transport is None:
            return
        if self._mark != self._seen_mark:
            self._seen_mark = self._mark
            self._since = now
            return
        elapsed = now - self._since
        limits = self._limits
        if self._lingering:
            if elapsed >= limits.linger_s:
                self._close_now()
        elif self._write_paused:
            if elapsed >= limits.request_timeout_s:  # the client reads no answers
                self._close_now()
        elif self._busy or self._queue or self._stopped:
            return  # the handler's turn: its own timers (an invocation's timeout) apply
        elif self._reader == _BETWEEN:
            if elapsed >= limits.idle_timeout_s:
                self._close_now()
        elif self._reader == _HEAD:
            if elapsed >= limits.header_timeout_s:
                self._refuse(408, "the request head did not arrive in time")
        elif elapsed >= limits.request_timeout_s:
            self._refuse(408, "the request did not arrive in time")
