"""Rules of SQS messages: checksums, what a message may contain, and which attributes a
receive returns.

The MD5 digests are SQS's, which SDKs verify (https://docs.aws.amazon.com/AWSSimpleQueueService/
latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-attributes-md5-message-digest-calculation):
``MD5OfMessageBody`` is the hex MD5 of the body's UTF-8 bytes; ``MD5OfMessageAttributes`` the
hex MD5 of the attributes sorted by name, each encoded as its name, its data type and its
value, every one of these prefixed with its length as a 4-byte big-endian integer, and a
transport byte before the value (1 for ``String``/``Number``, 2 for ``Binary``).
``MD5OfMessageSystemAttributes`` is the same over the system attributes (``AWSTraceHeader``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

from strato.domain.sqs import queues as q
from strato.domain.sqs.errors import (
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
)

#: Characters a message may carry (SQS's allowed set, XML 1.0's).
_INVALID_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_RESERVED_PREFIXES = ("aws.", "amazon.")
#: Deduplication and group ids: 1–128 letters, digits and punctuation.
_TOKEN = re.compile(r"[!-~]{1,128}")
SYSTEM_ATTRIBUTES_FOR_SENDS = frozenset({"AWSTraceHeader"})
#: Message system attributes ReceiveMessage can return (``All`` is every one).
RECEIVABLE = (
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def md5_of_attributes(attributes: Mapping[str, q.MessageAttribute]) -> str | None:
    """SQS's digest of message (or system) attributes; None when there are none."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)

    def field(data: bytes) -> None:
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)

    for name in sorted(attributes):
        attribute = attributes[name]
        field(name.encode("utf-8"))
        field(attribute.data_type.encode("utf-8"))
        if attribute.binary_value is not None:
            digest.update(b"\x02")
            field(attribute.binary_value)
        else:
            digest.update(b"\x01")
            field((attribute.string_value or "").encode("utf-8"))
    return digest.hexdigest()


def content_deduplication_id(body: str) -> str:
    """The deduplication id of a FIFO queue with ``ContentBasedDeduplication``: the SHA-256
    of the body (attributes are not part of it)."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def check_body(body: str | None) -> str:
    """The body, if SQS accepts it: non-empty, of SQS's allowed characters only. Raises
    MissingParameter or InvalidMessageContents."""
    if not body:
        raise MissingParameter.named("MessageBody")
    if _INVALID_CHARACTER.search(body):
        raise InvalidMessageContents(
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to "
            "#xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"
        )
    return body


def check_attributes(attributes: Mapping[str, q.MessageAttribute], *, system: bool = False) -> None:
    """Raise InvalidParameterValue unless ``attributes`` are legal message attributes (or,
    with ``system``, message system attributes: only ``AWSTraceHeader``, a String)."""
    kind = "system" if system else "user"
    if len(attributes) > q.MAX_MESSAGE_ATTRIBUTES:
        raise InvalidParameterValue(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
            f"[{q.MAX_MESSAGE_ATTRIBUTES}]."
        )
    for name, attribute in attributes.items():
        if system and name not in SYSTEM_ATTRIBUTES_FOR_SENDS:
            raise InvalidParameterValue(f"Message system attribute name '{name}' is invalid.")
        if (_ATTRIBUTE_NAME.fullmatch(name) is None or name.startswith(".")
                or name.endswith(".") or ".." in name
                or name.lower().startswith(_RESERVED_PREFIXES)) and not system:
            raise InvalidParameterValue(
                f"Message ({kind}) attribute name '{name}' is invalid. Names may contain "
                "alphanumeric characters, hyphens, underscores and periods (not at the start "
                "or end, and not two in a row), and must not start with AWS. or Amazon."
            )
        base = attribute.data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary") or len(attribute.data_type) > 256:
            raise InvalidParameterValue(
                f"The type of message ({kind}) attribute '{name}' is invalid. You must use "
                "only the following supported type prefixes: Binary, Number, String."
            )
        if system and base != "String":
            raise InvalidParameterValue(
                f"The type of message ({kind}) attribute '{name}' must be String."
            )
        if base == "Binary":
            if not attribute.binary_value:
                raise _empty_value(kind, name, "Binary")
            continue
        if not attribute.string_value:
            raise _empty_value(kind, name, base)
        if _INVALID_CHARACTER.search(attribute.string_value):
            raise InvalidParameterValue(
                f"Message ({kind}) attribute '{name}' contains invalid characters."
            )
        if base == "Number":
            _check_number(kind, name, attribute.string_value)


def _empty_value(kind: str, name: str, base: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Message ({kind}) attribute '{name}' must contain a non-empty value of type '{base}'."
    )


def _check_number(kind: str, name: str, text: str) -> None:
    """SQS's numbers: up to 38 significant digits, between 10^-128 and 10^+126."""
    try:
        value = Decimal(text)
    except InvalidOperation as e:
        raise InvalidParameterValue(
            f"Can't cast the value of message ({kind}) attribute '{name}' to a number."
        ) from e
    if not value.is_finite() or (value != 0 and not -128 <= value.adjusted() <= 126):
        raise InvalidParameterValue(
            f"Value of message ({kind}) attribute '{name}' is out of the numeric range."
        )


