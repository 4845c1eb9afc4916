"""The runtime channel: the Runtime API's operations over a connected unix stream socket.

strato's built-in runtime is forked with one end of a socket pair (fd 3; its side is
``sandbox/guest/lambda_runtime/channel.py``, which must match this format) and the platform
serves the other end here. It replaces, for that runtime only, three HTTP exchanges over TCP
per invocation (``next``'s answer, the response post and its 202) by two frames and no HTTP
parsing: a post travels with the ``next`` that follows it, and a post is answered only when
it is refused.

A frame is ``length`` (4 bytes, big-endian: what follows), ``kind`` (1 byte), then NUL-
separated fields, the last one a raw body:

==========  =================  ================================================================
kind        direction          payload
==========  =================  ================================================================
1 NEXT      runtime→platform   (empty) ready for the next event
2 RESPONSE  runtime→platform   request id, body
3 ERROR     runtime→platform   request id, error type, error document
4 INIT_ERR  runtime→platform   error type, error document
5 EVENT     platform→runtime   request id, deadline (epoch ms), invoked ARN, trace id, client
                               context, Cognito identity, event body
6 REFUSED   platform→runtime   why a post was refused (the runtime writes it to stderr)
7 STREAM    runtime→platform   request id, content type: a streamed response begins
8 CHUNK     runtime→platform   the next bytes of the streamed response (raw)
9 STREAMEND runtime→platform   error type, error document (both empty: it ended well)
==========  =================  ================================================================

A streamed response (strato's Python runtime streams a handler's generator) is one STREAM,
CHUNKs, then one STREAMEND, which a ``next`` follows as it follows a post.

The peer is untrusted (function code can write to the socket): a frame over the size limit is
skipped as it arrives without being buffered (a response then fails with
Function.ResponseSizeTooLarge), and a malformed frame closes the channel, which ends the
runtime. So does a runtime that makes the platform work for nothing: a second ``next`` before
its event came, or more than ``MAX_REFUSALS`` refused posts between two events.
"""

from __future__ import annotations

import asyncio
import logging
import struct

from strato.domain import limits
from strato.scheduler.environment import ExecutionEnvironment, Post
from strato.scheduler.invocation import Invocation

log = logging.getLogger(__name__)

NEXT = 1
RESPONSE = 2
ERROR = 3
INIT_ERROR = 4
EVENT = 5
REFUSED = 6
STREAM = 7
CHUNK = 8
STREAM_END = 9

_HEADER = struct.Struct("!IB")
#: Room for the fields in front of a body (request id, error type).
_FIELDS_MAX = 4096
MAX_FRAME = limits.SYNC_RESPONSE_MAX_BYTES + _FIELDS_MAX
#: Refused posts tolerated between two events (a runtime's honest mistakes are one or two).
MAX_REFUSALS = 8
_REFUSALS = {
    Post.INVALID_REQUEST_ID: b"the platform refused a post: invalid request ID",
    Post.TOO_LARGE: b"the platform refused a response: exceeded maximum allowed payload size "
                    b"(%d bytes)" % limits.SYNC_RESPONSE_MAX_BYTES,
    Post.NOT_IN_INIT: b"the platform refused init/error: only legal during INIT",
}
_STREAM_TOO_LARGE = (b"the platform refused a streamed response: exceeded maximum allowed "
                     b"payload size")


def frame(kind: int, *fields: bytes) -> bytes:
    """One frame of ``kind``; the last of ``fields`` is the body (may hold NULs)."""
    payload = b"\0".join(fields)
    return _HEADER.pack(1 + len(payload), kind) + payload


