"""A function's answer to an SQS batch under ``ReportBatchItemFailures`` (pure).

AWS's rules ("Handling errors for an SQS event source in Lambda",
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html): the batch
succeeded as a whole when the response is empty or null, or its ``batchItemFailures`` is an
empty list or null; the messages named by ``batchItemFailures[].itemIdentifier`` failed; and
the whole batch failed when the response is not valid JSON, or an item's identifier is
missing, empty, null, not a string, or names no message of the batch.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchVerdict:
    """Which messages of a batch failed: ``failed`` ids, or every one when ``whole``."""

    failed: frozenset[str] = frozenset()
    whole: bool = False

    def to_delete(self, message_ids: Collection[str]) -> list[str]:
        """The messages to delete from the queue, in batch order."""
        if self.whole:
            return []
        return [m for m in message_ids if m not in self.failed]


WHOLE_BATCH_FAILED = BatchVerdict(whole=True)


def partial_batch_verdict(payload: bytes, message_ids: Collection[str]) -> BatchVerdict:
    """Read the response of a successful invoke of a batch of ``message_ids``."""
    if not payload.strip():
        return BatchVerdict()
    try:
        response = json.loads(payload)
    except ValueError:
        return WHOLE_BATCH_FAILED
    if response is None:
        return BatchVerdict()
    if not isinstance(response, dict):
        return WHOLE_BATCH_FAILED
    items = response.get("batchItemFailures")
    if items is None:
        return BatchVerdict()
    if not isinstance(items, list):
        return WHOLE_BATCH_FAILED
    failed: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return WHOLE_BATCH_FAILED
        failed.add(identifier)
    return BatchVerdict(frozenset(failed))
