"""The pure rules of the built-in queues: checksums, message and attribute validation, FIFO
sends, batches, and which messages a receive delivers, dead-letters or drops."""

from __future__ import annotations

import hashlib

import pytest

from strato.domain.sqs import attributes as attrs
from strato.domain.sqs import messages as rules
from strato.domain.sqs.batches import check_batch, check_batch_size
from strato.domain.sqs.delivery import Candidate, plan_delivery
from strato.domain.sqs.errors import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidBatchEntryId,
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
    TooManyEntriesInBatchRequest,
)
from strato.domain.sqs.queues import (
    Delivery,
    Message,
    MessageAttribute,
    Queue,
    QueueAddress,
    ReceiptHandle,
    parse_queue_arn,
    parse_queue_url,
)
from strato.domain.sqs.sends import SendRequest, prepare_message


def s(value: str, data_type: str = "String") -> MessageAttribute:
    return MessageAttribute(data_type, string_value=value)


# checksums -------------------------------------------------------------------------------
# Published vectors of SQS's algorithm (AWS's samples, and values SDK test suites check).
@pytest.mark.parametrize(
    ("attributes", "digest"),
    [
        ({"timestamp": s("1493147359900", "Number")}, "235c5c510d26fb653d073faed50ae77c"),
        ({"SellerName": s("Example Store")}, "cd28f3b68aeee4b2eac9c66f2f694b58"),
        ({"ordinal": s("1", "Number"), "category": s("test")}, "d21ae90c49061e927f57df5f5d72be1f"),
        ({"test_attribute_name_2": s("test_attribute_value_2"),
          "test_attribute_name_1": s("test_attribute_value_1")}, "d53f3b558fe951154770f25cb63dbba9"),
        ({"test_attribute_name": MessageAttribute("Binary", binary_value=b"test_attribute_value")},
         "23f6bd27ea87aab7dfeadcc9aebee495"),
    ],
)
def test_md5_of_message_attributes_is_sqs_digest(attributes: dict[str, MessageAttribute], digest: str) -> None:
    assert rules.md5_of_attributes(attributes) == digest


def test_md5_of_body_and_no_attributes() -> None:
    assert rules.md5_of_body("Information about the largest city in Any Region.") == \
        "51b0a3256d59467f973009b739163aa0"
    assert rules.md5_of_body("ünïcode ✓") == hashlib.md5("ünïcode ✓".encode()).hexdigest()
    assert rules.md5_of_attributes({}) is None


def test_content_deduplication_id_is_sha256_of_body() -> None:
    assert rules.content_deduplication_id("abc") == hashlib.sha256(b"abc").hexdigest()


# message contents ------------------------------------------------------------------------
def test_body_must_be_non_empty_and_of_allowed_characters() -> None:
    assert rules.check_body("tab\there 😀 \ue000") == "tab\there 😀 \ue000"
    with pytest.raises(MissingParameter, match="MessageBody"):
        rules.check_body("")
    with pytest.raises(InvalidMessageContents):
        rules.check_body("bell \x07")
    with pytest.raises(InvalidMessageContents):
        rules.check_body("lone surrogate \ud800")


@pytest.mark.parametrize(
    ("attributes", "match"),
    [
        ({"a": s("x", "Strings")}, "supported type prefixes"),
        ({"a": s("", "String")}, "non-empty value of type 'String'"),
        ({"a": MessageAttribute("Binary")}, "non-empty value of type 'Binary'"),
        ({"a": s("twelve", "Number")}, "to a number"),
        ({"AWS.x": s("1")}, "is invalid"),
        ({"a..b": s("1")}, "is invalid"),
        ({f"a{i}": s("1") for i in range(11)}, r"\[11\] exceeds the allowed maximum \[10\]"),
    ],
)
def test_bad_message_attributes_are_refused(attributes: dict[str, MessageAttribute], match: str) -> None:
    with pytest.raises(InvalidParameterValue, match=match):
        rules.check_attributes(attributes)


def test_good_message_attributes_pass() -> None:
    rules.check_attributes({"n": s("-1.5e10", "Number.float"), "b": MessageAttribute("Binary.x", binary_value=b"\0"),
                            "s.x_y-z": s("ok", "String.custom")})
    rules.check_attributes({"AWSTraceHeader": s("Root=1-5759e988-bd862e3fe1be46a994272793")}, system=True)
    with pytest.raises(InvalidParameterValue):
        rules.check_attributes({"Other": s("x")}, system=True)


