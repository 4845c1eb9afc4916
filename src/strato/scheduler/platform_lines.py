"""The platform's own log lines of an invocation, in the function's log format.

With the ``Text`` format these are Lambda's ``START RequestId: … Version: …``, ``END
RequestId: …`` and ``REPORT RequestId: …`` lines (Duration, Billed Duration, Memory Size, Max
Memory Used and, on a cold start, Init Duration), tab-separated as AWS writes them
(https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html). With ``JSON`` they are
the records AWS writes for its system logs
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html and
telemetry-schema-reference.html): ``{"time", "type", "record"}`` objects, ``platform.start``
with ``requestId`` and ``version``, ``platform.report`` with ``requestId``, ``metrics``
(``durationMs``, ``billedDurationMs``, ``memorySizeMB``, ``maxMemoryUsedMB``, and
``initDurationMs`` on a cold start) and ``status`` (``success``, ``error`` or ``timeout``);
there is no END record. Both are at the system level ``INFO``: a ``SystemLogLevel`` of
``WARN`` leaves them out. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import math
import time

from strato.domain.logging_config import SYSTEM_LEVELS, LoggingConfig

#: The system level of platform.start and platform.report (AWS's "start" and "report").
_START_REPORT_LEVEL = SYSTEM_LEVELS.index("INFO")


def _record(stamp_ms: int, kind: str, record: dict[str, object]) -> str:
    seconds, millis = divmod(stamp_ms, 1000)
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    return json.dumps({"time": moment, "type": kind, "record": record}, separators=(",", ":"))


def _start_report_shown(logging: LoggingConfig) -> bool:
    level = logging.system_log_level or "INFO"
    return SYSTEM_LEVELS.index(level) <= _START_REPORT_LEVEL


def start_line(logging: LoggingConfig, stamp_ms: int, request_id: str, version: str) -> str | None:
    """The line that opens an invocation's log (None: the configuration leaves it out)."""
    if not logging.is_json:
        return f"START RequestId: {request_id} Version: {version}"
    if not _start_report_shown(logging):
        return None
    return _record(stamp_ms, "platform.start", {"requestId": request_id, "version": version})


def closing_lines(logging: LoggingConfig, stamp_ms: int, request_id: str, *, duration_ms: float,
                  memory_mb: int, used_mb: int, init_ms: float | None, status: str) -> list[str]:
    """The lines that close an invocation's log: END and REPORT, or the platform.report
    record. ``used_mb`` is the peak memory (0: unknown, reported as 1 MB as before);
    ``status`` is ``success``, ``error`` or ``timeout``."""
    billed = max(1, math.ceil(duration_ms))
    used = min(used_mb, memory_mb) if used_mb else 1
    if not logging.is_json:
        report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                  f"Billed Duration: {billed} ms\tMemory Size: {memory_mb} MB\t"
                  f"Max Memory Used: {used} MB\t")
        if init_ms is not None:
            report += f"Init Duration: {init_ms:.2f} ms\t"
        return [f"END RequestId: {request_id}", report]
    if not _start_report_shown(logging):
        return []
    metrics: dict[str, object] = {"durationMs": round(duration_ms, 2), "billedDurationMs": billed,
                                  "memorySizeMB": memory_mb, "maxMemoryUsedMB": used}
    if init_ms is not None:
        metrics["initDurationMs"] = round(init_ms, 2)
    return [_record(stamp_ms, "platform.report",
                    {"requestId": request_id, "metrics": metrics, "status": status})]
