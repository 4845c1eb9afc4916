"""The HTTP Runtime API of one environment (API version 2018-06-01).

https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html: ``GET …/invocation/next``,
``POST …/invocation/{id}/response``, ``POST …/invocation/{id}/error`` and
``POST …/init/error``, answered with the statuses and error bodies AWS's endpoint gives.

A response post with ``Lambda-Runtime-Function-Response-Mode: streaming`` is streamed: its
body (chunked, as a rule) goes to the invocation's caller as it arrives, and its trailers
``Lambda-Runtime-Function-Error-Type`` and ``Lambda-Runtime-Function-Error-Body`` (base64)
report an error that ended it mid-stream; it is answered once its body has ended
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming).

A refused request (an unknown route, a refused post, an environment shutting down) closes its
connection after the answer (``Connection: close``, which every HTTP client honours by
reconnecting): a runtime makes such a mistake once, while function code that pipelines
thousands of them would otherwise make strato answer each one.
"""

from __future__ import annotations

import base64
import binascii
import json

from strato.domain import limits
from strato.http.request import BodyStream, Request, Responder
from strato.scheduler.environment import ExecutionEnvironment, Post
from strato.scheduler.invocation import Invocation

PREFIX = "/2018-06-01/runtime/"
_NEXT = PREFIX + "invocation/next"
_INVOCATION = PREFIX + "invocation/"
_INIT_ERROR = PREFIX + "init/error"
_JSON = [("Content-Type", "application/json")]
_ACCEPTED = b'{"status":"OK"}'
_ERROR_TYPE = "lambda-runtime-function-error-type"
_ERROR_BODY = "lambda-runtime-function-error-body"
_RESPONSE_MODE = "lambda-runtime-function-response-mode"
_RESPONSE_SUFFIX = "/response"
#: What a streamed response is taken to be when the runtime names no Content-Type.
_DEFAULT_STREAM_TYPE = "application/octet-stream"


def _error(status: int, error_type: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, _JSON, json.dumps({"errorMessage": message, "errorType": error_type}).encode()


#: How each refused post is answered.
_REFUSALS = {
    Post.INVALID_REQUEST_ID: _error(400, "InvalidRequestID", "Invalid request ID"),
    Post.TOO_LARGE: _error(413, "RequestEntityTooLarge",
                           f"Exceeded maximum allowed payload size "
                           f"({limits.SYNC_RESPONSE_MAX_BYTES} bytes)."),
    Post.NOT_IN_INIT: _error(403, "InvalidStateTransition", "init/error is only legal during INIT"),
}
_STREAM_TOO_LARGE = _error(413, "RequestEntityTooLarge",
                           f"Exceeded maximum allowed payload size "
                           f"({limits.STREAMING_RESPONSE_MAX_BYTES} bytes).")


def streams(method: str, path: str, headers: dict[str, str]) -> bool:
    """Whether a request is a streamed response post (its body is taken as it arrives)."""
    return (method == "POST" and headers.get(_RESPONSE_MODE) == "streaming"
            and path.endswith(_RESPONSE_SUFFIX))


class HttpWaiter:
    """A parked ``invocation/next``: the event is its response."""

    __slots__ = ("_responder",)

    def __init__(self, responder: Responder) -> None:
        self._responder = responder

    def deliver(self, invocation: Invocation, deadline_ms: int) -> None:
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_arn),
        ]
        if invocation.trace_id:
            headers.append(("Lambda-Runtime-Trace-Id", invocation.trace_id))
        if invocation.client_context:
            headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
        if invocation.cognito_identity:
            headers.append(("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity))
        self._responder.send(200, headers, invocation.payload or b"{}")


class RuntimeApiRoutes:
    """Serves ``env``'s HTTP Runtime API; ``handle`` is the transport's handler."""

    __slots__ = ("_env",)

    def __init__(self, env: ExecutionEnvironment) -> None:
        self._env = env

    @staticmethod
    def body_limit(method: str, path: str) -> int:
        return limits.SYNC_RESPONSE_MAX_BYTES

    def handle(self, request: Request, responder: Responder) -> None:
        env, path, method = self._env, request.path, request.method
        if env.dead:
            responder.send(*_error(410, "Runtime.Gone", "environment is shutting down"),
                           close=True)
        elif path == _NEXT and method == "GET":
            env.runtime_next(HttpWaiter(responder))
        elif path.startswith(_INVOCATION) and method == "POST":
            request_id, _, action = path[len(_INVOCATION):].partition("/")
            if action == "response" and request.stream is not None:
                self._stream(request, request.stream, responder, request_id)
            elif action == "response":
                self._answer(responder, env.runtime_response(
                    request_id, None if request.too_large else request.body))
            elif action == "error":
                self._answer(responder, env.runtime_error(
                    request_id, request.body, request.headers.get(_ERROR_TYPE)))
            else:
                responder.send(*_error(404, "NotFound", f"no route {path}"), close=True)
        elif path == _INIT_ERROR and method == "POST":
            self._answer(responder, env.runtime_init_error(request.body,
                                                           request.headers.get(_ERROR_TYPE)))
        else:
            responder.send(*_error(404, "NotFound", f"no route {method} {path}"), close=True)

    def _stream(self, request: Request, stream: BodyStream, responder: Responder,
                request_id: str) -> None:
        """Forward a streamed response as it arrives; answer once its body has ended (with
        the first refusal, if a chunk was refused: what follows it is dropped)."""
        env = self._env
        content_type = request.headers.get("content-type", _DEFAULT_STREAM_TYPE)
        outcome = env.runtime_stream(request_id, content_type)
        if outcome is not Post.ACCEPTED:
            self._answer(responder, outcome)
            return
        refused: Post | None = None

        def on_chunk(data: bytes) -> None:
            nonlocal refused
            if refused is None:
                outcome = env.runtime_stream_chunk(request_id, data)
                if outcome is not Post.ACCEPTED:
                    refused = outcome

        def on_end(trailers: dict[str, str] | None) -> None:
            if refused is not None:
                responder.send(*(_STREAM_TOO_LARGE if refused is Post.TOO_LARGE
                                 else _REFUSALS[refused]), close=True)
                return
            error_type, error_body = _stream_error(trailers)
            self._answer(responder, env.runtime_stream_end(request_id, error_type, error_body))

        stream.consume(on_chunk, on_end)

    @staticmethod
    def _answer(responder: Responder, outcome: Post) -> None:
        if outcome is Post.ACCEPTED:
            responder.send(202, _JSON, _ACCEPTED)
        else:
            responder.send(*_REFUSALS[outcome], close=True)


def _stream_error(trailers: dict[str, str] | None) -> tuple[str | None, bytes | None]:
    """The error a streamed response ended with, from its trailers: (type, document), or
    (None, None) when it ended well. A body cut off before its end (the connection lost) is
    an error too."""
    if trailers is None:
        return "Runtime.TruncatedResponse", json.dumps({
            "errorMessage": "the runtime's connection closed before the end of its streamed "
                            "response",
            "errorType": "Runtime.TruncatedResponse"}).encode()
    error_type = trailers.get(_ERROR_TYPE)
    if error_type is None:
        return None, None
    encoded = trailers.get(_ERROR_BODY, "")
    try:
        body = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        body = encoded.encode("utf-8", "replace")
    return error_type, body
