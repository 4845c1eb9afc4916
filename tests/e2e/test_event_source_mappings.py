"""SQS event source mappings end to end: boto3 against a ``strato serve`` whose external SQS
endpoint (``--sqs-endpoint``) is moto's server, and against strato's built-in queues where
this build serves the SQS API.

The function under test prints each event it gets (``EVENT {...}``) and raises for a record
whose body is ``poison``; it answers ``batchItemFailures`` for records whose body starts
with ``bad`` (heeded only with ``ReportBatchItemFailures``). What it got is read back from
its log through CloudWatch Logs' API.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.e2e.recordings import ACCOUNT, RECORDINGS, REGION, assert_matches, check_error
from tests.support.moto_server import MOTO_ACCOUNT, MotoServer, start_moto
from tests.support.waiting import wait_until

HANDLER = """
import json

def handler(event, context):
    records = event.get("Records", [])
    print("EVENT " + json.dumps(event))
    if any(r["body"] == "poison" for r in records):
        raise Exception("poisoned")
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                                  for r in records if r["body"].startswith("bad")]}
"""


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    started = start_server(tmp_path_factory.mktemp("esm-data"), "--keep-alive", "60",
                           "--sqs-endpoint", moto.endpoint)
    yield started
    stop_server(started)


@pytest.fixture(scope="module")
def lam(server: StratoServer) -> Any:
    return client_for(server.endpoint, parameter_validation=False)


@pytest.fixture
def sqs(moto: MotoServer) -> Any:
    return moto.sqs()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return f"{re.sub(r'[^a-zA-Z0-9-_]', '-', request.node.name)[:40]}-{uuid.uuid4().hex[:8]}"


def create_function(lam: Any, name: str, **kwargs: Any) -> str:
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": HANDLER})}, **kwargs)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


def create_queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    """(url, arn) of a new queue."""
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def events_of(server: StratoServer, function: str) -> list[dict[str, Any]]:
    """Every event the function printed so far."""
    logs = client_for(server.endpoint, "logs")
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function}"}
    while True:
        try:
            page = logs.filter_log_events(**request)
        except ClientError:
            return events
        events += [json.loads(e["message"].strip()[len("EVENT "):]) for e in page["events"]
                   if e["message"].startswith("EVENT ")]
        if not page.get("nextToken"):
            return events
        request["nextToken"] = page["nextToken"]


def bodies(events: list[dict[str, Any]]) -> list[str]:
    return [record["body"] for event in events for record in event["Records"]]


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def mapping_state(lam: Any, mapping_uuid: str) -> str:
    return str(lam.get_event_source_mapping(UUID=mapping_uuid)["State"])


def recorded_value(key: str, queue_arn: str, **names: str) -> Any:
    """The recording with its queue ARN (moto's account) and strato's function ARNs filled in."""
    text = json.dumps(RECORDINGS[key]["value"])
    text = re.sub(r"arn:aws:sqs:<<region>>:<<account>>:(<<queue_name>>|<resource:\d+>)", queue_arn, text)
    for placeholder, value in {"region": REGION, "account": ACCOUNT, **names}.items():
        text = text.replace(f"<<{placeholder}>>", value)
    return json.loads(text)


def comparable(response: dict[str, Any]) -> dict[str, Any]:
    return {**response, "LastModified": response["LastModified"].isoformat()}


# --------------------------------------------------------------------------- the API
def test_create_get_update_delete_as_aws_records_them(lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    _, arn = create_queue(sqs, name)
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)
    assert_matches(comparable(created), recorded_value("esm.sqs.default_create", arn), exact=True)
    mapping_uuid = created["UUID"]
    got = lam.get_event_source_mapping(UUID=mapping_uuid)
    assert got["State"] == "Enabled" and got["UUID"] == mapping_uuid
    updated = lam.update_event_source_mapping(UUID=mapping_uuid, MaximumBatchingWindowInSeconds=1)
    assert_matches(comparable(updated), recorded_value("esm.sqs.update_response", arn), exact=True)
    after = lam.get_event_source_mapping(UUID=mapping_uuid)
    assert_matches(comparable(after), recorded_value("esm.sqs.get_after_update", arn), exact=True)
    deleted = lam.delete_event_source_mapping(UUID=mapping_uuid)
    assert deleted["State"] == "Deleting" and deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    check_error(lam, "esm.get_unknown_uuid", lambda: lam.get_event_source_mapping(UUID=mapping_uuid))


def test_function_name_variations(lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    lam.publish_version(FunctionName=function)
    lam.create_alias(FunctionName=function, Name="myalias", FunctionVersion="1")
    _, arn = create_queue(sqs, name)
    full_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
    partial = f"{ACCOUNT}:function:{function}"
    for key, function_name in [
        ("esm.create.name_only_create_esm", function),
        ("esm.create.full_arn_latest_create_esm", full_arn),
        ("esm.create.partial_arn_latest_create_esm", f"{partial}:$LATEST"),
        ("esm.create.partial_arn_version_create_esm", f"{partial}:1"),
        ("esm.create.partial_arn_alias_create_esm", f"{partial}:myalias"),
    ]:
        created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function_name)
        assert_matches(comparable(created), recorded_value(key, arn, function_name=function), exact=True)
        lam.delete_event_source_mapping(UUID=created["UUID"])


def test_bad_input_is_answered_as_aws_does(lam: Any, sqs: Any, name: str) -> None:
    unknown = str(uuid.uuid4())
    check_error(lam, "esm.get_unknown_uuid", lambda: lam.get_event_source_mapping(UUID=unknown))
    check_error(lam, "esm.delete_unknown_uuid", lambda: lam.delete_event_source_mapping(UUID=unknown))
    check_error(lam, "esm.update_unknown_uuid",
                lambda: lam.update_event_source_mapping(UUID=unknown, Enabled=False))
    check_error(lam, "esm.create_no_event_source_arn",
                lambda: lam.create_event_source_mapping(FunctionName="doesnotexist"))
    somequeue = "arn:aws:sqs:us-east-1:111111111111:somequeue"
    check_error(lam, "esm.create_unknown_params",
                lambda: lam.create_event_source_mapping(FunctionName="doesnotexist", EventSourceArn=somequeue))
    check_error(lam, "esm.destination_config_failure", lambda: lam.create_event_source_mapping(
        FunctionName="doesnotexist", EventSourceArn=somequeue,
        DestinationConfig={"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:111111111111:other"}}))
    # Filters on the wire are unaffected by the listing of missing resources, as on AWS.
    assert lam.list_event_source_mappings(FunctionName="doesnotexist")["EventSourceMappings"] == []
    assert lam.list_event_source_mappings(EventSourceArn=somequeue)["EventSourceMappings"] == []

    function = create_function(lam, name)
    _, arn = create_queue(sqs, name)
    missing = f"arn:aws:sqs:{REGION}:{MOTO_ACCOUNT}:{name}-missing"
    check_error(lam, "esm.sqs.nonexistent_queue",
                lambda: lam.create_event_source_mapping(EventSourceArn=missing, FunctionName=function))
    check_error(lam, "esm.sqs.batch_size_needs_window_create",
                lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, BatchSize=15))
    check_error(lam, "esm.sqs.invalid_filter", lambda: lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=function, FilterCriteria={"Filters": [{"Pattern": "simple string"}]}))
    first = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)
    check_error(lam, "esm.sqs.duplicate",
                lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function),
                account=MOTO_ACCOUNT, queue_name=name, function_name=function, uuid=first["UUID"])
    check_error(lam, "esm.sqs.batch_size_needs_window_update",
                lambda: lam.update_event_source_mapping(UUID=first["UUID"], BatchSize=15))
    code, status, message = _error(lambda: lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=function, BatchSize=10_001))
    assert (code, status) == ("ValidationException", 400)
    lam.delete_event_source_mapping(UUID=first["UUID"])


def _error(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_a_queue_hiding_messages_for_less_than_the_function_timeout_is_refused(
        lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name, Timeout=60)
    _, arn = create_queue(sqs, name, VisibilityTimeout="30")
    assert _error(lambda: lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)) == (
        "InvalidParameterValueException", 400,
        "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds")
    _, long_enough = create_queue(sqs, f"{name}-ok", VisibilityTimeout="60")
    lam.create_event_source_mapping(EventSourceArn=long_enough, FunctionName=function)


def test_listing_filters_and_pages(lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    other = create_function(lam, f"{name}-b")
    _, first_queue = create_queue(sqs, name)
    _, second_queue = create_queue(sqs, f"{name}-2")
    made = {lam.create_event_source_mapping(EventSourceArn=q, FunctionName=f, Enabled=False)["UUID"]
            for q, f in [(first_queue, function), (second_queue, function), (first_queue, other)]}
    of_function = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    assert len(of_function) == 2 and all(m["FunctionArn"].endswith(f":{function}") for m in of_function)
    both = lam.list_event_source_mappings(FunctionName=function, EventSourceArn=first_queue)["EventSourceMappings"]
    assert [m["EventSourceArn"] for m in both] == [first_queue]
    of_queue = lam.list_event_source_mappings(EventSourceArn=first_queue)["EventSourceMappings"]
    assert {m["UUID"] for m in of_queue} <= made and len(of_queue) == 2
    seen: list[str] = []
    request: dict[str, Any] = {"EventSourceArn": first_queue, "MaxItems": 1}
    while True:
        page = lam.list_event_source_mappings(**request)
        assert len(page["EventSourceMappings"]) <= 1
        seen += [m["UUID"] for m in page["EventSourceMappings"]]
        if "NextMarker" not in page:
            break
        request["Marker"] = page["NextMarker"]
    assert sorted(seen) == sorted(m["UUID"] for m in of_queue)
    paginated = [m for page in lam.get_paginator("list_event_source_mappings").paginate(
        FunctionName=function, PaginationConfig={"PageSize": 1}) for m in page["EventSourceMappings"]]
    assert len(paginated) == 2


def test_a_mapping_survives_the_deletion_of_its_function(lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    _, arn = create_queue(sqs, name)
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)
    lam.delete_function(FunctionName=function)
    got = lam.get_event_source_mapping(UUID=created["UUID"])
    assert got["State"] == "Enabled" and got["FunctionArn"] == created["FunctionArn"]
    lam.delete_event_source_mapping(UUID=created["UUID"])


# --------------------------------------------------------------------------- delivery
def test_messages_reach_the_function_as_lambda_delivers_them_then_are_deleted(
        server: StratoServer, lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    url, arn = create_queue(sqs, name)
    sent = sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"destination": "x", "fail_attempts": 0}),
                            MessageAttributes={
                                "Title": {"DataType": "String", "StringValue": "The Whistler"},
                                "Author": {"DataType": "String", "StringValue": "John Grisham"},
                                "WeeksOn": {"DataType": "Number", "StringValue": "6"},
                            })
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)
    (event,) = wait_until(lambda: events_of(server, function))
    (record,) = event["Records"]
    expected = RECORDINGS["esm.sqs.record_with_attributes"]["value"]["Messages"][0]["Body"]["event"]["Records"][0]
    expected = json.loads(json.dumps(expected).replace("<<region>>", REGION).replace(
        "arn:aws:sqs:us-east-1:<<account>>:<resource:1>", arn))
    expected["body"] = "<body>"
    # The recorder left these two redacted without brackets.
    expected["attributes"].update(SenderId="<sender-id>", SentTimestamp="<sent-timestamp>")
    assert_matches({**record, "body": "<body>"}, expected, exact=True)
    assert record["body"] == json.dumps({"destination": "x", "fail_attempts": 0})
    assert record["messageId"] == sent["MessageId"] and record["md5OfBody"] == sent["MD5OfMessageBody"]
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert wait_until(lambda: queue_depth(sqs, url) == 0)


def test_report_batch_item_failures_returns_only_the_failed_items(
        server: StratoServer, lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    url, arn = create_queue(sqs, name, VisibilityTimeout="3")
    for body in ("good-1", "bad-1", "good-2"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=function, Enabled=False,
        FunctionResponseTypes=["ReportBatchItemFailures"], BatchSize=10, MaximumBatchingWindowInSeconds=1)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    # The failed item comes back after the visibility timeout; the others never do.
    wait_until(lambda: bodies(events_of(server, function)).count("bad-1") >= 2, timeout=40)
    seen = bodies(events_of(server, function))
    assert seen.count("good-1") == 1 and seen.count("good-2") == 1
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)


def test_a_failing_message_is_redelivered_then_dead_lettered(
        server: StratoServer, lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    dlq_url, dlq_arn = create_queue(sqs, f"{name}-dlq")
    url, arn = create_queue(sqs, name, VisibilityTimeout="3", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)
    dead = wait_until(lambda: sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages"), timeout=60)
    assert [m["Body"] for m in dead] == ["poison"]
    assert bodies(events_of(server, function)) == ["poison", "poison"]


def test_filter_criteria_drop_non_matching_messages(
        server: StratoServer, lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    url, arn = create_queue(sqs, name)
    for body in (json.dumps({"kind": "keep", "n": 1}), json.dumps({"kind": "drop"}), "plain text",
                 json.dumps({"kind": "keep", "n": 2})):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    created = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=function,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"kind": ["keep"]}})}]})
    assert created["FilterCriteria"] == {"Filters": [{"Pattern": json.dumps({"body": {"kind": ["keep"]}})}]}
    wait_until(lambda: queue_depth(sqs, url) == 0)
    seen = wait_until(lambda: len(b := bodies(events_of(server, function))) >= 2 and b)
    assert sorted(json.loads(b)["n"] for b in seen) == [1, 2]


def test_batch_size_and_window_shape_the_batches(
        server: StratoServer, lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    url, arn = create_queue(sqs, name)
    for start in range(0, 25, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, min(25, start + 10))])
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, BatchSize=10)
    events = wait_until(lambda: (e := events_of(server, function)) and len(bodies(e)) >= 25 and e)
    assert sorted(bodies(events)) == sorted(f"m{i}" for i in range(25))
    assert all(1 <= len(e["Records"]) <= 10 for e in events)

    windowed = create_function(lam, f"{name}-w")
    url, arn = create_queue(sqs, f"{name}-w")
    for start in range(0, 25, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"w{i}"} for i in range(start, min(25, start + 10))])
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=windowed, BatchSize=25,
                                    MaximumBatchingWindowInSeconds=2)
    events = wait_until(lambda: (e := events_of(server, windowed)) and len(bodies(e)) >= 25 and e)
    assert sorted(bodies(events)) == sorted(f"w{i}" for i in range(25))
    assert max(len(e["Records"]) for e in events) > 10


def test_disabling_stops_delivery_and_enabling_resumes_it(
        server: StratoServer, lam: Any, sqs: Any, name: str) -> None:
    function = create_function(lam, name)
    url, arn = create_queue(sqs, name)
    mapping_uuid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)["UUID"]
    sqs.send_message(QueueUrl=url, MessageBody="first")
    wait_until(lambda: bodies(events_of(server, function)) == ["first"])
    disabling = lam.update_event_source_mapping(UUID=mapping_uuid, Enabled=False)
    assert disabling["State"] == "Disabling"
    assert mapping_state(lam, mapping_uuid) == "Disabled"
    sqs.send_message(QueueUrl=url, MessageBody="second")
    time.sleep(2)  # nothing must happen: give a poller that was not stopped time to show itself
    assert bodies(events_of(server, function)) == ["first"] and queue_depth(sqs, url) == 1
    assert lam.update_event_source_mapping(UUID=mapping_uuid, Enabled=True)["State"] == "Enabling"
    assert mapping_state(lam, mapping_uuid) == "Enabled"
    wait_until(lambda: bodies(events_of(server, function)) == ["first", "second"])


def test_mappings_survive_a_restart(moto: MotoServer, sqs: Any, name: str, tmp_path: Path) -> None:
    first = start_server(tmp_path / "data", "--sqs-endpoint", moto.endpoint)
    try:
        lam = client_for(first.endpoint)
        function = create_function(lam, name)
        # A long poll of the stopped server may still take the message (moto does not see
        # that its client is gone); it then reappears after this short visibility timeout.
        url, arn = create_queue(sqs, name, VisibilityTimeout="3")
        mapping_uuid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function,
                                                       BatchSize=5)["UUID"]
    finally:
        stop_server(first)
    sqs.send_message(QueueUrl=url, MessageBody="after the restart")
    second = start_server(tmp_path / "data", "--sqs-endpoint", moto.endpoint)
    try:
        lam = client_for(second.endpoint)
        got = lam.get_event_source_mapping(UUID=mapping_uuid)
        assert (got["State"], got["BatchSize"], got["EventSourceArn"]) == ("Enabled", 5, arn)
        wait_until(lambda: bodies(events_of(second, function)) == ["after the restart"])
    finally:
        stop_server(second)


def test_built_in_queues_feed_mappings(server: StratoServer, lam: Any, name: str) -> None:
    strato_sqs = client_for(server.endpoint, "sqs")
    try:
        url = strato_sqs.create_queue(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        pytest.skip(f"this strato does not serve the SQS API yet: {exc}")
    arn = strato_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert arn == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    function = create_function(lam, name)
    created = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)
    assert_matches(comparable(created), recorded_value("esm.sqs.default_create", arn), exact=True)
    strato_sqs.send_message(QueueUrl=url, MessageBody="built in")
    (event,) = wait_until(lambda: events_of(server, function))
    assert [r["body"] for r in event["Records"]] == ["built in"]
    assert event["Records"][0]["eventSourceARN"] == arn
    wait_until(lambda: queue_depth(strato_sqs, url) == 0)
