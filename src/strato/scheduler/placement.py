"""Pure decisions of the environment pool: where an invocation runs, which idle environments
are reaped. No I/O here; the pool applies the decisions."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol, TypeVar


class IdleCandidate(Protocol):
    @property
    def idle_since(self) -> float: ...


T = TypeVar("T", bound=IdleCandidate)


class Source(enum.Enum):
    """Where an invocation of a version runs."""

    #: A provisioned environment of the version, idle.
    PROVISIONED = "provisioned"
    #: An on-demand environment of the version, idle (a warm start).
    ON_DEMAND = "on-demand"
    #: A new environment (a cold start: the pool needs a burst scaling token for it).
    COLD_START = "cold start"


def place(provisioned_idle: Sequence[T], on_demand_idle: Sequence[T]) -> Source:
    """Where the next invocation of a version runs, given its idle provisioned and on-demand
    environments: provisioned environments first (they are paid for and never reaped), then
    on-demand ones, then a cold start. Within the list chosen, ``pick_warm`` says which."""
    if provisioned_idle:
        return Source.PROVISIONED
    if on_demand_idle:
        return Source.ON_DEMAND
    return Source.COLD_START


def pick_warm(idle: Sequence[T]) -> int:
    """The index of the most recently used environment of ``idle`` (LIFO), so that the others
    stay idle long enough to be reaped when load drops. Raises ValueError if ``idle`` is
    empty.

    ``idle`` must be in the order its environments became idle (as the pool keeps it): the
    last one is then the most recently used, found without a scan (this runs on every warm
    invocation)."""
    if not idle:
        raise ValueError("no idle environment to pick")
    return len(idle) - 1


def expired(idle: Sequence[T], now: float, keep_alive_s: float) -> list[T]:
    """Idle environments whose keep-alive has run out."""
    return [env for env in idle if now - env.idle_since >= keep_alive_s]


#: Seconds kept between the end of an invocation's timeout and the expiry of what its
#: environment was given when it started (role credentials): clocks and scheduling slack.
WORN_OUT_MARGIN_S = 1.0


def worn_out(spawned_at: float, now: float, timeout_s: float, max_age_s: float | None) -> bool:
    """Whether an environment started at ``spawned_at`` may not take an invocation of up to
    ``timeout_s`` seconds at ``now``: it could still be running when the environment reaches
    ``max_age_s`` (None: environments never wear out)."""
    if max_age_s is None:
        return False
    return now + timeout_s + WORN_OUT_MARGIN_S >= spawned_at + max_age_s
