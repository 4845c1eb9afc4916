"""Lambda's retry policy for asynchronous invocations, as a pure decision.

From "How Lambda handles errors and retries with asynchronous invocation"
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html):

- A **function error** (an error returned by the function's code or runtime, timeouts
  included) is retried up to ``MaximumRetryAttempts`` times (default 2): one minute after the
  first attempt, two minutes after the second. When none is left the event fails with
  ``RetriesExhausted``.
- A **throttle** (429) or a **system error** (500-series: here an environment that could not
  start, ``Sandbox.StartFailed``) returns the event to the queue; the wait grows exponentially
  from 1 second to at most 5 minutes, for as long as the event is younger than
  ``MaximumEventAgeInSeconds`` (default six hours).
- An event whose next attempt would come at or after its maximum age fails with
  ``EventAgeExceeded`` now, rather than waiting to expire; one found older than its maximum
  age when it is taken from the queue fails the same way (``expired``).
- A function whose reserved concurrency is 0 cannot run at all: ``ZeroReservedConcurrency``.

``decide`` is called once per outcome with the counts *including* that outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Waits before the first and the second retry of a function error.
FUNCTION_ERROR_DELAYS_S = (60.0, 120.0)
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0


class Outcome(StrEnum):
    """What one attempt to run an event came to."""

    SUCCESS = "Success"
    FUNCTION_ERROR = "FunctionError"
    THROTTLED = "Throttled"
    SYSTEM_ERROR = "SystemError"
    ZERO_RESERVED_CONCURRENCY = "ZeroReservedConcurrency"


class Condition(StrEnum):
    """``requestContext.condition`` of an invocation record: why the event's processing ended."""

    SUCCESS = "Success"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"
    ZERO_RESERVED_CONCURRENCY = "ZeroReservedConcurrency"


@dataclass(frozen=True)
class Decision:
    """Either ``retry_in_s`` seconds from now (``condition`` None), or done with
    ``condition`` (``Success`` or one of the failures)."""

    condition: Condition | None = None
    retry_in_s: float = 0.0

    @property
    def retry(self) -> bool:
        return self.condition is None

    @property
    def failed(self) -> bool:
        return self.condition is not None and self.condition is not Condition.SUCCESS


SUCCEEDED = Decision(Condition.SUCCESS)


def backoff_s(consecutive: int) -> float:
    """The wait after the ``consecutive``-th throttle or system error in a row (1-based):
    1 s, 2 s, 4 s, … capped at 5 minutes."""
    if consecutive < 1:
        raise ValueError(f"consecutive must be 1 or more, not {consecutive}")
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** min(consecutive - 1, 32))


def expired(age_s: float, max_age_s: float) -> bool:
    """True when an event taken from the queue is older than its maximum age."""
    return age_s > max_age_s


def decide(
    outcome: Outcome,
    *,
    invocations: int,
    consecutive_throttles: int,
    age_s: float,
    max_retries: int,
    max_age_s: float,
) -> Decision:
    """What happens to an event after ``outcome``.

    ``invocations`` counts the times the function ran the event, this one included
    (``approximateInvokeCount``); ``consecutive_throttles`` the throttles and system errors in
    a row, this one included (0 after any other outcome); ``age_s`` is how long ago the event
    was accepted; ``max_retries`` and ``max_age_s`` come from the event invoke configuration.
    """
    if outcome is Outcome.SUCCESS:
        return SUCCEEDED
    if outcome is Outcome.ZERO_RESERVED_CONCURRENCY:
        return Decision(Condition.ZERO_RESERVED_CONCURRENCY)
    if outcome is Outcome.FUNCTION_ERROR:
        retries_used = max(0, invocations - 1)
        if retries_used >= max_retries:
            return Decision(Condition.RETRIES_EXHAUSTED)
        delay = FUNCTION_ERROR_DELAYS_S[min(retries_used, len(FUNCTION_ERROR_DELAYS_S) - 1)]
    else:
        delay = backoff_s(max(1, consecutive_throttles))
    if age_s + delay >= max_age_s:
        return Decision(Condition.EVENT_AGE_EXCEEDED)
    return Decision(retry_in_s=delay)