def attributes_size(attributes: Mapping[str, q.MessageAttribute]) -> int:
    """What attributes add to a message's size: names, types and values, in bytes."""
    size = 0
    for name, attribute in attributes.items():
        size += len(name.encode()) + len(attribute.data_type.encode())
        if attribute.binary_value is not None:
            size += len(attribute.binary_value)
        else:
            size += len((attribute.string_value or "").encode())
    return size


def message_size(body: str, attributes: Mapping[str, q.MessageAttribute]) -> int:
    """A message's size as SQS limits it: the body's UTF-8 bytes plus its attributes'."""
    return len(body.encode("utf-8")) + attributes_size(attributes)


def check_size(size: int, maximum: int) -> None:
    if size > maximum:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than "
            f"{maximum} bytes."
        )


def check_token(name: str, value: str) -> str:
    """A ``MessageGroupId`` or ``MessageDeduplicationId``: 1–128 of letters, digits and
    punctuation (``!`` to ``~``)."""
    if _TOKEN.fullmatch(value) is None:
        raise InvalidParameterValue(
            f"Value {value} for parameter {name} is invalid. Reason: {name} can only include "
            "alphanumeric and punctuation characters. 1 to 128 in length."
        )
    return value


def select_message_attributes(
    attributes: Mapping[str, q.MessageAttribute], requested: Iterable[str]
) -> dict[str, q.MessageAttribute]:
    """The message attributes a receive returns: ``All`` or ``.*`` select every one, a name
    ending in ``.*`` every one with that prefix, any other name itself."""
    names = list(requested)
    if not names or not attributes:
        return {}
    if "All" in names or ".*" in names:
        return dict(attributes)
    prefixes = tuple(n[:-1] for n in names if n.endswith(".*"))
    exact = {n for n in names if not n.endswith(".*")}
    return {k: v for k, v in attributes.items() if k in exact or (prefixes and k.startswith(prefixes))}


def system_attribute_names(requested: Iterable[str]) -> list[str]:
    """The message system attributes a receive returns for ``AttributeNames`` and
    ``MessageSystemAttributeNames`` together (unknown names are ignored, as SQS does)."""
    names = set(requested)
    if "All" in names:
        return list(RECEIVABLE)
    return [name for name in RECEIVABLE if name in names]


def system_attributes(delivery: q.Delivery, names: Iterable[str]) -> dict[str, str]:
    """The values of the message system attributes ``names`` (from
    ``system_attribute_names``) that ``delivery`` has."""
    message = delivery.message
    trace = message.system_attributes.get("AWSTraceHeader")
    values = {
        "SenderId": message.sender_id,
        "SentTimestamp": str(message.sent_ms),
        "ApproximateReceiveCount": str(delivery.receive_count),
        "ApproximateFirstReceiveTimestamp": str(delivery.first_receive_ms),
        "SequenceNumber": message.sequence_number,
        "MessageDeduplicationId": message.deduplication_id,
        "MessageGroupId": message.group_id,
        "AWSTraceHeader": trace.string_value if trace is not None else None,
        "DeadLetterQueueSourceArn": message.dead_letter_source_arn,
    }
    return {name: value for name in names if (value := values.get(name)) is not None}
