"""The runtime channel: the Runtime API's operations over a unix stream socket.

An environment forked for the built-in runtime inherits one end of a socket pair whose other
end the platform holds (``strato.runtime_api.channel`` is that side, and documents the frame
format, which this module must match). It carries the same operations as the HTTP Runtime
API (``next``, ``response``, ``error``, ``init/error``) without HTTP or TCP: a frame is a
4-byte big-endian length, a kind byte, and NUL-separated fields, the last one (a body) raw.

Two exchanges are folded into one write: a response or error is sent together with the
``next`` that follows it, and the platform answers a post only when it refuses it (a refusal
is written to stderr, as the HTTP client does with an error status).

Not thread-safe: the invoke loop owns the client. Same interface as ``RuntimeClient``.
"""

from __future__ import annotations

import socket
import struct
import sys

from .client import Invocation, RuntimeApiError

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Sequence

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
_NEXT_FRAME = _HEADER.pack(1, NEXT)
_RECV_SIZE = 256 * 1024
_SMALL_BODY = 64 * 1024
#: A streamed chunk larger than this goes in several frames (the platform's frame limit is
#: a few MB).
_CHUNK_MAX = 1024 * 1024


def _frame(kind: int, fields: Sequence[bytes], body: bytes) -> tuple[bytes, bytes]:
    """A frame of ``kind``: ``fields`` (bytes without NUL) then ``body``."""
    payload = b"\0".join(fields) + b"\0" if fields else b""
    return _HEADER.pack(1 + len(payload) + len(body), kind) + payload, body


def _clean(text: str) -> bytes:
    return text.encode("utf-8", "replace").replace(b"\0", b"")


class ChannelClient:
    """Talks to the platform over the connected stream socket ``fd`` (inherited)."""

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._sock.set_inheritable(False)  # programs the function starts must not get it
        self._sock.setblocking(True)
        self._buffer = bytearray()
        self._asked = False

    def next_invocation(self) -> Invocation:
        """Block until the platform hands out an event."""
        if not self._asked:
            self._send(_NEXT_FRAME, b"")
        self._asked = False
        while True:
            kind, payload = self._read_frame()
            if kind == EVENT:
                fields = payload.split(b"\0", 6)
                if len(fields) != 7:
                    raise RuntimeApiError("malformed event frame from the platform")
                request_id, deadline, arn, trace, client_context, cognito, body = fields
                return Invocation(
                    request_id.decode(),
                    int(deadline) if deadline.isdigit() else 0,
                    arn.decode() or None,
                    trace.decode() or None,
                    client_context.decode() or None,
                    cognito.decode() or None,
                    body,
                )
            if kind == REFUSED:
                sys.stderr.write(f"strato runtime: {payload.decode('utf-8', 'replace')}\n")
                sys.stderr.flush()
                continue
            raise RuntimeApiError(f"unknown frame kind {kind} from the platform")

    def post_response(self, request_id: str, body: bytes) -> None:
        """Post the handler's result (bytes), and ask for the next event with it."""
        self._post(RESPONSE, [_clean(request_id)], body)

    def post_error(self, request_id: str, error_type: str, body: bytes) -> None:
        """Post an invocation's error document (JSON bytes) under ``error_type``."""
        self._post(ERROR, [_clean(request_id), _clean(error_type)], body)

    def begin_stream(self, request_id: str, content_type: str) -> None:
        """Begin streaming the response of ``request_id``: ``write_stream`` its chunks, then
        ``end_stream``."""
        head, body = _frame(STREAM, [_clean(request_id)], _clean(content_type))
        self._send(head + body, b"")

    def write_stream(self, data: bytes) -> None:
        """The next bytes of the streamed response, sent at once."""
        for start in range(0, len(data), _CHUNK_MAX):
            piece = data[start:start + _CHUNK_MAX]
            self._send(_HEADER.pack(1 + len(piece), CHUNK), piece)

    def end_stream(self, error_type: str | None, body: bytes | None) -> None:
        """End the streamed response: well (``error_type`` None), or with an error document;
        asks for the next event with it."""
        self._post(STREAM_END, [_clean(error_type or "")], body or b"")

    def post_init_error(self, error_type: str, body: bytes) -> None:
        """Post the INIT phase's error document (JSON bytes) under ``error_type``."""
        head, body = _frame(INIT_ERROR, [_clean(error_type)], body)
        self._send(head, body)

    def close(self) -> None:
        self._sock.close()

    def _post(self, kind: int, fields: Sequence[bytes], body: bytes) -> None:
        head, body = _frame(kind, fields, body)
        if len(body) <= _SMALL_BODY:
            self._send(head + body + _NEXT_FRAME, b"")
        else:
            self._send(head, body)
            self._send(_NEXT_FRAME, b"")
        self._asked = True

    def _send(self, data: bytes, more: bytes) -> None:
        try:
            self._sock.sendall(data)
            if more:
                self._sock.sendall(more)
        except OSError as exc:
            raise RuntimeApiError(f"runtime channel lost: {exc}") from exc

    def _read_frame(self) -> tuple[int, bytes]:
        buffer = self._buffer
        while True:
            if len(buffer) >= 5:
                length, kind = _HEADER.unpack_from(buffer)
                end = 4 + length
                if len(buffer) >= end:
                    payload = bytes(buffer[5:end])
                    del buffer[:end]
                    return kind, payload
            try:
                chunk = self._sock.recv(_RECV_SIZE)
            except OSError as exc:
                raise RuntimeApiError(f"runtime channel lost: {exc}") from exc
            if not chunk:
                raise RuntimeApiError("the platform closed the runtime channel")
            buffer += chunk
