"""Lambda's concurrency model as pure bookkeeping: leases, reservations, burst scaling.

- **Account limit**: at most ``account_limit`` invocations in flight in the account.
- **Reserved concurrency**: a function with a reservation runs at most that many invocations
  at once and nobody else may use them; 0 disables the function. Functions without one share
  the *unreserved pool* = account limit − sum of reservations.
- **Burst scaling**: each function may create at most ``burst`` new execution environments
  per ``burst_window_s`` seconds, refilled continuously (a token bucket that never holds more
  than ``burst``). Only a cold start takes a token; a warm invocation never does.

https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html and
https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html.

No I/O, no locks: the pool calls this on the event loop's thread, and ``acquire`` /
``release`` are a few dictionary operations because they run on every invocation.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from strato.domain.errors import TooManyRequestsException
from strato.errors import StratoError

#: ``Reason`` of the 429 when a function's reserved concurrency is exhausted.
RESERVED_LIMIT_EXCEEDED = "ReservedFunctionConcurrentInvocationLimitExceeded"
#: ``Reason`` of the 429 when the account's (unreserved) concurrency is exhausted.
ACCOUNT_LIMIT_EXCEEDED = "ConcurrentInvocationLimitExceeded"
_THROTTLED = "Rate Exceeded."


class ConcurrencyError(StratoError):
    """A caller broke the bookkeeping's contract: a reservation beyond the account's limit,
    or a lease returned that was never taken."""


def throttled(reason: str) -> TooManyRequestsException:
    """The 429 Lambda answers when an invocation cannot get concurrency."""
    return TooManyRequestsException(_THROTTLED, Reason=reason)


class _Bucket:
    """One function's scaling tokens at ``stamp`` (clock seconds)."""

    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class ConcurrencyLimits:
    """Concurrency leases of one account. See the module docstring.

    A lease is taken by ``acquire`` for every invocation before it reaches an environment and
    returned by ``release`` exactly once when the invocation has finished, whatever the
    outcome. ``clock`` (monotonic seconds) drives the burst buckets; tests inject a fake.
    """

    def __init__(
        self,
        account_limit: int,
        *,
        burst: int = 1000,
        burst_window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if account_limit < 0 or burst < 0 or burst_window_s <= 0:
            raise ConcurrencyError("limits must be positive")
        self.account_limit = account_limit
        self.burst = burst
        self._refill_per_s = burst / burst_window_s
        self._clock = clock
        self._reserved: dict[str, int] = {}
        self._reserved_total = 0
        self._unreserved_limit = account_limit
        self._in_flight: dict[str, int] = {}
        #: Leases held by functions without a reservation (they share the unreserved pool).
        self._unreserved_in_flight = 0
        self._buckets: dict[str, _Bucket] = {}

    # reservations ---------------------------------------------------------------------
    def set_reserved(self, function_name: str, value: int | None) -> None:
        """Reserve ``value`` concurrent executions for the function (0 disables it), or
        remove its reservation with None. Leases in flight move with the function between
        its reservation and the unreserved pool; a reservation lowered below them throttles
        new invocations until enough have finished. Raises ConcurrencyError for a negative
        value or when the reservations would exceed the account's limit."""
        previous = self._reserved.get(function_name)
        if value is not None and value < 0:
            raise ConcurrencyError(f"reserved concurrency must be 0 or more, not {value}")
        total = self._reserved_total - (previous or 0) + (value or 0)
        if total > self.account_limit:
            raise ConcurrencyError(
                f"reservations ({total}) would exceed the account's limit ({self.account_limit})")
        held = self._in_flight.get(function_name, 0)
        if previous is None and value is not None:
            self._unreserved_in_flight -= held
        elif previous is not None and value is None:
            self._unreserved_in_flight += held
        if value is None:
            self._reserved.pop(function_name, None)
        else:
            self._reserved[function_name] = value
        self._reserved_total = total
        self._unreserved_limit = self.account_limit - total

    def reserved(self, function_name: str) -> int | None:
        """The function's reservation, or None when it shares the unreserved pool."""
        return self._reserved.get(function_name)

    def unreserved_limit(self) -> int:
        """The size of the pool shared by functions without a reservation
        (``UnreservedConcurrentExecutions`` of GetAccountSettings)."""
        return self._unreserved_limit

    # leases ---------------------------------------------------------------------------
    def acquire(self, function_name: str) -> None:
        """Take a lease for one invocation of the function, or raise
        TooManyRequestsException: Reason ``ReservedFunctionConcurrentInvocationLimitExceeded``
        when the function's reservation (0 included) is full, ``ConcurrentInvocationLimitExceeded``
        when the unreserved pool is full. The caller must ``release`` it exactly once."""
        held = self._in_flight.get(function_name, 0)
        reserved = self._reserved.get(function_name)
        if reserved is not None:
            if held >= reserved:
                raise throttled(RESERVED_LIMIT_EXCEEDED)
        elif self._unreserved_in_flight >= self._unreserved_limit:
            raise throttled(ACCOUNT_LIMIT_EXCEEDED)
        else:
            self._unreserved_in_flight += 1
        self._in_flight[function_name] = held + 1

    def release(self, function_name: str) -> None:
        """Return a lease taken by ``acquire``. Raises ConcurrencyError when the function
        holds none (a lease returned twice)."""
        held = self._in_flight.get(function_name, 0)
        if held <= 0:
            raise ConcurrencyError(f"{function_name} holds no concurrency lease")
        if held == 1:
            del self._in_flight[function_name]
        else:
            self._in_flight[function_name] = held - 1
        if function_name not in self._reserved:
            self._unreserved_in_flight -= 1

    def in_flight(self, function_name: str) -> int:
        """Leases the function holds now."""
        return self._in_flight.get(function_name, 0)

    def total_in_flight(self) -> int:
        """Leases held in the whole account."""
        return sum(self._in_flight.values())

    # burst scaling --------------------------------------------------------------------
    def take_scaling_token(self, function_name: str) -> bool:
        """Take the right to create one new execution environment for the function; False
        when its burst bucket is empty (the caller throttles). Consulted only for a cold
        start, never for a warm invocation."""
        now = self._clock()
        bucket = self._buckets.get(function_name)
        if bucket is None:
            bucket = self._buckets[function_name] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self._refill_per_s)
            bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def scaling_tokens(self, function_name: str) -> float:
        """Tokens the function's bucket holds now (for status and tests)."""
        bucket = self._buckets.get(function_name)
        if bucket is None:
            return float(self.burst)
        elapsed = max(0.0, self._clock() - bucket.stamp)
        return min(float(self.burst), bucket.tokens + elapsed * self._refill_per_s)

    def forget(self, function_name: str) -> None:
        """Drop a deleted function's reservation and burst bucket. Leases in flight stay
        valid and are returned as usual."""
        if function_name in self._reserved:
            self.set_reserved(function_name, None)
        self._buckets.pop(function_name, None)