class RuntimeChannel(asyncio.Protocol):
    """The platform's end of one environment's channel; also the environment's event waiter
    while the runtime waits on it. Runs on the event loop's thread."""

    def __init__(self, env: ExecutionEnvironment) -> None:
        self._env = env
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        #: Bytes still to skip of a frame over the limit.
        self._skip = 0
        #: The runtime has asked for its next event and not received it yet.
        self._waiting = False
        self._refusals = 0
        #: The request id of the response being streamed, and whether a chunk was refused.
        self._streaming: str | None = None
        self._stream_refused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return
            data = data[self._skip:]
            self._skip = 0
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) >= 5:
                length = int.from_bytes(buffer[:4], "big")
                if length <= MAX_FRAME and len(buffer) < 4 + length:
                    return  # a large frame on its way: no copy until it is whole
            data = bytes(buffer)
            buffer.clear()
        offset, size = 0, len(data)
        while size - offset >= 5:
            length, kind = _HEADER.unpack_from(data, offset)
            if length == 0:
                self._violation("an empty frame")
                return
            if length > MAX_FRAME:
                self._oversized(kind, data[offset + 5:offset + 5 + _FIELDS_MAX])
                self._skip = length - 1 - (size - offset - 5)
                if self._skip < 0:  # the whole frame was in this chunk: go on after it
                    offset, self._skip = size + self._skip, 0
                    continue
                return
            end = offset + 4 + length
            if end > size:
                break
            self._on_frame(kind, data[offset + 5:end])
            offset = end
            if self._transport is None:
                return
        if offset < size:
            buffer += data[offset:]

    # EventWaiter
    def deliver(self, invocation: Invocation, deadline_ms: int) -> None:
        self._waiting = False
        self._refusals = 0
        if self._transport is not None:
            self._transport.write(frame(
                EVENT, invocation.request_id.encode(), b"%d" % deadline_ms,
                invocation.invoked_arn.encode(), (invocation.trace_id or "").encode(),
                (invocation.client_context or "").encode(),
                (invocation.cognito_identity or "").encode(), invocation.payload or b"{}"))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # frames
    def _on_frame(self, kind: int, payload: bytes) -> None:
        env = self._env
        if kind == NEXT:
            if self._waiting:
                self._violation("a second next before its event")
                return
            self._waiting = True
            env.runtime_next(self)
        elif kind == RESPONSE:
            request_id, _, body = payload.partition(b"\0")
            self._answer(env.runtime_response(request_id.decode("latin-1"), body))
        elif kind == ERROR:
            parts = payload.split(b"\0", 2)
            if len(parts) != 3:
                self._violation("an error frame without its fields")
                return
            self._answer(env.runtime_error(parts[0].decode("latin-1"), parts[2],
                                           parts[1].decode("utf-8", "replace")))
        elif kind == STREAM:
            if self._streaming is not None:
                self._violation("a stream inside a stream")
                return
            request_id, _, content_type = payload.partition(b"\0")
            self._streaming = request_id.decode("latin-1")
            self._stream_refused = False
            outcome = env.runtime_stream(self._streaming, content_type.decode("latin-1"))
            if outcome is not Post.ACCEPTED:
                # Its chunks and end may already be on their way: skipped, not violations.
                self._stream_refused = True
                self._answer(outcome)
        elif kind == CHUNK:
            if self._streaming is None:
                self._violation("a chunk outside a stream")
                return
            if not self._stream_refused:
                outcome = env.runtime_stream_chunk(self._streaming, payload)
                if outcome is not Post.ACCEPTED:
                    self._stream_refused = True
                    self._answer(outcome)
        elif kind == STREAM_END:
            if self._streaming is None:
                self._violation("the end of a stream never begun")
                return
            raw_type, _, body = payload.partition(b"\0")
            streamed, self._streaming = self._streaming, None
            if not self._stream_refused:
                self._answer(env.runtime_stream_end(
                    streamed, raw_type.decode("utf-8", "replace") or None, body))
        elif kind == INIT_ERROR:
            error_type, _, body = payload.partition(b"\0")
            self._answer(env.runtime_init_error(body, error_type.decode("utf-8", "replace")))
        else:
            self._violation(f"a frame of unknown kind {kind}")

    def _oversized(self, kind: int, start: bytes) -> None:
        """A response or error over the limit: the invocation fails as a response too large
        (when ``start`` names its request id); anything else that large is a violation."""
        if kind not in (RESPONSE, ERROR) or b"\0" not in start:
            self._violation("an oversized frame")
            return
        request_id = start.partition(b"\0")[0].decode("latin-1")
        self._answer(self._env.runtime_response(request_id, None))

    def _answer(self, outcome: Post) -> None:
        if outcome is Post.ACCEPTED:
            return
        self._refusals += 1
        if self._refusals > MAX_REFUSALS:
            self._violation("refused posts over and over")
        elif self._transport is not None:
            refusal = (_STREAM_TOO_LARGE if outcome is Post.TOO_LARGE and self._stream_refused
                       else _REFUSALS[outcome])
            self._transport.write(frame(REFUSED, refusal))

    def _violation(self, what: str) -> None:
        """The runtime broke the protocol: close the channel (the runtime then ends)."""
        log.warning("environment %s sent %s on its runtime channel; closing it",
                    self._env.env_id, what)
        self._skip = 0
        self._buffer.clear()
        self.close()
        self._transport = None
