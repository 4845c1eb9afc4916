"""The environment pool: warm environments per function version, cold starts, reaping.

``invoke`` is the hot path: with a warm environment idle it is a dictionary lookup, a list pop
and a write to the runtime's parked ``next`` request; no database, no task creation. A cold
start spawns an environment (a task) with the invocation already assigned to it.

Environments are keyed by (function name, version, revision id): a configuration or code
update changes the revision, so new invocations never reach an environment of the old one,
and ``retire`` destroys the old ones (idle at once, busy when their invocation ends).
All methods run on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from strato.api.http import serve, serve_socket
from strato.domain.errors import TooManyRequestsException
from strato.domain.models import FunctionVersion
from strato.domain.runtimes import SUPPORTED as RUNTIMES
from strato.domain.runtimes import RuntimeFamily, python_version
from strato.errors import SandboxError, StratoError
from strato.sandbox.base import EGRESS_INTERNET, EGRESS_NONE, EnvironmentSpec, Sandbox
from strato.scheduler import invocation as faults
from strato.scheduler.environment import ExecutionEnvironment, LogSink, State
from strato.scheduler.invocation import Fault, Invocation, InvocationResult
from strato.scheduler.placement import expired, pick_warm

log = logging.getLogger(__name__)

Key = tuple[str, str, str]
#: Builds the environment variables of an environment: (version, runtime API address,
#: log stream) → variables.
EnvironmentBuilder = Callable[[FunctionVersion, str, str, str], Mapping[str, str]]


def key_of(version: FunctionVersion) -> Key:
    return (version.name, version.version, version.revision_id)


class EnvironmentPool:
    def __init__(
        self,
        sandbox: Sandbox,
        sink: LogSink,
        build_environment: EnvironmentBuilder,
        code_dir: Callable[[FunctionVersion], str],
        *,
        keep_alive_s: float,
        account_concurrency: int,
        runtime_api_host: str = "127.0.0.1",
        default_egress: str = EGRESS_INTERNET,
    ) -> None:
        self._sandbox = sandbox
        self._sink = sink
        self._build_environment = build_environment
        self._code_dir = code_dir
        self._keep_alive_s = keep_alive_s
        self._account_concurrency = account_concurrency
        self._host = runtime_api_host
        self._default_egress = default_egress
        self._idle: dict[Key, list[ExecutionEnvironment]] = {}
        self._live: dict[str, ExecutionEnvironment] = {}
        self._busy = 0
        self._reaper: asyncio.Task[None] | None = None
        self._closing = False

    # hot path ---------------------------------------------------------------------------
    def invoke(self, version: FunctionVersion, invocation: Invocation) -> None:
        """Run ``invocation`` on ``version``; its ``on_done`` receives the result.

        Raises TooManyRequestsException (before anything runs) when the account's
        concurrency is exhausted.
        """
        idle = self._idle.get(key_of(version))
        env = pick_warm(idle) if idle else None
        if env is not None:
            assert idle is not None
            idle.remove(env)
            self._busy += 1
            env.assign(invocation)
            return
        if self._busy >= self._account_concurrency:
            raise TooManyRequestsException("Rate Exceeded.", Reason="ConcurrentInvocationLimitExceeded")
        self._busy += 1
        asyncio.ensure_future(self._cold_start(version, invocation))

    # environments -----------------------------------------------------------------------
    async def _cold_start(self, version: FunctionVersion, invocation: Invocation) -> None:
        env_id = uuid.uuid4().hex
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{version.version}]{env_id}"
        env = ExecutionEnvironment(env_id, version, stream, self._sink, self._released, self._dead)
        self._live[env_id] = env
        env.assign(invocation)
        try:
            inside = self._sandbox.runtime_api
            server: asyncio.Server | None = None
            if inside is None:
                server = await serve(env.handle, env.body_limit, self._host, 0)
                port = int(server.sockets[0].getsockname()[1])
                address = f"{self._host}:{port}"
            else:
                port, address = None, inside
            spec = self._spec(version, env_id, address, port, stream)
            try:
                process = await self._sandbox.start(spec)
                if process.runtime_socket is not None:
                    runtime_socket, process.runtime_socket = process.runtime_socket, None
                    server = await serve_socket(env.handle, env.body_limit, runtime_socket)
            except BaseException:
                if server is not None:
                    server.close()
                raise
            if server is None:
                process.kill()
                raise SandboxError("the sandbox gave no Runtime API endpoint")
        except StratoError as exc:
            log.error("cannot start an environment for %s: %s", version.name, exc)
            self._fail_start(env, invocation, str(exc))
            return
        if env.state is State.DEAD:  # retired while starting
            process.kill()
            env.attach(process, server)
            return
        env.attach(process, server)

    def _fail_start(self, env: ExecutionEnvironment, invocation: Invocation, reason: str) -> None:
        env.destroy(Fault(faults.SANDBOX_START_FAILED, reason))
        invocation.finish(InvocationResult(
            Fault(faults.SANDBOX_START_FAILED, f"RequestId: {invocation.request_id} Error: {reason}")
            .payload(), env.version.version, "Unhandled"))

    def _spec(self, version: FunctionVersion, env_id: str, address: str, port: int | None,
              stream: str) -> EnvironmentSpec:
        family = RUNTIMES[version.runtime]
        code_dir = self._code_dir(version)
        task_root = self._sandbox.task_root(code_dir)
        argv = None if family is RuntimeFamily.PYTHON else (f"{task_root}/bootstrap",)
        return EnvironmentSpec(
            env_id=env_id,
            python_version=python_version(version.runtime),
            argv=argv,
            env=self._build_environment(version, address, stream, task_root),
            cwd=code_dir,
            memory_mb=version.memory_size,
            tmp_mb=version.ephemeral_storage,
            egress=self._egress(version),
            runtime_api_port=port,
        )

    def _egress(self, version: FunctionVersion) -> str:
        """A function in a VPC gets no egress of its own (strato has no VPCs to attach it
        to); any other gets the platform's default."""
        return EGRESS_NONE if version.vpc_config.subnet_ids else self._default_egress

    def _released(self, env: ExecutionEnvironment) -> None:
        """An environment finished its INIT or its invocation and is IDLE."""
        if env.retired or self._closing:
            env.destroy()
            return
        self._idle.setdefault(key_of(env.version), []).append(env)
        self._busy -= 1
        self._ensure_reaper()

    def _dead(self, env: ExecutionEnvironment) -> None:
        self._live.pop(env.env_id, None)
        idle = self._idle.get(key_of(env.version))
        if idle and env in idle:
            idle.remove(env)
        else:
            self._busy -= 1

    # control ----------------------------------------------------------------------------
    def retire(self, function_name: str, version: str | None = None) -> None:
        """Destroy the environments of a function (or one of its versions): idle ones now,
        busy ones when their invocation ends. Called after an update or a delete."""
        for env in list(self._live.values()):
            if env.version.name == function_name and version in (None, env.version.version):
                env.retired = True
                if env.state is State.IDLE:
                    env.destroy()

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap_loop())

    async def _reap_loop(self) -> None:
        period = max(0.05, min(self._keep_alive_s / 2, 5.0))
        while any(self._idle.values()):
            await asyncio.sleep(period)
            now = time.monotonic()
            for envs in list(self._idle.values()):
                for env in expired(envs, now, self._keep_alive_s):
                    env.destroy()

    async def close(self) -> None:
        """Destroy every environment and wait (briefly) for their processes to go."""
        self._closing = True
        if self._reaper is not None:
            self._reaper.cancel()
        waits = []
        for env in list(self._live.values()):
            if env.process is not None:
                waits.append(env.process.exited)
            env.destroy()
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 5)
