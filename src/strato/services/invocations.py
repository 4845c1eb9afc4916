"""The invocation service: from an Invoke request to a result, on the event loop's thread.

Resolves the function and its qualifier in the registry (no database read; a weighted alias
picks its version here), checks the payload and the function's state, and hands the
invocation to the environment pool. The result reaches the
caller through ``on_done``; errors before the function runs are raised as AWS errors.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable

from strato.domain import limits
from strato.domain.arns import FunctionRef, Scope, resolve_function_name
from strato.domain.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestEntityTooLargeException,
    ResourceConflictException,
    ResourceNotFoundException,
    UnsupportedOperationException,
)
from strato.domain.ids import request_id as new_request_id
from strato.domain.ids import trace_id
from strato.domain.models import LATEST, FunctionVersion
from strato.scheduler.invocation import Invocation, InvocationResult, StreamSink
from strato.scheduler.pool import EnvironmentPool
from strato.services.registry import FunctionRegistry, resolve

REQUEST_RESPONSE = "RequestResponse"
DRY_RUN = "DryRun"
EVENT = "Event"
_CLIENT_CONTEXT_MAX = 3583


def check_payload(payload: bytes) -> None:
    """A payload must be JSON (AWS parses it before running anything)."""
    if not payload:
        return
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from exc


def decode_client_context(header: str | None) -> str | None:
    """``X-Amz-Client-Context`` is base64 of a JSON object; the runtime receives the JSON."""
    if header is None:
        return None
    if len(header) > _CLIENT_CONTEXT_MAX:
        raise InvalidParameterValueException("Client context must be 3583 bytes or less")
    try:
        text = base64.b64decode(header, validate=True).decode()
        json.loads(text)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestContentException(
            "Client context must be a valid Base64-encoded JSON object."
        ) from exc
    return text


class InvocationService:
    def __init__(self, registry: FunctionRegistry, pool: EnvironmentPool) -> None:
        self._registry = registry
        self._pool = pool

    def resolve(
        self, function_name: str, qualifier: str | None, scope: Scope
    ) -> tuple[FunctionRef, FunctionVersion]:
        ref = resolve_function_name(function_name, scope, qualifier)
        entry = self._registry.get(ref.name)
        record = None if entry is None else resolve(entry, ref.qualifier)
        if record is None:
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, ref.qualifier or LATEST)}"
            )
        return ref, record

    def invoke(
        self,
        function_name: str,
        qualifier: str | None,
        payload: bytes,
        scope: Scope,
        on_done: Callable[[InvocationResult], None],
        *,
        request_id: str | None = None,
        invocation_type: str = REQUEST_RESPONSE,
        tail: bool = False,
        client_context: str | None = None,
        payload_is_json: bool = False,
    ) -> InvocationResult | None:
        """Start an invocation. Returns a result at once for DryRun; otherwise None and the
        result goes to ``on_done``. Raises AWS errors for a request that cannot run.
        ``payload_is_json``: the caller serialised the payload itself (a function URL's
        event), so it is not parsed again."""
        ref, record, context = self._admit(function_name, qualifier, payload, scope,
                                           invocation_type, client_context, payload_is_json)
        if invocation_type == DRY_RUN:
            return InvocationResult(b"", record.version)
        self._dispatch(ref, record, context, payload, scope, on_done, request_id, tail, None)
        return None

    def invoke_streaming(
        self,
        function_name: str,
        qualifier: str | None,
        payload: bytes,
        scope: Scope,
        sink: StreamSink,
        on_done: Callable[[InvocationResult], None],
        *,
        request_id: str | None = None,
        dry_run: bool = False,
        tail: bool = False,
        client_context: str | None = None,
        payload_is_json: bool = False,
    ) -> str:
        """Start an invocation whose response ``sink`` takes as the runtime streams it
        (InvokeWithResponseStream, a RESPONSE_STREAM function URL); its end (or a whole
        buffered response) goes to ``on_done``. Returns the version that runs it, before
        anything reaches ``sink``; with ``dry_run``, nothing runs. Raises AWS errors for a
        request that cannot run, as ``invoke`` does (``payload_is_json`` as there)."""
        ref, record, context = self._admit(function_name, qualifier, payload, scope,
                                           DRY_RUN if dry_run else REQUEST_RESPONSE,
                                           client_context, payload_is_json)
        if dry_run:
            return record.version
        self._dispatch(ref, record, context, payload, scope, on_done, request_id, tail, sink)
        return record.version

    def _dispatch(self, ref: FunctionRef, record: FunctionVersion, context: str | None,
                  payload: bytes, scope: Scope, on_done: Callable[[InvocationResult], None],
                  request_id: str | None, tail: bool, sink: StreamSink | None) -> None:
        """Hand an admitted invocation of ``record`` to the pool (streamed into ``sink``
        when given)."""
        self._pool.invoke(record, Invocation(
            request_id or new_request_id(),
            payload,
            scope.function_arn(record.name, ref.qualifier),
            on_done,
            client_context=context,
            want_tail=tail,
            trace_id=trace_id(),
            stream=sink,
        ))

    def _admit(
        self, function_name: str, qualifier: str | None, payload: bytes, scope: Scope,
        invocation_type: str, client_context: str | None, payload_is_json: bool = False,
    ) -> tuple[FunctionRef, FunctionVersion, str | None]:
        """The checks of a synchronous invocation, in AWS's order: the function and
        qualifier it resolves to, and the decoded client context; raises AWS errors."""
        if len(payload) > limits.SYNC_PAYLOAD_MAX_BYTES:
            raise RequestEntityTooLargeException(
                f"Request must be smaller than {limits.SYNC_PAYLOAD_MAX_BYTES} bytes for the "
                "InvokeFunction operation"
            )
        ref, record = self.resolve(function_name, qualifier, scope)
        if invocation_type == EVENT:
            # Events are accepted by services.async_invocations, which stores them first.
            raise UnsupportedOperationException(
                "This server does not accept asynchronous invocations (InvocationType=Event)."
            )
        if not payload_is_json:
            check_payload(payload)
        context = decode_client_context(client_context)
        if not record.is_ready:
            raise ResourceConflictException(
                "The operation cannot be performed at this time. The function is currently in "
                f"the following state: {record.state.value}"
            )
        return ref, record, context
