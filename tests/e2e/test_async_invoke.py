"""Asynchronous invocation end to end, on a server whose clock runs 120 times faster
(``--time-scale 120``): Lambda's real retry schedule (1 minute, then 2) takes 0.5 s and 1 s.

Events are accepted with 202 once stored, run through the pool, retried as on Lambda, and end
in invocation records (SQS queues and other functions) and dead letters in AWS's shapes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strato.domain import limits
from tests.conftest import make_zip
from tests.e2e.async_support import (
    assert_recorded,
    ledger,
    log_events,
    receive_all,
    recorded,
    starts,
)
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.e2e.recordings import assert_matches, function_arn
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

SCALE = 120.0
#: Prints its event (one line, ``EVENT <json>``), fails when the event asks it to.
HANDLER = (
    "import json\n"
    "def handler(event, context):\n"
    "    print('EVENT ' + json.dumps(event, sort_keys=True))\n"
    "    if isinstance(event, dict) and (event.get('raise_error') or event.get('fail')):\n"
    "        raise Exception('Test exception (this is intentional)')\n"
    "    return {'echo': event}\n"
)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    server = start_server(tmp_path_factory.mktemp("strato-async"), "--time-scale", str(SCALE),
                          "--keep-alive", "60")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def lam(scaled: StratoServer) -> Any:
    return client_for(scaled.endpoint)


@pytest.fixture(scope="module")
def logs(scaled: StratoServer) -> Any:
    return client_for(scaled.endpoint, "logs")


@pytest.fixture(scope="module")
def sqs(scaled: StratoServer) -> Any:
    return client_for(scaled.endpoint, "sqs")


def deploy(lam: Any, name: str, source: str = HANDLER, **kwargs: Any) -> str:
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": source})}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name,
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


def queue(sqs: Any, name: str) -> tuple[str, str]:
    """A new built-in queue: its URL and ARN."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def printed_events(logs: Any, name: str) -> list[Any]:
    return [json.loads(e["message"].split("EVENT ", 1)[1]) for e in log_events(logs, name)
            if e["message"].startswith("EVENT ")]


def body_of(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "Body": json.loads(message["Body"])}


def untraced(expected: dict[str, Any]) -> dict[str, Any]:
    """A recorded message without ``AWSTraceHeader``: strato's records carry no X-Ray trace
    (the QueueClient has no way to send one)."""
    attributes = expected.get("Attributes", {})
    attributes.pop("AWSTraceHeader", None)
    for key, value in attributes.items():  # what the recorder redacted as "timestamp"
        if value == "timestamp":
            attributes[key] = "<timestamp>"
    return expected


def test_an_event_is_accepted_with_202_then_runs(lam: Any, logs: Any) -> None:
    name = deploy(lam, unique("accept"))
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"hello": "async"}')
    assert_recorded({**response, "Payload": response["Payload"].read().decode()}, "inv.event")
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    wait_until(lambda: starts(logs, name, request_id), "the event to run")
    assert wait_until(lambda: printed_events(logs, name), "its output") == [{"hello": "async"}]
    assert "X-Amz-Executed-Version" not in response["ResponseMetadata"]["HTTPHeaders"]


def test_invoke_async_is_the_legacy_way_in(lam: Any, logs: Any) -> None:
    name = deploy(lam, unique("legacy"))
    response = lam.invoke_async(FunctionName=name, InvokeArgs=b'{"legacy": true}')
    assert response["Status"] == 202
    assert wait_until(lambda: printed_events(logs, name), "the event to run") == [{"legacy": True}]
    with pytest.raises(ClientError) as caught:
        lam.invoke_async(FunctionName=name, InvokeArgs=b"x" * (256 * 1024 + 1))
    assert caught.value.response["Error"]["Code"] == "RequestEntityTooLargeException"


def test_payloads_over_one_megabyte_are_refused_and_not_stored(scaled: StratoServer, lam: Any,
                                                               logs: Any) -> None:
    name = deploy(lam, unique("limit"))
    filler = limits.ASYNC_PAYLOAD_MAX_BYTES - len(b'{"a": ""}')
    exactly = b'{"a": "' + b"x" * filler + b'"}'
    assert len(exactly) == limits.ASYNC_PAYLOAD_MAX_BYTES
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=exactly[:-2] + b'x"}')
    error = caught.value.response
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Message"] == (
        f"{limits.ASYNC_PAYLOAD_MAX_BYTES + 1} byte payload is too large for the Event invocation "
        f"type (limit {limits.ASYNC_PAYLOAD_MAX_BYTES} bytes)")
    assert ledger(scaled.endpoint, name)["Events"] == []
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=exactly)["StatusCode"] == 202
    wait_until(lambda: starts(logs, name), "the 1 MB event to run")