def test_message_attribute_selection() -> None:
    attributes = {"a.1": s("1"), "a.2": s("2"), "b": s("3")}
    assert rules.select_message_attributes(attributes, []) == {}
    assert rules.select_message_attributes(attributes, ["All"]) == attributes
    assert rules.select_message_attributes(attributes, [".*"]) == attributes
    assert set(rules.select_message_attributes(attributes, ["a.*"])) == {"a.1", "a.2"}
    assert set(rules.select_message_attributes(attributes, ["b", "c"])) == {"b"}


def test_system_attribute_selection_and_values() -> None:
    assert rules.system_attribute_names(["All"]) == list(rules.RECEIVABLE)
    assert rules.system_attribute_names(["SentTimestamp", "Nonsense"]) == ["SentTimestamp"]
    message = Message("id", "b", "md5", "AKIA1", 1000, 1000, group_id="g", sequence_number="1")
    delivery = Delivery(message, "h", 3, 2000)
    assert rules.system_attributes(delivery, rules.RECEIVABLE) == {
        "SenderId": "AKIA1", "SentTimestamp": "1000", "ApproximateReceiveCount": "3",
        "ApproximateFirstReceiveTimestamp": "2000", "SequenceNumber": "1", "MessageGroupId": "g",
    }


# queue attributes ------------------------------------------------------------------------
def test_creation_attributes_fill_defaults() -> None:
    standard = attrs.creation_attributes("q", {"VisibilityTimeout": "5"})
    assert standard["VisibilityTimeout"] == "5" and standard["MaximumMessageSize"] == "262144"
    assert "FifoQueue" not in standard and "ContentBasedDeduplication" not in standard
    fifo = attrs.creation_attributes("q.fifo", {"FifoQueue": "TRUE", "ContentBasedDeduplication": "true"})
    assert fifo["FifoQueue"] == "true" and fifo["ContentBasedDeduplication"] == "true"
    assert fifo["DeduplicationScope"] == "queue"
    assert attrs.creation_attributes("q", {"FifoQueue": "false"}) == attrs.creation_attributes("q", {})


@pytest.mark.parametrize(
    ("name", "given", "error"),
    [
        ("q", {"VisibilityTimeout": "43201"}, InvalidAttributeValue),
        ("q", {"MaximumMessageSize": "1048577"}, InvalidAttributeValue),
        ("q", {"MessageRetentionPeriod": "59"}, InvalidAttributeValue),
        ("q", {"DelaySeconds": "-1"}, InvalidAttributeValue),
        ("q", {"ReceiveMessageWaitTimeSeconds": "21"}, InvalidAttributeValue),
        ("q", {"Bogus": "1"}, InvalidAttributeName),
        ("q", {"QueueArn": "x"}, InvalidAttributeName),
        ("q", {"ContentBasedDeduplication": "true"}, InvalidAttributeName),
        ("q.fifo", {}, InvalidParameterValue),
        ("q", {"FifoQueue": "true"}, InvalidParameterValue),
        ("has space", {}, InvalidParameterValue),
        ("x" * 81, {}, InvalidParameterValue),
        ("q", {"RedrivePolicy": "not json"}, InvalidAttributeValue),
        ("q", {"RedrivePolicy": '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:d", "maxReceiveCount": 0}'},
         InvalidAttributeValue),
        ("q", {"RedrivePolicy": '{"deadLetterTargetArn": "nope", "maxReceiveCount": 3}'}, InvalidAttributeValue),
    ],
)
def test_bad_queue_attributes_are_refused(name: str, given: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        attrs.creation_attributes(name, given)


def test_redrive_policy_is_normalised() -> None:
    arn = "arn:aws:sqs:us-east-1:000000000000:dlq"
    created = attrs.creation_attributes("q", {"RedrivePolicy": f'{{"maxReceiveCount": "5", "deadLetterTargetArn": "{arn}"}}'})
    assert created["RedrivePolicy"] == f'{{"deadLetterTargetArn":"{arn}","maxReceiveCount":5}}'
    policy = attrs.redrive_policy(created)
    assert policy is not None and policy.max_receive_count == 5 and policy.dead_letter_target_arn == arn


def test_create_of_an_existing_queue_compares_only_given_attributes() -> None:
    queue = Queue("q", attrs.creation_attributes("q", {"VisibilityTimeout": "60"}), 0, 0)
    assert attrs.conflicting_attribute(queue, {}) is None
    assert attrs.conflicting_attribute(queue, {"VisibilityTimeout": "60", "DelaySeconds": "0"}) is None
    assert attrs.conflicting_attribute(queue, {"FifoQueue": "false"}) is None
    assert attrs.conflicting_attribute(queue, {"VisibilityTimeout": "30"}) == "VisibilityTimeout"


def test_set_attributes_changes_and_removes() -> None:
    arn = "arn:aws:sqs:us-east-1:000000000000:dlq"
    queue = Queue("q", attrs.creation_attributes(
        "q", {"RedrivePolicy": f'{{"deadLetterTargetArn": "{arn}", "maxReceiveCount": 2}}'}), 0, 0)
    changed = attrs.changed_attributes(queue, {"RedrivePolicy": "", "DelaySeconds": "7"})
    assert "RedrivePolicy" not in changed and changed["DelaySeconds"] == "7"
    with pytest.raises(InvalidAttributeValue, match="queue type"):
        attrs.changed_attributes(queue, {"FifoQueue": "true"})


def test_requested_attribute_names() -> None:
    standard = attrs.requested_names(["All"], fifo=False)
    assert "QueueArn" in standard and "ApproximateNumberOfMessages" in standard
    assert "FifoQueue" not in standard
    assert "ContentBasedDeduplication" in attrs.requested_names(["All"], fifo=True)
    assert attrs.requested_names(["VisibilityTimeout", "VisibilityTimeout"], fifo=False) == ["VisibilityTimeout"]
    with pytest.raises(InvalidAttributeName, match="Unknown Attribute Nope."):
        attrs.requested_names(["Nope"], fifo=False)


# sends -----------------------------------------------------------------------------------
STANDARD = Queue("q", attrs.creation_attributes("q", {"DelaySeconds": "3"}), 0, 0)
FIFO = Queue("f.fifo", attrs.creation_attributes("f.fifo", {"FifoQueue": "true"}), 0, 0)
FIFO_CBD = Queue("c.fifo", attrs.creation_attributes(
    "c.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"}), 0, 0)


