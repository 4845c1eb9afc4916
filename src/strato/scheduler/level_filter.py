"""Which application log lines a function's ApplicationLogLevel keeps.

https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html: with
the JSON log format, Lambda sends a line of the configured level or a less detailed one
(``TRACE`` < ``DEBUG`` < ``INFO`` < ``WARN`` < ``ERROR`` < ``FATAL``). A line that is a JSON
object is judged by its ``"level"`` member, in any case, Python's ``WARNING`` and
``CRITICAL`` read as ``WARN`` and ``FATAL``; a missing or unknown level counts as ``INFO``, as
AWS assigns it. A line that is not a JSON object (``print`` output, a traceback) is kept: it
has no level to judge. Runtimes filter their own records too (``AWS_LAMBDA_LOG_LEVEL``); this
is what holds for any runtime. Pure, no I/O.
"""

from __future__ import annotations

import json

from strato.domain.logging_config import APPLICATION_LEVELS, LoggingConfig

_RANKS = {name: rank for rank, name in enumerate(APPLICATION_LEVELS)}
_RANKS.update({"WARNING": _RANKS["WARN"], "CRITICAL": _RANKS["FATAL"]})
_DEFAULT_RANK = _RANKS["INFO"]


def _rank(line: bytes) -> int | None:
    """The level of a JSON object line, None for any other line."""
    if not line.lstrip().startswith(b"{"):
        return None
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    level = parsed.get("level")
    return _RANKS.get(level.upper(), _DEFAULT_RANK) if isinstance(level, str) else _DEFAULT_RANK


class LevelFilter:
    """Keeps the lines of the configured application level and above."""

    def __init__(self, minimum: str) -> None:
        self._minimum = _RANKS[minimum]

    def keeps(self, line: bytes) -> bool:
        rank = _rank(line)
        return rank is None or rank >= self._minimum


def level_filter(logging: LoggingConfig) -> LevelFilter | None:
    """The filter of a function's application lines, None when every line is kept (the
    ``Text`` format, or ``TRACE``, the most detailed level)."""
    level = logging.application_log_level
    if not logging.is_json or level is None or level == "TRACE":
        return None
    return LevelFilter(level)
