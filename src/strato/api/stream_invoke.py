"""InvokeWithResponseStream: the edge of a streamed invocation.

``POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations`` is parsed and
validated with botocore's model; the answer is ``application/vnd.amazon.eventstream`` in
chunked transfer encoding (``api.event_stream``): a ``PayloadChunk`` event for each chunk the
runtime streams, as it streams it, then one ``InvokeComplete`` with ``ErrorCode`` and
``ErrorDetails`` when the function failed (mid-stream, or before it streamed anything) and
``LogResult`` when ``LogType`` is ``Tail``. A function whose runtime answers with a buffered
response gets it as one ``PayloadChunk``, as on AWS. Errors before anything runs (a missing
function, a bad parameter, a throttle) are the Lambda API's usual error responses.
https://docs.aws.amazon.com/lambda/latest/api/API_InvokeWithResponseStream.html
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

from strato.api.event_stream import CONTENT_TYPE, EventStreamWriter
from strato.api.service_models import service_model
from strato.api.validation import validate
from strato.domain.arns import Scope
from strato.domain.errors import ValidationException
from strato.http.request import Request, Responder
from strato.scheduler.invocation import InvocationResult
from strato.services.invocations import InvocationService

PATH = re.compile(r"/2021-11-15/functions/([^/]+)/response-streaming-invocations/?")
_OPERATION = "InvokeWithResponseStream"


class _EventStreamResponse:
    """One invocation's answer: the head at the first chunk (or at the end), then events.
    The invocation's ``StreamSink``."""

    __slots__ = ("_writer", "_responder", "_head", "_started")

    def __init__(self, writer: EventStreamWriter, responder: Responder,
                 head: list[tuple[str, str]]) -> None:
        self._writer = writer
        self._responder = responder
        self._head = head
        self._started = False

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._responder.begin(200, self._head)

    def begin(self, content_type: str) -> None:
        # The client's first bytes should not wait for the function's first chunk.
        self._start()

    def chunk(self, data: bytes) -> None:
        self._responder.write(self._writer.event("PayloadChunk", {"Payload": data}))

    def done(self, result: InvocationResult) -> None:
        self._start()
        complete: dict[str, Any] = {}
        if result.function_error:
            # A buffered error document, or the one the runtime sent in its trailers.
            complete["ErrorCode"] = _error_code(result.payload)
            complete["ErrorDetails"] = result.payload.decode("utf-8", "replace")
        elif result.payload:  # a buffered response: one chunk
            self.chunk(result.payload)
        if result.log_tail is not None:
            complete["LogResult"] = result.log_tail
        self._responder.write(self._writer.event("InvokeComplete", complete))
        self._responder.end()


def _error_code(document: bytes) -> str:
    try:
        parsed = json.loads(document)
    except ValueError:
        return "Unhandled"
    code = parsed.get("errorType") if isinstance(parsed, dict) else None
    return code if isinstance(code, str) and code else "Unhandled"


class StreamInvokeApi:
    """Serves InvokeWithResponseStream through ``invocations``; the caller was authenticated
    and authorised (``lambda:InvokeFunction`` on the function) by the API endpoint."""

    def __init__(self, invocations: InvocationService) -> None:
        self._invocations = invocations
        self._operation = service_model("lambda").operation_model(_OPERATION)
        self._writer = EventStreamWriter(self._operation)

    def params(self, request: Request, function_name: str) -> dict[str, Any]:
        """The request's parameters, validated against the model (raises AWS's
        ValidationException)."""
        params: dict[str, Any] = {"FunctionName": function_name}
        qualifier = next(iter(parse_qs(request.query_string).get("Qualifier", [])), None)
        for member, value in (("Qualifier", qualifier),
                              ("InvocationType", request.headers.get("x-amz-invocation-type")),
                              ("LogType", request.headers.get("x-amz-log-type")),
                              ("ClientContext", request.headers.get("x-amz-client-context"))):
            if value is not None:
                params[member] = value
        errors = validate(self._operation.input_shape, params)
        if errors:
            raise ValidationException.from_items(errors)
        return params

    def invoke(self, request: Request, responder: Responder, params: dict[str, Any],
               scope: Scope, request_id: str) -> None:
        """Start the invocation; its events go to ``responder`` as they come."""
        head = [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", request_id)]
        answer = _EventStreamResponse(self._writer, responder, head)
        dry_run = params.get("InvocationType") == "DryRun"
        version = self._invocations.invoke_streaming(
            params["FunctionName"], params.get("Qualifier"), request.body, scope, answer,
            answer.done, request_id=request_id, dry_run=dry_run,
            tail=params.get("LogType") == "Tail", client_context=params.get("ClientContext"))
        head.append(("X-Amz-Executed-Version", version))
        if dry_run:
            responder.send(204, head)
