"""AWS's event stream encoding (``application/vnd.amazon.eventstream``), for the events of
an operation's event-stream output (InvokeWithResponseStream's ``PayloadChunk`` and
``InvokeComplete``).

A message is a prelude (total length and headers length, 4 bytes each, big-endian), the
prelude's CRC32, the headers, the payload, and the CRC32 of everything before it. A header is
its name's length (1 byte), the name, a value type (7: string), the value's length (2 bytes)
and the value. Every event carries ``:message-type`` ``event``, ``:event-type`` (the event's
member name in the model) and ``:content-type``. An event whose model has an
``eventpayload`` member sends that blob as the payload (``application/octet-stream``); any
other sends its members as a JSON object (the rest-json protocol's form).
https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream

botocore has the decoder (``botocore.eventstream``) that clients read these with, and no
encoder; the unit tests check this one against it.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from botocore.model import OperationModel, StructureShape

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_PRELUDE = struct.Struct("!II")
_CRC = struct.Struct("!I")
_STRING = 7


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (bytes((len(raw_name),)) + raw_name + bytes((_STRING,))
            + len(raw_value).to_bytes(2, "big") + raw_value)


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event stream message with string-valued ``headers``."""
    head = b"".join(_header(name, value) for name, value in headers)
    prelude = _PRELUDE.pack(12 + len(head) + len(payload) + 4, len(head))
    message = prelude + _CRC.pack(zlib.crc32(prelude)) + head + payload
    return message + _CRC.pack(zlib.crc32(message))


class EventStreamWriter:
    """Encodes the events of ``operation``'s event-stream output, as its model names them."""

    def __init__(self, operation: OperationModel) -> None:
        output = operation.output_shape
        assert output is not None and operation.has_event_stream_output
        stream = operation.get_event_stream_output()
        assert isinstance(stream, StructureShape)
        #: For each event: the member sent raw as its payload, or None (a JSON object).
        self._payload_member: dict[str, str | None] = {}
        for name, shape in stream.members.items():
            assert isinstance(shape, StructureShape)
            self._payload_member[name] = next(
                (member for member, member_shape in shape.members.items()
                 if member_shape.serialization.get("eventpayload")), None)

    def event(self, name: str, members: dict[str, Any]) -> bytes:
        """The message of event ``name`` (a member of the model's event stream) with
        ``members`` (a blob for an event with a payload member, strings otherwise)."""
        payload_member = self._payload_member[name]
        if payload_member is not None:
            payload = members.get(payload_member, b"")
            content_type = "application/octet-stream"
        else:
            payload = json.dumps({k: v for k, v in members.items() if v is not None},
                                 separators=(",", ":")).encode()
            content_type = "application/json"
        return encode_message([(":event-type", name), (":content-type", content_type),
                               (":message-type", "event")], payload)
