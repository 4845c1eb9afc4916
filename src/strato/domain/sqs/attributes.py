"""Queue attributes: which exist, their defaults, and the validation of CreateQueue's and
SetQueueAttributes' values (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/
APIReference/API_SetQueueAttributes.html).

Values travel as strings. Validated values are normalised (booleans lower-case, the redrive
policy as compact JSON with a numeric ``maxReceiveCount``), so that a queue's stored
attributes are exactly what GetQueueAttributes reports and two spellings of one value compare
equal when CreateQueue checks an existing queue.

Whether a dead-letter target exists is the service's question; here its ARN is only parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping

from strato.domain.sqs import queues as q
from strato.domain.sqs.errors import (
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidParameterValue,
)

#: Attributes only the service sets (GetQueueAttributes reports them).
COMPUTED = (
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
)

STANDARD_DEFAULTS: Mapping[str, str] = {
    "VisibilityTimeout": "30",
    "MaximumMessageSize": str(q.DEFAULT_MESSAGE_BYTES),
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
    "SqsManagedSseEnabled": "true",
}
FIFO_DEFAULTS: Mapping[str, str] = {
    **STANDARD_DEFAULTS,
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}
#: Attributes a FIFO queue has and a standard one does not.
FIFO_ONLY = frozenset(FIFO_DEFAULTS) - frozenset(STANDARD_DEFAULTS)
#: Settable attributes with no default: absent until set; setting "" removes them.
OPTIONAL = frozenset({"RedrivePolicy", "RedriveAllowPolicy", "Policy", "KmsMasterKeyId",
                      "KmsDataKeyReusePeriodSeconds"})

_INTEGER = re.compile(r"\d{1,10}")


def _integer(low: int, high: int) -> Callable[[str, str], str]:
    def check(name: str, value: str) -> str:
        if _INTEGER.fullmatch(value) is None or not low <= int(value) <= high:
            raise invalid_value(name)
        return str(int(value))
    return check


def _boolean(name: str, value: str) -> str:
    if value.lower() not in ("true", "false"):
        raise invalid_value(name)
    return value.lower()


def _choice(*choices: str) -> Callable[[str, str], str]:
    def check(name: str, value: str) -> str:
        if value not in choices:
            raise invalid_value(name)
        return value
    return check


def _json_or_empty(name: str, value: str) -> str:
    if value == "":
        return value
    try:
        document = json.loads(value)
    except ValueError as e:
        raise invalid_value(name) from e
    if not isinstance(document, dict):
        raise invalid_value(name)
    return value


def _text(name: str, value: str) -> str:
    return value


_CHECKS: Mapping[str, Callable[[str, str], str]] = {
    "DelaySeconds": _integer(0, q.MAX_DELAY_S),
    "MaximumMessageSize": _integer(q.MIN_MESSAGE_BYTES, q.MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": _integer(q.MIN_RETENTION_S, q.MAX_RETENTION_S),
    "ReceiveMessageWaitTimeSeconds": _integer(0, q.MAX_WAIT_S),
    "VisibilityTimeout": _integer(0, q.MAX_VISIBILITY_TIMEOUT_S),
    "RedrivePolicy": lambda name, value: normalise_redrive_policy(value),
    "RedriveAllowPolicy": _json_or_empty,
    "Policy": _json_or_empty,
    "KmsMasterKeyId": _text,
    "KmsDataKeyReusePeriodSeconds": _integer(60, 86_400),
    "SqsManagedSseEnabled": _boolean,
    "FifoQueue": _boolean,
    "ContentBasedDeduplication": _boolean,
    "DeduplicationScope": _choice("messageGroup", "queue"),
    "FifoThroughputLimit": _choice("perQueue", "perMessageGroupId"),
}
#: Every attribute a request may name (GetQueueAttributes also takes ``All``).
KNOWN = frozenset(_CHECKS) | frozenset(COMPUTED)


def invalid_value(name: str, reason: str | None = None) -> InvalidAttributeValue:
    text = f"Invalid value for the parameter {name}."
    return InvalidAttributeValue(text if reason is None else f"{text[:-1]}. Reason: {reason}")


def unknown_attribute(name: str) -> InvalidAttributeName:
    return InvalidAttributeName(f"Unknown Attribute {name}.")


def normalise_redrive_policy(value: str) -> str:
    """``RedrivePolicy`` as stored: ``{"deadLetterTargetArn":…,"maxReceiveCount":N}``, or
    "" (no policy). ``maxReceiveCount`` may arrive as a number or a numeric string."""
    if value == "":
        return value
    try:
        document = json.loads(value)
    except ValueError as e:
        raise invalid_value("RedrivePolicy", "Redrive policy is not a valid JSON map.") from e
    if not isinstance(document, dict):
        raise invalid_value("RedrivePolicy", "Redrive policy is not a valid JSON map.")
    target = document.get("deadLetterTargetArn")
    if not isinstance(target, str) or q.parse_queue_arn(target) is None:
        raise invalid_value("RedrivePolicy", "Invalid value for deadLetterTargetArn.")
    count = document.get("maxReceiveCount")
    if isinstance(count, str) and _INTEGER.fullmatch(count):
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= q.MAX_RECEIVE_COUNT:
        raise invalid_value(
            "RedrivePolicy",
            f"Value {count} for parameter maxReceiveCount is invalid. Reason: Must be between "
            f"1 and {q.MAX_RECEIVE_COUNT}.",
        )
    return json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": count},
                      separators=(",", ":"))


def redrive_policy(attributes: Mapping[str, str]) -> q.RedrivePolicy | None:
    """The queue's stored redrive policy, or None."""
    value = attributes.get("RedrivePolicy")
    if not value:
        return None
    document = json.loads(value)
    return q.RedrivePolicy(document["deadLetterTargetArn"], int(document["maxReceiveCount"]))


