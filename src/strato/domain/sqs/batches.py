"""The checks every SQS batch request passes before any entry runs: 1–10 entries, distinct
and well-formed entry ids, and (for SendMessageBatch) the batch's total size. A batch that
fails them is refused whole; one that passes reports each entry's outcome on its own."""

from __future__ import annotations

import re
from collections.abc import Sequence

from strato.domain.sqs import queues as q
from strato.domain.sqs.errors import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    TooManyEntriesInBatchRequest,
)

_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")


def check_batch(entry_shape: str, ids: Sequence[str]) -> None:
    """Raise the SQS error of a batch of ``ids`` that cannot run (``entry_shape`` names the
    entry in the message: ``SendMessageBatchRequestEntry``)."""
    if not ids:
        raise EmptyBatchRequest(f"There should be at least one {entry_shape} in the request.")
    if len(ids) > q.MAX_BATCH_ENTRIES:
        raise TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {q.MAX_BATCH_ENTRIES}. "
            f"You have sent {len(ids)}."
        )
    seen: set[str] = set()
    for entry_id in ids:
        if _ENTRY_ID.fullmatch(entry_id) is None:
            raise InvalidBatchEntryId(
                "A batch entry id can only contain alphanumeric characters, hyphens and "
                "underscores. It can be at most 80 letters long."
            )
        if entry_id in seen:
            raise BatchEntryIdsNotDistinct(f"Id {entry_id} repeated.")
        seen.add(entry_id)


def check_batch_size(total_bytes: int, maximum: int) -> None:
    """SendMessageBatch's messages together may not exceed the queue's maximum size."""
    if total_bytes > maximum:
        raise BatchRequestTooLong(
            f"Batch requests cannot be longer than {maximum} bytes. "
            f"You have sent {total_bytes} bytes."
        )
