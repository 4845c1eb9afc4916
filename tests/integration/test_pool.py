"""The environment pool with real environments: concurrency leases, burst scaling and
provisioned concurrency.

Environments are forked by a real ``ProcessSandbox`` (unconfined tier: these tests are about
scheduling, not confinement) from a zygote of a host Python, run the built-in runtime, and
get Lambda's variables from ``LambdaVariables``, as the server's do. A counting wrapper around the sandbox
tells cold starts (a new process) from warm ones.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from strato.config import DEFAULT_REGION
from strato.domain.errors import TooManyRequestsException
from strato.domain.models import CodeRef, FunctionState, FunctionVersion
from strato.errors import SandboxError
from strato.runtime_api.endpoints import RuntimeApiServer
from strato.sandbox.base import EnvironmentProcess, EnvironmentSpec
from strato.sandbox.interpreters import InterpreterRegistry
from strato.sandbox.local import ProcessSandbox
from strato.sandbox.tiers import Tier
from strato.scheduler.concurrency import ProvisionedState
from strato.scheduler.environment_variables import LambdaVariables
from strato.scheduler.invocation import Invocation, InvocationResult
from strato.scheduler.pool import EnvironmentPool
from tests.support.waiting import until

APP = """\
import os
import time


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid(), "init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
"""
T = TypeVar("T")


def _python_version() -> str:
    registry = InterpreterRegistry()
    for version in ("3.12", "3.11", "3.13", "3.10"):
        if registry.find(version) is not None:
            return version
    pytest.skip("no Python 3.10 to 3.13 interpreter on this host")


@dataclass
class Sink:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def emit(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        self.lines += [(stream, text) for _, text in lines]


class CountingSandbox:
    """Delegates to a sandbox and records every environment it starts and every process it
    starts or restarts (``processes``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.description = inner.description
        self.runtime_api = inner.runtime_api
        self.shows_views = inner.shows_views
        self.started: list[EnvironmentSpec] = []
        self.processes: list[EnvironmentProcess] = []

    async def start(self, spec: EnvironmentSpec) -> EnvironmentProcess:
        self.started.append(spec)
        process: EnvironmentProcess = await self.inner.start(spec)
        self.processes.append(process)
        return process

    async def restart(self, process: EnvironmentProcess, spec: EnvironmentSpec) -> EnvironmentProcess:
        new: EnvironmentProcess = await self.inner.restart(process, spec)
        self.processes.append(new)
        return new

    def running(self) -> list[EnvironmentProcess]:
        return [process for process in self.processes if not process.exited.done()]

    def task_root(self, code_dir: str) -> str:
        root: str = self.inner.task_root(code_dir)
        return root

    def path_variables(self, runtime: str, task_root: str,
                       runtime_dir: str | None = None) -> dict[str, str]:
        variables: dict[str, str] = self.inner.path_variables(runtime, task_root, runtime_dir)
        return variables

    async def prepare(self, python_version: str | None) -> None:
        await self.inner.prepare(python_version)

    async def close(self) -> None:
        await self.inner.close()


class FailingSandbox(CountingSandbox):
    """Every start fails, as a sandbox that cannot confine an environment does."""

    def __init__(self) -> None:
        self.description = "failing"
        self.runtime_api = "127.0.0.1:9001"
        self.shows_views = True
        self.started = []
        self.processes = []

    async def start(self, spec: EnvironmentSpec) -> EnvironmentProcess:
        self.started.append(spec)
        raise SandboxError("no room for another environment")

    def task_root(self, code_dir: str) -> str:
        return code_dir

    def path_variables(self, runtime: str, task_root: str,
                       runtime_dir: str | None = None) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin"}

    async def close(self) -> None:
        pass


@dataclass
class Harness:
    pool: EnvironmentPool
    sandbox: CountingSandbox
    sink: Sink
    version: FunctionVersion

    def invoke(self, event: dict[str, Any] | None = None,
               version: FunctionVersion | None = None) -> asyncio.Future[InvocationResult]:
        future: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
        invocation = Invocation(str(uuid.uuid4()), json.dumps(event or {}).encode(),
                                "arn:aws:lambda:us-east-1:000000000000:function:fn",
                                future.set_result, want_tail=True)
        self.pool.invoke(version or self.version, invocation)
        return future


def record(code_dir: Path, python: str, *, handler: str = "app.handler", revision: str = "r1",
           timeout: int = 10) -> FunctionVersion:
    return FunctionVersion(
        name="fn", runtime=f"python{python}", handler=handler,
        role="arn:aws:iam::000000000000:role/r", code=CodeRef("0" * 64, 0),
        revision_id=revision, last_modified=datetime.now(UTC), version="1", timeout=timeout,
        state=FunctionState.ACTIVE, state_reason=None, state_reason_code=None,
    )


def run_with_pool(tmp_path: Path, test: Callable[[Harness], Coroutine[Any, Any, None]], *,
                  handler: str = "app.handler", failing: bool = False, **pool_args: Any) -> None:
    python = _python_version()
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(APP)

    async def main() -> None:
        if failing:
            sandbox: CountingSandbox = FailingSandbox()
        else:
            sandbox = CountingSandbox(ProcessSandbox(
                InterpreterRegistry(), tier=Tier.UNCONFINED, work_dir=str(tmp_path / "sandbox"),
                use_cgroups=False, limit_cpu=False))
        sink = Sink()
        pool = EnvironmentPool(sandbox, RuntimeApiServer(), sink,
                               LambdaVariables(sandbox, DEFAULT_REGION),
                               lambda _: str(code_dir),
                               keep_alive_s=60, account_concurrency=pool_args.pop("account", 100),
                               **pool_args)
        harness = Harness(pool, sandbox, sink, record(code_dir, python, handler=handler))
        try:
            await asyncio.wait_for(test(harness), 60)
        finally:
            await pool.close()
            await sandbox.close()

    asyncio.run(main())


def report_line(result: InvocationResult) -> str:
    assert result.log_tail is not None
    lines = base64.b64decode(result.log_tail).decode().splitlines()
    return next(line for line in lines if line.startswith("REPORT "))


async def ok(future: Awaitable[InvocationResult]) -> dict[str, Any]:
    result = await future
    assert result.function_error is None, result.payload
    body: dict[str, Any] = json.loads(result.payload)
    return body


def throttle_reason(call: Callable[[], object]) -> str:
    with pytest.raises(TooManyRequestsException) as caught:
        call()
    return caught.value.fields["Reason"]


# --- concurrency leases ------------------------------------------------------------------


def test_reserved_concurrency_throttles_and_the_lease_comes_back(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.pool.set_reserved("fn", 1)
        first = h.invoke({"sleep": 0.2})
        assert h.pool.limits.in_flight("fn") == 1
        assert throttle_reason(h.invoke) == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert h.pool.limits.in_flight("fn") == 1
        pid = (await ok(first))["pid"]
        assert h.pool.limits.in_flight("fn") == 0
        assert (await ok(h.invoke()))["pid"] == pid  # warm, and admitted again
        h.pool.set_reserved("fn", 0)
        assert throttle_reason(h.invoke) == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert h.pool.limits.total_in_flight() == 0

    run_with_pool(tmp_path, test)


def test_the_lease_is_returned_after_a_timeout_and_a_crash(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.pool.set_reserved("fn", 1)
        short = h.version.replace(timeout=1)
        result = await h.invoke({"sleep": 5}, short)
        assert json.loads(result.payload)["errorType"] == "Sandbox.Timedout"
        assert h.pool.limits.in_flight("fn") == 0
        running = h.invoke({"sleep": 5}, short)
        await until(lambda: len(h.sandbox.processes) == 2, "the runtime restarted")
        os.kill(h.sandbox.processes[1].pid, signal.SIGKILL)
        assert json.loads((await running).payload)["errorType"] == "Runtime.ExitError"
        assert h.pool.limits.in_flight("fn") == 0
        await ok(h.invoke())

    run_with_pool(tmp_path, test)


def test_burst_scaling_throttles_cold_starts_only(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        first = h.invoke({"sleep": 0.2})
        assert throttle_reason(h.invoke) == "ConcurrentInvocationLimitExceeded"
        assert h.pool.limits.in_flight("fn") == 1  # the throttled call's lease went back
        await ok(first)
        await ok(h.invoke())  # warm: no token needed
        assert len(h.sandbox.started) == 1

    run_with_pool(tmp_path, test, burst=1, burst_window_s=3600)


def test_a_failed_start_fails_the_invocation_once_and_returns_the_lease(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        results: list[InvocationResult] = []
        done = asyncio.Event()

        def on_done(result: InvocationResult) -> None:
            results.append(result)
            done.set()

        h.pool.invoke(h.version, Invocation("req-1", b"{}", "arn", on_done))
        await done.wait()
        await until(lambda: h.pool.limits.total_in_flight() == 0, "the lease to be returned")
        assert len(results) == 1 and results[0].function_error == "Unhandled"
        assert json.loads(results[0].payload) == {
            "errorType": "Sandbox.StartFailed",
            "errorMessage": "RequestId: req-1 Error: no room for another environment"}
        assert h.pool.limits.total_in_flight() == 0
        assert len(h.sandbox.started) == 1

    run_with_pool(tmp_path, test, failing=True)


# --- provisioned concurrency -------------------------------------------------------------

CONFIG = ("fn", "1")


def status_is(h: Harness, wanted: ProvisionedState, allocated: int | None = None) -> Callable[[], bool]:
    def check() -> bool:
        status = h.pool.provisioned_status(CONFIG)
        return status.status is wanted and (allocated is None or status.allocated == allocated)
    return check


def test_provisioned_environments_serve_first_then_spill_over(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.pool.provision(CONFIG, h.version, 2)
        assert h.pool.provisioned_status(CONFIG).status is ProvisionedState.IN_PROGRESS
        await until(status_is(h, ProvisionedState.READY), "READY")
        status = h.pool.provisioned_status(CONFIG)
        assert (status.requested, status.allocated, status.available, status.reason) == (2, 2, 2, None)
        assert len(h.sandbox.started) == 2
        assert {s.env["AWS_LAMBDA_INITIALIZATION_TYPE"] for s in h.sandbox.started} == {
            "provisioned-concurrency"}
        assert h.pool.limits.total_in_flight() == 0  # idle provisioned environments hold none

        result = await h.invoke()
        assert json.loads(result.payload)["init"] == "provisioned-concurrency"
        assert "Init Duration" not in report_line(result)
        assert len(h.sandbox.started) == 2  # not a cold start

        busy = [h.invoke({"sleep": 0.5}) for _ in range(3)]
        await until(lambda: len(h.sandbox.started) == 3, "a cold start for the third")
        assert h.pool.provisioned_status(CONFIG).available == 0
        results = [await future for future in busy]
        kinds = sorted(json.loads(r.payload)["init"] for r in results)
        assert kinds == ["on-demand", "provisioned-concurrency", "provisioned-concurrency"]
        cold = next(r for r in results if json.loads(r.payload)["init"] == "on-demand")
        assert "Init Duration" in report_line(cold)
        assert len(h.sandbox.started) == 3
        assert h.pool.limits.total_in_flight() == 0
        assert h.pool.provisioned_status(CONFIG).available == 2

    run_with_pool(tmp_path, test)


def test_a_dead_provisioned_environment_is_replaced(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.pool.provision(CONFIG, h.version, 2)
        await until(status_is(h, ProvisionedState.READY), "READY")
        victim = h.sandbox.processes[0]
        os.kill(victim.pid, signal.SIGKILL)
        await until(lambda: len(h.sandbox.started) == 3, "a replacement")
        await until(status_is(h, ProvisionedState.READY, allocated=2), "READY again")
        pids = set()
        for _ in range(2):
            pids.add((await ok(h.invoke()))["pid"])
        assert victim.pid not in pids
        assert len(h.sandbox.started) == 3

    run_with_pool(tmp_path, test)


def test_failed_init_marks_the_config_failed_and_backs_off(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.pool.provision(CONFIG, h.version, 2)
        await until(status_is(h, ProvisionedState.FAILED), "FAILED")
        status = h.pool.provisioned_status(CONFIG)
        assert status.allocated == 0
        assert status.reason is not None and "Runtime.ImportModuleError" in status.reason
        started = len(h.sandbox.started)
        # The point is what does not happen: within the first backoff nothing starts again.
        await asyncio.sleep(0.3)
        assert len(h.sandbox.started) == started
        h.pool.unprovision(CONFIG)
        with pytest.raises(KeyError):
            h.pool.provisioned_status(CONFIG)
        await until(lambda: not h.sandbox.running(), "no environment left")

    run_with_pool(tmp_path, test, handler="missing.handler")


def test_a_failed_start_marks_the_config_failed(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.pool.provision(CONFIG, h.version, 1)
        await until(status_is(h, ProvisionedState.FAILED), "FAILED")
        assert "Sandbox.StartFailed" in (h.pool.provisioned_status(CONFIG).reason or "")

    run_with_pool(tmp_path, test, failing=True)


def test_retire_drops_provisioned_environments_until_reprovisioned(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        h.pool.provision(CONFIG, h.version, 1)
        h.pool.provision(("fn", "live"), h.version, 1)  # an alias on the same version
        await until(status_is(h, ProvisionedState.READY), "READY")
        await until(lambda: h.pool.provisioned_status(("fn", "live")).allocated == 1, "alias")
        old_pids = {process.pid for process in h.sandbox.running()}
        assert len(old_pids) == 2
        h.pool.retire("fn", "1")
        assert h.pool.provisioned_status(CONFIG).allocated == 0
        await until(lambda: not h.sandbox.running(), "old environments gone")
        updated = h.version.replace(revision_id="r2")
        h.pool.provision(CONFIG, updated, 1)
        await until(status_is(h, ProvisionedState.READY), "READY with the new revision")
        assert h.pool.provisioned_status(("fn", "live")).allocated == 0  # not re-provisioned
        body = await ok(h.invoke(version=updated))
        assert body["init"] == "provisioned-concurrency" and body["pid"] not in old_pids
        h.pool.provision(CONFIG, updated, 0)
        await until(lambda: not h.sandbox.running(), "unprovisioned")

    run_with_pool(tmp_path, test)


def test_an_update_lets_the_invocation_in_flight_finish(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        busy = h.invoke({"sleep": 0.5})
        await until(lambda: bool(h.sandbox.running()), "the environment runs")
        h.pool.retire("fn", "1")
        body = await ok(busy)
        assert body["init"] == "on-demand"
        await until(lambda: not h.sandbox.running(), "the retired environment is gone")

    run_with_pool(tmp_path, test)


def test_a_delete_ends_the_invocation_in_flight_at_once(tmp_path: Path) -> None:
    async def test(h: Harness) -> None:
        busy = h.invoke({"sleep": 30})
        await until(lambda: bool(h.sandbox.running()), "the environment runs")
        h.pool.retire("fn", "1", deleted=True)
        result = await asyncio.wait_for(busy, 5)
        assert result.function_error == "Unhandled"
        error = json.loads(result.payload)
        assert error["errorType"] == "Runtime.ExitError"
        assert "the function was deleted" in error["errorMessage"]
        await until(lambda: not h.sandbox.running(), "the environment is gone")

    run_with_pool(tmp_path, test)
