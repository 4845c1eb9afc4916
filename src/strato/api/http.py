"""A lean HTTP/1.1 server protocol on httptools, shared by the API and the Runtime API.

No framework sits on the invoke path: a request is parsed by httptools into a ``Request`` and
handed to a plain callable together with a ``Responder``. The handler may answer at once or
keep the responder and answer later (a parked ``invocation/next``, an invoke waiting for its
environment). Requests on one keep-alive connection are answered in order: the next one is
dispatched only after the previous response is sent.

Bodies are limited per request by ``body_limit(method, path)``; when a body is larger, the
handler receives the request with ``too_large=True`` and no body, and the connection is closed
after the response.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus

import httptools

log = logging.getLogger(__name__)

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class Request:
    """One parsed HTTP request. ``headers`` keys are lower-case; ``path`` is still
    percent-encoded and has no query string."""

    __slots__ = ("method", "path", "query_string", "headers", "body", "too_large", "peer")

    def __init__(self, method: str, path: str, query_string: str, headers: dict[str, str],
                 body: bytes, too_large: bool, peer: str) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self.too_large = too_large
        self.peer = peer


class Responder:
    """Sends the one response of a request. Calls after the first, or after the client has
    gone away, are ignored (an invoke whose caller disconnected still completes)."""

    __slots__ = ("_protocol", "sent")

    def __init__(self, protocol: HttpProtocol) -> None:
        self._protocol = protocol
        self.sent = False

    def send(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"") -> None:
        if self.sent:
            return
        self.sent = True
        self._protocol.write_response(status, headers, body)


Handler = Callable[[Request, Responder], None]
BodyLimit = Callable[[str, str], int]


class HttpProtocol(asyncio.Protocol):
    """One connection. Create through ``serve`` (or a factory binding handler and limit)."""

    def __init__(self, handler: Handler, body_limit: BodyLimit) -> None:
        self._handler = handler
        self._body_limit = body_limit
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._limit = 0
        self._too_large = False
        self._close_after = False
        self._queue: deque[Request] = deque()
        self._busy = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if isinstance(peer, tuple) else ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400)
        except httptools.HttpParserError:
            self._fail(400)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else f"{previous},{text}"

    def on_headers_complete(self) -> None:
        method = self._parser.get_method().decode()
        path = self._url.split(b"?", 1)[0].decode("latin-1")
        self._limit = self._body_limit(method, path)
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._limit:
            self._too_large = True

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._body_size += len(body)
        if self._body_size > self._limit:
            self._too_large = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        path, _, query = self._url.decode("latin-1").partition("?")
        request = Request(
            self._parser.get_method().decode(),
            path,
            query,
            self._headers,
            b"".join(self._body) if len(self._body) != 1 else self._body[0],
            self._too_large,
            self._peer,
        )
        if self._too_large or not self._parser.should_keep_alive():
            self._close_after = True
        self._queue.append(request)
        if not self._busy:
            self._dispatch_next()

    # responses
    def _dispatch_next(self) -> None:
        while self._queue and not self._busy:
            request = self._queue.popleft()
            self._busy = True
            try:
                self._handler(request, Responder(self))
            except Exception:
                log.exception("unhandled error serving %s %s", request.method, request.path)
                if self._busy:
                    self.write_response(500, [("Content-Type", "text/plain")], b"internal error")

    def write_response(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        transport = self._transport
        self._busy = False
        if transport is None or transport.is_closing():
            return
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
        for name, value in headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(b"Content-Length: %d\r\n" % len(body))
        if self._close_after and not self._queue:
            head.append(b"Connection: close\r\n")
        head.append(b"\r\n")
        transport.write(b"".join(head) + body if len(body) < 65536 else b"".join(head))
        if len(body) >= 65536:
            transport.write(body)
        if self._close_after and not self._queue:
            transport.close()
            return
        if self._queue:
            self._dispatch_next()

    def _fail(self, status: int) -> None:
        if self._transport is not None:
            self._transport.write(
                b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                % (status, _REASONS[status])
            )
            self._transport.close()


async def serve(
    handler: Handler, body_limit: BodyLimit, host: str, port: int
) -> asyncio.Server:
    """Listen on ``host:port`` (port 0 picks a free one) and serve until the server closes."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpProtocol(handler, body_limit), host, port, reuse_address=True, backlog=1024
    )


async def serve_socket(handler: Handler, body_limit: BodyLimit, sock: socket.socket) -> asyncio.Server:
    """Serve on an already listening ``sock`` (which the server then owns)."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    return await loop.create_server(lambda: HttpProtocol(handler, body_limit), sock=sock)
