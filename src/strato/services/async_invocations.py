"""Accepting asynchronous invocations: ``Invoke`` with ``InvocationType=Event`` and the
legacy ``InvokeAsync``, on the event loop's thread.

The function and qualifier must resolve and the payload must be JSON, as for a synchronous
invoke; then the event is stored durably (the group-commit writer) and only then does the
caller hear 202. Payloads are limited to 1 MB, 256 KB through InvokeAsync
(https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html,
https://docs.aws.amazon.com/lambda/latest/dg/API_InvokeAsync.html); a larger one is refused
with 413 and nothing is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from strato.async_invoke.events import NewEvent
from strato.async_invoke.writer import EventWriter
from strato.domain import limits
from strato.domain.arns import Scope
from strato.domain.clock import Clock
from strato.domain.errors import RequestEntityTooLargeException, ResourceConflictException
from strato.services.invocations import InvocationService, check_payload

#: InvokeAsync's own payload limit.
INVOKE_ASYNC_PAYLOAD_MAX_BYTES = 256 * 1024


class AsyncInvocationService:
    def __init__(self, invocations: InvocationService, writer: EventWriter, clock: Clock,
                 on_accepted: Callable[[str], None]) -> None:
        """``on_accepted(function_name)`` is called once an event of the function is stored
        (the worker then knows it has work)."""
        self._invocations = invocations
        self._writer = writer
        self._clock = clock
        self._on_accepted = on_accepted

    def accept(
        self, function_name: str, qualifier: str | None, payload: bytes, scope: Scope,
        request_id: str, *, legacy: bool = False,
    ) -> asyncio.Future[None]:
        """Queue an asynchronous invocation; the future resolves once it is stored durably
        (it fails with the store's error if it could not be). Raises AWS errors, before
        anything is stored, for a request that cannot be accepted. ``legacy``: InvokeAsync."""
        limit = INVOKE_ASYNC_PAYLOAD_MAX_BYTES if legacy else limits.ASYNC_PAYLOAD_MAX_BYTES
        if len(payload) > limit:
            operation = "InvokeAsync operation" if legacy else "Event invocation type"
            raise RequestEntityTooLargeException(
                f"{len(payload)} byte payload is too large for the {operation} "
                f"(limit {limit} bytes)"
            )
        ref, record = self._invocations.resolve(function_name, qualifier, scope)
        check_payload(payload)
        if not record.is_ready:
            raise ResourceConflictException(
                "The operation cannot be performed at this time. The function is currently in "
                f"the following state: {record.state.value}"
            )
        event = NewEvent(request_id, ref.name, ref.qualifier, scope.region, payload,
                         self._clock.now())
        stored = self._writer.insert(event)
        name = ref.name

        def announce(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                self._on_accepted(name)

        stored.add_done_callback(announce)
        return stored