def prepare(queue: Queue, request: SendRequest) -> Message:
    return prepare_message(queue, request, message_id="m", sender_id="s", now_ms=10_000)


def test_standard_send_takes_queue_or_message_delay() -> None:
    assert prepare(STANDARD, SendRequest("b")).visible_ms == 13_000
    assert prepare(STANDARD, SendRequest("b", delay_s=0)).visible_ms == 10_000
    with pytest.raises(InvalidParameterValue, match="DelaySeconds"):
        prepare(STANDARD, SendRequest("b", delay_s=901))
    with pytest.raises(InvalidParameterValue, match="MessageDeduplicationId"):
        prepare(STANDARD, SendRequest("b", deduplication_id="d"))


def test_fifo_send_rules() -> None:
    with pytest.raises(MissingParameter, match="MessageGroupId"):
        prepare(FIFO, SendRequest("b", deduplication_id="d"))
    with pytest.raises(InvalidParameterValue, match="ContentBasedDeduplication"):
        prepare(FIFO, SendRequest("b", group_id="g"))
    with pytest.raises(InvalidParameterValue, match="DelaySeconds"):
        prepare(FIFO, SendRequest("b", group_id="g", deduplication_id="d", delay_s=5))
    assert prepare(FIFO, SendRequest("b", group_id="g", deduplication_id="d")).deduplication_id == "d"
    assert prepare(FIFO_CBD, SendRequest("b", group_id="g")).deduplication_id == hashlib.sha256(b"b").hexdigest()
    with pytest.raises(InvalidParameterValue, match="MessageGroupId"):
        prepare(FIFO, SendRequest("b", group_id="has space", deduplication_id="d"))


def test_message_size_counts_body_and_attributes() -> None:
    small = Queue("q", attrs.creation_attributes("q", {"MaximumMessageSize": "1024"}), 0, 0)
    prepare(small, SendRequest("x" * 1024))
    with pytest.raises(InvalidParameterValue, match="shorter than 1024 bytes"):
        prepare(small, SendRequest("x" * 1020, attributes={"ab": s("c")}))
    with pytest.raises(InvalidParameterValue, match="shorter than 1024 bytes"):
        prepare(small, SendRequest("é" * 513))  # 1026 bytes of UTF-8


def test_prepared_message_carries_checksums() -> None:
    message = prepare(STANDARD, SendRequest("hello", attributes={"SellerName": s("Example Store")}))
    assert message.md5_of_body == "5d41402abc4b2a76b9719d911017c592"
    assert message.md5_of_attributes == "cd28f3b68aeee4b2eac9c66f2f694b58"
    assert message.md5_of_system_attributes is None


