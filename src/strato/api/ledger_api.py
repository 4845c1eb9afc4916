"""The event ledger: strato's own API over the asynchronous queue (``/_strato/events``).

Requests are signed with SigV4 like the Lambda API's (``api.server`` verifies them) and
authorised as ``strato:ListEvents`` / ``strato:RedriveEvents`` on the function's ARN (``*``
for every function), which an administrator's policy allows.

- ``GET /_strato/events?function=NAME&state=failed,retrying&limit=100&marker=SEQ`` lists
  events in the order they were accepted: state (``queued``, ``in_flight``, ``retrying``,
  ``succeeded``, ``failed``), attempts, next attempt, age, last error; with ``Counts`` by state
  and a ``NextMarker`` when there are more.
- ``POST /_strato/events/redrive`` with ``{"FunctionName": NAME, "ToVersion": "3"}`` queues
  the function's failed events again as new ones (``ToVersion`` optional: the qualifier they
  then run); answers ``{"Redriven": n}``.

The edge parses the request, calls ``services.event_ledger`` (reads on the query executor)
and renders its answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from strato.api import rest_json
from strato.async_invoke.events import EventState, LedgerEntry
from strato.domain.arns import Scope
from strato.domain.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    LambdaApiError,
    ServiceException,
    UnsupportedOperationException,
)
from strato.domain.principals import Principal
from strato.http.request import Request, Responder
from strato.services.event_ledger import EventLedgerService, LedgerPage

log = logging.getLogger(__name__)

_JSON = ("Content-Type", "application/json")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

Authorize = Callable[[Principal, str, str], None]


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def render_entry(entry: LedgerEntry, now: float) -> dict[str, Any]:
    return {
        "RequestId": entry.request_id,
        "FunctionName": entry.function_name,
        "Qualifier": entry.qualifier,
        "State": entry.state.value,
        "Attempts": entry.attempts,
        "Claims": entry.claims,
        "AcceptedAt": _iso(entry.accepted_at),
        "AgeSeconds": round(max(0.0, (entry.finished_at or now) - entry.accepted_at), 3),
        "NextAttemptAt": _iso(entry.next_attempt_at),
        "FinishedAt": _iso(entry.finished_at),
        "Condition": entry.condition,
        "LastError": entry.last_error,
    }


def render_page(page: LedgerPage) -> dict[str, Any]:
    output: dict[str, Any] = {
        "Events": [render_entry(e, page.now) for e in page.entries],
        "Counts": {state.value: page.counts.get(state, 0) for state in EventState},
    }
    if page.next_marker is not None:
        output["NextMarker"] = str(page.next_marker)
    return output


class LedgerApi:
    def __init__(self, ledger: EventLedgerService, executor: Executor, *,
                 authorizer: Authorize | None) -> None:
        self._ledger = ledger
        self._executor = executor
        self._authorizer = authorizer

    def handle(self, request: Request, responder: Responder, principal: Principal,
               scope: Scope) -> None:
        """Serve one ledger request (a ``SignedRoute`` of ``api.server``)."""
        path = request.path.rstrip("/")
        if path == "/_strato/events" and request.method == "GET":
            self._list(request, responder, principal, scope)
        elif path == "/_strato/events/redrive" and request.method == "POST":
            self._redrive(request, responder, principal, scope)
        else:
            raise UnsupportedOperationException(
                f"strato has no ledger operation at {request.method} {request.path}")

    def _authorize(self, principal: Principal, action: str, resource: str) -> None:
        if self._authorizer is not None:
            self._authorizer(principal, action, resource)

    def _list(self, request: Request, responder: Responder, principal: Principal,
              scope: Scope) -> None:
        query = parse_qs(request.query_string)
        function = query["function"][0] if query.get("function") else None
        self._authorize(principal, "strato:ListEvents",
                        scope.function_arn(function) if function else "*")
        try:
            states = [EventState(s) for v in query.get("state", []) for s in v.split(",") if s]
            limit = min(MAX_LIMIT, int((query.get("limit") or [str(DEFAULT_LIMIT)])[0]))
            after = int((query.get("marker") or ["0"])[0])
        except ValueError as exc:
            raise InvalidParameterValueException(
                f"Invalid ledger query: {exc} (states: "
                f"{', '.join(s.value for s in EventState)})") from exc
        if limit < 1:
            raise InvalidParameterValueException("limit must be at least 1")
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, self._ledger.page, function, states, after, limit)
        future.add_done_callback(lambda done: _answer(responder, done, render_page))

    def _redrive(self, request: Request, responder: Responder, principal: Principal,
                 scope: Scope) -> None:
        try:
            document = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise InvalidRequestContentException(f"Could not parse request body into json: {exc}") from exc
        name = document.get("FunctionName") if isinstance(document, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidParameterValueException("FunctionName is required")
        version = document.get("ToVersion")
        if version is not None and not isinstance(version, str):
            raise InvalidParameterValueException("ToVersion must be a string")
        self._authorize(principal, "strato:RedriveEvents", scope.function_arn(name))
        future = self._ledger.redrive(scope, name, version)
        future.add_done_callback(
            lambda done: _answer(responder, done, lambda count: {"Redriven": count}))


def _answer(responder: Responder, done: asyncio.Future[Any],
            shape: Callable[[Any], dict[str, Any]] = lambda output: dict(output)) -> None:
    try:
        body = json.dumps(shape(done.result())).encode()
    except LambdaApiError as error:
        response = rest_json.serialize_error(error)
        responder.send(response.status, response.headers, response.body)
        return
    except Exception:
        log.exception("ledger request failed")
        response = rest_json.serialize_error(ServiceException("Internal error"))
        responder.send(response.status, response.headers, response.body)
        return
    responder.send(200, [_JSON], body)
