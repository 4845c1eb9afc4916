"""Lambda's retry policy for asynchronous invocations, as a table."""

from __future__ import annotations

import pytest

from strato.async_invoke.retry import (
    BACKOFF_MAX_S,
    SUCCEEDED,
    Condition,
    Decision,
    Outcome,
    backoff_s,
    decide,
    expired,
)

SIX_HOURS = 21_600


def _decide(outcome: Outcome, *, invocations: int = 1, throttles: int = 0, age: float = 0.5,
            retries: int = 2, max_age: float = SIX_HOURS) -> Decision:
    return decide(outcome, invocations=invocations, consecutive_throttles=throttles, age_s=age,
                  max_retries=retries, max_age_s=max_age)


@pytest.mark.parametrize(
    ("invocations", "retries", "expected"),
    [
        # Default: two retries, one minute after the first attempt, two after the second.
        (1, 2, Decision(retry_in_s=60.0)),
        (2, 2, Decision(retry_in_s=120.0)),
        (3, 2, Decision(Condition.RETRIES_EXHAUSTED)),
        (1, 1, Decision(retry_in_s=60.0)),
        (2, 1, Decision(Condition.RETRIES_EXHAUSTED)),
        (1, 0, Decision(Condition.RETRIES_EXHAUSTED)),
        # An attempt counted twice (a worker died mid-attempt) uses up a retry.
        (4, 2, Decision(Condition.RETRIES_EXHAUSTED)),
    ],
)
def test_function_errors_are_retried_after_one_then_two_minutes(
        invocations: int, retries: int, expected: Decision) -> None:
    assert _decide(Outcome.FUNCTION_ERROR, invocations=invocations, retries=retries) == expected


def test_a_retry_due_at_or_after_the_maximum_age_fails_the_event_now() -> None:
    # MaximumEventAgeInSeconds=60: the retry a minute later would be too old.
    assert _decide(Outcome.FUNCTION_ERROR, age=0.2, max_age=60) == Decision(Condition.EVENT_AGE_EXCEEDED)
    assert _decide(Outcome.FUNCTION_ERROR, age=0.0, max_age=60) == Decision(Condition.EVENT_AGE_EXCEEDED)
    assert _decide(Outcome.FUNCTION_ERROR, age=0.0, max_age=61) == Decision(retry_in_s=60.0)
    assert _decide(Outcome.FUNCTION_ERROR, invocations=2, age=61, max_age=180) == \
        Decision(Condition.EVENT_AGE_EXCEEDED)


@pytest.mark.parametrize(("consecutive", "wait"), [
    (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (8, 128.0), (9, 256.0), (10, 300.0), (50, 300.0),
    (10_000, 300.0),
])
def test_throttle_backoff_doubles_from_one_second_to_five_minutes(consecutive: int, wait: float) -> None:
    assert backoff_s(consecutive) == wait
    for outcome in (Outcome.THROTTLED, Outcome.SYSTEM_ERROR):
        assert _decide(outcome, invocations=0, throttles=consecutive) == Decision(retry_in_s=wait)


def test_throttles_do_not_use_up_retries_but_do_age() -> None:
    # Whatever the attempts so far, a throttle only waits, until the event is too old.
    assert _decide(Outcome.THROTTLED, invocations=3, throttles=1, retries=0) == Decision(retry_in_s=1.0)
    assert _decide(Outcome.THROTTLED, throttles=12, age=SIX_HOURS - 200) == \
        Decision(Condition.EVENT_AGE_EXCEEDED)
    assert _decide(Outcome.SYSTEM_ERROR, throttles=1, age=59.5, max_age=60) == \
        Decision(Condition.EVENT_AGE_EXCEEDED)


def test_success_and_zero_reserved_concurrency_end_the_event() -> None:
    assert _decide(Outcome.SUCCESS) == SUCCEEDED
    assert SUCCEEDED.condition is Condition.SUCCESS and not SUCCEEDED.failed and not SUCCEEDED.retry
    zero = _decide(Outcome.ZERO_RESERVED_CONCURRENCY, invocations=0)
    assert zero == Decision(Condition.ZERO_RESERVED_CONCURRENCY) and zero.failed


def test_expired_only_strictly_past_the_maximum_age() -> None:
    assert not expired(60.0, 60)
    assert expired(60.001, 60)


def test_backoff_needs_a_count() -> None:
    with pytest.raises(ValueError):
        backoff_s(0)
    assert BACKOFF_MAX_S == 300.0
