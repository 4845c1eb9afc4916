"""The execution environment's lifecycle (``scheduler.environment``): its transition table,
what the runtime may post when, and the exactly-once ``on_finished``. The test speaks for
the runtime (``runtime_next`` and the posts); the process is a fake one that never talks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from strato.sandbox.base import EnvironmentSpec
from strato.sandbox.fake import FakeProcess, FakeRuntime
from strato.scheduler.environment import ExecutionEnvironment, IllegalTransition, Post, State
from strato.scheduler.invocation import Fault, Invocation, InvocationResult
from tests.support.fake_platform import Sink, version

SPEC = EnvironmentSpec("e1", "3.12", None, {}, "/code", 128, 512)


async def silent(runtime: FakeRuntime) -> None:
    await asyncio.Event().wait()


@dataclass
class Waiter:
    delivered: list[tuple[str, int]] = field(default_factory=list)

    def deliver(self, invocation: Invocation, deadline_ms: int) -> None:
        self.delivered.append((invocation.request_id, deadline_ms))


@dataclass
class Harness:
    env: ExecutionEnvironment
    process: FakeProcess
    events: list[str]
    results: dict[str, InvocationResult] = field(default_factory=dict)

    def invocation(self, request_id: str) -> Invocation:
        return Invocation(request_id, b"{}", "arn", lambda r: self._done(request_id, r))

    def _done(self, request_id: str, result: InvocationResult) -> None:
        assert request_id not in self.results, "finished twice"
        self.results[request_id] = result


def run(test: Callable[[Harness], Coroutine[Any, Any, None]], *, attach: bool = True,
        restarts: bool = False) -> None:
    """Run ``test`` on an environment; with ``restarts``, one built with an ``on_restart``
    that records "restart" in the events (and starts nothing)."""
    async def main() -> None:
        events: list[str] = []
        env = ExecutionEnvironment(
            "e1", version(timeout=30), "stream", Sink(),
            on_released=lambda e: events.append("released"),
            on_dead=lambda e: events.append("dead"),
            on_finished=lambda e: events.append("finished"),
            on_restart=(lambda e, old: events.append("restart")) if restarts else None)
        process = FakeProcess(SPEC, silent)
        await process.run()
        if attach:
            env.attach(process, Endpoints())
        try:
            await asyncio.wait_for(test(Harness(env, process, events)), 5)
        finally:
            env.destroy()
            process.kill()
            await process.exited
            await asyncio.sleep(0)  # the environment hears of the exit
            if not process.released:  # never attached: nothing else releases it
                process.release()

    asyncio.run(main())


class Endpoints:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_init_then_idle_then_busy_then_idle() -> None:
    async def test(h: Harness) -> None:
        assert h.env.state is State.INIT
        waiter = Waiter()
        h.env.runtime_next(waiter)
        assert h.env.state is State.IDLE and h.events == ["released"]
        h.env.assign(h.invocation("a"))
        assert h.env.state is State.BUSY and [d[0] for d in waiter.delivered] == ["a"]
        assert h.env.runtime_response("a", b'"ok"') is Post.ACCEPTED
        assert h.env.state is State.IDLE
        assert h.events == ["released", "finished", "released"]
        assert h.results["a"].payload == b'"ok"' and h.results["a"].function_error is None

    run(test)


def test_a_cold_start_goes_from_init_to_busy_and_reports_init_duration() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        assert h.env.state is State.INIT  # delivered when the runtime asks
        waiter = Waiter()
        h.env.runtime_next(waiter)
        assert h.env.state is State.BUSY and waiter.delivered[0][0] == "a"
        h.env.runtime_response("a", b"{}")
        assert h.events == ["finished", "released"]

    run(test)


def test_an_invocation_cannot_be_assigned_while_busy_or_twice_in_init() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        with pytest.raises(IllegalTransition):
            h.env.assign(h.invocation("b"))
        h.env.runtime_next(Waiter())
        with pytest.raises(IllegalTransition):
            h.env.assign(h.invocation("c"))

    run(test)


def test_posts_for_another_request_are_refused() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        assert h.env.runtime_response("a", b"{}") is Post.INVALID_REQUEST_ID  # not delivered
        h.env.runtime_next(Waiter())
        assert h.env.runtime_response("b", b"{}") is Post.INVALID_REQUEST_ID
        assert h.env.runtime_error("b", b"{}", None) is Post.INVALID_REQUEST_ID
        assert h.env.runtime_init_error(b"{}", None) is Post.NOT_IN_INIT
        assert h.env.runtime_response("a", None) is Post.TOO_LARGE
        assert json.loads(h.results["a"].payload)["errorType"] == "Function.ResponseSizeTooLarge"

    run(test)


def test_an_error_body_that_is_not_json_is_wrapped() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        h.env.runtime_next(Waiter())
        h.env.runtime_error("a", b"plain words", "Custom.Error")
        assert json.loads(h.results["a"].payload) == {"errorMessage": "plain words",
                                                      "errorType": "Custom.Error"}
        assert h.results["a"].function_error == "Unhandled"

    run(test)


def test_an_init_error_fails_the_waiting_invocation_and_kills_the_environment() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        document = b'{"errorType": "Runtime.ImportModuleError", "errorMessage": "no app"}'
        assert h.env.runtime_init_error(document, None) is Post.ACCEPTED
        assert h.env.init_error == "Runtime.ImportModuleError"
        assert h.env.dead and h.results["a"].payload == document
        await h.process.exited
        await asyncio.sleep(0)  # the exit is reported through a callback
        assert h.events.count("finished") == 1 and h.events.count("dead") == 1
        assert h.process.released

    run(test)


def test_destroy_fails_the_invocation_in_flight_once_with_its_fault() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        h.env.runtime_next(Waiter())
        h.env.destroy(Fault("Runtime.ExitError", "gone"))
        h.env.destroy()  # idempotent
        assert h.env.state is State.DEAD
        with pytest.raises(IllegalTransition):
            h.env.assign(h.invocation("b"))
        await h.process.exited
        await asyncio.sleep(0)
        assert json.loads(h.results["a"].payload)["errorType"] == "Runtime.ExitError"
        # DEAD at once; the invocation fails when the exit is reported.
        assert h.events == ["dead", "finished"]
        assert h.env.runtime_response("a", b"{}") is Post.INVALID_REQUEST_ID

    run(test)


def test_a_crash_while_busy_is_a_runtime_exit_error() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        h.env.runtime_next(Waiter())
        h.process.kill()
        await h.process.exited
        await asyncio.sleep(0)
        payload = json.loads(h.results["a"].payload)
        assert payload["errorType"] == "Runtime.ExitError"
        assert "signal: killed" in payload["errorMessage"]
        assert h.env.dead and h.events == ["finished", "dead"]

    run(test)


def test_a_start_that_failed_fails_the_invocation_with_sandbox_start_failed() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("req"))
        h.env.fail_start("no room")
        assert h.env.init_error == "Sandbox.StartFailed"
        assert json.loads(h.results["req"].payload) == {
            "errorType": "Sandbox.StartFailed", "errorMessage": "RequestId: req Error: no room"}
        h.env.fail_start("again")  # a no-op once DEAD
        assert h.events == ["finished", "dead"]

    run(test, attach=False)


def test_a_crash_while_busy_goes_back_to_init_to_be_restarted() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        h.env.runtime_next(Waiter())
        h.process.kill()
        await h.process.exited
        await asyncio.sleep(0)
        assert json.loads(h.results["a"].payload)["errorType"] == "Runtime.ExitError"
        assert h.env.state is State.INIT and not h.env.dead
        assert h.process is not None and h.env.process is None  # handed to on_restart
        assert h.events == ["finished", "restart"]

    run(test, restarts=True)


def test_an_invocation_placed_before_the_runtime_exited_waits_for_its_restart() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        h.env.runtime_next(Waiter())
        assert h.env.runtime_response("a", b'"ok"') is Post.ACCEPTED
        h.env.assign(h.invocation("b"))  # placed before the runtime asked for it
        h.process.kill()  # the runtime exits after its answer
        await h.process.exited
        await asyncio.sleep(0)
        assert "b" not in h.results
        assert h.env.state is State.INIT and not h.env.dead
        assert h.events == ["finished", "released", "restart"]

    run(test, restarts=True)


def test_a_restart_that_fails_to_start_destroys_the_environment() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        h.env.runtime_next(Waiter())
        h.process.kill()
        await h.process.exited
        await asyncio.sleep(0)
        h.env.assign(h.invocation("b"))  # placed on it while its runtime restarts
        h.env.fail_start("no room")
        assert h.env.dead and h.env.init_error == "Sandbox.StartFailed"
        assert json.loads(h.results["b"].payload) == {
            "errorType": "Sandbox.StartFailed", "errorMessage": "RequestId: b Error: no room"}
        assert h.events == ["finished", "restart", "finished", "dead"]

    run(test, restarts=True)


def test_a_retired_environment_is_not_restarted() -> None:
    async def test(h: Harness) -> None:
        h.env.assign(h.invocation("a"))
        h.env.runtime_next(Waiter())
        h.env.retired = True  # its function was updated while it ran
        h.process.kill()
        await h.process.exited
        await asyncio.sleep(0)
        assert json.loads(h.results["a"].payload)["errorType"] == "Runtime.ExitError"
        assert h.env.dead and h.events == ["finished", "dead"]

    run(test, restarts=True)
