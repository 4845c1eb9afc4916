"""LoggingConfig's pure parts: how a request changes the configuration
(``domain.logging_config``), which application lines a level keeps
(``scheduler.level_filter``), and the platform's lines in either format
(``scheduler.platform_lines``)."""

from __future__ import annotations

import json

import pytest

from strato.domain.errors import InvalidParameterValueException
from strato.domain.logging_config import LogFormat, LoggingConfig, LoggingConfigChanges, configure
from strato.scheduler.level_filter import level_filter
from strato.scheduler.platform_lines import closing_lines, start_line

TEXT = LoggingConfig()
JSON_DEFAULT = LoggingConfig(LogFormat.JSON, "INFO", "INFO")


@pytest.mark.parametrize(("current", "changes", "expected"), [
    (TEXT, LoggingConfigChanges(log_format=LogFormat.JSON), JSON_DEFAULT),
    (TEXT, LoggingConfigChanges(LogFormat.JSON, application_log_level="DEBUG"),
     LoggingConfig(LogFormat.JSON, "DEBUG", "INFO")),
    (TEXT, LoggingConfigChanges(log_group="cool_lambda"), LoggingConfig(log_group="cool_lambda")),
    (LoggingConfig(LogFormat.JSON, "ERROR", "WARN", "g"), LoggingConfigChanges(log_format=LogFormat.TEXT),
     LoggingConfig(log_group="g")),
    (LoggingConfig(LogFormat.JSON, "ERROR", "WARN"), LoggingConfigChanges(system_log_level="DEBUG"),
     LoggingConfig(LogFormat.JSON, "ERROR", "DEBUG")),
    (LoggingConfig(LogFormat.JSON, "ERROR", "WARN"), LoggingConfigChanges(log_format=LogFormat.JSON),
     LoggingConfig(LogFormat.JSON, "ERROR", "WARN")),
])
def test_configure_merges_as_aws_does(current: LoggingConfig, changes: LoggingConfigChanges,
                                      expected: LoggingConfig) -> None:
    assert configure(current, changes) == expected


@pytest.mark.parametrize("changes", [
    LoggingConfigChanges(LogFormat.TEXT, application_log_level="INFO"),
    LoggingConfigChanges(system_log_level="WARN"),
])
def test_a_level_with_text_is_refused(changes: LoggingConfigChanges) -> None:
    with pytest.raises(InvalidParameterValueException, match='LogFormat is set to "Text"'):
        configure(TEXT, changes)


@pytest.mark.parametrize(("line", "kept"), [
    (b'{"level": "WARNING", "message": "m"}', True),
    (b'{"level": "warn"}', True),
    (b'{"level": "CRITICAL"}', True),
    (b'{"level": "INFO"}', False),
    (b'{"level": "debug"}', False),
    (b'{"level": "NOISY"}', False),  # an unknown level counts as INFO
    (b'{"message": "no level"}', False),
    (b'plain text', True),
    (b'{not json', True),
    (b'["level", "DEBUG"]', True),
])
def test_the_level_filter_at_warn(line: bytes, kept: bool) -> None:
    keeper = level_filter(LoggingConfig(LogFormat.JSON, "WARN", "INFO"))
    assert keeper is not None and keeper.keeps(line) is kept


def test_no_filter_with_text_or_trace() -> None:
    assert level_filter(TEXT) is None
    assert level_filter(LoggingConfig(LogFormat.JSON, "TRACE", "INFO")) is None


def test_text_platform_lines_are_unchanged() -> None:
    assert start_line(TEXT, 0, "r", "$LATEST") == "START RequestId: r Version: $LATEST"
    assert closing_lines(TEXT, 0, "r", duration_ms=1.234, memory_mb=128, used_mb=40,
                         init_ms=5.0, status="success") == [
        "END RequestId: r",
        "REPORT RequestId: r\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 40 MB\tInit Duration: 5.00 ms\t",
    ]


def test_json_platform_records() -> None:
    start = start_line(JSON_DEFAULT, 1_700_000_000_123, "r", "3")
    assert start is not None
    assert json.loads(start) == {"time": "2023-11-14T22:13:20.123Z", "type": "platform.start",
                                 "record": {"requestId": "r", "version": "3"}}
    [report] = closing_lines(JSON_DEFAULT, 0, "r", duration_ms=10.5, memory_mb=256, used_mb=0,
                             init_ms=None, status="timeout")
    assert json.loads(report)["record"] == {
        "requestId": "r", "status": "timeout",
        "metrics": {"durationMs": 10.5, "billedDurationMs": 11, "memorySizeMB": 256,
                    "maxMemoryUsedMB": 1}}


def test_system_level_warn_leaves_out_start_and_report() -> None:
    quiet = LoggingConfig(LogFormat.JSON, "INFO", "WARN")
    assert start_line(quiet, 0, "r", "$LATEST") is None
    assert closing_lines(quiet, 0, "r", duration_ms=1, memory_mb=128, used_mb=1, init_ms=None,
                         status="success") == []
    debug = LoggingConfig(LogFormat.JSON, "INFO", "DEBUG")
    assert start_line(debug, 0, "r", "$LATEST") is not None
