"""strato's API as execution environments reach it from inside their own network.

In the namespaces tier each environment brings a listening socket in its network namespace
at ``127.0.0.1`` and strato's own port (``sandbox.local.inside_platform_port``), so that the
address is the one clients on the host use (``sandbox/guest/confine.py``); the Runtime API
server hands it here (``PlatformApi``) and it is served by the very handler of the API's
endpoint, with its limits: the same operations, the same SigV4 authentication (the
environment signs with its role session's credentials), and nothing else of the host
reachable. The endpoint is made before the API's handler exists (environments may start
while the server is being built): until ``bind``, a request is answered 503 and the
client's SDK retries it.
"""

from __future__ import annotations

import socket

from strato.http.limits import HttpLimits
from strato.http.listener import Listener
from strato.http.request import BodyLimit, Handler, Request, Responder
from strato.http.server import serve_listener
from strato.http.sweep import DeadlineSweep

_NOT_YET = b'{"__type":"ServiceUnavailableException","message":"strato is starting"}'


class PlatformEndpoint:
    """``serve(sock)``: a listener of one environment's platform socket. Loop thread only."""

    def __init__(self, limits: HttpLimits) -> None:
        self._limits = limits
        self._sweep = DeadlineSweep()
        self._handler: Handler | None = None
        self._body_limit: BodyLimit | None = None

    def bind(self, handler: Handler, body_limit: BodyLimit) -> None:
        """Serve the API's ``handler`` from now on (on every endpoint, old and new)."""
        self._handler, self._body_limit = handler, body_limit

    def _handle(self, request: Request, responder: Responder) -> None:
        if self._handler is None:
            responder.send(503, [("Content-Type", "application/json")], _NOT_YET)
            return
        self._handler(request, responder)

    def _limit(self, method: str, path: str) -> int:
        return 0 if self._body_limit is None else self._body_limit(method, path)

    def serve(self, sock: socket.socket) -> Listener:
        listener = serve_listener(self._handle, self._limit, sock, limits=self._limits,
                                  sweep=self._sweep)
        listener.start()
        return listener
