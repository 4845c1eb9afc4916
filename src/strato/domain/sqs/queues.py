"""strato's built-in queues (the SQS-compatible service): names, URLs, ARNs, limits, and the
frozen records that cross the queue service's boundaries.

Queues are one namespace per strato (its one account): a queue is named by its name alone,
whatever region a request or an ARN mentions; ARNs and URLs are rendered in the caller's
region and with the host the caller used. Times are integer milliseconds since the epoch, as
SQS reports them (``SentTimestamp``), taken from the service's ``Clock``.

Limits are SQS's quotas (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/
SQSDeveloperGuide/quotas-queues.html and quotas-messages.html).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

FIFO_SUFFIX = ".fifo"
_STANDARD_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")
_ARN = re.compile(r"arn:aws[a-zA-Z-]*:sqs:(?P<region>[a-z0-9-]*):(?P<account>\d{12}):(?P<name>[^:/]+)")

MAX_BATCH_ENTRIES = 10
MAX_RECEIVE_MESSAGES = 10
MAX_WAIT_S = 20
MAX_VISIBILITY_TIMEOUT_S = 43_200
MAX_DELAY_S = 900
MIN_RETENTION_S = 60
MAX_RETENTION_S = 1_209_600
MIN_MESSAGE_BYTES = 1_024
#: The default ``MaximumMessageSize``; a queue may be set up to ``MAX_MESSAGE_BYTES``.
DEFAULT_MESSAGE_BYTES = 262_144
MAX_MESSAGE_BYTES = 1_048_576
MAX_MESSAGE_ATTRIBUTES = 10
MAX_RECEIVE_COUNT = 1_000
#: FIFO queues drop a message whose deduplication id was seen in the last five minutes.
DEDUPLICATION_WINDOW_MS = 300_000
#: Only one PurgeQueue per queue every 60 seconds.
PURGE_INTERVAL_MS = 60_000
LIST_QUEUES_MAX = 1_000
#: The largest request body the endpoint reads for the JSON APIs on ``POST /``: a batch of
#: messages of ``MAX_MESSAGE_BYTES`` in all, each character JSON-escaped at up to three times
#: its UTF-8 size, with room for attributes.
REQUEST_MAX_BYTES = 4 * 1024 * 1024


def is_fifo_name(name: str) -> bool:
    return name.endswith(FIFO_SUFFIX)


def valid_queue_name(name: str, fifo: bool) -> bool:
    """Whether ``name`` is a legal queue name: 1–80 characters of letters, digits, ``-``
    and ``_``, with ``.fifo`` at the end exactly when the queue is FIFO."""
    if fifo:
        return _FIFO_NAME.fullmatch(name) is not None
    return _STANDARD_NAME.fullmatch(name) is not None


def queue_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{account}:{name}"


def queue_url(base_url: str, account: str, name: str) -> str:
    """``<base_url>/<account>/<name>``; ``base_url`` is the scheme and host the client used."""
    return f"{base_url.rstrip('/')}/{account}/{name}"


@dataclass(frozen=True)
class QueueAddress:
    """Where a queue URL or ARN points: its account (None when the URL names none)."""

    name: str
    account: str | None


def parse_queue_arn(arn: str) -> QueueAddress | None:
    """The queue an SQS ARN names, or None if ``arn`` is not one."""
    match = _ARN.fullmatch(arn)
    if match is None:
        return None
    return QueueAddress(match["name"], match["account"])


def parse_queue_url(url: str) -> QueueAddress | None:
    """The queue a ``QueueUrl`` names: its last path segment, with the segment before it as
    the account (``http://host/<account>/<name>``). A bare name is accepted too. None when
    nothing can be a queue name."""
    path = urlsplit(url).path if "://" in url else url
    segments = [unquote(s) for s in path.split("/") if s]
    if not segments:
        return None
    account = segments[-2] if len(segments) >= 2 else None
    return QueueAddress(segments[-1], account)


@dataclass(frozen=True)
class RedrivePolicy:
    """A queue's dead-letter queue: messages received ``max_receive_count`` times move to
    ``dead_letter_target_arn`` on their next receive."""

    dead_letter_target_arn: str
    max_receive_count: int


@dataclass(frozen=True)
class Queue:
    """A stored queue. ``attributes`` holds every settable attribute (defaults included) in
    SQS's string form, exactly what GetQueueAttributes reports for them."""

    name: str
    attributes: Mapping[str, str]
    created_ms: int
    modified_ms: int
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"


@dataclass(frozen=True)
class MessageAttribute:
    """One message attribute (user or system): ``data_type`` is ``String``, ``Number`` or
    ``Binary``, optionally with a ``.custom`` suffix; exactly one value is set."""

    data_type: str
    string_value: str | None = None
    binary_value: bytes | None = None


@dataclass(frozen=True)
class Message:
    """A message as sent (and as stored). ``visible_ms`` is when it can first be received
    (sent time plus its delay); ``sequence_number`` is set by the store on FIFO queues, and
    ``dead_letter_source_arn`` when the message was moved to a dead-letter queue."""

    message_id: str
    body: str
    md5_of_body: str
    sender_id: str
    sent_ms: int
    visible_ms: int
    attributes: Mapping[str, MessageAttribute] = field(default_factory=dict)
    md5_of_attributes: str | None = None
    system_attributes: Mapping[str, MessageAttribute] = field(default_factory=dict)
    md5_of_system_attributes: str | None = None
    group_id: str | None = None
    deduplication_id: str | None = None
    sequence_number: str | None = None
    dead_letter_source_arn: str | None = None


@dataclass(frozen=True)
class Sent:
    """The outcome of sending one message. A FIFO message dropped as a duplicate reports the
    id and sequence number of the message it duplicates."""

    message_id: str
    sequence_number: str | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class Delivery:
    """One received message: the message, the receipt handle of this receive, and its
    receive count and first receive time after this receive."""

    message: Message
    receipt_handle: str
    receive_count: int
    first_receive_ms: int


@dataclass(frozen=True)
class ReceiveRequest:
    """ReceiveMessage's parameters; None takes the queue's own setting. ``wait_s`` is
    whole seconds on the API; strato's own pollers may wait for a fraction of one."""

    max_messages: int = 1
    visibility_timeout_s: int | None = None
    wait_s: float | None = None


@dataclass(frozen=True)
class QueueCounts:
    """The Approximate* numbers: visible, in flight (received, not yet visible again), and
    delayed (sent with a delay that has not passed)."""

    visible: int
    in_flight: int
    delayed: int


@dataclass(frozen=True)
class ReceiptHandle:
    """What a receipt handle stands for: one receive (``nonce``) of the stored message
    ``key`` of queue ``queue``. Handles are opaque to clients."""

    queue: str
    key: int
    nonce: str

    def encode(self) -> str:
        raw = f"{self.key}:{self.nonce}:{self.queue}".encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, handle: str) -> ReceiptHandle | None:
        """The receive ``handle`` names, or None if it cannot be one of strato's handles."""
        try:
            raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        key, _, rest = raw.partition(":")
        nonce, _, queue = rest.partition(":")
        if not key.isdigit() or not nonce or not queue:
            return None
        return cls(queue, int(key), nonce)
