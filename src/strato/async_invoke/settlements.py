"""From what an attempt came to, to how its event is settled: pure functions.

``classify`` reads an invocation's result as Lambda does for asynchronous invocations (an
error of the function or its runtime is a function error; an environment that could not start
is a system error). ``settle`` applies the retry policy (``async_invoke.retry``) with the event's
invoke configuration and writes what a finished event leaves behind: the invocation record for
its on-success or on-failure destination and, when it failed, the dead letter for its
version's dead-letter queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from strato.async_invoke import records
from strato.async_invoke.events import AttemptResult, ClaimedEvent, Delivery, EventState, NewEvent, Settlement
from strato.async_invoke.retry import Condition, Decision, Outcome, decide
from strato.domain.event_invoke import (
    MAX_EVENT_AGE_DEFAULT_S,
    MAX_RETRY_ATTEMPTS_DEFAULT,
    EventInvokeConfig,
)
from strato.domain.models import LATEST, FunctionVersion
from strato.scheduler.invocation import SANDBOX_START_FAILED, InvocationResult

#: The ledger's last error of an event that expired without a newer one.
_TOO_OLD = "EventAgeExceeded: the event is older than its MaximumEventAgeInSeconds"


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: its outcome, the function's answer (None when it never
    ran), the error the ledger shows, and the status code a dead letter reports."""

    outcome: Outcome
    result: AttemptResult | None = None
    error: str | None = None
    status: int = 200

    @property
    def invoked(self) -> bool:
        return self.outcome in (Outcome.SUCCESS, Outcome.FUNCTION_ERROR)

    @property
    def throttled(self) -> bool:
        return self.outcome in (Outcome.THROTTLED, Outcome.SYSTEM_ERROR)


def classify(result: InvocationResult) -> Attempt:
    """The attempt an invocation's result is."""
    answer = AttemptResult(result.executed_version, result.payload, result.function_error)
    if result.function_error is None:
        return Attempt(Outcome.SUCCESS, answer)
    kind = records.error_type(answer)
    message = records.error_message(answer)
    if kind == SANDBOX_START_FAILED:
        return Attempt(Outcome.SYSTEM_ERROR, None, f"{kind}: {message}", 500)
    return Attempt(Outcome.FUNCTION_ERROR, answer, f"{kind or result.function_error}: {message}")


def function_arn(event: NewEvent, account: str, qualifier: str | None) -> str:
    arn = f"arn:aws:lambda:{event.region}:{account}:function:{event.function_name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def settle(claimed: ClaimedEvent, attempt: Attempt, *, version: FunctionVersion,
           config: EventInvokeConfig | None, now: float, account: str) -> Settlement:
    """How ``claimed`` is settled after ``attempt`` (on ``version``, with ``config``)."""
    throttles = claimed.throttles + 1 if attempt.throttled else 0
    decision = decide(
        attempt.outcome,
        invocations=claimed.invocations + (1 if attempt.invoked else 0),
        consecutive_throttles=throttles,
        age_s=now - claimed.event.accepted_at,
        max_retries=config.retries if config is not None else MAX_RETRY_ATTEMPTS_DEFAULT,
        max_age_s=config.max_age_s if config is not None else MAX_EVENT_AGE_DEFAULT_S,
    )
    if decision.retry:
        return Settlement(claimed.seq, claimed.generation, EventState.RETRYING, now,
                          invoked=attempt.invoked, throttles=throttles,
                          next_attempt_at=now + decision.retry_in_s, last_error=attempt.error,
                          last_result=attempt.result)
    return finish(claimed, attempt, decision, version=version, config=config, now=now,
                  account=account, throttles=throttles)


def settle_expired(claimed: ClaimedEvent, *, version: FunctionVersion,
                   config: EventInvokeConfig | None, now: float, account: str) -> Settlement:
    """How ``claimed`` is settled when it was taken from the queue too old to run."""
    return finish(claimed, Attempt(Outcome.THROTTLED, None, None, 429),
                  Decision(Condition.EVENT_AGE_EXCEEDED), version=version, config=config,
                  now=now, account=account, throttles=claimed.throttles, invoked=False)


def finish(claimed: ClaimedEvent, attempt: Attempt, decision: Decision, *,
           version: FunctionVersion, config: EventInvokeConfig | None, now: float,
           account: str, throttles: int, invoked: bool | None = None) -> Settlement:
    """``claimed`` done with ``decision.condition``, with its record and dead letter."""
    condition = decision.condition
    if condition is None:
        raise ValueError("a retry is not a finish")
    event = claimed.event
    ran = attempt.invoked if invoked is None else invoked
    last = attempt.result if attempt.result is not None else claimed.last_result
    deliveries: list[Delivery] = []
    destinations = config.destinations if config is not None else None
    destination = None
    if destinations is not None:
        destination = (destinations.on_success if condition is Condition.SUCCESS
                       else destinations.on_failure)
    if destination:
        record = records.invocation_record(
            request_id=event.request_id,
            function_arn=function_arn(event, account, event.qualifier or LATEST),
            condition=condition.value, invocations=claimed.invocations + (1 if ran else 0),
            request_payload=event.payload, timestamp=now, result=last)
        deliveries.append(Delivery(destination, records.record_body(record), event.request_id))
    if decision.failed and version.dead_letter_target:
        if last is not None and last.function_error is not None:
            status, message = last.status_code, records.error_message(last)
        else:
            status, message = attempt.status, attempt.error or condition.value
        deliveries.append(Delivery(
            version.dead_letter_target, records.dead_letter_body(event.payload), event.request_id,
            records.dead_letter_attributes(event.request_id, status, message)))
    error = attempt.error
    if error is None and condition is Condition.EVENT_AGE_EXCEEDED:
        error = _TOO_OLD
    return Settlement(
        claimed.seq, claimed.generation,
        EventState.SUCCEEDED if condition is Condition.SUCCESS else EventState.FAILED,
        now, invoked=ran, throttles=throttles, condition=condition.value, last_error=error,
        last_result=attempt.result, deliveries=tuple(deliveries))
