"""Waiting in tests for something to happen, with a deadline: the one place tests poll.

A test waits for a condition it can observe (a process gone, a state reached, a record
written), never for a fixed time: ``wait_until`` in synchronous code (a test driving a server
process), ``until`` on an event loop. Both return the condition's first truthy value, so a
test can wait for and take a result in one step, and fail with an ``AssertionError`` naming
``what`` was awaited once ``timeout`` seconds have passed. The deadline only bounds a wait for
something that should happen; a test whose point is that time passes (a back-off, an idle
timeout) sleeps and says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Long enough for a loaded machine (two shared cores, suites running side by side); a
#: condition that holds returns at once, so only a failing test ever waits this long.
DEFAULT_TIMEOUT_S = 30.0


def _timed_out(what: str, timeout: float, condition: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g} s waiting for {what or condition}")


def wait_until(condition: Callable[[], T | None], what: str = "", *,
               timeout: float = DEFAULT_TIMEOUT_S, interval: float = 0.05) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and
    return that. Raises AssertionError after ``timeout`` seconds. Blocks the calling thread:
    for tests whose subject runs elsewhere (a server process, threads)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, condition)
        time.sleep(interval)


async def until(condition: Callable[[], T | None], what: str = "", *,
                timeout: float = DEFAULT_TIMEOUT_S, interval: float = 0.002) -> T:
    """``wait_until`` on the running event loop: the loop runs (and the subject with it)
    between checks. Raises AssertionError after ``timeout`` seconds of the loop's clock."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise _timed_out(what, timeout, condition)
        await asyncio.sleep(interval)
