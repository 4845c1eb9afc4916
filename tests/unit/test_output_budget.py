"""Byte accounting of an environment's output (``scheduler/output_budget.py``) and of log
groups' storage (``store/log_quota.py``)."""

from __future__ import annotations

import pytest

from strato.scheduler.output_budget import (
    INVOCATION_HEAD_BYTES,
    INVOCATION_TAIL_BYTES,
    Allowance,
    InvocationOutput,
    invocation_dropped_line,
)
from strato.store.log_quota import LOW_WATER, LogQuota


class TestAllowance:
    def test_keeps_lines_while_anything_is_left_then_counts_them(self) -> None:
        allowance = Allowance(10)
        assert allowance.take(6) and not allowance.exhausted
        assert allowance.take(6)  # the line that crosses the limit is kept whole
        assert allowance.exhausted
        assert not allowance.take(3) and not allowance.take(4)
        assert (allowance.spent, allowance.dropped) == (12, 7)

    def test_restart_reports_the_dropped_bytes_and_opens_a_new_period(self) -> None:
        allowance = Allowance(4)
        allowance.take(4)
        allowance.take(9)
        assert allowance.restart(100) == 9
        assert (allowance.limit, allowance.spent, allowance.dropped) == (100, 0, 0)
        assert allowance.restart(100) == 0

    def test_an_empty_allowance_keeps_nothing(self) -> None:
        allowance = Allowance(0)
        assert allowance.exhausted and not allowance.take(1)


def _output(head: int, tail: int, *sizes: int) -> tuple[list[str], int]:
    output = InvocationOutput(head, tail)
    for i, size in enumerate(sizes):
        output.add(i, str(i).encode(), size)
    lines, dropped = output.take()
    return [text for _, text in lines], dropped


@pytest.mark.parametrize(("sizes", "kept", "dropped"), [
    ((), [], 0),
    ((5, 5), ["0", "1"], 0),
    # Head full at 10: the rest goes to a tail of 6, whose oldest lines give way.
    ((5, 5, 3, 3, 3), ["0", "1", "3", "4"], 3),
    # A line too large for what is left of the head starts the tail; the head takes no more.
    ((5, 6, 1), ["0", "2"], 6),
    ((5, 4, 1, 1), ["0", "1", "2", "3"], 0),
    ((5, 4, 3, 3, 1), ["0", "1", "3", "4"], 3),
    # A line larger than the tail cannot be kept at all.
    ((10, 20), ["0"], 20),
    ((10, 20, 1), ["0", "2"], 20),
])
def test_invocation_output_keeps_head_and_tail(sizes: tuple[int, ...], kept: list[str],
                                               dropped: int) -> None:
    assert _output(10, 6, *sizes) == (kept, dropped)


def test_invocation_output_is_empty_and_whole_again_after_take() -> None:
    output = InvocationOutput(4, 2)
    for i in range(6):
        output.add(i, b"x", 2)
    assert output.take()[1] > 0
    assert output.take() == ([], 0)
    output.add(7, b"\xff", 4)  # the head is open again; bytes are decoded when kept
    assert output.take() == ([(7, "\ufffd")], 0)


def test_the_dropped_line_names_the_count_and_the_budget() -> None:
    assert invocation_dropped_line(123) == (
        f"[strato: 123 bytes of output dropped: an invocation keeps the first "
        f"{INVOCATION_HEAD_BYTES} and the last {INVOCATION_TAIL_BYTES} bytes of its output]")


class TestLogQuota:
    def test_within_the_quota_nothing_is_deleted(self) -> None:
        quota = LogQuota(100)
        quota.load("g", 60)
        quota.charge("g", 40)
        assert quota.excess("g") == 0 and quota.held("g") == 100

    def test_over_the_quota_the_excess_brings_it_down_to_the_low_water_mark(self) -> None:
        quota = LogQuota(100)
        quota.load("g", 90)
        quota.charge("g", 20)
        assert quota.excess("g") == 110 - int(100 * LOW_WATER)
        quota.credit("g", quota.excess("g"))
        assert quota.held("g") == 75 and quota.excess("g") == 0

    def test_groups_are_counted_apart_and_forgotten_on_request(self) -> None:
        quota = LogQuota(10)
        assert not quota.knows("a")
        quota.charge("a", 20)
        quota.charge("b", 5)
        assert quota.excess("a") > 0 and quota.excess("b") == 0
        quota.forget("a")
        assert not quota.knows("a") and quota.held("a") == 0

    def test_a_credit_never_goes_below_zero(self) -> None:
        quota = LogQuota(10)
        quota.charge("g", 3)
        quota.credit("g", 50)
        assert quota.held("g") == 0

    def test_a_quota_is_at_least_one_byte(self) -> None:
        with pytest.raises(ValueError):
            LogQuota(0)
