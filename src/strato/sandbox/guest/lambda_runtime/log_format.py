"""Lambda's log formats for the ``logging`` module: text, or JSON records.

With the text format (the default) a record becomes
``[LEVEL]\\t2024-01-15T10:30:00.123Z\\t<request id>\\t<message>\\n`` on stdout
(https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html). With the JSON format
(``AWS_LAMBDA_LOG_FORMAT=JSON``) a record becomes one line of JSON, the shape AWS's Python
runtime writes: ``timestamp`` (UTC, milliseconds), ``level`` (Python's level name),
``message``, ``logger``, ``requestId``; with exception information also ``errorType``,
``errorMessage``, ``stackTrace`` (the formatted frames) and ``location``
(``path:function:line``); then the members given with ``extra=``. ``print`` output is left as
it is, as on AWS. The handler is added to the root logger before user code is imported, so
``logging.basicConfig()`` in user code is a no-op there, exactly as on AWS; handlers the user
adds are left alone.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from datetime import datetime, timezone

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# AWS_LAMBDA_LOG_LEVEL uses Lambda's names; TRACE has no logging equivalent below DEBUG.
_LEVELS = {"TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING",
           "WARNING": "WARNING", "ERROR": "ERROR", "FATAL": "CRITICAL", "CRITICAL": "CRITICAL"}

#: Attributes every LogRecord has (and the runtime's own): not copied into a JSON record as
#: ``extra=`` members.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "aws_request_id", "taskName"}


class LambdaTextFormatter(logging.Formatter):
    """Formats times in UTC with milliseconds; expects ``record.aws_request_id``."""

    # A builtin function is not bound as a method, whatever the type checker takes it for.
    converter = time.gmtime  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class LambdaJsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring); expects
    ``record.aws_request_id``. Values JSON cannot hold are written as their ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        # A custom level between two standard ones is named after the one below, as AWS does.
        level = logging.getLevelName(min(50, max(0, record.levelno)) // 10 * 10)
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": level,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", ""),
        }
        if record.exc_info and record.exc_info[0] is not None:
            error_type, error, trace = record.exc_info
            entry["errorType"] = error_type.__name__
            entry["errorMessage"] = str(error)
            entry["stackTrace"] = traceback.format_tb(trace)
            entry["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry and value is not None:
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


class RequestLogHandler(logging.Handler):
    """Writes records to the current ``sys.stdout`` tagged with ``request_id``, which the
    invoke loop sets at the start of each invocation (``""`` during INIT)."""

    def __init__(self, json_format: bool) -> None:
        super().__init__()
        self.request_id = ""
        self.json_format = json_format
        self.setFormatter(LambdaJsonFormatter() if json_format else LambdaTextFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.aws_request_id = self.request_id
            sys.stdout.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def json_error_entry(error: Mapping[str, Any]) -> str:
    """The log entry of an error document in the JSON format: one line, the document's
    members after ``timestamp`` (UTC, to the second, as AWS's Python runtime writes it) and
    ``level`` ``ERROR``."""
    entry = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "level": "ERROR",
             **error}
    return json.dumps(entry, ensure_ascii=False, default=str) + "\n"


def install(log_format: str | None, level_setting: str | None) -> RequestLogHandler:
    """Attach a ``RequestLogHandler`` to the root logger and return it: JSON records when
    ``log_format`` (``AWS_LAMBDA_LOG_FORMAT``) is ``JSON``, text lines otherwise. The root
    level is set from ``AWS_LAMBDA_LOG_LEVEL`` (``level_setting``) when that names a level,
    else left at Python's default (WARNING)."""
    root = logging.getLogger()
    handler = RequestLogHandler((log_format or "").strip().upper() == "JSON")
    root.addHandler(handler)
    level = _LEVELS.get((level_setting or "").strip().upper())
    if level is not None:
        root.setLevel(level)
    return handler
