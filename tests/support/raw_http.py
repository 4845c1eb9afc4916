"""A raw HTTP/1.1 client on a plain socket, for tests that must send what no HTTP library
would (oversized heads, partial bodies, pipelines never read) and see exactly what comes back.

``RawConnection.read_response`` reads one response framed by ``Content-Length``;
``wait_closed`` waits for the server to close the connection. Both take a deadline and fail
the test when it passes.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.support.signing import sign


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def request_bytes(method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> bytes:
    """``method target`` with ``headers`` and ``body`` (``Content-Length`` is not added)."""
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


def signed_invoke(endpoint: str, function: str, payload: bytes = b"{}") -> bytes:
    """A complete SigV4-signed invoke of ``function`` (valid for five minutes, replayable)."""
    url = f"{endpoint}/2015-03-31/functions/{function}/invocations"
    headers = sign("POST", url, payload, {"Content-Type": "application/json"})
    headers["Host"] = urlsplit(endpoint).netloc
    headers["Content-Length"] = str(len(payload))
    return request_bytes("POST", urlsplit(url).path, headers, payload)


class RawConnection:
    def __init__(self, endpoint: str, timeout: float = 10.0, *, receive_buffer: int = 0) -> None:
        """``receive_buffer``: a small ``SO_RCVBUF`` (set before connecting), for a client
        whose unread answers back up into the server quickly."""
        parts = urlsplit(endpoint)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout)
        self.sock.connect((parts.hostname, parts.port))
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_all_tolerating_close(self, data: bytes) -> None:
        """Send ``data``; a server that answers and closes before it is all sent ends it."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read more into the buffer; False at end of stream."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        self._buffer += data
        return bool(data)

    def read_response(self, timeout: float = 10.0) -> Response:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill(deadline):
                raise ConnectionError(f"closed before a complete head: {self._buffer[:200]!r}")
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            if not self._fill(deadline):
                raise ConnectionError("closed before a complete body")
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Response(status, headers, body)

    def wait_closed(self, timeout: float = 10.0) -> None:
        """Return once the server has closed (discarding anything it still sends)."""
        deadline = time.monotonic() + timeout
        self._buffer = b""
        while self._fill(deadline):
            self._buffer = b""
