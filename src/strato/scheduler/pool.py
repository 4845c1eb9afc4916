"""The environment pool: warm environments per function version, cold starts, provisioned
concurrency, concurrency leases, reaping.

``invoke`` is the hot path: it takes a concurrency lease (``concurrency.ConcurrencyLimits``;
a 429 when there is none) and, with a warm environment idle, it is a dictionary lookup, a
list pop (where ``placement.place`` says) and a write to the runtime's parked ``next``
request; no database, no task creation.
Environments are picked in this order: provisioned ones of the version, then on-demand idle
ones, then a cold start, which also needs a burst scaling token and spawns an environment (a
task) with the invocation already assigned to it. The environment returns the lease when the
invocation finishes, whatever the outcome (``ExecutionEnvironment`` guarantees one
``on_finished`` per assigned invocation).

Environments are keyed by (function name, version, revision id): a configuration or code
update changes the revision, so new invocations never reach an environment of the old one,
and ``retire`` destroys the old ones (idle at once, busy when their invocation ends).

Provisioned concurrency (``provision``): environments started without an invocation, which
run INIT and wait IDLE; never reaped, replaced when they die while their configuration
stands, retried with a backoff when their INIT fails
(https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html).
All methods run on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from strato.domain.models import FunctionVersion
from strato.errors import SandboxError, StratoError
from strato.sandbox.base import EGRESS_INTERNET, EGRESS_NONE, EnvironmentProcess, EnvironmentSpec, Sandbox
from strato.sandbox.launch import Launchers
from strato.scheduler.concurrency import (
    ACCOUNT_LIMIT_EXCEEDED,
    ConcurrencyLimits,
    ProvisionedStatus,
    provisioned_status,
    provisioning_backoff,
    throttled,
)
from strato.scheduler.environment import ExecutionEnvironment, RuntimeEndpoints, State
from strato.scheduler.invocation import Invocation, function_deleted
from strato.scheduler.layer_paths import LayerPlacement
from strato.scheduler.log_capture import LogSink
from strato.scheduler.placement import Source, expired, pick_warm, place, worn_out

log = logging.getLogger(__name__)

Key = tuple[str, str, str]
#: A provisioned concurrency configuration: (function name, qualifier the user named).
ConfigId = tuple[str, str]
#: Builds the environment variables of an environment: (version, runtime API address,
#: log stream, task root, initialization type, runtime directory or None) → variables.
EnvironmentBuilder = Callable[[FunctionVersion, str, str, str, str, str | None], Mapping[str, str]]
#: ``AWS_LAMBDA_INITIALIZATION_TYPE`` of the two kinds of environments.
ON_DEMAND = "on-demand"
PROVISIONED = "provisioned-concurrency"
#: What ``_place`` reads for a version without idle environments (never written to).
_NOTHING_IDLE: list[ExecutionEnvironment] = []


class RuntimeApi(Protocol):
    """Serves environments' Runtime APIs (``strato.runtime_api.endpoints``)."""

    async def serve_on_host(self, env: ExecutionEnvironment) -> tuple[Any, str]:
        """Before the start: serve ``env`` on a host port; (endpoints, ``host:port``)."""

    async def serve(self, env: ExecutionEnvironment, endpoints: Any,
                    process: EnvironmentProcess) -> RuntimeEndpoints:
        """After the start: serve ``env`` through what ``process`` brought, added to the
        endpoints ``serve_on_host`` returned (or None)."""

    def close(self) -> None:
        """Free what serving took beyond each environment's endpoints (the pool calls it
        once its environments are destroyed)."""


def key_of(version: FunctionVersion) -> Key:
    return (version.name, version.version, version.revision_id)


def _matches(version: FunctionVersion, function_name: str, qualifier: str | None) -> bool:
    return version.name == function_name and qualifier in (None, version.version)


class _Provisioned:
    """The pool's state of one provisioned concurrency configuration.

    ``starting`` and ``ready`` hold the ids of its environments in INIT and initialised (idle
    or busy); ``stale`` is set when its version was retired or the config removed: nothing is
    started for it until ``provision`` is called again."""

    __slots__ = ("config_id", "version", "requested", "starting", "ready", "failure",
                 "failures", "retry", "stale")

    def __init__(self, config_id: ConfigId, version: FunctionVersion, requested: int) -> None:
        self.config_id = config_id
        self.version = version
        self.requested = requested
        self.starting: set[str] = set()
        self.ready: set[str] = set()
        self.failure: str | None = None
        self.failures = 0
        self.retry: asyncio.TimerHandle | None = None
        self.stale = False

    @property
    def alive(self) -> int:
        return len(self.starting) + len(self.ready)

    def cancel_retry(self) -> None:
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None


