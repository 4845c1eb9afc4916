"""An execution environment's log capture: its output pipe, read into its log stream.

Output (stdout and stderr, one pipe) is read as it comes, split into lines (cut to
``MAX_LINE_BYTES``), and kept within the budgets of ``output_budget``: an invocation's lines
go to the log with its START, END and REPORT lines when it closes; what is written outside an
invocation (INIT, and between invocations) goes to the log line by line. Between invocations
reading stops once that budget is spent, so a process that keeps writing after its handler
returned blocks on the full pipe instead of filling strato's memory and disk; the next
delivery resumes reading. Reading never monopolises the loop: one read per readiness
callback, and a drain reads at most ``_DRAIN_LIMIT`` bytes.

``LogCapture`` is driven by its environment (``scheduler.environment``), which tells it when
an invocation begins and closes, when a period outside an invocation ends, and whether the
environment is past INIT and alive (``pausable``). Everything runs on the event loop's thread.
The platform's lines of an invocation are those of Lambda in the function's log format
(``scheduler.platform_lines``: START, END and REPORT, or the platform.start and
platform.report JSON records); with the JSON format, application lines below the function's
ApplicationLogLevel are dropped as they are read (``scheduler.level_filter``).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Protocol

from strato.domain.logging_config import LoggingConfig
from strato.sandbox.base import EnvironmentProcess
from strato.scheduler import platform_lines
from strato.scheduler.level_filter import level_filter
from strato.scheduler.output_budget import (
    BETWEEN_INVOCATIONS_BYTES,
    INIT_BYTES,
    MAX_LINE_BYTES,
    Allowance,
    InvocationOutput,
    Line,
    invocation_dropped_line,
    outside_dropped_line,
    paused_line,
)

_READ_BYTES = 65536
#: At most this much is read by one drain: more than a pipe holds (an unprivileged writer
#: may grow it to 1 MiB), so a drain takes what was written before it, and a writer racing
#: the drain cannot keep the loop in it.
_DRAIN_LIMIT = 2 * 1024 * 1024


class LogSink(Protocol):
    def emit(self, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        """Queue ``(timestamp_ms, message)`` lines for storage; never blocks."""


class LogCapture:
    """The capture of one environment's output into ``stream`` of ``group`` (see the module
    docstring). Begins in INIT's period, with INIT's allowance and ``pausable`` False.

    Protocol: ``attach`` once; then any number of invocations, each ``begin_delivered`` (or
    ``begin_undelivered`` for one that fails before its runtime got it) and then
    ``close_invocation`` once; ``end_outside_period`` when INIT is over; ``drain`` and
    ``detach`` when the process is gone."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: LogSink, group: str,
                 stream: str, logging: LoggingConfig | None = None) -> None:
        self._loop = loop
        self._sink = sink
        self._group = group
        self._stream = stream
        self._logging = logging or LoggingConfig()
        self._filter = level_filter(self._logging)
        self._process: EnvironmentProcess | None = None
        #: True while the environment is IDLE or BUSY (set by it at each transition): only
        #: then does a spent allowance stop the reading; INIT goes on dropping (it ends
        #: within its timeout), and a DEAD environment is drained once.
        self.pausable = False
        #: Output now belongs to an invocation (from its START to its END).
        self._in_invocation = False
        self._partial = b""
        #: Bytes cut from the line in ``_partial`` (beyond MAX_LINE_BYTES).
        self._cut = 0
        #: START of the invocation in flight (and, once it closes, its closing lines).
        self._lines: list[Line] = []
        self._output = InvocationOutput()
        self._outside = Allowance(INIT_BYTES)
        #: Reading stopped between invocations (see the module docstring).
        self._paused = False
        self._eof = False

    def attach(self, process: EnvironmentProcess) -> None:
        """Start reading ``process``'s output pipe. Once, right after its start."""
        self._process = process
        self._loop.add_reader(process.log_fd, self._on_output)

    def detach(self) -> None:
        """Stop reading (before the process's fds are released). Idempotent."""
        if self._process is not None:
            self._loop.remove_reader(self._process.log_fd)

    # invocations -----------------------------------------------------------------------
    def begin_delivered(self, stamp_ms: int, request_id: str, version: str) -> None:
        """An invocation was just handed to the runtime at ``stamp_ms``: the wait before it
        is over (reading resumes if it was paused) and output from now on is the
        invocation's, after its START line."""
        if self._paused or self._outside.spent:
            self.end_outside_period()
        self._in_invocation = True
        self._start(stamp_ms, request_id, version)

    def begin_undelivered(self, request_id: str, version: str) -> None:
        """An invocation that ends before its runtime got it (INIT failed, timed out or
        crashed) still gets its START line, stamped now; the period outside invocations is
        left as it is."""
        self._in_invocation = True
        self._start(int(time.time() * 1000), request_id, version)

    def _start(self, stamp_ms: int, request_id: str, version: str) -> None:
        line = platform_lines.start_line(self._logging, stamp_ms, request_id, version)
        if line is not None:
            self._lines.append((stamp_ms, line))

    def close_invocation(self, request_id: str, duration_ms: float, memory_mb: int,
                         init_ms: float | None, extra_line: str | None,
                         status: str = "success") -> list[Line]:
        """The invocation's output (what is still in the pipe included), ``extra_line`` (a
        fault's), a line for what its budget dropped, then the closing lines (END and
        REPORT, or platform.report with ``status``), with ``init_ms`` as Init Duration when
        not None and the process's peak memory: emitted to the sink, and returned. Once per
        begun invocation."""
        self.drain()
        self._in_invocation = False
        output, dropped = self._output.take()
        lines = self._lines
        lines.extend(output)
        now_ms = int(time.time() * 1000)
        if extra_line:
            lines.append((now_ms, extra_line))
        if dropped:
            lines.append((now_ms, invocation_dropped_line(dropped)))
        used = self._process.peak_memory_mb() if self._process else 0
        lines.extend((now_ms, line) for line in platform_lines.closing_lines(
            self._logging, now_ms, request_id, duration_ms=duration_ms, memory_mb=memory_mb,
            used_mb=used, init_ms=init_ms, status=status))
        self._lines = []
        self._sink.emit(self._group, self._stream, lines)
        return lines

    def end_outside_period(self) -> None:
        """INIT or a wait between invocations is over: report what its allowance dropped,
        give the next wait a fresh one, and read again if reading was paused (unless the
        environment is no longer ``pausable``, i.e. DEAD, or the pipe is at its end)."""
        dropped = self._outside.restart(BETWEEN_INVOCATIONS_BYTES)
        if dropped:
            self._sink.emit(self._group, self._stream,
                            [(int(time.time() * 1000), outside_dropped_line(dropped))])
        if self._paused:
            self._paused = False
            if self._process is not None and not self._eof and self.pausable:
                self._loop.add_reader(self._process.log_fd, self._on_output)

    # reading ---------------------------------------------------------------------------
    def _on_output(self) -> None:
        assert self._process is not None
        try:
            chunk = os.read(self._process.log_fd, _READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._eof = True
            self._loop.remove_reader(self._process.log_fd)
            return
        self._take_output(chunk)

    def drain(self) -> None:
        """Read what is already in the pipe (the runtime flushes before it posts), up to
        ``_DRAIN_LIMIT`` bytes, and end a line left unfinished."""
        if self._process is None:
            return
        left = _DRAIN_LIMIT
        while left > 0:
            try:
                chunk = os.read(self._process.log_fd, min(_READ_BYTES, left))
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            left -= len(chunk)
            self._take_output(chunk)
        if self._partial or self._cut:
            partial, self._partial = self._partial, b""
            self._keep_line(partial, len(partial) + self._cut)
            self._cut = 0

    def _take_output(self, chunk: bytes) -> None:
        if self._cut:
            # The line in ``_partial`` is full: only its end is looked for, nothing copied.
            end = chunk.find(b"\n")
            if end < 0:
                self._cut += len(chunk)
                return
            partial, self._partial = self._partial, b""
            self._keep_line(partial, len(partial) + self._cut + end + 1)
            self._cut = 0
            chunk = chunk[end + 1:]
        data = self._partial + chunk if self._partial else chunk
        *complete, rest = data.split(b"\n")
        for line in complete:
            # What a line counts is its size as written, its newline included.
            self._keep_line(line[:MAX_LINE_BYTES], len(line) + 1)
        if len(rest) > MAX_LINE_BYTES:
            self._cut += len(rest) - MAX_LINE_BYTES
            rest = rest[:MAX_LINE_BYTES]
        self._partial = rest

    def _keep_line(self, raw: bytes, size: int) -> None:
        """One line of output (at most MAX_LINE_BYTES of it) that took ``size`` bytes. A line
        the level filter drops is not kept; outside an invocation it still spends the
        allowance, so that a process writing filtered lines between invocations pauses too."""
        if self._in_invocation:
            if self._filter is None or self._filter.keeps(raw):
                self._output.add(int(time.time() * 1000), raw, size)
            return
        if not self._outside.take(size):
            return
        if self._filter is None or self._filter.keeps(raw):
            self._sink.emit(self._group, self._stream,
                            [(int(time.time() * 1000), raw.decode("utf-8", "replace"))])
        if self._outside.exhausted and not self._paused and self.pausable:
            self._pause()

    def _pause(self) -> None:
        """Stop reading the pipe until the next delivery (its writer blocks once it is full)."""
        assert self._process is not None
        self._paused = True
        self._loop.remove_reader(self._process.log_fd)
        self._sink.emit(self._group, self._stream, [(int(time.time() * 1000), paused_line())])
