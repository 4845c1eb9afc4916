"""The built-in queues through boto3's ``sqs`` client (and the AWS CLI) against a real server:
queue lifecycle, messages, visibility, long polling, batches, FIFO, dead letters, purge,
errors, and durability across a restart."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import StratoServer, client_for, start_server, stop_server
from tests.e2e.test_permission_enforcement import create_credentials

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def sqs(strato: StratoServer) -> Any:
    return client_for(strato.endpoint, "sqs")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")


def arn(queue: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}"


def test_queue_lifecycle(sqs: Any, strato: StratoServer, name: str) -> None:
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"},
                           tags={"team": "a"})["QueueUrl"]
    assert url == f"{strato.endpoint}/{ACCOUNT}/{name}"
    assert sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"] == url
    with pytest.raises(sqs.exceptions.QueueNameExists) as exists:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "46"})
    assert exists.value.response["Error"]["Code"] == "QueueAlreadyExists"
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    for suffix in ("b", "c"):
        sqs.create_queue(QueueName=f"{name}-{suffix}")
    pages = sqs.get_paginator("list_queues").paginate(QueueNamePrefix=name, PaginationConfig={"PageSize": 2})
    assert [u for page in pages for u in page.get("QueueUrls", [])] == [url, f"{url}-b", f"{url}-c"]
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=f"{name}-zzz")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == arn(name) and attributes["VisibilityTimeout"] == "45"
    assert attributes["ApproximateNumberOfMessages"] == "0" and "FifoQueue" not in attributes
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "2", "MaximumMessageSize": "1048576"})
    changed = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds", "MaximumMessageSize"])
    assert changed["Attributes"] == {"DelaySeconds": "2", "MaximumMessageSize": "1048576"}
    with pytest.raises(ClientError) as bad:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
    assert bad.value.response["Error"]["Code"] == "InvalidAttributeValue"
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as gone:
        sqs.get_queue_url(QueueName=name)
    assert gone.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url, MessageBody="x")


def test_send_receive_delete_with_attributes_and_checksums(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    body = "héllo ✓"
    sent = sqs.send_message(
        QueueUrl=url, MessageBody=body,
        MessageAttributes={"SellerName": {"DataType": "String", "StringValue": "Example Store"},
                           "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}},
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-a-b"}},
    )
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert len(sent["MD5OfMessageAttributes"]) == 32 and len(sent["MD5OfMessageSystemAttributes"]) == 32
    received = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"],
                                   MessageAttributeNames=["SellerName"])["Messages"]
    assert len(received) == 1
    message = received[0]
    assert message["MessageId"] == sent["MessageId"] and message["Body"] == body
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert message["MessageAttributes"] == {"SellerName": {"DataType": "String", "StringValue": "Example Store"}}
    assert message["MD5OfMessageAttributes"] == "cd28f3b68aeee4b2eac9c66f2f694b58"  # of the one returned
    system = message["Attributes"]
    assert system["ApproximateReceiveCount"] == "1" and system["SenderId"] == "test"
    assert system["AWSTraceHeader"] == "Root=1-a-b"
    assert int(system["ApproximateFirstReceiveTimestamp"]) >= int(system["SentTimestamp"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                   "ApproximateNumberOfMessagesNotVisible"])
    assert counts["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage")


def test_message_size_limits(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x" * 262_144)
    with pytest.raises(ClientError) as too_big:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 262_145)
    assert too_big.value.response["Error"]["Code"] == "InvalidParameterValue"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": "1048576"})
    sqs.send_message(QueueUrl=url, MessageBody="é" * 524_288)  # 1 MiB of UTF-8, 3 MiB of JSON
    with pytest.raises(ClientError) as bad:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert bad.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_visibility_timeout_expiry(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    first = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    started = time.monotonic()
    again = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert time.monotonic() - started < 2.5  # back after the 1 s timeout, not the 5 s wait
    assert again["Messages"][0]["MessageId"] == first["MessageId"]
    assert again["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "2"
    with pytest.raises(ClientError) as stale:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=5)
    assert stale.value.response["Error"]["Code"] == "InvalidParameterValue"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again["Messages"][0]["ReceiptHandle"],
                                  VisibilityTimeout=0)
    assert len(sqs.receive_message(QueueUrl=url)["Messages"]) == 1


def test_long_poll_returns_as_soon_as_a_message_arrives(sqs: Any, strato: StratoServer, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    result: dict[str, Any] = {}

    def poll() -> None:
        result["response"] = client_for(strato.endpoint, "sqs").receive_message(QueueUrl=url, WaitTimeSeconds=10)
        result["returned"] = time.monotonic()

    poller = threading.Thread(target=poll)
    poller.start()
    # The poll should be waiting when the message is sent; were it not yet, it would find
    # the message at once, and the bound below would hold all the same. Nothing outside the
    # server shows a poll waiting: the time given to it to get there is the point here.
    time.sleep(0.3)
    lambda_client = client_for(strato.endpoint, "lambda")
    started = time.monotonic()
    lambda_client.list_functions()  # the control plane is not held up by the waiting poll
    assert time.monotonic() - started < 1
    sent_at = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    poller.join(timeout=15)
    assert result["response"]["Messages"][0]["Body"] == "wake up"
    assert result["returned"] - sent_at < 1


def test_batches_with_partial_failures(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sent = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok1", "MessageBody": "one"},
        {"Id": "bad", "MessageBody": "nul \x00"},
        {"Id": "ok2", "MessageBody": "two", "DelaySeconds": 0},
    ])
    assert sorted(e["Id"] for e in sent["Successful"]) == ["ok1", "ok2"]
    assert sent["Failed"] == [{"Id": "bad", "SenderFault": True, "Code": "InvalidMessageContents",
                               "Message": sent["Failed"][0]["Message"]}]
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}])
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)])
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    assert sorted(m["Body"] for m in messages) == ["one", "two"]
    changed = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": messages[0]["ReceiptHandle"], "VisibilityTimeout": 60},
        {"Id": "b", "ReceiptHandle": "garbage", "VisibilityTimeout": 60},
    ])
    assert [e["Id"] for e in changed["Successful"]] == ["a"]
    assert changed["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": messages[0]["ReceiptHandle"]},
        {"Id": "b", "ReceiptHandle": messages[1]["ReceiptHandle"]},
        {"Id": "c", "ReceiptHandle": "garbage"},
    ])
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["a", "b"]
    assert [(e["Id"], e["Code"]) for e in deleted["Failed"]] == [("c", "ReceiptHandleIsInvalid")]


def test_fifo_order_and_deduplication(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sequence = []
    for i in range(4):
        sent = sqs.send_message(QueueUrl=url, MessageBody=f"a{i}", MessageGroupId="a",
                                MessageDeduplicationId=f"d{i}")
        sequence.append(int(sent["SequenceNumber"]))
    assert sequence == sorted(sequence)
    duplicate = sqs.send_message(QueueUrl=url, MessageBody="a0 again", MessageGroupId="a", MessageDeduplicationId="d0")
    sqs.send_message(QueueUrl=url, MessageBody="b0", MessageGroupId="b", MessageDeduplicationId="e0")
    with pytest.raises(ClientError) as missing:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="z")
    assert missing.value.response["Error"]["Code"] == "MissingParameter"
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, MessageSystemAttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in first] == ["a0", "a1", "a2"]
    assert first[0]["MessageId"] == duplicate["MessageId"]
    assert first[0]["Attributes"]["MessageGroupId"] == "a" and first[0]["Attributes"]["MessageDeduplicationId"] == "d0"
    rest = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in rest] == ["b0"]  # group a has messages in flight
    sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(first)])
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["a3"]


def test_dead_letter_queue_after_max_receive_count(sqs: Any, name: str) -> None:
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": arn(f"{name}-dlq"), "maxReceiveCount": 1})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    stored = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert json.loads(stored["RedrivePolicy"]) == {"deadLetterTargetArn": arn(f"{name}-dlq"), "maxReceiveCount": 1}
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"] == "poison"
    sqs.send_message(QueueUrl=url, MessageBody="fine")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["fine"]
    dead = sqs.receive_message(QueueUrl=dlq, MessageSystemAttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]
    assert dead[0]["Attributes"]["DeadLetterQueueSourceArn"] == arn(name)
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]


def test_purge(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(5)])
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress) as again:
        sqs.purge_queue(QueueUrl=url)
    assert again.value.response["Error"]["Code"] == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_queues_survive_a_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        sqs = client_for(server.endpoint, "sqs")
        url = sqs.create_queue(QueueName="durable", Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="still here")
    finally:
        stop_server(server)
    assert (tmp_path / "data" / "queues.db").exists()
    server = start_server(tmp_path / "data")
    try:
        sqs = client_for(server.endpoint, "sqs")
        url = sqs.get_queue_url(QueueName="durable")["QueueUrl"]
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == \
            {"VisibilityTimeout": "7"}
        assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "still here"
    finally:
        stop_server(server)


def _aws(endpoint: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--output", "json", *args],
        check=check, capture_output=True, text=True, env=env,
    )


def test_aws_cli(strato: StratoServer, name: str) -> None:
    url = json.loads(_aws(strato.endpoint, "sqs", "create-queue", "--queue-name", name).stdout)["QueueUrl"]
    _aws(strato.endpoint, "sqs", "send-message", "--queue-url", url, "--message-body", "from the cli",
         "--message-attributes", '{"k": {"DataType": "String", "StringValue": "v"}}')
    received = json.loads(_aws(strato.endpoint, "sqs", "receive-message", "--queue-url", url,
                               "--message-attribute-names", "All", "--wait-time-seconds", "1").stdout)
    assert received["Messages"][0]["Body"] == "from the cli"
    assert received["Messages"][0]["MessageAttributes"]["k"]["StringValue"] == "v"
    missing = _aws(strato.endpoint, "sqs", "get-queue-url", "--queue-name", f"{name}-missing", check=False)
    assert missing.returncode != 0 and "AWS.SimpleQueueService.NonExistentQueue" in missing.stderr


def test_operations_are_authorised_on_the_queue(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"], "Resource": arn("allowed")},
        {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]}
    key, secret = create_credentials(data_dir, "sender", ACCOUNT, policy)
    server = start_server(data_dir)
    try:
        admin = client_for(server.endpoint, "sqs")
        allowed = admin.create_queue(QueueName="allowed")["QueueUrl"]
        other = admin.create_queue(QueueName="other")["QueueUrl"]
        sender = client_for(server.endpoint, "sqs", access_key=key, secret_key=secret)
        assert sender.get_queue_url(QueueName="allowed")["QueueUrl"] == allowed
        sender.send_message(QueueUrl=allowed, MessageBody="ok")
        assert len(sender.list_queues()["QueueUrls"]) == 2
        for call in (lambda: sender.send_message(QueueUrl=other, MessageBody="no"),
                     lambda: sender.receive_message(QueueUrl=allowed),
                     lambda: sender.create_queue(QueueName="new")):
            with pytest.raises(ClientError) as denied:
                call()
            assert denied.value.response["Error"]["Code"] == "AccessDenied"
            assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        sender_id = admin.receive_message(QueueUrl=allowed, MessageSystemAttributeNames=["SenderId"])
        assert sender_id["Messages"][0]["Attributes"]["SenderId"] == key
    finally:
        stop_server(server)
