"""An invocation on its way through an execution environment, and its result.

Fault types are AWS's string constants (``Sandbox.Timedout``, ``Runtime.ExitError``, …) with
AWS's messages, as recorded from the real service.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

SANDBOX_TIMEDOUT = "Sandbox.Timedout"
RUNTIME_EXIT_ERROR = "Runtime.ExitError"
RUNTIME_OUT_OF_MEMORY = "Runtime.OutOfMemory"
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"
SANDBOX_START_FAILED = "Sandbox.StartFailed"


class InvocationResult(NamedTuple):
    """What the caller of Invoke gets. ``function_error`` is ``"Unhandled"`` for any error
    of the function or its environment; ``log_tail`` is the base64 of the last 4 KB of the
    invocation's log, only when the caller asked for it. (A NamedTuple: immutable, and
    built on every invocation without a frozen dataclass's cost.)"""

    payload: bytes
    executed_version: str
    function_error: str | None = None
    log_tail: str | None = None


@dataclass(frozen=True)
class Fault:
    """An error produced by the platform (not by the function's own runtime)."""

    error_type: str
    message: str

    def payload(self) -> bytes:
        return json.dumps({"errorMessage": self.message, "errorType": self.error_type}).encode()


def timed_out(request_id: str, timeout_s: float) -> Fault:
    return Fault(
        SANDBOX_TIMEDOUT, f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
    )


def runtime_exited(request_id: str, how: str | None, *, out_of_memory: bool = False) -> Fault:
    """``how`` is e.g. ``exit status 1`` or ``signal: killed``; None for a clean exit."""
    if how is None:
        return Fault(
            RUNTIME_EXIT_ERROR, f"RequestId: {request_id} Error: Runtime exited without providing a reason"
        )
    return Fault(
        RUNTIME_OUT_OF_MEMORY if out_of_memory else RUNTIME_EXIT_ERROR,
        f"RequestId: {request_id} Error: Runtime exited with error: {how}",
    )


def function_deleted(request_id: str) -> Fault:
    """The invocation in flight when its function (or version) was deleted: its environment
    is ended at once rather than left running code nobody can invoke or observe any more."""
    return Fault(
        RUNTIME_EXIT_ERROR,
        f"RequestId: {request_id} Error: Runtime exited with error: the function was deleted",
    )


def response_too_large(limit: int) -> Fault:
    return Fault(
        RESPONSE_TOO_LARGE,
        f"Response payload size exceeded maximum allowed payload size ({limit} bytes).",
    )


class StreamSink(Protocol):
    """Where a caller that takes a response as a stream receives it, as the runtime sends it
    (``Lambda-Runtime-Function-Response-Mode: streaming``). ``begin`` comes first, once,
    then any number of ``chunk``; the end (success, or the error the runtime reported
    mid-stream, and the log tail) is the invocation's ``on_done``, whose ``payload`` is then
    empty on success and the error document on error. A runtime that answers with a
    buffered response calls neither: ``on_done`` has the whole payload."""

    def begin(self, content_type: str) -> None:
        """The runtime started streaming a body of ``content_type``."""

    def chunk(self, data: bytes) -> None:
        """The next bytes of the body (never empty)."""


class Invocation:
    """One synchronous invocation handed to the environment pool.

    ``on_done`` is called exactly once, on the event loop's thread, with the result.
    ``stream`` is where a caller that takes the response as a stream receives it; without
    one a streamed response is gathered into ``on_done``'s payload (as Invoke answers it).
    """

    __slots__ = ("request_id", "payload", "invoked_arn", "client_context", "cognito_identity",
                 "want_tail", "trace_id", "on_done", "done", "stream")

    def __init__(
        self,
        request_id: str,
        payload: bytes,
        invoked_arn: str,
        on_done: Callable[[InvocationResult], None],
        *,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        want_tail: bool = False,
        trace_id: str | None = None,
        stream: StreamSink | None = None,
    ) -> None:
        self.request_id = request_id
        self.payload = payload
        self.invoked_arn = invoked_arn
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        self.want_tail = want_tail
        self.trace_id = trace_id
        self.on_done = on_done
        self.done = False
        self.stream = stream

    def finish(self, result: InvocationResult) -> None:
        if not self.done:
            self.done = True
            self.on_done(result)
