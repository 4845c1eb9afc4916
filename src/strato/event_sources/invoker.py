"""How pollers run a function: the synchronous invoke path, awaited.

``FunctionInvoker`` is what a poller needs; ``ServiceInvoker`` is the real one, on
``InvocationService`` (the path Invoke itself takes: qualifier and alias resolution,
payload checks, concurrency limits, environments). Both live on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from strato.domain.arns import Scope
from strato.domain.errors import LambdaApiError
from strato.domain.ids import request_id as new_request_id
from strato.scheduler.invocation import InvocationResult
from strato.services.invocations import InvocationService


class FunctionInvoker(Protocol):
    def available(self, function_name: str, qualifier: str | None, scope: Scope) -> bool:
        """Whether the function (and qualifier) exists and can be invoked now."""

    async def invoke(self, function_name: str, qualifier: str | None, payload: bytes,
                     scope: Scope) -> InvocationResult:
        """Invoke synchronously. Raises LambdaApiError when the invocation cannot start
        (TooManyRequestsException when throttled, ResourceNotFoundException, ...)."""


class ServiceInvoker:
    """``FunctionInvoker`` on the invocation service (call on the event loop's thread)."""

    def __init__(self, invocations: InvocationService) -> None:
        self._invocations = invocations

    def available(self, function_name: str, qualifier: str | None, scope: Scope) -> bool:
        try:
            _, record = self._invocations.resolve(function_name, qualifier, scope)
        except LambdaApiError:
            return False
        return record.is_ready

    async def invoke(self, function_name: str, qualifier: str | None, payload: bytes,
                     scope: Scope) -> InvocationResult:
        future: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()

        def done(result: InvocationResult) -> None:
            if not future.done():  # the poller may have been stopped meanwhile
                future.set_result(result)

        self._invocations.invoke(function_name, qualifier, payload, scope, done,
                                 request_id=new_request_id())
        return await future
