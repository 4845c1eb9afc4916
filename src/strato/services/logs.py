"""Reading function logs: the queries behind CloudWatch Logs' FilterLogEvents, GetLogEvents
and DescribeLogStreams (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/).

Every method reads the log store and blocks: the API runs them off the loop's thread. A
stored record may hold several lines (``store.log_writer.expand``); what is returned is
lines (``event_messages``), each with its record's position as the cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strato.store.base import LogStore, LogStreamInfo
from strato.store.log_writer import expand

DEFAULT_LIMIT = 10_000
DEFAULT_STREAMS_LIMIT = 50


def matches(message: str, pattern: str | None) -> bool:
    """CloudWatch's simplest filter patterns: every (optionally quoted) term must appear."""
    if not pattern:
        return True
    if pattern.startswith('"') and pattern.endswith('"'):
        return pattern.strip('"') in message
    return all(term in message for term in pattern.split())


def event_messages(record: str) -> list[str]:
    """The messages of the log events a stored record holds: one per non-empty line, each
    ending with the line's newline, as CloudWatch Logs keeps a Lambda function's output
    (recorded logs.text.multi_line_prints: empty lines make no event, ``\r`` splits none)."""
    return [line + "\n" for line in expand(record) if line]


@dataclass(frozen=True)
class LogLine:
    stream: str
    timestamp_ms: int
    message: str
    ingestion_ms: int
    #: The position of the stored record the line is part of (a cursor).
    position: int


@dataclass(frozen=True)
class FilteredLines:
    lines: Sequence[LogLine]
    #: The cursor of the next page, None when this one was not full.
    next_position: int | None


@dataclass(frozen=True)
class StreamLines:
    lines: Sequence[LogLine]
    #: Positions of the first and last record read (``after`` when none was).
    first_position: int
    last_position: int


class LogService:
    def __init__(self, store: LogStore) -> None:
        self._store = store

    def filter_lines(self, group: str, *, streams: Sequence[str] | None, stream_prefix: str | None,
                     start_ms: int | None, end_ms: int | None, after: int, limit: int | None,
                     pattern: str | None) -> FilteredLines:
        """Lines of ``group`` matching ``pattern``, oldest first, from at most ``limit``
        records after the cursor ``after``: of ``streams`` (None: all), or of the streams
        named with ``stream_prefix`` when one is given."""
        limit = limit or DEFAULT_LIMIT
        if stream_prefix:
            streams = [s.stream for s in self._store.streams(group, prefix=stream_prefix)]
        found = self._store.query(group, streams=streams, start_ms=start_ms, end_ms=end_ms,
                                  after_position=after, limit=limit)
        lines = [
            LogLine(e.event.stream, e.event.timestamp_ms, line, e.ingestion_ms, e.position)
            for e in found
            for line in event_messages(e.event.message)
            if matches(line, pattern)
        ]
        return FilteredLines(lines, found[-1].position if len(found) >= limit else None)

    def stream_lines(self, group: str, stream: str, *, start_ms: int | None, end_ms: int | None,
                     after: int, limit: int | None) -> StreamLines:
        """Lines of one stream, oldest first, from at most ``limit`` records after the
        cursor ``after``."""
        found = self._store.query(group, streams=[stream], start_ms=start_ms, end_ms=end_ms,
                                  after_position=after, limit=limit or DEFAULT_LIMIT)
        lines = [
            LogLine(e.event.stream, e.event.timestamp_ms, line, e.ingestion_ms, e.position)
            for e in found
            for line in event_messages(e.event.message)
        ]
        return StreamLines(lines, found[0].position if found else after,
                           found[-1].position if found else after)

    def streams(self, group: str, *, prefix: str | None, by_last_event: bool, descending: bool,
                limit: int | None) -> list[LogStreamInfo]:
        """The streams of ``group`` (named with ``prefix``), by name or, ``by_last_event``,
        by their last event's time; reversed when ``descending``; at most ``limit``."""
        streams = self._store.streams(group, prefix=prefix)
        if by_last_event:
            streams.sort(key=lambda s: s.last_event_ms)
        if descending:
            streams.reverse()
        return streams[: limit or DEFAULT_STREAMS_LIMIT]
