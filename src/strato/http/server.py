"""Listening: ``serve`` on a host and port, ``serve_socket`` on a socket already listening.

Each call makes one endpoint: its connections share the handler, the ``HttpLimits``
(``max_connections`` counts this server's connections alone) and a ``DeadlineSweep``, which
servers may share too (pass the same one) so that many small servers cost one timer.
"""

from __future__ import annotations

import asyncio
import socket

from strato.http.limits import HttpLimits
from strato.http.protocol import Endpoint, HttpProtocol
from strato.http.request import BodyLimit, Handler
from strato.http.sweep import DeadlineSweep

DEFAULT_LIMITS = HttpLimits()


async def serve(
    handler: Handler, body_limit: BodyLimit, host: str, port: int, *,
    limits: HttpLimits = DEFAULT_LIMITS, sweep: DeadlineSweep | None = None,
) -> asyncio.Server:
    """Listen on ``host:port`` (port 0 picks a free one) and serve until the server closes."""
    endpoint = Endpoint(handler, body_limit, limits, sweep or DeadlineSweep())
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpProtocol(endpoint), host, port, reuse_address=True, backlog=1024
    )


async def serve_socket(
    handler: Handler, body_limit: BodyLimit, sock: socket.socket, *,
    limits: HttpLimits = DEFAULT_LIMITS, sweep: DeadlineSweep | None = None,
) -> asyncio.Server:
    """Serve on an already listening ``sock`` (which the server then owns)."""
    endpoint = Endpoint(handler, body_limit, limits, sweep or DeadlineSweep())
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    return await loop.create_server(lambda: HttpProtocol(endpoint), sock=sock)