# batches ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ids", "error"),
    [
        ([], EmptyBatchRequest),
        ([str(i) for i in range(11)], TooManyEntriesInBatchRequest),
        (["a", "b", "a"], BatchEntryIdsNotDistinct),
        (["has space"], InvalidBatchEntryId),
        (["x" * 81], InvalidBatchEntryId),
    ],
)
def test_batches_refused_whole(ids: list[str], error: type[Exception]) -> None:
    with pytest.raises(error):
        check_batch("SendMessageBatchRequestEntry", ids)


def test_batch_within_limits_passes() -> None:
    check_batch("E", [str(i) for i in range(10)])
    check_batch_size(262_144, 262_144)
    with pytest.raises(BatchRequestTooLong, match="262145 bytes"):
        check_batch_size(262_145, 262_144)


# delivery decisions ----------------------------------------------------------------------
NOW = 100_000
DAY = 86_400_000


def c(key: int, *, group: str | None = None, visible: int = 0, count: int = 0, sent: int = NOW - 1) -> Candidate:
    return Candidate(key, group, visible, count, sent)


def test_standard_delivers_visible_messages_up_to_the_maximum() -> None:
    plan = plan_delivery([c(1), c(2, visible=NOW + 1), c(3), c(4)], now_ms=NOW, max_messages=2, retention_ms=DAY)
    assert plan.deliver == [1, 3] and not plan.dead_letter and not plan.expire


def test_expired_messages_are_dropped_not_delivered() -> None:
    plan = plan_delivery([c(1, sent=NOW - DAY), c(2)], now_ms=NOW, max_messages=10, retention_ms=DAY)
    assert plan.expire == [1] and plan.deliver == [2]


def test_poison_message_moves_to_dead_letter_without_blocking_others() -> None:
    plan = plan_delivery([c(1, count=3), c(2, count=2), c(3)], now_ms=NOW, max_messages=10,
                         retention_ms=DAY, max_receive_count=3)
    assert plan.dead_letter == [1] and plan.deliver == [2, 3]
    unlimited = plan_delivery([c(1, count=300)], now_ms=NOW, max_messages=10, retention_ms=DAY)
    assert unlimited.deliver == [1]


def test_fifo_group_with_message_in_flight_delivers_nothing() -> None:
    candidates = [c(1, group="a"), c(2, group="b"), c(3, group="a")]
    plan = plan_delivery(candidates, now_ms=NOW, max_messages=10, retention_ms=DAY, fifo=True,
                         in_flight_groups={"a"})
    assert plan.deliver == [2]


def test_fifo_keeps_group_order_and_stops_at_a_message_not_yet_visible() -> None:
    candidates = [c(1, group="a"), c(2, group="a", visible=NOW + 5), c(3, group="a"), c(4, group="b")]
    plan = plan_delivery(candidates, now_ms=NOW, max_messages=10, retention_ms=DAY, fifo=True)
    assert plan.deliver == [1, 4]


def test_fifo_dead_letter_frees_the_group_for_the_next_message() -> None:
    candidates = [c(1, group="a", count=1), c(2, group="a")]
    plan = plan_delivery(candidates, now_ms=NOW, max_messages=10, retention_ms=DAY, fifo=True,
                         max_receive_count=1)
    assert plan.dead_letter == [1] and plan.deliver == [2]


def test_plan_stops_consuming_candidates_when_full() -> None:
    consumed: list[int] = []

    def lazy() -> object:
        for key in range(1, 100):
            consumed.append(key)
            yield c(key)

    plan = plan_delivery(lazy(), now_ms=NOW, max_messages=3, retention_ms=DAY)  # type: ignore[arg-type]
    assert plan.deliver == [1, 2, 3] and len(consumed) == 4


# addresses and handles ---------------------------------------------------------------------
def test_queue_urls_and_arns() -> None:
    assert parse_queue_url("http://h:9000/000000000000/q1") == QueueAddress("q1", "000000000000")
    assert parse_queue_url("https://sqs.us-east-1.amazonaws.com/123456789012/a.fifo") == \
        QueueAddress("a.fifo", "123456789012")
    assert parse_queue_url("q1") == QueueAddress("q1", None)
    assert parse_queue_url("http://h/") is None
    assert parse_queue_arn("arn:aws:sqs:eu-west-1:000000000000:q") == QueueAddress("q", "000000000000")
    assert parse_queue_arn("arn:aws:lambda:eu-west-1:000000000000:function:q") is None


def test_receipt_handles_round_trip() -> None:
    handle = ReceiptHandle("q.fifo", 42, "n0nce-_")
    assert ReceiptHandle.decode(handle.encode()) == handle
    assert ReceiptHandle.decode("not a handle!") is None
    assert ReceiptHandle.decode("") is None
