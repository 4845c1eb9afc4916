"""The event stream encoder, read back by botocore's own decoder and event parser."""

from __future__ import annotations

from typing import Any

from botocore.eventstream import EventStreamBuffer
from botocore.parsers import EventStreamJSONParser

from strato.api.event_stream import EventStreamWriter, encode_message
from strato.api.service_models import service_model

OPERATION = service_model("lambda").operation_model("InvokeWithResponseStream")


def _parse(data: bytes) -> list[dict[str, Any]]:
    """The events a boto3 client reads from ``data`` (as its EventStream does)."""
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    parser = EventStreamJSONParser()
    shape = OPERATION.get_event_stream_output()
    events = []
    for message in buffer:
        response = message.to_response_dict()
        events.append(parser.parse(response, shape))
    return events


def test_a_message_decodes_with_its_headers_and_payload() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_message([(":event-type", "X"), ("name", "välue")], b"\x00\x01raw"))
    (message,) = list(buffer)
    assert message.headers == {":event-type": "X", "name": "välue"}
    assert message.payload == b"\x00\x01raw"


def test_payload_chunks_then_invoke_complete_parse_as_boto3_reads_them() -> None:
    writer = EventStreamWriter(OPERATION)
    data = (writer.event("PayloadChunk", {"Payload": b"hello "})
            + writer.event("PayloadChunk", {"Payload": bytes(range(256))})
            + writer.event("InvokeComplete", {"ErrorCode": "Stream.Broke",
                                              "ErrorDetails": '{"errorMessage": "x"}',
                                              "LogResult": "bG9n"}))
    assert _parse(data) == [
        {"PayloadChunk": {"Payload": b"hello "}},
        {"PayloadChunk": {"Payload": bytes(range(256))}},
        {"InvokeComplete": {"ErrorCode": "Stream.Broke", "ErrorDetails": '{"errorMessage": "x"}',
                            "LogResult": "bG9n"}},
    ]


def test_an_empty_invoke_complete_has_no_members() -> None:
    writer = EventStreamWriter(OPERATION)
    assert _parse(writer.event("InvokeComplete", {"LogResult": None})) == [{"InvokeComplete": {}}]


def test_a_large_chunk_survives_its_checksums() -> None:
    writer = EventStreamWriter(OPERATION)
    payload = b"z" * (1024 * 1024)
    assert _parse(writer.event("PayloadChunk", {"Payload": payload})) == [
        {"PayloadChunk": {"Payload": payload}}]
