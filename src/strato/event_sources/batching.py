"""Pure decisions of an SQS poller: when a batch goes out, how many pollers run, how long to
back off, how a batch is cut to fit the invoke payload limit.

Lambda's rules (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html):
a batch is invoked when it holds ``BatchSize`` messages, when ``MaximumBatchingWindowInSeconds``
has passed since its first message arrived, or at once when the window is 0; one
ReceiveMessage returns at most 10 messages; a batch never exceeds the 6 MB payload of a
synchronous invoke. Lambda scales an SQS mapping up while the queue has a backlog and down when
it drains, up to ``ScalingConfig.MaximumConcurrency``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: At most this many messages per ReceiveMessage (SQS's limit).
RECEIVE_MAX = 10
#: Long-poll wait of a ReceiveMessage that starts a batch (SQS's maximum).
LONG_POLL_S = 20.0
#: Concurrent batches of a mapping without ScalingConfig.
DEFAULT_MAXIMUM_CONCURRENCY = 5
#: Back-off after a throttle, an unavailable function or queue: doubling, capped.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 10.0


@dataclass(frozen=True)
class ReceivePlan:
    """One ReceiveMessage to make: up to ``max_messages``, waiting up to ``wait_s``."""

    max_messages: int
    wait_s: float


def next_receive(batch_size: int, window_s: float, gathered: int,
                 elapsed_s: float) -> ReceivePlan | None:
    """What to do with a batch of ``gathered`` messages whose first arrived ``elapsed_s``
    ago: None to invoke it now, else the next receive. An empty batch waits on a long poll
    (its window starts with its first message)."""
    if gathered == 0:
        return ReceivePlan(min(RECEIVE_MAX, batch_size), LONG_POLL_S)
    if gathered >= batch_size or window_s <= 0 or elapsed_s >= window_s:
        return None
    return ReceivePlan(min(RECEIVE_MAX, batch_size - gathered), min(LONG_POLL_S, window_s - elapsed_s))


def desired_pollers(current: int, maximum: int, *, gathered: int, batch_size: int) -> int:
    """Pollers a mapping should have after one of them gathered ``gathered`` messages: one
    more after a full batch (there is a backlog), one fewer after an empty long poll (the
    queue is drained), never fewer than one nor more than ``maximum``."""
    if gathered >= batch_size:
        return min(maximum, current + 1)
    if gathered == 0:
        return max(1, current - 1)
    return min(maximum, current)


def backoff_s(failures: int) -> float:
    """The wait after ``failures`` (>= 1) consecutive failures."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** min(max(0, failures - 1), 32))


def split_by_size(sizes: Sequence[int], limit: int) -> list[range]:
    """Cut items of ``sizes`` bytes, in order, into runs whose total stays within ``limit``
    (an item larger than ``limit`` alone makes a run, which its invoke then refuses)."""
    runs: list[range] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and total + size > limit:
            runs.append(range(start, index))
            start, total = index, 0
        total += size
    if start < len(sizes):
        runs.append(range(start, len(sizes)))
    return runs
