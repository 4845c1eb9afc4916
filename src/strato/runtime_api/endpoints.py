"""Opening the Runtime API's transports for each execution environment.

The environment pool calls ``RuntimeApiServer`` (through the scheduler's ``RuntimeApi``
Protocol) around a sandbox start: ``serve_on_host`` before it, when the sandbox gives an
environment no endpoint of its own (the runtime then reaches a host port), and ``serve``
after it, for what the started process brought: its listening socket inside its own network
(namespaces tier) and its runtime channel (built-in runtime).
"""

from __future__ import annotations

import asyncio
import contextlib

from strato.domain.limits import INIT_TIMEOUT_S
from strato.http.limits import HttpLimits
from strato.http.server import DEFAULT_LIMITS, serve, serve_socket
from strato.http.sweep import DeadlineSweep
from strato.runtime_api.channel import RuntimeChannel
from strato.runtime_api.routes import RuntimeApiRoutes
from strato.sandbox.base import EnvironmentProcess
from strato.scheduler.environment import ExecutionEnvironment


class Endpoints:
    """What serves one environment: HTTP servers and a channel; ``close`` stops them all."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.channel: RuntimeChannel | None = None

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.servers.clear()
        if self.channel is not None:
            self.channel.close()
            self.channel = None


class RuntimeApiServer:
    """Serves environments' Runtime APIs; ``host`` is where host ports are opened, ``limits``
    the HTTP limits of every environment's server (their connections share one deadline
    sweep, so that many small servers cost one timer)."""

    def __init__(self, host: str = "127.0.0.1", *, limits: HttpLimits = DEFAULT_LIMITS) -> None:
        self._host = host
        self._limits = limits
        self._sweep = DeadlineSweep()

    def _limits_of(self, env: ExecutionEnvironment) -> HttpLimits:
        # A runtime's connection is quiet while its function runs: never idle out before the
        # environment's own limits (INIT, then the function's timeout) end it.
        return self._limits.idle_at_least(INIT_TIMEOUT_S + env.version.timeout)

    async def serve_on_host(self, env: ExecutionEnvironment) -> tuple[Endpoints, str]:
        """Serve ``env``'s HTTP Runtime API on a free host port; returns the endpoints and
        the address (``host:port``) to give the environment."""
        routes = RuntimeApiRoutes(env)
        server = await serve(routes.handle, routes.body_limit, self._host, 0,
                             limits=self._limits_of(env), sweep=self._sweep)
        endpoints = Endpoints()
        endpoints.servers.append(server)
        return endpoints, f"{self._host}:{server.sockets[0].getsockname()[1]}"

    async def serve(self, env: ExecutionEnvironment, endpoints: Endpoints | None,
                    process: EnvironmentProcess) -> Endpoints:
        """Serve ``env`` through the listening socket and the channel that ``process``
        brought (both taken from it: the endpoints own them from here). Closes everything
        it opened if it fails."""
        endpoints = endpoints or Endpoints()
        listening, process.runtime_socket = process.runtime_socket, None
        channel, process.runtime_channel = process.runtime_channel, None
        try:
            if listening is not None:
                routes = RuntimeApiRoutes(env)
                endpoints.servers.append(await serve_socket(
                    routes.handle, routes.body_limit, listening, limits=self._limits_of(env),
                    sweep=self._sweep))
                listening = None
            if channel is not None:
                channel.setblocking(False)
                loop = asyncio.get_running_loop()
                _, protocol = await loop.connect_accepted_socket(
                    lambda: RuntimeChannel(env), sock=channel)
                channel = None
                endpoints.channel = protocol
        except BaseException:
            for sock in (listening, channel):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            endpoints.close()
            raise
        return endpoints