def test_what_cannot_run_is_refused_before_it_is_stored(scaled: StratoServer, lam: Any) -> None:
    name = deploy(lam, unique("refuse"))
    for kwargs, code, message in (
        ({"FunctionName": f"{name}-missing"}, "ResourceNotFoundException",
         f"Function not found: {function_arn(name + '-missing', '$LATEST')}"),
        ({"FunctionName": name, "Qualifier": "nosuchalias"}, "ResourceNotFoundException",
         f"Function not found: {function_arn(name, 'nosuchalias')}"),
        ({"FunctionName": name, "Payload": b"{not json"}, "InvalidRequestContentException", None),
    ):
        with pytest.raises(ClientError) as caught:
            lam.invoke(InvocationType="Event", **{"Payload": b"{}", **kwargs})
        assert caught.value.response["Error"]["Code"] == code
        if message is not None:
            assert caught.value.response["Error"]["Message"] == message
    assert ledger(scaled.endpoint, name)["Events"] == []


def test_function_errors_are_retried_on_lambdas_schedule(scaled: StratoServer, lam: Any,
                                                         logs: Any) -> None:
    name = deploy(lam, unique("retries"))
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"fail": 1}')
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]

    def three_attempts() -> list[int] | None:
        found = starts(logs, name, request_id)
        return found if len(found) == 3 else None

    attempts = wait_until(three_attempts, "three attempts")
    first, second = (attempts[1] - attempts[0]) / 1000, (attempts[2] - attempts[1]) / 1000
    # One minute, then two, at 120 times real speed: 0.5 s and 1 s.
    assert 60 / SCALE - 0.05 <= first <= 60 / SCALE + 0.4, attempts
    assert 120 / SCALE - 0.05 <= second <= 120 / SCALE + 0.4, attempts
    (event,) = wait_until(lambda: [e for e in ledger(scaled.endpoint, name)["Events"]
                                   if e["State"] == "failed"], "the event to fail")
    assert event["RequestId"] == request_id and event["Attempts"] == 3
    assert event["Condition"] == "RetriesExhausted"
    assert event["LastError"] == "Exception: Test exception (this is intentional)"


def test_records_go_to_queues_and_functions(lam: Any, logs: Any, sqs: Any) -> None:
    name = deploy(lam, unique("records"))
    collector = deploy(lam, unique("collector"))
    url, arn = queue(sqs, unique("success"))
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0, DestinationConfig={
        "OnSuccess": {"Destination": arn}, "OnFailure": {"Destination": function_arn(collector)}})
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    (message,) = receive_all(sqs, url, 1)
    expected = recorded("dst.success_record", function_name=name)["value"]["Messages"][0]
    expected["Body"]["responsePayload"] = {"echo": {}}
    assert_matches(body_of(message), expected)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"raise_error": 1}')
    (record,) = wait_until(lambda: printed_events(logs, collector), "the failure record")
    failure = recorded("dst.failure_record", function_name=name)["value"]["Messages"][0]["Body"]
    failure["responsePayload"].pop("stackTrace")
    failure["responsePayload"].pop("requestId")
    assert_matches(record, failure)


def test_dead_letters_carry_the_event_and_its_error(lam: Any, sqs: Any) -> None:
    url, arn = queue(sqs, unique("dlq"))
    name = deploy(lam, unique("dead"), DeadLetterConfig={"TargetArn": arn})
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"raise_error": 1}')
    (message,) = receive_all(sqs, url, 1)
    assert_matches({"Messages": [body_of(message)], "ResponseMetadata": {"HTTPStatusCode": 200}},
                   recorded("dst.dlq_message")["value"])
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert message["MessageAttributes"]["RequestID"]["StringValue"] == request_id


def test_an_event_too_old_for_its_retry_is_discarded_with_a_record(lam: Any, sqs: Any) -> None:
    url, arn = queue(sqs, unique("age"))
    name = deploy(lam, unique("age"))
    lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=60,
                                         DestinationConfig={"OnFailure": {"Destination": arn}})
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"message": "m", "fail": 1}')
    (message,) = receive_all(sqs, url, 1)
    expected = recorded("dst.maxeventage_record", function_name=name)["value"]
    expected["Body"]["requestPayload"] = {"message": "m", "fail": 1}
    expected["Body"]["responsePayload"] = {"errorMessage": "Test exception (this is intentional)",
                                           "errorType": "Exception"}
    assert_matches(body_of(message), untraced(expected))


def test_reserved_concurrency_zero_fails_events_at_once(lam: Any, sqs: Any, logs: Any) -> None:
    url, arn = queue(sqs, unique("zero"))
    name = deploy(lam, unique("zero"))
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    lam.put_function_event_invoke_config(FunctionName=name,
                                         DestinationConfig={"OnFailure": {"Destination": arn}})
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    (message,) = receive_all(sqs, url, 1)
    assert_matches(body_of(message),
                   untraced(recorded("conc.zero_reserved_async_record", function_name=name)["value"]))
    assert starts(logs, name) == []
