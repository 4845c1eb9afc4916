"""Listening: ``serve`` on a host and port, ``serve_socket`` on a socket already listening,
``serve_listener`` on a socket already listening with a hard cap and a peer check.

Each call makes one endpoint: its connections share the handler, the ``HttpLimits``
(``max_connections`` counts this server's connections alone) and a ``DeadlineSweep``, which
servers may share too (pass the same one) so that many small servers cost one timer.
``serve`` and ``serve_socket`` make connections over the cap wait in the process, then turn
them away (``ConnectionSlots``); ``serve_listener`` leaves them in the kernel's backlog
(``Listener``), for endpoints whose clients must not cost the process anything past the cap.
"""

from __future__ import annotations

import asyncio
import socket

from strato.http.limits import HttpLimits
from strato.http.listener import Listener, PeerCheck
from strato.http.protocol import Endpoint, HttpProtocol
from strato.http.request import BodyLimit, Handler, Streams
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
    streams: Streams | None = None,
) -> asyncio.Server:
    """Serve on an already listening ``sock`` (which the server then owns)."""
    endpoint = Endpoint(handler, body_limit, limits, sweep or DeadlineSweep(), streams)
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    return await loop.create_server(lambda: HttpProtocol(endpoint), sock=sock)


def serve_listener(
    handler: Handler, body_limit: BodyLimit, sock: socket.socket, *,
    limits: HttpLimits = DEFAULT_LIMITS, sweep: DeadlineSweep | None = None,
    admit: PeerCheck | None = None, streams: Streams | None = None,
) -> Listener:
    """A ``Listener`` serving ``sock`` (which it then owns), not yet started: at most
    ``limits.max_connections`` connections open, each one's peer first checked by ``admit``
    (when given). ``streams`` picks the requests whose body the handler takes as it arrives."""
    endpoint = Endpoint(handler, body_limit, limits, sweep or DeadlineSweep(), streams)
    listener = Listener(sock, lambda: HttpProtocol(endpoint), limits.max_connections, admit)
    endpoint.closed = listener.closed
    return listener
