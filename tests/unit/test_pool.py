"""The environment pool on the fake sandbox: placement, leases, burst scaling, provisioned
concurrency, retirement. Environments are asyncio tasks speaking the runtime channel to the
real Runtime API server and execution environments (``strato.sandbox.fake``)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from strato.domain.errors import TooManyRequestsException
from strato.errors import SandboxError
from strato.sandbox.base import EnvironmentProcess, EnvironmentSpec
from strato.sandbox.fake import FakeProcess, FakeRuntime, FakeSandbox, serve
from strato.scheduler.concurrency import ProvisionedState
from strato.scheduler.pool import EnvironmentPool
from tests.support.fake_platform import error_type, invoke, make_pool, until, version

FN = version()
CONFIG = ("fn", "1")


async def handler(event: dict[str, Any], runtime: FakeRuntime) -> dict[str, Any]:
    if event.get("wait"):
        await asyncio.Event().wait()  # until the environment is ended
    if event.get("fail"):
        raise ValueError("bad input")
    return {"env": runtime.spec.env_id,
            "init": runtime.spec.env["AWS_LAMBDA_INITIALIZATION_TYPE"]}


def run(test: Callable[[EnvironmentPool, FakeSandbox], Coroutine[Any, Any, None]],
        sandbox: FakeSandbox | None = None, **options: Any) -> None:
    async def main() -> None:
        box = sandbox or FakeSandbox(serve(handler))
        pool = make_pool(box, **options)
        try:
            await asyncio.wait_for(test(pool, box), 10)
        finally:
            await pool.close()
            await box.close()

    asyncio.run(main())


async def body(future: asyncio.Future[Any]) -> dict[str, Any]:
    result = await future
    assert result.function_error is None, result.payload
    parsed: dict[str, Any] = json.loads(result.payload)
    return parsed


def throttle_reason(call: Callable[[], object]) -> str:
    with pytest.raises(TooManyRequestsException) as caught:
        call()
    return caught.value.fields["Reason"]


def test_a_cold_start_then_warm_starts_on_the_same_environment() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        first = await body(invoke(pool, FN))
        second = await body(invoke(pool, FN))
        assert first["env"] == second["env"] and len(sandbox.started) == 1
        assert pool.limits.total_in_flight() == 0
        spec = sandbox.started[0]
        assert spec.python_version == "3.12" and spec.argv is None and spec.cwd == "/code"
        assert spec.env["LAMBDA_TASK_ROOT"] == "/var/task"

    run(test)


def test_concurrent_invocations_get_environments_of_their_own() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        results = await asyncio.gather(*(body(invoke(pool, FN)) for _ in range(3)))
        assert len({r["env"] for r in results}) == 3 == len(sandbox.started)

    run(test)


def test_a_function_error_is_reported_and_the_environment_stays_warm() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        result = await invoke(pool, FN, {"fail": True})
        assert error_type(result) == "ValueError"
        await body(invoke(pool, FN))
        assert len(sandbox.started) == 1

    run(test)


def test_reserved_concurrency_throttles_and_the_lease_comes_back() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        pool.set_reserved("fn", 1)
        waiting = invoke(pool, FN, {"wait": True})
        assert pool.limits.in_flight("fn") == 1
        assert throttle_reason(lambda: invoke(pool, FN)) == \
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert pool.limits.in_flight("fn") == 1
        await until(lambda: bool(sandbox.running()), "the environment runs")
        sandbox.processes[0].kill()
        assert error_type(await waiting) == "Runtime.ExitError"
        assert pool.limits.in_flight("fn") == 0
        await body(invoke(pool, FN))
        pool.set_reserved("fn", 0)
        assert throttle_reason(lambda: invoke(pool, FN)) == \
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert pool.limits.total_in_flight() == 0

    run(test)


def test_burst_scaling_throttles_cold_starts_only() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        first = invoke(pool, FN)
        assert throttle_reason(lambda: invoke(pool, FN)) == "ConcurrentInvocationLimitExceeded"
        assert pool.limits.in_flight("fn") == 1  # the throttled call's lease went back
        await body(first)
        await body(invoke(pool, FN))  # warm: no token needed
        assert len(sandbox.started) == 1

    run(test, burst=1, burst_window_s=3600)


def test_a_failed_start_fails_the_invocation_and_returns_the_lease() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        sandbox.start_error = SandboxError("no room for another environment")
        result = await invoke(pool, FN, request_id="req-1")
        assert json.loads(result.payload) == {
            "errorType": "Sandbox.StartFailed",
            "errorMessage": "RequestId: req-1 Error: no room for another environment"}
        assert pool.limits.total_in_flight() == 0

    run(test)


def test_an_init_error_fails_the_cold_invocation_and_ends_the_environment() -> None:
    def broken(runtime: FakeRuntime) -> None:
        raise ImportError("No module named 'app'")

    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        result = await invoke(pool, FN)
        assert error_type(result) == "Runtime.ImportError"
        await until(lambda: not sandbox.running(), "the environment ends")
        assert sandbox.processes[0].released
        assert pool.limits.total_in_flight() == 0

    run(test, FakeSandbox(serve(handler, init=broken)))


def test_an_environment_killed_for_memory_reports_out_of_memory() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        waiting = invoke(pool, FN, {"wait": True})
        await until(lambda: bool(sandbox.running()), "the environment runs")
        sandbox.processes[0].kill_for_memory()
        assert error_type(await waiting) == "Runtime.OutOfMemory"

    run(test)


def test_output_reaches_the_log_with_the_report() -> None:
    def noisy(event: Any, runtime: FakeRuntime) -> str:
        runtime.log("hello from the handler")
        return "ok"

    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        result = await invoke(pool, FN, tail=True)
        assert result.log_tail is not None
        tail = base64.b64decode(result.log_tail).decode().splitlines()
        assert tail[0].startswith("START RequestId:")
        assert "hello from the handler" in tail
        assert tail[-1].startswith("REPORT RequestId:") and "Init Duration" in tail[-1]

    run(test, FakeSandbox(serve(noisy)))


# --- provisioned concurrency -------------------------------------------------------------


def ready(pool: EnvironmentPool, allocated: int) -> Callable[[], bool]:
    def check() -> bool:
        status = pool.provisioned_status(CONFIG)
        return status.status is ProvisionedState.READY and status.allocated == allocated
    return check


def test_provisioned_environments_serve_first_then_spill_over() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        pool.provision(CONFIG, FN, 2)
        assert pool.provisioned_status(CONFIG).status is ProvisionedState.IN_PROGRESS
        await until(ready(pool, 2), "READY")
        assert pool.provisioned_status(CONFIG).available == 2
        assert pool.limits.total_in_flight() == 0
        assert (await body(invoke(pool, FN)))["init"] == "provisioned-concurrency"
        busy = [invoke(pool, FN, {"wait": True}) for _ in range(3)]
        await until(lambda: len(sandbox.started) == 3, "a cold start for the third")
        assert sorted(s.env["AWS_LAMBDA_INITIALIZATION_TYPE"] for s in sandbox.started) == [
            "on-demand", "provisioned-concurrency", "provisioned-concurrency"]
        assert pool.provisioned_status(CONFIG).available == 0
        for future in busy:
            assert not future.done()

    run(test)


def test_a_dead_provisioned_environment_is_replaced() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        pool.provision(CONFIG, FN, 2)
        await until(ready(pool, 2), "READY")
        sandbox.processes[0].kill()
        await until(lambda: len(sandbox.started) == 3, "a replacement")
        await until(ready(pool, 2), "READY again")

    run(test)


def test_failed_init_marks_the_config_failed() -> None:
    def broken(runtime: FakeRuntime) -> None:
        raise ImportError("No module named 'app'")

    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        pool.provision(CONFIG, FN, 1)
        await until(lambda: pool.provisioned_status(CONFIG).status is ProvisionedState.FAILED,
                    "FAILED")
        reason = pool.provisioned_status(CONFIG).reason or ""
        assert "Runtime.ImportError" in reason
        pool.unprovision(CONFIG)
        with pytest.raises(KeyError):
            pool.provisioned_status(CONFIG)

    run(test, FakeSandbox(serve(handler, init=broken)))


def test_retire_keeps_the_invocation_in_flight_and_delete_ends_it() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        finishing = invoke(pool, FN)
        await body(finishing)
        waiting = invoke(pool, FN, {"wait": True})
        await until(lambda: pool.limits.in_flight("fn") == 1, "busy")
        pool.retire("fn", "1")
        assert not waiting.done()  # an update lets it run on
        pool.retire("fn", "1", deleted=True)
        result = await waiting
        assert error_type(result) == "Runtime.ExitError"
        assert "the function was deleted" in json.loads(result.payload)["errorMessage"]
        await until(lambda: not sandbox.running(), "the environment is gone")
        updated = FN.replace(revision_id="r2")
        await body(invoke(pool, updated))
        assert len(sandbox.started) == 2

    run(test)


def test_a_crashed_runtime_restarts_in_its_environment() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        first = await body(invoke(pool, FN))
        crashing = invoke(pool, FN, {"wait": True})
        await until(lambda: pool.limits.in_flight("fn") == 1, "busy")
        sandbox.processes[0].kill()
        assert error_type(await crashing) == "Runtime.ExitError"
        assert (await body(invoke(pool, FN)))["env"] == first["env"]
        assert len(sandbox.started) == 1 and len(sandbox.restarted) == 1
        assert sandbox.processes[0].released  # the old runtime's ends are closed

    run(test)


def test_a_restart_that_fails_destroys_the_environment() -> None:
    async def test(pool: EnvironmentPool, sandbox: FakeSandbox) -> None:
        first = await body(invoke(pool, FN))
        crashing = invoke(pool, FN, {"wait": True})
        await until(lambda: pool.limits.in_flight("fn") == 1, "busy")
        sandbox.start_error = SandboxError("no room for another environment")
        sandbox.processes[0].kill()
        assert error_type(await crashing) == "Runtime.ExitError"
        await until(lambda: len(sandbox.restarted) == 1, "the restart was tried")
        sandbox.start_error = None
        second = await body(invoke(pool, FN))
        assert second["env"] != first["env"] and len(sandbox.started) == 2
        assert pool.limits.total_in_flight() == 0

    run(test)


class HeldRestarts(FakeSandbox):
    """A fake sandbox whose restarts wait for ``go`` (set ``entered`` first)."""

    def __init__(self) -> None:
        super().__init__(serve(handler))
        self.entered = asyncio.Event()
        self.go = asyncio.Event()

    async def restart(self, process: EnvironmentProcess, spec: EnvironmentSpec) -> FakeProcess:
        self.entered.set()
        await self.go.wait()
        return await super().restart(process, spec)


def test_an_environment_retired_while_its_runtime_restarts_is_destroyed() -> None:
    sandbox = HeldRestarts()

    async def test(pool: EnvironmentPool, box: FakeSandbox) -> None:
        first = await body(invoke(pool, FN))
        crashing = invoke(pool, FN, {"wait": True})
        await until(lambda: pool.limits.in_flight("fn") == 1, "busy")
        box.processes[0].kill()
        assert error_type(await crashing) == "Runtime.ExitError"
        await asyncio.wait_for(sandbox.entered.wait(), 5)
        pool.retire("fn", "1")
        sandbox.go.set()
        await until(lambda: len(box.processes) == 2 and not box.running(),
                    "the restarted runtime is killed")
        await until(lambda: all(p.released for p in box.processes), "both runtimes released")
        updated = FN.replace(revision_id="r2")
        assert (await body(invoke(pool, updated)))["env"] != first["env"]
        assert len(box.started) == 2

    run(test, sandbox)