def _checked(given: Mapping[str, str], fifo: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in given.items():
        check = _CHECKS.get(name)
        if check is None or (name in FIFO_ONLY and name != "FifoQueue" and not fifo):
            raise unknown_attribute(name)
        out[name] = check(name, value)
    return out


def creation_attributes(name: str, given: Mapping[str, str]) -> dict[str, str]:
    """The full attributes of a new queue ``name`` created with ``given``.

    Raises InvalidParameterValue for a name that is not legal for the queue's type,
    InvalidAttributeName for an attribute SQS does not have (or that the queue's type does
    not have), InvalidAttributeValue for a value out of its range.
    """
    fifo = _boolean("FifoQueue", given["FifoQueue"]) == "true" if "FifoQueue" in given else False
    if not q.valid_queue_name(name, fifo):
        if fifo or q.is_fifo_name(name):
            raise InvalidParameterValue(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
                "or underscores, must end with .fifo suffix and be 1 to 80 in length."
            )
        raise InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
        )
    checked = _checked(given, fifo)
    if not fifo:
        checked.pop("FifoQueue", None)
    attributes = {**(FIFO_DEFAULTS if fifo else STANDARD_DEFAULTS), **checked}
    return {k: v for k, v in attributes.items() if not (k in OPTIONAL and v == "")}


def conflicting_attribute(queue: q.Queue, given: Mapping[str, str]) -> str | None:
    """The first attribute whose requested value differs from ``queue``'s (CreateQueue of an
    existing name), or None: then CreateQueue returns the existing queue. Attributes the
    request does not name are not compared. ``given`` must have passed
    ``creation_attributes``."""
    checked = _checked(given, queue.fifo)
    defaults = FIFO_DEFAULTS if queue.fifo else STANDARD_DEFAULTS
    for name, value in checked.items():
        current = queue.attributes.get(name, defaults.get(name, "false" if name == "FifoQueue" else ""))
        if value != current:
            return name
    return None


def changed_attributes(queue: q.Queue, given: Mapping[str, str]) -> dict[str, str]:
    """``queue``'s attributes after SetQueueAttributes with ``given`` (an attribute set to ""
    among ``OPTIONAL`` is removed). Raises as ``creation_attributes`` does; the queue type
    cannot change."""
    checked = _checked(given, queue.fifo)
    if "FifoQueue" in checked and checked["FifoQueue"] != ("true" if queue.fifo else "false"):
        raise invalid_value("FifoQueue", "Modifying queue type is not supported.")
    if not queue.fifo:
        checked.pop("FifoQueue", None)
    attributes = {**queue.attributes, **checked}
    return {k: v for k, v in attributes.items() if not (k in OPTIONAL and v == "")}


def requested_names(names: Iterable[str], fifo: bool) -> list[str]:
    """The attributes GetQueueAttributes reports for ``names`` (``All`` is every one the
    queue has). Raises InvalidAttributeName for a name SQS does not have."""
    wanted: list[str] = []
    for name in names:
        if name == "All":
            wanted += [*COMPUTED, *_CHECKS]
        elif name in KNOWN:
            wanted.append(name)
        else:
            raise unknown_attribute(name)
    if not fifo:
        wanted = [name for name in wanted if name not in FIFO_ONLY]
    return list(dict.fromkeys(wanted))


def int_attribute(queue: q.Queue, name: str) -> int:
    """An integer attribute of ``queue`` (its default if the record predates it)."""
    return int(queue.attributes.get(name, STANDARD_DEFAULTS[name]))
