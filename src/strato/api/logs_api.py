"""The part of the CloudWatch Logs API that reads function logs (JSON 1.1 protocol).

``aws logs filter-log-events --log-group-name /aws/lambda/<fn>``, ``get-log-events`` and
``describe-log-streams`` work against strato's endpoint, and ``strato logs`` uses the same
operations. Queries run off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import strato.api.json_protocol as json_protocol
from strato.api.service_models import service_model
from strato.domain.arns import Scope
from strato.domain.errors import LambdaApiError, ServiceException, UnsupportedOperationException
from strato.http.request import Request, Responder
from strato.store.base import LogStore
from strato.store.log_writer import expand

log = logging.getLogger(__name__)

_DEFAULT_LIMIT = 10_000


def _event_messages(record: str) -> list[str]:
    """The messages of the log events a stored record holds: one per non-empty line, each
    ending with the line's newline, as CloudWatch Logs keeps a Lambda function's output
    (recorded logs.text.multi_line_prints: empty lines make no event, ``\r`` splits none)."""
    return [line + "\n" for line in expand(record) if line]


def _matches(message: str, pattern: str | None) -> bool:
    """CloudWatch's simplest filter patterns: every (optionally quoted) term must appear."""
    if not pattern:
        return True
    if pattern.startswith('"') and pattern.endswith('"'):
        return pattern.strip('"') in message
    return all(term in message for term in pattern.split())


class LogsApi:
    def __init__(self, store: LogStore, executor: Executor | None = None) -> None:
        self._store = store
        self._executor = executor
        self._operations: dict[str, Callable[[dict[str, Any], Scope], dict[str, Any]]] = {
            "FilterLogEvents": self.filter_log_events,
            "GetLogEvents": self.get_log_events,
            "DescribeLogStreams": self.describe_log_streams,
        }

    def handle(self, request: Request, responder: Responder, scope: Scope) -> None:
        try:
            operation = json_protocol.operation_for_target(
                service_model("logs"), request.headers.get("x-amz-target", "")
            )
            run = self._operations.get(operation.name) if operation else None
            if operation is None or run is None:
                raise UnsupportedOperationException(
                    f"strato does not offer {request.headers.get('x-amz-target')}"
                )
            params = json_protocol.parse_request(operation, request.body)
        except LambdaApiError as error:
            response = json_protocol.serialize_error(error)
            responder.send(response.status, response.headers, response.body)
            return
        future = asyncio.get_running_loop().run_in_executor(self._executor, run, params, scope)

        def done(task: asyncio.Future[dict[str, Any]]) -> None:
            try:
                response = json_protocol.serialize_response(operation, task.result())
            except LambdaApiError as error:
                response = json_protocol.serialize_error(error)
            except Exception:
                log.exception("logs API error")
                response = json_protocol.serialize_error(ServiceException("Internal error"))
            responder.send(response.status, response.headers, response.body)

        future.add_done_callback(done)

    def filter_log_events(self, params: dict[str, Any], scope: Scope) -> dict[str, Any]:
        group = params["logGroupName"]
        limit = params.get("limit") or _DEFAULT_LIMIT
        after = int(params.get("nextToken") or 0)
        streams = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if prefix:
            streams = [s.stream for s in self._store.streams(group, prefix=prefix)]
        found = self._store.query(
            group, streams=streams, start_ms=params.get("startTime"), end_ms=params.get("endTime"),
            after_position=after, limit=limit,
        )
        pattern = params.get("filterPattern")
        events = [
            {
                "logStreamName": e.event.stream,
                "timestamp": e.event.timestamp_ms,
                "message": line,
                "ingestionTime": e.ingestion_ms,
                "eventId": str(e.position),
            }
            for e in found
            for line in _event_messages(e.event.message)
            if _matches(line, pattern)
        ]
        output: dict[str, Any] = {"events": events, "searchedLogStreams": []}
        if len(found) >= limit:
            output["nextToken"] = str(found[-1].position)
        return output

    def get_log_events(self, params: dict[str, Any], scope: Scope) -> dict[str, Any]:
        token = params.get("nextToken") or "f/0"
        after = int(token.split("/", 1)[1]) if "/" in token else 0
        found = self._store.query(
            params["logGroupName"], streams=[params["logStreamName"]],
            start_ms=params.get("startTime"), end_ms=params.get("endTime"),
            after_position=after, limit=params.get("limit") or _DEFAULT_LIMIT,
        )
        last = found[-1].position if found else after
        return {
            "events": [
                {"timestamp": e.event.timestamp_ms, "message": line, "ingestionTime": e.ingestion_ms}
                for e in found
                for line in _event_messages(e.event.message)
            ],
            "nextForwardToken": f"f/{last}",
            "nextBackwardToken": f"b/{found[0].position if found else after}",
        }

    def describe_log_streams(self, params: dict[str, Any], scope: Scope) -> dict[str, Any]:
        group = params["logGroupName"]
        streams = self._store.streams(group, prefix=params.get("logStreamNamePrefix"))
        if params.get("orderBy") == "LastEventTime":
            streams.sort(key=lambda s: s.last_event_ms)
        if params.get("descending"):
            streams.reverse()
        streams = streams[: params.get("limit") or 50]
        return {
            "logStreams": [
                {
                    "logStreamName": s.stream,
                    "creationTime": s.first_event_ms,
                    "firstEventTimestamp": s.first_event_ms,
                    "lastEventTimestamp": s.last_event_ms,
                    "lastIngestionTime": s.last_ingestion_ms,
                    "arn": f"arn:aws:logs:{scope.region}:{scope.account}:log-group:{group}:"
                           f"log-stream:{s.stream}",
                    "storedBytes": 0,
                }
                for s in streams
            ]
        }
