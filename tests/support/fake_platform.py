"""Building blocks of fast unit tests on the fake sandbox: a pool, versions, invocations."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from strato.domain.models import CodeRef, FunctionState, FunctionVersion
from strato.runtime_api.endpoints import RuntimeApiServer
from strato.sandbox.fake import FakeSandbox
from strato.scheduler.invocation import Invocation, InvocationResult
from strato.scheduler.pool import EnvironmentPool


@dataclass
class Sink:
    """A LogSink that keeps every line: (stream, text)."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def emit(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        self.lines += [(stream, text) for _, text in lines]


def version(name: str = "fn", number: str = "1", *, revision: str = "r1", timeout: int = 10,
            runtime: str = "python3.12") -> FunctionVersion:
    return FunctionVersion(
        name=name, runtime=runtime, handler="app.handler",
        role="arn:aws:iam::000000000000:role/r", code=CodeRef("0" * 64, 0),
        revision_id=revision, last_modified=datetime.now(UTC), version=number, timeout=timeout,
        state=FunctionState.ACTIVE, state_reason=None, state_reason_code=None,
    )


def environment_variables(record: FunctionVersion, address: str, stream: str, task_root: str,
                          initialization_type: str,
                          runtime_dir: str | None = None) -> Mapping[str, str]:
    return {"AWS_LAMBDA_RUNTIME_API": address, "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "LAMBDA_TASK_ROOT": task_root, "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type}


def make_pool(sandbox: FakeSandbox, sink: Sink | None = None, **options: Any) -> EnvironmentPool:
    """A pool on ``sandbox`` with the real Runtime API server. Call inside a running loop."""
    options.setdefault("keep_alive_s", 60)
    options.setdefault("account_concurrency", 100)
    return EnvironmentPool(sandbox, RuntimeApiServer(), sink or Sink(), environment_variables,
                           lambda _: "/code", **options)


def invoke(pool: EnvironmentPool, record: FunctionVersion, event: Any = None, *,
           tail: bool = False, request_id: str | None = None) -> asyncio.Future[InvocationResult]:
    future: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
    invocation = Invocation(request_id or str(uuid.uuid4()), json.dumps(event or {}).encode(),
                            f"arn:aws:lambda:us-east-1:000000000000:function:{record.name}",
                            lambda result: future.done() or future.set_result(result),
                            want_tail=tail)
    pool.invoke(record, invocation)
    return future


def error_type(result: InvocationResult) -> str:
    assert result.function_error == "Unhandled", result.payload
    kind: str = json.loads(result.payload)["errorType"]
    return kind


async def until(condition: Callable[[], bool], what: str, timeout: float = 5) -> None:
    """Wait for ``condition`` (checked as the loop turns) or fail saying ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)
