"""What a handler sees of HTTP: one parsed ``Request`` and the ``Responder`` that answers it.

A handler is a plain callable ``handler(request, responder)``; it may answer at once or keep
the responder and answer later (a parked ``invocation/next``, an invoke waiting for its
environment). ``body_limit(method, path)`` gives the largest body a route accepts.

Two additions serve streamed responses (``Lambda-Runtime-Function-Response-Mode: streaming``
and the clients of a streamed invocation), neither costing anything to a request that does
not use them: an endpoint's ``streams(method, path, headers)`` picks requests whose body the
handler takes as it arrives (``Request.stream``, a ``BodyStream``: the request is dispatched
when its head is complete), and a ``Responder`` may answer with a chunked body
(``begin``, ``write``, ``end``) instead of ``send``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol


class Request:
    """One parsed HTTP request. ``headers`` keys are lower-case (a repeated field's values
    joined with commas); ``path`` is still percent-encoded and has no query string.

    ``too_large`` requests carry no body: their body was over the route's limit (declared by
    ``Content-Length``, or found so while reading a chunked one) and was never read. The
    handler answers them (413 in its own form) and the connection is closed after that."""

    __slots__ = ("method", "path", "query_string", "headers", "body", "too_large", "peer",
                 "stream")

    def __init__(self, method: str, path: str, query_string: str, headers: dict[str, str],
                 body: bytes, too_large: bool, peer: str) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self.too_large = too_large
        self.peer = peer
        #: The body as it arrives, for a request the endpoint ``streams`` (``body`` is empty).
        self.stream: BodyStream | None = None


class BodyStream:
    """A request body handed over as it arrives. Chunks that come before ``consume`` are
    kept and given to it then. ``on_end`` is called once, with the trailer fields (lower-case
    names) when the body ended, or None when the connection was lost before its end."""

    __slots__ = ("_chunks", "_ended", "_trailers", "_on_chunk", "_on_end")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._ended = False
        self._trailers: dict[str, str] | None = None
        self._on_chunk: Callable[[bytes], None] | None = None
        self._on_end: Callable[[dict[str, str] | None], None] | None = None

    def consume(self, on_chunk: Callable[[bytes], None],
                on_end: Callable[[dict[str, str] | None], None]) -> None:
        """Take the body: what came already is given at once. Once per stream."""
        self._on_chunk, self._on_end = on_chunk, on_end
        chunks, self._chunks = self._chunks, []
        for chunk in chunks:
            on_chunk(chunk)
        if self._ended:
            on_end(self._trailers)

    # the transport's side ------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        if self._ended:
            return
        if self._on_chunk is None:
            self._chunks.append(chunk)
        else:
            self._on_chunk(chunk)

    def end(self, trailers: dict[str, str] | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._trailers = trailers
        if self._on_end is not None:
            self._on_end(trailers)


class ResponseSink(Protocol):
    """Where a ``Responder`` writes: the connection its request came on."""

    def write_response(self, status: int, headers: Iterable[tuple[str, str]], body: bytes, *,
                       close: bool = False) -> None:
        ...

    def write_head_chunked(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        ...

    def write_chunk(self, data: bytes) -> None:
        ...

    def end_chunked(self) -> None:
        ...


class Responder:
    """Sends the one response of a request. Calls after the first, or after the client has
    gone away, are ignored (an invoke whose caller disconnected still completes). ``close``
    ends the connection after this answer: requests the client sent after it are dropped
    unanswered."""

    __slots__ = ("_sink", "sent", "_streaming")

    def __init__(self, sink: ResponseSink) -> None:
        self._sink = sink
        self.sent = False
        self._streaming = False

    def send(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"", *,
             close: bool = False) -> None:
        if self.sent:
            return
        self.sent = True
        self._sink.write_response(status, headers, body, close=close)

    def begin(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        """Start a response whose body follows in chunks (``Transfer-Encoding: chunked``):
        ``write`` each, then ``end``. Instead of ``send``; ignored after an answer."""
        if self.sent:
            return
        self.sent = True
        self._streaming = True
        self._sink.write_head_chunked(status, headers)

    def write(self, data: bytes) -> None:
        """One chunk of a response ``begin`` started (an empty one is skipped: it would
        end the body)."""
        if self._streaming and data:
            self._sink.write_chunk(data)

    def end(self) -> None:
        """End a response ``begin`` started; the connection serves its next request."""
        if self._streaming:
            self._streaming = False
            self._sink.end_chunked()


Handler = Callable[[Request, Responder], None]
BodyLimit = Callable[[str, str], int]
#: Whether a request's body goes to the handler as it arrives: ``(method, path, headers)``.
Streams = Callable[[str, str, dict[str, str]], bool]
