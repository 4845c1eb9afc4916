"""The pure decisions of SQS pollers: when a batch goes out, how many pollers run, back-off,
cutting a batch to the payload limit, and the ReportBatchItemFailures verdict."""

from __future__ import annotations

import json

import pytest

from strato.event_sources.batch_response import partial_batch_verdict
from strato.event_sources.batching import (
    BACKOFF_MAX_S,
    LONG_POLL_S,
    ReceivePlan,
    backoff_s,
    desired_pollers,
    next_receive,
    split_by_size,
)

IDS = ["m1", "m2", "m3"]


@pytest.mark.parametrize(("batch_size", "window", "gathered", "elapsed", "plan"), [
    # An empty batch always long-polls (its window starts with its first message).
    (10, 0, 0, 0.0, ReceivePlan(10, LONG_POLL_S)),
    (3, 5, 0, 0.0, ReceivePlan(3, LONG_POLL_S)),
    (100, 5, 0, 0.0, ReceivePlan(10, LONG_POLL_S)),
    # Window 0: whatever one receive gave goes out at once.
    (10, 0, 1, 0.0, None),
    (10, 0, 10, 0.0, None),
    # A full batch goes out, whatever the window.
    (10, 5, 10, 0.1, None),
    (25, 5, 25, 0.1, None),
    # Within the window: receive the rest, waiting no longer than the window has left.
    (25, 5, 10, 1.0, ReceivePlan(10, 4.0)),
    (25, 5, 20, 1.0, ReceivePlan(5, 4.0)),
    (100, 60, 10, 10.0, ReceivePlan(10, LONG_POLL_S)),
    # The window has passed: out it goes, however few.
    (25, 5, 3, 5.0, None),
    (25, 5, 3, 9.0, None),
])
def test_batch_goes_out_when_full_when_the_window_ends_or_at_once(
        batch_size: int, window: float, gathered: int, elapsed: float, plan: ReceivePlan | None) -> None:
    assert next_receive(batch_size, window, gathered, elapsed) == plan


def test_pollers_scale_with_the_backlog() -> None:
    assert desired_pollers(1, 5, gathered=10, batch_size=10) == 2
    assert desired_pollers(5, 5, gathered=10, batch_size=10) == 5
    assert desired_pollers(3, 5, gathered=4, batch_size=10) == 3
    assert desired_pollers(3, 5, gathered=0, batch_size=10) == 2
    assert desired_pollers(1, 5, gathered=0, batch_size=10) == 1
    assert desired_pollers(7, 5, gathered=4, batch_size=10) == 5


def test_backoff_doubles_up_to_a_cap() -> None:
    waits = [backoff_s(n) for n in range(1, 12)]
    assert waits[0] == pytest.approx(0.1)
    assert waits[1] == pytest.approx(0.2)
    assert all(b >= a for a, b in zip(waits, waits[1:], strict=False))
    assert waits[-1] == BACKOFF_MAX_S
    assert backoff_s(100_000) == BACKOFF_MAX_S


def test_batches_are_cut_to_the_payload_limit() -> None:
    assert split_by_size([], 10) == []
    assert split_by_size([3, 3, 3], 10) == [range(0, 3)]
    assert split_by_size([4, 4, 4], 10) == [range(0, 2), range(2, 3)]
    assert split_by_size([12, 1], 10) == [range(0, 1), range(1, 2)]
    assert split_by_size([10, 10], 10) == [range(0, 1), range(1, 2)]


def verdict(response: object) -> list[str]:
    payload = response if isinstance(response, bytes) else json.dumps(response).encode()
    return partial_batch_verdict(payload, IDS).to_delete(IDS)


@pytest.mark.parametrize("response", [
    {"batchItemFailures": []},
    {"batchItemFailures": None},
    {},
    None,
    b"",
    {"somethingElse": 1},
])
def test_empty_or_null_responses_mean_the_whole_batch_succeeded(response: object) -> None:
    assert verdict(response) == IDS


def test_named_items_are_the_only_failures() -> None:
    assert verdict({"batchItemFailures": [{"itemIdentifier": "m2"}]}) == ["m1", "m3"]
    assert verdict({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}) == ["m2"]
    assert verdict({"batchItemFailures": [{"itemIdentifier": i} for i in IDS]}) == []


@pytest.mark.parametrize("response", [
    b"{not json",
    "a string",
    [1, 2],
    {"batchItemFailures": "m1"},
    {"batchItemFailures": [{"itemIdentifier": "unknown"}]},
    {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": None}]},
    {"batchItemFailures": [{"itemIdentifier": 1}]},
    {"batchItemFailures": [{"itemId": "m1"}]},
    {"batchItemFailures": ["m1"]},
    {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "nope"}]},
])
def test_malformed_responses_fail_the_whole_batch(response: object) -> None:
    assert verdict(response) == []
