"""Pure decisions of the environment pool: which warm environment serves, which idle ones
are reaped. No I/O here; the pool applies the decisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class IdleCandidate(Protocol):
    @property
    def idle_since(self) -> float: ...


T = TypeVar("T", bound=IdleCandidate)


def pick_warm(idle: Sequence[T]) -> T | None:
    """The most recently used idle environment (LIFO), so that the others stay idle long
    enough to be reaped when load drops. None when nothing is idle."""
    if not idle:
        return None
    return max(idle, key=lambda env: env.idle_since)


def expired(idle: Sequence[T], now: float, keep_alive_s: float) -> list[T]:
    """Idle environments whose keep-alive has run out."""
    return [env for env in idle if now - env.idle_since >= keep_alive_s]
