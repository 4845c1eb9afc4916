"""The invocation service on the in-memory control plane and a pool of fake environments:
from an Invoke request to a result, and the AWS errors before anything runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from strato.domain import limits
from strato.domain.arns import FunctionRef
from strato.domain.errors import (
    InvalidRequestContentException,
    RequestEntityTooLargeException,
    ResourceConflictException,
    ResourceNotFoundException,
    UnsupportedOperationException,
)
from strato.sandbox.fake import FakeRuntime, FakeSandbox, serve
from strato.scheduler.invocation import InvocationResult
from strato.services.invocations import DRY_RUN, EVENT, InvocationService
from tests.support.control_plane import CHANGES, SCOPE, ControlPlane, package
from tests.support.fake_platform import make_pool


def echo(event: Any, runtime: FakeRuntime) -> dict[str, Any]:
    return {"event": event}


def run(test: Callable[[ControlPlane, InvocationService], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        plane = ControlPlane()
        sandbox = FakeSandbox(serve(echo))
        pool = make_pool(sandbox)
        try:
            await asyncio.wait_for(test(plane, InvocationService(plane.registry, pool)), 10)
        finally:
            await pool.close()
            await sandbox.close()

    asyncio.run(main())


async def call(service: InvocationService, name: str, payload: bytes = b"{}",
               qualifier: str | None = None) -> InvocationResult:
    future: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
    assert service.invoke(name, qualifier, payload, SCOPE, future.set_result) is None
    return await future


def test_an_active_function_runs_on_its_qualifier() -> None:
    async def test(plane: ControlPlane, service: InvocationService) -> None:
        plane.function_service.create("fn", CHANGES, package(), SCOPE)
        plane.settle()
        version = plane.function_service.publish(FunctionRef("fn"), None, None, None, SCOPE)
        plane.alias_service.create(FunctionRef("fn"), "live", version.version, None, None, SCOPE)
        result = await call(service, "fn", b'{"a": 1}')
        assert result.executed_version == "$LATEST"
        assert json.loads(result.payload)["event"] == {"a": 1}
        by_alias = await call(service, "fn", qualifier="live")
        assert by_alias.executed_version == version.version
        arn = await call(service, SCOPE.function_arn("fn", "live"))
        assert arn.executed_version == version.version

    run(test)


def test_errors_before_anything_runs() -> None:
    async def test(plane: ControlPlane, service: InvocationService) -> None:
        def invoke(name: str = "fn", payload: bytes = b"{}", **options: Any) -> object:
            return service.invoke(name, None, payload, SCOPE, lambda _: None, **options)

        with pytest.raises(ResourceNotFoundException, match="function:fn:\\$LATEST"):
            invoke()
        plane.function_service.create("fn", CHANGES, package(), SCOPE)
        with pytest.raises(ResourceConflictException, match="Pending"):
            invoke()
        plane.settle()
        with pytest.raises(InvalidRequestContentException):
            invoke(payload=b"{not json")
        with pytest.raises(RequestEntityTooLargeException):
            invoke(payload=b" " * (limits.SYNC_PAYLOAD_MAX_BYTES + 1))
        with pytest.raises(UnsupportedOperationException):
            invoke(invocation_type=EVENT)
        dry = invoke(invocation_type=DRY_RUN)
        assert dry == InvocationResult(b"", "$LATEST")

    run(test)
