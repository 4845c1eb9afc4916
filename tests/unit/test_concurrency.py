"""Lambda's concurrency model (``scheduler/concurrency.py``): leases, reservations, burst
scaling and the decisions of provisioned concurrency, with a fake clock."""

from __future__ import annotations

import pytest

from strato.domain.errors import TooManyRequestsException
from strato.scheduler.concurrency import (
    ConcurrencyError,
    ConcurrencyLimits,
    ProvisionedState,
    provisioned_status,
    provisioning_backoff,
)

RESERVED = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT = "ConcurrentInvocationLimitExceeded"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def throttle_reason(limits: ConcurrencyLimits, name: str) -> str:
    with pytest.raises(TooManyRequestsException) as caught:
        limits.acquire(name)
    assert caught.value.status == 429
    assert caught.value.message == "Rate Exceeded."
    return caught.value.fields["Reason"]


def test_unreserved_functions_share_the_account_limit() -> None:
    limits = ConcurrencyLimits(3)
    limits.acquire("a")
    limits.acquire("b")
    limits.acquire("a")
    assert (limits.in_flight("a"), limits.in_flight("b"), limits.total_in_flight()) == (2, 1, 3)
    assert throttle_reason(limits, "c") == ACCOUNT
    limits.release("b")
    limits.acquire("c")
    assert limits.in_flight("b") == 0 and limits.in_flight("c") == 1


def test_reservations_shrink_the_unreserved_pool() -> None:
    limits = ConcurrencyLimits(10)
    limits.set_reserved("r", 4)
    limits.set_reserved("s", 2)
    assert limits.unreserved_limit() == 4
    assert limits.reserved("r") == 4 and limits.reserved("other") is None
    for _ in range(4):
        limits.acquire("u")
    assert throttle_reason(limits, "v") == ACCOUNT
    # The reservation is the function's own: the full unreserved pool does not touch it.
    for _ in range(4):
        limits.acquire("r")
    assert throttle_reason(limits, "r") == RESERVED
    limits.set_reserved("s", None)
    assert limits.unreserved_limit() == 6
    limits.acquire("v")


def test_reservation_zero_disables_the_function() -> None:
    limits = ConcurrencyLimits(1000)
    limits.set_reserved("off", 0)
    assert throttle_reason(limits, "off") == RESERVED
    assert limits.in_flight("off") == 0
    assert limits.unreserved_limit() == 1000


def test_release_restores_the_lease() -> None:
    limits = ConcurrencyLimits(1000)
    limits.set_reserved("one", 1)
    limits.acquire("one")
    assert throttle_reason(limits, "one") == RESERVED
    limits.release("one")
    assert limits.in_flight("one") == 0
    limits.acquire("one")


def test_releasing_twice_is_a_bug() -> None:
    limits = ConcurrencyLimits(5)
    limits.acquire("f")
    limits.release("f")
    with pytest.raises(ConcurrencyError):
        limits.release("f")


def test_leases_move_with_the_function_when_its_reservation_changes() -> None:
    limits = ConcurrencyLimits(4)
    limits.acquire("f")
    limits.acquire("f")
    limits.set_reserved("f", 2)  # its two leases leave the unreserved pool (now 2)
    limits.acquire("g")
    limits.acquire("g")
    assert throttle_reason(limits, "g") == ACCOUNT
    assert throttle_reason(limits, "f") == RESERVED
    limits.set_reserved("f", 1)  # lowered below what is in flight: throttled until drained
    limits.release("f")
    assert throttle_reason(limits, "f") == RESERVED
    limits.release("f")
    limits.acquire("f")
    limits.release("f")
    limits.release("g")
    limits.set_reserved("f", None)
    assert limits.unreserved_limit() == 4
    for _ in range(3):
        limits.acquire("f")
    assert throttle_reason(limits, "h") == ACCOUNT


def test_reservations_cannot_exceed_the_account() -> None:
    limits = ConcurrencyLimits(10)
    limits.set_reserved("a", 6)
    with pytest.raises(ConcurrencyError):
        limits.set_reserved("b", 5)
    with pytest.raises(ConcurrencyError):
        limits.set_reserved("b", -1)
    limits.set_reserved("a", 10)  # replacing its own reservation is measured without it
    assert limits.unreserved_limit() == 0
    assert throttle_reason(limits, "b") == ACCOUNT


def test_forget_drops_the_reservation_and_keeps_leases_valid() -> None:
    limits = ConcurrencyLimits(10)
    limits.set_reserved("gone", 3)
    limits.acquire("gone")
    limits.forget("gone")
    assert limits.reserved("gone") is None and limits.unreserved_limit() == 10
    limits.release("gone")
    assert limits.total_in_flight() == 0


def test_burst_bucket_empties_then_refills_continuously() -> None:
    clock = FakeClock()
    limits = ConcurrencyLimits(10_000, clock=clock)
    assert all(limits.take_scaling_token("f") for _ in range(1000))
    assert not limits.take_scaling_token("f")
    assert limits.take_scaling_token("other")  # one bucket per function
    clock.now += 5.0
    granted = 0
    while limits.take_scaling_token("f"):
        granted += 1
    assert granted == 500
    clock.now += 3600.0  # no accumulation beyond the capacity
    assert limits.scaling_tokens("f") == 1000
    granted = 0
    while limits.take_scaling_token("f"):
        granted += 1
    assert granted == 1000


def test_burst_capacity_and_window_are_configurable() -> None:
    clock = FakeClock()
    limits = ConcurrencyLimits(100, burst=2, burst_window_s=1.0, clock=clock)
    assert limits.take_scaling_token("f") and limits.take_scaling_token("f")
    assert not limits.take_scaling_token("f")
    clock.now += 0.25
    assert not limits.take_scaling_token("f")  # half a token
    clock.now += 0.25
    assert limits.take_scaling_token("f")
    assert not limits.take_scaling_token("f")


def test_scaling_tokens_are_independent_of_leases() -> None:
    clock = FakeClock()
    limits = ConcurrencyLimits(1, burst=5, clock=clock)
    limits.acquire("f")
    assert limits.take_scaling_token("f")
    assert throttle_reason(limits, "f") == ACCOUNT


# provisioned concurrency decisions ------------------------------------------------------


def test_provisioned_status() -> None:
    assert provisioned_status(2, 0, 0, None).status is ProvisionedState.IN_PROGRESS
    ready = provisioned_status(2, 2, 1, None)
    assert (ready.requested, ready.allocated, ready.available, ready.status, ready.reason) == (
        2, 2, 1, ProvisionedState.READY, None)
    failed = provisioned_status(2, 1, 1, "Runtime.ImportModuleError")
    assert failed.status == "FAILED" and failed.reason == "Runtime.ImportModuleError"
    assert provisioned_status(1, 1, 1, "stale failure").status is ProvisionedState.READY


def test_provisioning_backoff_doubles_up_to_a_cap() -> None:
    assert provisioning_backoff(0) == 0.0
    assert [provisioning_backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert provisioning_backoff(10) == 60.0
    assert provisioning_backoff(10_000) == 60.0
    assert provisioning_backoff(3, base_s=0.5, cap_s=1.0) == 1.0
