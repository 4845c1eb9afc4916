"""Opening the Runtime API's transports for each execution environment.

The environment pool calls ``RuntimeApiServer`` (through the scheduler's ``RuntimeApi``
Protocol) around a sandbox start: ``serve_on_host`` before it, when the sandbox gives an
environment no endpoint of its own (the runtime then reaches a host port), and ``serve``
after it, for what the started process brought: its listening socket inside its own network
(namespaces tier) and its runtime channel (built-in runtime). The same call serves strato's
own API on the listening socket an environment brings for it (``platform_socket``, namespaces
tier), through ``platform_api``: the environment's ``AWS_ENDPOINT_URL``.

Every HTTP endpoint has the Runtime API's own limits (``http_limits``), among them a cap on
its open connections past which it stops accepting (``strato.http.listener``). An endpoint in
the environment's own network namespace can be reached by that environment alone. One on a
host port can be reached by anything on the host, so it serves only connections whose peer
socket belongs to the environment's uid (``EnvironmentProcess.uid``), as the kernel reports
it (``strato.sandbox.sock_diag``); a host port is bound by ``serve_on_host`` but accepts
nothing before ``serve`` knows that uid (connections made meanwhile wait in its backlog).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Protocol

from strato.domain.limits import INIT_TIMEOUT_S
from strato.http.limits import HttpLimits
from strato.http.listener import Listener
from strato.http.server import DEFAULT_LIMITS, serve_listener
from strato.http.sweep import DeadlineSweep
from strato.runtime_api.channel import RuntimeChannel
from strato.runtime_api.http_limits import BACKLOG, runtime_api_limits
from strato.runtime_api.routes import RuntimeApiRoutes, streams
from strato.sandbox.base import EnvironmentProcess
from strato.sandbox.sock_diag import SockDiag
from strato.scheduler.environment import ExecutionEnvironment

log = logging.getLogger(__name__)


class PlatformApi(Protocol):
    """Serves strato's own API on a listening socket (``api.platform_endpoint``)."""

    def serve(self, sock: socket.socket) -> Listener:
        """A started listener serving ``sock`` (which it then owns)."""


class Endpoints:
    """What serves one environment: HTTP listeners and a channel; ``close`` stops them all.
    ``host_socket`` is the host port ``serve_on_host`` bound, until ``serve`` serves it."""

    def __init__(self) -> None:
        self.servers: list[Listener] = []
        self.channel: RuntimeChannel | None = None
        self.host_socket: socket.socket | None = None

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.servers.clear()
        if self.host_socket is not None:
            self.host_socket.close()
            self.host_socket = None
        if self.channel is not None:
            self.channel.close()
            self.channel = None


class RuntimeApiServer:
    """Serves environments' Runtime APIs; ``host`` is where host ports are opened, ``limits``
    the API edge's HTTP limits, whose deadlines environments' endpoints share (their sizes
    are the Runtime API's own). Their connections share one deadline sweep, so that many
    small servers cost one timer."""

    def __init__(self, host: str = "127.0.0.1", *, limits: HttpLimits = DEFAULT_LIMITS,
                 platform_api: PlatformApi | None = None) -> None:
        """Without ``platform_api``, a platform socket an environment brings is closed."""
        self._host = host
        self._platform_api = platform_api
        self._limits = runtime_api_limits(limits)
        self._sweep = DeadlineSweep()
        #: Opened with the first host port, closed by ``close``.
        self._sock_diag: SockDiag | None = None

    def close(self) -> None:
        """Close what is shared by every environment's endpoints (not the endpoints: each
        environment closes its own). Idempotent."""
        if self._sock_diag is not None:
            self._sock_diag.close()
            self._sock_diag = None

    def _limits_of(self, env: ExecutionEnvironment) -> HttpLimits:
        # A runtime's connection is quiet while its function runs: never idle out before the
        # environment's own limits (INIT, then the function's timeout) end it.
        return self._limits.idle_at_least(INIT_TIMEOUT_S + env.version.timeout)

    async def serve_on_host(self, env: ExecutionEnvironment) -> tuple[Endpoints, str]:
        """Bind a free host port for ``env``'s HTTP Runtime API (served from ``serve`` on);
        returns the endpoints and the address (``host:port``) to give the environment."""
        endpoints = Endpoints()
        endpoints.host_socket = socket.create_server((self._host, 0), backlog=BACKLOG)
        port = endpoints.host_socket.getsockname()[1]
        return endpoints, f"{self._host}:{port}"

    async def serve(self, env: ExecutionEnvironment, endpoints: Endpoints | None,
                    process: EnvironmentProcess) -> Endpoints:
        """Serve ``env`` through the listening socket and the channel that ``process``
        brought (both taken from it: the endpoints own them from here). Closes everything
        it opened if it fails."""
        endpoints = endpoints or Endpoints()
        listening, process.runtime_socket = process.runtime_socket, None
        channel, process.runtime_channel = process.runtime_channel, None
        platform, process.platform_socket = process.platform_socket, None
        try:
            if platform is not None:
                if self._platform_api is not None:
                    endpoints.servers.append(self._platform_api.serve(platform))
                else:
                    platform.close()
                platform = None
            if listening is not None:
                endpoints.servers.append(self._start(env, listening, None))
                listening = None
            if endpoints.host_socket is not None:
                endpoints.servers.append(self._start(env, endpoints.host_socket, process.uid))
                endpoints.host_socket = None
            if channel is not None:
                channel.setblocking(False)
                loop = asyncio.get_running_loop()
                _, protocol = await loop.connect_accepted_socket(
                    lambda: RuntimeChannel(env), sock=channel)
                channel = None
                endpoints.channel = protocol
        except BaseException:
            for sock in (listening, channel, platform):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            endpoints.close()
            raise
        return endpoints

    def _start(self, env: ExecutionEnvironment, sock: socket.socket, uid: int | None) -> Listener:
        """Serve ``env``'s routes on the listening ``sock``; only to peers of ``uid`` when
        it is given (a host port)."""
        routes = RuntimeApiRoutes(env)
        admit = None if uid is None else self._peer_check(env, uid)
        listener = serve_listener(routes.handle, routes.body_limit, sock,
                                  limits=self._limits_of(env), sweep=self._sweep, admit=admit,
                                  streams=streams)
        listener.start()
        return listener

    def _peer_check(self, env: ExecutionEnvironment, uid: int) -> Callable[[socket.socket], bool]:
        if self._sock_diag is None:
            self._sock_diag = SockDiag()
        sock_diag = self._sock_diag
        refused = 0

        def admit(connection: socket.socket) -> bool:
            nonlocal refused
            owner = sock_diag.peer_uid(connection)
            if owner == uid:
                return True
            # Another environment (or any other process on the host) knocking: the runtime
            # never sees it; the operator hears of the first one (not of a flood).
            refused += 1
            if refused == 1:
                log.warning("refused a connection to the Runtime API of environment %s from "
                            "uid %s (the environment runs as uid %d)", env.env_id, owner, uid)
            return False

        return admit
