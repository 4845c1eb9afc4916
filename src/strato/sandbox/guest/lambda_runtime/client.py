"""A Runtime API client: HTTP/1.1 over one persistent TCP connection.

https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html (API version 2018-06-01).
http.client costs hundreds of microseconds per exchange; this writes each request with one
``sendall`` and parses the response head by hand, which keeps an exchange to tens of
microseconds. Only what the Runtime API needs is supported: every request carries
``Content-Length`` (but a streamed response, sent chunked with its error in trailers), and
every response must too (a response framed any other way, e.g.
chunked, is a ``RuntimeApiError``). A connection the server closed is reopened, and the
request resent, once.

Not thread-safe: the invoke loop owns the client.
"""

from __future__ import annotations

import base64
import socket
import sys

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Mapping

_PREFIX = "/2018-06-01/runtime"
_MAX_HEAD = 64 * 1024
_RECV_SIZE = 64 * 1024
_SMALL_BODY = 64 * 1024


class RuntimeApiError(Exception):
    """The Runtime API could not be reached or answered something unusable."""


class _ConnectionLost(Exception):
    """The server closed the connection before a complete response (retryable once)."""


class Invocation:
    """One event from ``invocation/next``: its metadata and the raw event ``body``."""

    __slots__ = ("request_id", "deadline_ms", "invoked_function_arn", "trace_id",
                 "client_context", "cognito_identity", "body")

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str | None,
                 trace_id: str | None, client_context: str | None,
                 cognito_identity: str | None, body: bytes) -> None:
        self.request_id = request_id
        self.deadline_ms = deadline_ms
        self.invoked_function_arn = invoked_function_arn
        self.trace_id = trace_id
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        self.body = body

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], body: bytes) -> Invocation:
        """From the ``Lambda-Runtime-*`` headers of an HTTP ``next`` response."""
        deadline = headers.get("lambda-runtime-deadline-ms")
        return cls(
            headers.get("lambda-runtime-aws-request-id", ""),
            int(deadline) if deadline and deadline.isdigit() else 0,
            headers.get("lambda-runtime-invoked-function-arn"),
            headers.get("lambda-runtime-trace-id"),
            headers.get("lambda-runtime-client-context"),
            headers.get("lambda-runtime-cognito-identity"),
            body,
        )


