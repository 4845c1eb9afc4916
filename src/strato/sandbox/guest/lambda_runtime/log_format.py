"""Lambda's text log format for the ``logging`` module.

A record becomes ``[LEVEL]\\t2024-01-15T10:30:00.123Z\\t<request id>\\t<message>\\n`` on
stdout (https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html). The handler is
added to the root logger before user code is imported, so ``logging.basicConfig()`` in user
code is a no-op there, exactly as on AWS; handlers the user adds are left alone.
"""

from __future__ import annotations

import logging
import sys
import time

# AWS_LAMBDA_LOG_LEVEL uses Lambda's names; TRACE has no logging equivalent below DEBUG.
_LEVELS = {"TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING",
           "WARNING": "WARNING", "ERROR": "ERROR", "FATAL": "CRITICAL", "CRITICAL": "CRITICAL"}


class LambdaTextFormatter(logging.Formatter):
    """Formats times in UTC with milliseconds; expects ``record.aws_request_id``."""

    # A builtin function is not bound as a method, whatever the type checker takes it for.
    converter = time.gmtime  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )


class RequestLogHandler(logging.Handler):
    """Writes records to the current ``sys.stdout`` tagged with ``request_id``, which the
    invoke loop sets at the start of each invocation (``""`` during INIT)."""

    def __init__(self) -> None:
        super().__init__()
        self.request_id = ""
        self.setFormatter(LambdaTextFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.aws_request_id = self.request_id
            sys.stdout.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def install(level_setting: str | None) -> RequestLogHandler:
    """Attach a ``RequestLogHandler`` to the root logger and return it. The root level is set
    from ``AWS_LAMBDA_LOG_LEVEL`` (``level_setting``) when that names a level, else left at
    Python's default (WARNING)."""
    root = logging.getLogger()
    handler = RequestLogHandler()
    root.addHandler(handler)
    level = _LEVELS.get((level_setting or "").strip().upper())
    if level is not None:
        root.setLevel(level)
    return handler
