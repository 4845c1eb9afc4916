"""Runtime fault types and the error document posted to the Runtime API.

The document is what Lambda returns as the Invoke payload when ``FunctionError`` is
``Unhandled``: ``{"errorMessage", "errorType", "requestId", "stackTrace"}``. A failure of the
runtime's own making (bad handler name, unparsable event, unserialisable result) carries one of
the ``Runtime.*`` fault types below, the strings AWS's Python runtime reports; an exception
raised by user code carries its class name and the user's frames only.

Stdlib only: this runs inside the function's interpreter (Python 3.10 to 3.13).
"""

from __future__ import annotations

import os
import traceback

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

# Frames in this directory are the runtime's, not the user's: they are cut from the front of a
# stack trace, as AWS cuts its bootstrap.py frames.
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Fault(Exception):
    """A failure reported under a ``Runtime.*`` fault type rather than an exception class.

    ``stack_trace`` is a list of preformatted frame strings (often empty)."""

    def __init__(self, fault_type: str, message: str,
                 stack_trace: Iterable[str] | None = None) -> None:
        super().__init__(message)
        self.fault_type = fault_type
        self.message = message
        self.stack_trace = list(stack_trace or ())

    def to_error(self, request_id: str = "") -> dict[str, Any]:
        return error_document(self.message, self.fault_type, self.stack_trace, request_id)


def error_document(message: str | None, error_type: str | None, stack_trace: list[str] | None,
                   request_id: str | None = "") -> dict[str, Any]:
    """The JSON-ready error body. ``request_id`` is ``""`` for INIT errors, as on AWS."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


def exception_error(exc: BaseException, request_id: str = "") -> dict[str, Any]:
    """The error body for an exception raised by user code (during import or invoke).

    Frames are formatted like ``traceback.format_list`` from plain 4-tuples, so there are no
    column carets on 3.11+ (AWS records none either)."""
    frames = [(frame.filename, frame.lineno, frame.name, frame.line)
              for frame in traceback.extract_tb(exc.__traceback__)]
    start = 0
    while start < len(frames) and frames[start][0].startswith(_RUNTIME_DIR):
        start += 1
    # A frame without a line number (typeshed wants one) is formatted without it.
    stack_trace = traceback.format_list(frames[start:])  # type: ignore[arg-type]
    return error_document(str(exc), type(exc).__name__, stack_trace, request_id)


def log_text(error: Mapping[str, Any]) -> str:
    """The log entry for an error body: ``[ERROR] <type>: <message>``, then the traceback.

    Lines are joined with ``\\n`` (awslambdaric's plain-stdout sink uses ``\\r``; strato's log
    reader keeps multi-line entries readable). The ``Traceback`` header is written even when
    there are no frames, as AWS does for ``Runtime.*`` faults."""
    head = "[ERROR]"
    if error.get("errorType"):
        head += " " + error["errorType"]
    if error.get("errorMessage"):
        head += (":" if error.get("errorType") else "") + " " + error["errorMessage"]
    lines = [head, "Traceback (most recent call last):"]
    for element in error.get("stackTrace") or ():
        lines.extend(element.splitlines() or [""])
    return "\n".join(lines) + "\n"