class EnvironmentPool:
    def __init__(
        self,
        sandbox: Sandbox,
        runtime_api: RuntimeApi,
        sink: LogSink,
        build_environment: EnvironmentBuilder,
        code_dir: Callable[[FunctionVersion], str],
        *,
        keep_alive_s: float,
        account_concurrency: int,
        burst: int = 1000,
        burst_window_s: float = 10.0,
        default_egress: str = EGRESS_INTERNET,
        launchers: Launchers | None = None,
        max_environment_age_s: float | None = None,
        layers: LayerPlacement | None = None,
    ) -> None:
        """``max_environment_age_s``: an environment older than that (since its process
        started) takes no invocation that could outlast it, and is destroyed instead (what
        it was given at start, such as role credentials, lasts that long)."""
        self._sandbox = sandbox
        self._launchers = launchers or Launchers.builtin(shown=sandbox.shows_views)
        self._max_age_s = max_environment_age_s
        self._runtime_api = runtime_api
        self._sink = sink
        self._build_environment = build_environment
        self._code_dir = code_dir
        self._layers = layers
        self._keep_alive_s = keep_alive_s
        self._limits = ConcurrencyLimits(account_concurrency, burst=burst,
                                         burst_window_s=burst_window_s)
        self._default_egress = default_egress
        #: On-demand and provisioned idle environments, each list in the order they became
        #: idle, as ``placement.pick_warm`` requires.
        self._idle: dict[Key, list[ExecutionEnvironment]] = {}
        self._provisioned_idle: dict[Key, list[ExecutionEnvironment]] = {}
        self._live: dict[str, ExecutionEnvironment] = {}
        self._configs: dict[ConfigId, _Provisioned] = {}
        #: Provisioned environment id → its configuration (absent once detached from it).
        self._owners: dict[str, _Provisioned] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._starting: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def limits(self) -> ConcurrencyLimits:
        """The account's concurrency bookkeeping: ``in_flight``, ``unreserved_limit``,
        ``reserved`` for GetAccountSettings and GetFunctionConcurrency; ``forget`` when a
        function is deleted. Reservations change through ``set_reserved``."""
        return self._limits

    # hot path ---------------------------------------------------------------------------
    def invoke(self, version: FunctionVersion, invocation: Invocation) -> None:
        """Run ``invocation`` on ``version``; its ``on_done`` receives the result.

        Raises TooManyRequestsException (before anything runs) when the function's reserved
        concurrency, the unreserved pool or the function's burst scaling is exhausted.
        """
        name = version.name
        self._limits.acquire(name)
        try:
            env = self._place(version)
        except BaseException:
            self._limits.release(name)
            raise
        env.assign(invocation)  # from here the environment returns the lease (_finished)

    def _place(self, version: FunctionVersion) -> ExecutionEnvironment:
        """The environment ``placement.place`` picks for ``version``: a provisioned idle one,
        else an on-demand idle one, else a new one (cold start) when a scaling token allows
        it. Caller holds a lease."""
        key = (version.name, version.version, version.revision_id)
        while True:
            provisioned = self._provisioned_idle.get(key, _NOTHING_IDLE)
            on_demand = self._idle.get(key, _NOTHING_IDLE)
            source = place(provisioned, on_demand)
            if source is Source.COLD_START:
                break
            idle = provisioned if source is Source.PROVISIONED else on_demand
            env = idle.pop(pick_warm(idle))
            if not worn_out(env.spawned_at, time.monotonic(), version.timeout, self._max_age_s):
                return env
            env.destroy()
        if not self._limits.take_scaling_token(version.name):
            # AWS documents a 429 when burst scaling runs out but not its Reason; this is the
            # Reason it gives for concurrency exhausted outside a reservation.
            raise throttled(ACCOUNT_LIMIT_EXCEEDED)
        env = self._new_environment(version, ON_DEMAND)
        self._schedule_start(env)
        return env

    # environments -----------------------------------------------------------------------
    def _new_environment(self, version: FunctionVersion, initialization_type: str) -> ExecutionEnvironment:
        """An environment in INIT, registered as live; the caller schedules ``_start``."""
        env_id = uuid.uuid4().hex
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{version.version}]{env_id}"
        env = ExecutionEnvironment(env_id, version, stream, self._sink, self._released, self._dead,
                                   on_finished=self._finished, on_restart=self._restarting,
                                   initialization_type=initialization_type)
        self._live[env_id] = env
        return env

    def _schedule_start(self, env: ExecutionEnvironment) -> None:
        task = asyncio.ensure_future(self._start(env))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start(self, env: ExecutionEnvironment) -> None:
        """Start ``env``'s process and hand it over. Any failure destroys ``env`` with
        ``Sandbox.StartFailed`` (its invocation, if any, fails with it); nothing stays half
        started, not even when the task is cancelled."""
        if env.dead:  # destroyed (closed, retired) before it started
            return
        try:
            if self._closing:
                raise SandboxError("strato is shutting down")
            process, endpoints = await self._launch(env)
        except StratoError as exc:
            log.error("cannot start an environment for %s: %s", env.version.name, exc)
            env.fail_start(str(exc))
            return
        except Exception as exc:  # reported to the invocation waiting for it, not swallowed
            log.exception("cannot start an environment for %s", env.version.name)
            env.fail_start(f"{type(exc).__name__}: {exc}")
            return
        except BaseException:
            env.destroy()
            raise
        if env.dead:  # retired or closed while starting
            process.kill()
        env.attach(process, endpoints)

    def _restarting(self, env: ExecutionEnvironment, old: EnvironmentProcess | None) -> None:
        """``env``'s runtime timed out or crashed and ``env`` is back in INIT: offer it for
        placement now (the next invocation waits for its INIT, as on Lambda) and restart its
        runtime in it once ``old`` has exited."""
        if env.retired or self._closing or old is None:
            env.destroy()
            if old is not None:
                old.exited.add_done_callback(lambda _: old.release())
            return
        idle_by_key = self._provisioned_idle if env.env_id in self._owners else self._idle
        idle_by_key.setdefault(key_of(env.version), []).append(env)
        self._ensure_reaper()
        task = asyncio.ensure_future(self._restart(env, old))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _restart(self, env: ExecutionEnvironment, old: EnvironmentProcess) -> None:
        """Start ``env``'s runtime again in its environment (``Sandbox.restart``) once ``old``
        has exited, and hand the new process over; ``old`` is released in any case. A
        failure destroys ``env`` as a failed start would."""
        try:
            await old.exited
            if env.dead or self._closing:
                return
            process, endpoints = await self._launch(env, restart_of=old)
        except StratoError as exc:
            log.error("cannot restart environment %s of %s: %s", env.env_id, env.version.name,
                      exc)
            env.fail_start(str(exc))
            return
        except Exception as exc:  # reported to the invocation waiting for it, not swallowed
            log.exception("cannot restart environment %s of %s", env.env_id, env.version.name)
            env.fail_start(f"{type(exc).__name__}: {exc}")
            return
        except BaseException:
            env.destroy()
            raise
        finally:
            old.release()
        if env.dead:  # retired or closed while restarting
            process.kill()
        env.attach(process, endpoints)

    async def _launch(self, env: ExecutionEnvironment, restart_of: EnvironmentProcess | None = None,
                      ) -> tuple[EnvironmentProcess, RuntimeEndpoints]:
        """The started process of ``env`` (restarted in the environment ``restart_of`` ran
        in, when given) and the endpoints of its Runtime API."""
        inside = self._sandbox.runtime_api
        endpoints: Any = None
        port: int | None = None
        if inside is None:
            endpoints, address = await self._runtime_api.serve_on_host(env)
            port = int(address.rpartition(":")[2])
        else:
            address = inside
        spec = self._spec(env, address, port)
        try:
            if restart_of is not None:
                process = await self._sandbox.restart(restart_of, spec)
            else:
                process = await self._sandbox.start(spec)
        except BaseException:
            if endpoints is not None:
                endpoints.close()
            raise
        try:
            return process, await self._runtime_api.serve(env, endpoints, process)
        except BaseException:
            process.kill()
            process.exited.add_done_callback(lambda _: process.release())
            raise

    def _spec(self, env: ExecutionEnvironment, address: str, port: int | None) -> EnvironmentSpec:
        version = env.version
        code_dir = self._code_dir(version)
        task_root = self._sandbox.task_root(code_dir)
        launch = self._launchers.launch(version.runtime, task_root)
        return EnvironmentSpec(
            env_id=env.env_id,
            python_version=launch.python_version,
            argv=launch.argv,
            views=launch.views + (self._layers.views(version) if self._layers else ()),
            env=self._build_environment(version, address, env.log_stream, task_root,
                                        env.initialization_type, launch.runtime_dir),
            cwd=code_dir,
            memory_mb=version.memory_size,
            tmp_mb=version.ephemeral_storage,
            egress=self._egress(version),
            runtime_api_port=port,
            standby=launch.standby,
        )

    def _egress(self, version: FunctionVersion) -> str:
        """A function in a VPC gets no egress of its own (strato has no VPCs to attach it
        to); any other gets the platform's default."""
        return EGRESS_NONE if version.vpc_config.subnet_ids else self._default_egress

    def _finished(self, env: ExecutionEnvironment) -> None:
        """An invocation assigned to ``env`` ended: return its lease."""
        self._limits.release(env.version.name)

    def _released(self, env: ExecutionEnvironment) -> None:
        """An environment finished its INIT or its invocation and is IDLE."""
        if env.retired or self._closing:
            env.destroy()
            return
        config = self._owners.get(env.env_id)
        if config is None:
            self._idle.setdefault(key_of(env.version), []).append(env)
            self._ensure_reaper()
            return
        if env.env_id in config.starting:
            self._allocated(config, env)
        self._provisioned_idle.setdefault(key_of(env.version), []).append(env)

    def _dead(self, env: ExecutionEnvironment) -> None:
        self._live.pop(env.env_id, None)
        key = key_of(env.version)
        for idle_by_key in (self._idle, self._provisioned_idle):
            idle = idle_by_key.get(key)
            if idle and env in idle:
                idle.remove(env)
                if not idle:
                    del idle_by_key[key]
        config = self._owners.pop(env.env_id, None)
        if config is not None:
            self._lost(config, env)

    # provisioned concurrency ------------------------------------------------------------
    def provision(self, config_id: ConfigId, version: FunctionVersion, count: int) -> None:
        """Keep ``count`` environments of ``version`` initialised for ``config_id`` (count 0
        removes the configuration). Idempotent; a new version or revision for an existing
        configuration replaces its environments, a lower count destroys the surplus (idle
        ones first, busy ones when their invocation ends). Resets a FAILED configuration's
        backoff. After ``retire``, call it again with the new record to re-provision."""
        if count <= 0:
            self.unprovision(config_id)
            return
        config = self._configs.get(config_id)
        if config is not None and key_of(config.version) != key_of(version):
            self._drop(config)
            config = None
        if config is None:
            config = self._configs[config_id] = _Provisioned(config_id, version, count)
        config.requested = count
        config.stale = False
        config.failure = None
        config.failures = 0
        config.cancel_retry()
        self._trim(config)
        self._fill(config)

    def unprovision(self, config_id: ConfigId) -> None:
        """Remove a provisioned concurrency configuration; its environments are destroyed
        (busy ones when their invocation ends). Idempotent."""
        config = self._configs.pop(config_id, None)
        if config is not None:
            self._drop(config)

    def provisioned_status(self, config_id: ConfigId) -> ProvisionedStatus:
        """Requested, allocated (initialised and alive) and available (allocated and idle)
        environments of a configuration, and its status. Raises KeyError for a
        configuration that is not provisioned."""
        config = self._configs[config_id]
        available = sum(1 for env_id in config.ready
                        if (env := self._live.get(env_id)) is not None and env.state is State.IDLE)
        return provisioned_status(config.requested, len(config.ready), available, config.failure)

    def _fill(self, config: _Provisioned) -> None:
        """Start environments until the configuration has as many as it requested, unless it
        is stale or waits out a backoff."""
        if self._closing or config.stale or config.retry is not None:
            return
        while config.alive < config.requested:
            env = self._new_environment(config.version, PROVISIONED)
            self._owners[env.env_id] = config
            config.starting.add(env.env_id)
            self._schedule_start(env)

    def _trim(self, config: _Provisioned) -> None:
        """Detach environments beyond the requested count: idle first, then starting, then
        busy ones."""
        surplus = config.alive - config.requested
        if surplus <= 0:
            return
        envs = [self._live[i] for i in (*config.ready, *config.starting) if i in self._live]
        order = {State.IDLE: 0, State.INIT: 1, State.BUSY: 2, State.DEAD: 3}
        envs.sort(key=lambda env: order[env.state])
        for env in envs[:surplus]:
            self._detach(config, env)

    def _drop(self, config: _Provisioned) -> None:
        """Detach every environment of a configuration that no longer stands."""
        config.stale = True
        config.cancel_retry()
        for env_id in (*config.starting, *config.ready):
            env = self._live.get(env_id)
            if env is not None:
                self._detach(config, env)
        config.starting.clear()
        config.ready.clear()

    def _detach(self, config: _Provisioned, env: ExecutionEnvironment) -> None:
        """``env`` no longer serves ``config``: it is destroyed, now unless it is busy."""
        self._owners.pop(env.env_id, None)
        config.starting.discard(env.env_id)
        config.ready.discard(env.env_id)
        env.retired = True
        if env.state is not State.BUSY:
            env.destroy()

    def _allocated(self, config: _Provisioned, env: ExecutionEnvironment) -> None:
        """``env`` finished its INIT: it counts as allocated."""
        config.starting.discard(env.env_id)
        config.ready.add(env.env_id)
        config.failures = 0
        if len(config.ready) >= config.requested:
            config.failure = None

    def _lost(self, config: _Provisioned, env: ExecutionEnvironment) -> None:
        """A provisioned environment died while serving ``config``: replace it, after a
        backoff when it died in INIT (its INIT failed)."""
        initialised = env.env_id in config.ready
        config.starting.discard(env.env_id)
        config.ready.discard(env.env_id)
        if self._closing or config.stale:
            return
        if not initialised:
            config.failures += 1
            config.failure = f"Provisioned environment failed to initialize: {env.init_error or 'Unknown'}"
            log.warning("provisioned concurrency %s: %s", config.config_id, config.failure)
            if config.retry is None:
                delay = provisioning_backoff(config.failures)
                config.retry = asyncio.get_running_loop().call_later(delay, self._retry, config)
            return
        self._fill(config)

    def _retry(self, config: _Provisioned) -> None:
        config.retry = None
        if self._configs.get(config.config_id) is config:
            self._fill(config)

    # control ----------------------------------------------------------------------------
    def set_reserved(self, function_name: str, value: int | None) -> None:
        """Reserve concurrency for a function (0 disables it), or remove the reservation
        with None; see ``ConcurrencyLimits.set_reserved``."""
        self._limits.set_reserved(function_name, value)

    def retire(self, function_name: str, version: str | None = None, *,
               deleted: bool = False) -> None:
        """Destroy the environments of a function (or one of its versions), provisioned ones
        included: idle ones now (and one restarting its runtime that no invocation waits
        for), busy ones when their invocation ends (an update: the
        invocation in flight finishes on the code it started with, as on Lambda) or, when
        the version was ``deleted``, now too (the invocation in flight fails). Provisioned
        configurations of what was retired stay, with nothing allocated, until ``provision``
        names the new record (call it after this)."""
        for env in list(self._live.values()):
            if _matches(env.version, function_name, version):
                config = self._owners.get(env.env_id)
                if config is not None:
                    self._detach(config, env)
                else:
                    env.retired = True
                    # Idle, or restarting its runtime with no invocation waiting for it.
                    if env.state is not State.BUSY and env.current is None:
                        env.destroy()
                if deleted and not env.dead:
                    current = env.current
                    env.destroy(None if current is None else function_deleted(current.request_id))
        for config in self._configs.values():
            if _matches(config.version, function_name, version):
                config.stale = True
                config.cancel_retry()

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap_loop())

    async def _reap_loop(self) -> None:
        """Destroy on-demand environments idle for longer than the keep-alive (provisioned
        ones are never reaped)."""
        period = max(0.05, min(self._keep_alive_s / 2, 5.0))
        while any(self._idle.values()):
            await asyncio.sleep(period)
            now = time.monotonic()
            for envs in list(self._idle.values()):
                for env in expired(envs, now, self._keep_alive_s):
                    env.destroy()

    async def close(self, timeout: float = 10.0) -> None:
        """Destroy every environment at once and wait up to ``timeout`` seconds for their
        processes to exit: starts in progress are cancelled, every process tree is killed
        before any exit is awaited (the kernel tears them down in parallel), and each one's
        resources are released as its exit is reported. Then closes the Runtime API server."""
        self._closing = True
        if self._reaper is not None:
            self._reaper.cancel()
        for config in self._configs.values():
            config.cancel_retry()
        for task in list(self._starting):
            task.cancel()
        waits = []
        for env in list(self._live.values()):
            if env.process is not None and not env.process.exited.done():
                waits.append(env.process.exited)
            env.destroy()
        if self._starting:
            await asyncio.wait(list(self._starting), timeout=timeout)
        if waits:
            await asyncio.wait(waits, timeout=timeout)
        self._runtime_api.close()
