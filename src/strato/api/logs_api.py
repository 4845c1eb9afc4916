"""The part of the CloudWatch Logs API that reads function logs (JSON 1.1 protocol).

``aws logs filter-log-events --log-group-name /aws/lambda/<fn>``, ``get-log-events`` and
``describe-log-streams`` work against strato's endpoint, and ``strato logs`` uses the same
operations. The edge parses a request, runs the query of ``services.logs`` off the event
loop, and renders its answer.
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
from strato.services.logs import LogService

log = logging.getLogger(__name__)


class LogsApi:
    def __init__(self, logs: LogService, executor: Executor | None = None) -> None:
        self._logs = logs
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
        found = self._logs.filter_lines(
            params["logGroupName"], streams=params.get("logStreamNames"),
            stream_prefix=params.get("logStreamNamePrefix"), start_ms=params.get("startTime"),
            end_ms=params.get("endTime"), after=int(params.get("nextToken") or 0),
            limit=params.get("limit"), pattern=params.get("filterPattern"),
        )
        events = [
            {
                "logStreamName": line.stream,
                "timestamp": line.timestamp_ms,
                "message": line.message,
                "ingestionTime": line.ingestion_ms,
                "eventId": str(line.position),
            }
            for line in found.lines
        ]
        output: dict[str, Any] = {"events": events, "searchedLogStreams": []}
        if found.next_position is not None:
            output["nextToken"] = str(found.next_position)
        return output

    def get_log_events(self, params: dict[str, Any], scope: Scope) -> dict[str, Any]:
        token = params.get("nextToken") or "f/0"
        after = int(token.split("/", 1)[1]) if "/" in token else 0
        found = self._logs.stream_lines(
            params["logGroupName"], params["logStreamName"], start_ms=params.get("startTime"),
            end_ms=params.get("endTime"), after=after, limit=params.get("limit"),
        )
        return {
            "events": [
                {"timestamp": line.timestamp_ms, "message": line.message,
                 "ingestionTime": line.ingestion_ms}
                for line in found.lines
            ],
            "nextForwardToken": f"f/{found.last_position}",
            "nextBackwardToken": f"b/{found.first_position}",
        }

    def describe_log_streams(self, params: dict[str, Any], scope: Scope) -> dict[str, Any]:
        group = params["logGroupName"]
        streams = self._logs.streams(
            group, prefix=params.get("logStreamNamePrefix"),
            by_last_event=params.get("orderBy") == "LastEventTime",
            descending=bool(params.get("descending")), limit=params.get("limit"),
        )
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
