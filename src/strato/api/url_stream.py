"""A RESPONSE_STREAM function URL's answer, sent as the function streams it.

The answer is chunked (``Transfer-Encoding: chunked``) and begins when the runtime begins
streaming, so the client reads the first bytes before the function ends. A response of the
http-integration content type (``awslambda.HttpResponseStream.from``) begins with a JSON
prelude (``statusCode``, ``headers``, ``cookies``) and 8 NUL bytes: the prelude gives the
status and headers (mapped as a buffered result's are, ``strato.domain.url_responses``), what
follows is the body. Any other streamed response is a 200 of the runtime's content type. A
function that does not stream is answered as a BUFFERED URL's; an error after the first bytes
ends the body where it is (the status was sent).
https://docs.aws.amazon.com/lambda/latest/dg/config-rs-write-functions.html
"""

from __future__ import annotations

import json
from collections.abc import Callable

from strato.domain.url_responses import FUNCTION_ERROR, Headers, UrlResponse, url_response
from strato.http.request import Responder
from strato.scheduler.invocation import InvocationResult

HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8
#: The most a prelude may take before it is given up on (the body is then sent as it is).
_PRELUDE_MAX = 64 * 1024


class UrlStreamResponse:
    """The ``StreamSink`` of one URL invocation; ``done`` is its ``on_done``. ``finish``
    completes a head (CORS, request id) and ``send`` answers a whole ``UrlResponse`` (the
    edge's own)."""

    __slots__ = ("_responder", "_finish", "_send", "_head_only", "_prelude", "_started")

    def __init__(self, responder: Responder, finish: Callable[[Headers], Headers],
                 send: Callable[[UrlResponse], None], *, head_only: bool) -> None:
        self._responder = responder
        self._finish = finish
        self._send = send
        self._head_only = head_only
        #: The prelude read so far, while one is expected.
        self._prelude: bytearray | None = None
        self._started = False

    def begin(self, content_type: str) -> None:
        if content_type == HTTP_INTEGRATION:
            self._prelude = bytearray()
        else:
            self._start(200, [("Content-Type", content_type)])

    def chunk(self, data: bytes) -> None:
        prelude = self._prelude
        if prelude is None:
            self._write(data)
            return
        prelude += data
        end = prelude.find(PRELUDE_END)
        if end < 0 and len(prelude) <= _PRELUDE_MAX:
            return
        self._prelude = None
        if end < 0:
            self._start(200, [("Content-Type", HTTP_INTEGRATION)])
            self._write(bytes(prelude))
            return
        head = _prelude_response(bytes(prelude[:end]))
        self._start(head.status, head.headers)
        self._write(bytes(prelude[end + len(PRELUDE_END):]))

    def done(self, result: InvocationResult) -> None:
        if self._prelude is not None:  # the stream ended inside its prelude
            prelude, self._prelude = bytes(self._prelude), None
            head = _prelude_response(prelude.partition(PRELUDE_END)[0])
            self._start(head.status, head.headers)
        if self._started:
            self._responder.end()
        elif result.function_error:
            self._send(FUNCTION_ERROR)
        else:  # a runtime that answered with a whole response
            self._send(url_response(result.payload))

    def _start(self, status: int, headers: Headers) -> None:
        self._started = True
        self._responder.begin(status, self._finish(headers))

    def _write(self, data: bytes) -> None:
        if data and not self._head_only:
            self._responder.write(data)


def _prelude_response(prelude: bytes) -> UrlResponse:
    """The status and headers a prelude gives (an unreadable one: a 200 with none)."""
    try:
        metadata = json.loads(prelude) if prelude.strip() else {}
    except (ValueError, UnicodeDecodeError):
        metadata = {}
    if not isinstance(metadata, dict):
        metadata = {}
    metadata = {key: metadata[key] for key in ("statusCode", "headers", "cookies")
                if key in metadata}
    metadata.setdefault("statusCode", 200)
    return url_response(json.dumps(metadata).encode())