class RuntimeClient:
    """Talks to the Runtime API at ``address`` (``host:port``, as AWS_LAMBDA_RUNTIME_API)."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise RuntimeApiError(f"bad Runtime API address {address!r}")
        # A bytes host: getaddrinfo would otherwise encode a str with the idna codec, whose
        # import (with unicodedata) costs about a millisecond on the first connect.
        self._address = (host.strip("[]").encode("ascii", "replace"), int(port))
        self._host = address.encode("ascii")
        self._next_request = (
            b"GET " + _PREFIX.encode() + b"/invocation/next HTTP/1.1\r\nHost: " + self._host
            + b"\r\nContent-Length: 0\r\n\r\n"
        )
        self._sock: socket.socket | None = None
        self._leftover = b""

    def next_invocation(self) -> Invocation:
        """Block until the platform hands out an event. Raises RuntimeApiError unless 200."""
        status, headers, body = self._exchange(self._next_request, b"")
        if status != 200:
            raise RuntimeApiError(
                f"GET {_PREFIX}/invocation/next answered {status}: {body[:500]!r}")
        return Invocation.from_headers(headers, body)

    def post_response(self, request_id: str, body: bytes) -> int:
        """Post the handler's result (bytes). Returns the status; a refusal is logged."""
        return self._post(f"{_PREFIX}/invocation/{request_id}/response", body, None)

    def post_error(self, request_id: str, error_type: str, body: bytes) -> int:
        """Post an invocation's error document (JSON bytes) under ``error_type``."""
        return self._post(f"{_PREFIX}/invocation/{request_id}/error", body, error_type)

    def begin_stream(self, request_id: str, content_type: str) -> None:
        """Begin streaming the response of ``request_id`` (the Runtime API's streaming
        response mode): ``write_stream`` its chunks, then ``end_stream``."""
        sock = self._sock or self._connect()
        head = (b"POST " + f"{_PREFIX}/invocation/{request_id}/response".encode()
                + b" HTTP/1.1\r\nHost: " + self._host
                + b"\r\nContent-Type: " + content_type.encode("latin-1", "replace")
                + b"\r\nLambda-Runtime-Function-Response-Mode: streaming"
                + b"\r\nTransfer-Encoding: chunked"
                + b"\r\nTrailer: Lambda-Runtime-Function-Error-Type, "
                + b"Lambda-Runtime-Function-Error-Body\r\n\r\n")
        self._send_streamed(sock, head)

    def write_stream(self, data: bytes) -> None:
        """The next bytes of the streamed response, sent at once as one chunk."""
        if data and self._sock is not None:
            self._send_streamed(self._sock, b"%x\r\n" % len(data) + data + b"\r\n")

    def end_stream(self, error_type: str | None, body: bytes | None) -> int:
        """End the streamed response: well (``error_type`` None), or with an error document
        in the trailers (its body base64). Returns the status."""
        sock = self._sock
        if sock is None:
            raise RuntimeApiError("Runtime API connection lost while streaming")
        trailers = b""
        if error_type is not None:
            trailers = (b"Lambda-Runtime-Function-Error-Type: " + error_type.encode("latin-1", "replace")
                        + b"\r\nLambda-Runtime-Function-Error-Body: "
                        + base64.b64encode(body or b"") + b"\r\n")
        self._send_streamed(sock, b"0\r\n" + trailers + b"\r\n")
        try:
            status, _, answer = self._read_response(sock)
        except (_ConnectionLost, OSError) as exc:
            self.close()
            raise RuntimeApiError(f"Runtime API connection lost: {exc}") from exc
        if status >= 300:
            sys.stderr.write(f"strato runtime: streamed response answered {status}: "
                             f"{answer[:500].decode('utf-8', 'replace')}\n")
            sys.stderr.flush()
        return status

    def _send_streamed(self, sock: socket.socket, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError as exc:
            self.close()
            raise RuntimeApiError(f"Runtime API connection lost while streaming: {exc}") from exc

    def post_init_error(self, error_type: str, body: bytes) -> int:
        """Post the INIT phase's error document (JSON bytes) under ``error_type``."""
        return self._post(f"{_PREFIX}/init/error", body, error_type)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._leftover = b""

    def _post(self, path: str, body: bytes, error_type: str | None) -> int:
        head = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self._host
        if error_type is not None:
            head += b"\r\nLambda-Runtime-Function-Error-Type: " + error_type.encode()
        head += b"\r\nContent-Length: %d\r\n\r\n" % len(body)
        status, _, answer = self._exchange(head, body)
        if status >= 300:
            # The loop carries on with ``next``: the platform has already decided the outcome
            # (e.g. 413 for a response over 6 MB) and will say so in its own logs.
            sys.stderr.write(f"strato runtime: POST {path} answered {status}: "
                             f"{answer[:500].decode('utf-8', 'replace')}\n")
            sys.stderr.flush()
        return status

    def _exchange(self, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
        for attempt in (1, 2):
            sock = self._sock
            reused = sock is not None
            if sock is None:
                sock = self._connect()
            try:
                if len(body) <= _SMALL_BODY:
                    sock.sendall(head + body)
                else:
                    sock.sendall(head)
                    sock.sendall(body)
                return self._read_response(sock)
            except (_ConnectionLost, ConnectionError) as exc:
                self.close()
                if attempt == 2 or not reused:
                    raise RuntimeApiError(f"Runtime API connection lost: {exc}") from exc
            except OSError as exc:
                self.close()
                raise RuntimeApiError(f"Runtime API I/O failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _connect(self) -> socket.socket:
        try:
            # A bytes host, as typeshed does not allow: see __init__.
            sock = socket.create_connection(self._address)  # type: ignore[arg-type]
        except OSError as exc:
            raise RuntimeApiError(
                f"cannot connect to the Runtime API at {self._host.decode()}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return sock

    def _read_response(self, sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
        data = self._leftover
        self._leftover = b""
        end = data.find(b"\r\n\r\n")
        while end < 0:
            if len(data) > _MAX_HEAD:
                raise RuntimeApiError("Runtime API response head is too large")
            chunk = sock.recv(_RECV_SIZE)
            if not chunk:
                raise _ConnectionLost("closed before a complete response head")
            data += chunk
            end = data.find(b"\r\n\r\n", max(0, len(data) - len(chunk) - 3))
        lines = data[:end].decode("utf-8", "replace").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[1].isdigit():
            raise RuntimeApiError(f"bad Runtime API status line {lines[0]!r}")
        status = int(status_line[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self._read_body(sock, status, headers, data[end + 4:])
        keep_alive = headers.get("connection", "").lower()
        if keep_alive == "close" or (status_line[0] == "HTTP/1.0" and keep_alive != "keep-alive"):
            self.close()
        return status, headers, body

    def _read_body(self, sock: socket.socket, status: int, headers: Mapping[str, str],
                   body: bytes) -> bytes:
        length = headers.get("content-length")
        if length is None:
            if status in (204, 304) or status < 200:
                return b""
            framing = headers.get("transfer-encoding", "none")
            raise RuntimeApiError(
                f"Runtime API response {status} has no Content-Length "
                f"(transfer-encoding: {framing}); only Content-Length framing is supported")
        if not length.isdigit():
            raise RuntimeApiError(f"bad Content-Length {length!r} from the Runtime API")
        missing = int(length) - len(body)
        if missing < 0:
            self._leftover = body[int(length):]
            return body[:int(length)]
        parts = [body]
        while missing > 0:
            chunk = sock.recv(min(missing, 1 << 20))
            if not chunk:
                raise _ConnectionLost("closed in the middle of a response body")
            parts.append(chunk)
            missing -= len(chunk)
        return b"".join(parts) if len(parts) > 1 else body
