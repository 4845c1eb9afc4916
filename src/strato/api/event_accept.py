"""The edge of asynchronous invocation: ``Invoke`` with ``InvocationType=Event`` (202, no
body) and the legacy ``InvokeAsync`` (202, ``{"Status": 202}``), answered once the event is
stored durably. Called by ``api.server`` on the event loop's thread, after authentication and
authorisation; errors found before anything is stored are raised to it."""

from __future__ import annotations

import asyncio
import logging

from strato.api import rest_json
from strato.domain.arns import Scope
from strato.domain.errors import LambdaApiError, ServiceException
from strato.http.request import Responder
from strato.services.async_invocations import AsyncInvocationService

log = logging.getLogger(__name__)

_JSON = ("Content-Type", "application/json")
_INVOKE_ASYNC_BODY = b'{"Status":202}'


class EventAcceptor:
    def __init__(self, service: AsyncInvocationService) -> None:
        self._service = service

    def accept(self, responder: Responder, function_name: str, qualifier: str | None,
               payload: bytes, scope: Scope, request_id: str, *, legacy: bool = False) -> None:
        """Queue the event and answer 202 once it is stored. Raises LambdaApiError when the
        request cannot be accepted (nothing is stored then)."""
        stored = self._service.accept(function_name, qualifier, payload, scope, request_id,
                                      legacy=legacy)

        def answer(done: asyncio.Future[None]) -> None:
            headers = [_JSON, ("x-amzn-RequestId", request_id)]
            exc = done.exception() if not done.cancelled() else None
            if done.cancelled() or exc is not None:
                log.error("could not store an event of %s: %s", function_name, exc)
                error: LambdaApiError = ServiceException("The event could not be stored")
                response = rest_json.serialize_error(error)
                responder.send(response.status, [*response.headers, headers[1]], response.body)
                return
            responder.send(202, headers, _INVOKE_ASYNC_BODY if legacy else b"")

        stored.add_done_callback(answer)