# provisioned concurrency ---------------------------------------------------------------
class ProvisionedState(enum.StrEnum):
    """``Status`` of a provisioned concurrency configuration, as AWS spells it."""

    IN_PROGRESS = "IN_PROGRESS"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ProvisionedStatus:
    """Where a provisioned concurrency configuration stands.

    ``allocated``: environments initialised and alive; ``available``: those of them not
    running an invocation now; ``reason``: why allocation failed (only when FAILED)."""

    requested: int
    allocated: int
    available: int
    status: ProvisionedState
    reason: str | None = None


def provisioned_status(requested: int, allocated: int, available: int,
                       failure: str | None) -> ProvisionedStatus:
    """READY once every requested environment is allocated; before that FAILED when an
    environment's INIT failed (``failure``), else IN_PROGRESS."""
    if allocated >= requested:
        return ProvisionedStatus(requested, allocated, available, ProvisionedState.READY)
    if failure is not None:
        return ProvisionedStatus(requested, allocated, available, ProvisionedState.FAILED, failure)
    return ProvisionedStatus(requested, allocated, available, ProvisionedState.IN_PROGRESS)


def provisioning_backoff(failures: int, *, base_s: float = 1.0, cap_s: float = 60.0) -> float:
    """Seconds to wait before starting provisioned environments again after ``failures``
    consecutive INIT failures: 0 with none, then doubling from ``base_s`` up to ``cap_s``."""
    if failures <= 0:
        return 0.0
    return min(cap_s, base_s * 2.0 ** min(failures - 1, 32))
