"""How attempts are read and events settled: pure decisions, no store, no clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from strato.async_invoke.events import AttemptResult, ClaimedEvent, EventState, NewEvent
from strato.async_invoke.retry import Outcome
from strato.async_invoke.settlements import Attempt, classify, settle, settle_expired
from strato.domain.event_invoke import Destinations, EventInvokeConfig
from strato.scheduler.invocation import InvocationResult
from tests.support.store_contracts import make_version

T0 = 1_700_000_000.0
QUEUE = "arn:aws:sqs:us-east-1:000000000000:records"
DLQ = "arn:aws:sqs:us-east-1:000000000000:dead"
ERROR = json.dumps({"errorMessage": "boom", "errorType": "ValueError"}).encode()
VERSION = make_version("fn", dead_letter_target=DLQ)
CONFIG = EventInvokeConfig("fn", "$LATEST", datetime.now(UTC), maximum_retry_attempts=1,
                           destinations=Destinations(QUEUE, QUEUE))


def claimed(*, invocations: int = 0, throttles: int = 0, last: AttemptResult | None = None,
            qualifier: str | None = None) -> ClaimedEvent:
    event = NewEvent("req-1", "fn", qualifier, "us-east-1", b'{"k": 1}', T0)
    return ClaimedEvent(7, 3, event, invocations, throttles, T0 + 900, last)


def test_results_are_read_as_lambda_does() -> None:
    ok = classify(InvocationResult(b'"fine"', "2"))
    assert ok == Attempt(Outcome.SUCCESS, AttemptResult("2", b'"fine"'))
    failed = classify(InvocationResult(ERROR, "$LATEST", "Unhandled"))
    assert failed.outcome is Outcome.FUNCTION_ERROR and failed.error == "ValueError: boom"
    assert failed.invoked and not failed.throttled
    timed_out = classify(InvocationResult(json.dumps({
        "errorMessage": "Task timed out after 3.00 seconds", "errorType": "Sandbox.Timedout"}).encode(),
        "$LATEST", "Unhandled"))
    assert timed_out.outcome is Outcome.FUNCTION_ERROR
    start_failed = classify(InvocationResult(json.dumps({
        "errorMessage": "cannot start", "errorType": "Sandbox.StartFailed"}).encode(),
        "$LATEST", "Unhandled"))
    assert start_failed == Attempt(Outcome.SYSTEM_ERROR, None, "Sandbox.StartFailed: cannot start", 500)
    assert start_failed.throttled and not start_failed.invoked


def test_a_first_function_error_is_retried_a_minute_later() -> None:
    attempt = classify(InvocationResult(ERROR, "$LATEST", "Unhandled"))
    settlement = settle(claimed(), attempt, version=VERSION, config=CONFIG, now=T0 + 1, account="000000000000")
    assert settlement.state is EventState.RETRYING and settlement.next_attempt_at == T0 + 61
    assert settlement.invoked and settlement.throttles == 0 and settlement.deliveries == ()
    assert settlement.last_result == attempt.result and settlement.last_error == "ValueError: boom"
    assert (settlement.seq, settlement.generation) == (7, 3)


def test_retries_exhausted_writes_the_record_and_the_dead_letter() -> None:
    attempt = classify(InvocationResult(ERROR, "$LATEST", "Unhandled"))
    settlement = settle(claimed(invocations=1), attempt, version=VERSION, config=CONFIG,
                        now=T0 + 61, account="000000000000")
    assert settlement.state is EventState.FAILED and settlement.condition == "RetriesExhausted"
    record, letter = settlement.deliveries
    body = json.loads(record.body)
    assert record.target_arn == QUEUE and body["requestContext"]["approximateInvokeCount"] == 2
    assert body["requestContext"]["functionArn"].endswith(":function:fn:$LATEST")
    assert letter.target_arn == DLQ and letter.body == '{"k": 1}'
    assert letter.attributes is not None
    assert letter.attributes["ErrorMessage"]["StringValue"] == "boom"
    assert letter.attributes["ErrorCode"]["StringValue"] == "200"


def test_throttles_count_up_and_a_success_resets_them() -> None:
    throttled = Attempt(Outcome.THROTTLED, None, "TooManyRequestsException: Rate Exceeded.", 429)
    again = settle(claimed(throttles=2), throttled, version=VERSION, config=CONFIG, now=T0 + 5,
                   account="000000000000")
    assert again.state is EventState.RETRYING and again.throttles == 3
    assert again.next_attempt_at == T0 + 5 + 4 and not again.invoked
    done = settle(claimed(throttles=3), classify(InvocationResult(b"null", "1")), version=VERSION,
                  config=CONFIG, now=T0 + 9, account="000000000000")
    assert done.state is EventState.SUCCEEDED and done.throttles == 0
    (record,) = done.deliveries
    assert json.loads(record.body)["requestContext"]["condition"] == "Success"


def test_without_a_config_lambdas_defaults_apply_and_nothing_is_delivered() -> None:
    attempt = classify(InvocationResult(ERROR, "$LATEST", "Unhandled"))
    second = settle(claimed(invocations=1), attempt, version=make_version("fn"), config=None,
                    now=T0 + 61, account="000000000000")
    assert second.state is EventState.RETRYING and second.next_attempt_at == T0 + 61 + 120
    last = settle(claimed(invocations=2), attempt, version=make_version("fn"), config=None,
                  now=T0 + 181, account="000000000000")
    assert last.state is EventState.FAILED and last.deliveries == ()


def test_an_expired_event_keeps_its_last_answer_in_the_record() -> None:
    previous = AttemptResult("$LATEST", ERROR, "Unhandled")
    settlement = settle_expired(claimed(invocations=1, last=previous, qualifier="live"),
                                version=VERSION, config=CONFIG, now=T0 + 30_000,
                                account="000000000000")
    assert settlement.state is EventState.FAILED and settlement.condition == "EventAgeExceeded"
    assert not settlement.invoked
    record, letter = settlement.deliveries
    body = json.loads(record.body)
    assert body["requestContext"]["approximateInvokeCount"] == 1
    assert body["requestContext"]["functionArn"].endswith(":function:fn:live")
    assert body["responseContext"]["functionError"] == "Unhandled"
    assert letter.attributes is not None and letter.attributes["ErrorMessage"]["StringValue"] == "boom"
    assert settlement.last_error is not None and settlement.last_error.startswith("EventAgeExceeded")
