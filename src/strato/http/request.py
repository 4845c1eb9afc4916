"""What a handler sees of HTTP: one parsed ``Request`` and the ``Responder`` that answers it.

A handler is a plain callable ``handler(request, responder)``; it may answer at once or keep
the responder and answer later (a parked ``invocation/next``, an invoke waiting for its
environment). ``body_limit(method, path)`` gives the largest body a route accepts.
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


class ResponseSink(Protocol):
    """Where a ``Responder`` writes: the connection its request came on."""

    def write_response(self, status: int, headers: Iterable[tuple[str, str]], body: bytes, *,
                       close: bool = False) -> None:
        ...


class Responder:
    """Sends the one response of a request. Calls after the first, or after the client has
    gone away, are ignored (an invoke whose caller disconnected still completes). ``close``
    ends the connection after this answer: requests the client sent after it are dropped
    unanswered."""

    __slots__ = ("_sink", "sent")

    def __init__(self, sink: ResponseSink) -> None:
        self._sink = sink
        self.sent = False

    def send(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"", *,
             close: bool = False) -> None:
        if self.sent:
            return
        self.sent = True
        self._sink.write_response(status, headers, body, close=close)


Handler = Callable[[Request, Responder], None]
BodyLimit = Callable[[str, str], int]
