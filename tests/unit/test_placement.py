"""The pool's placement decision (``scheduler.placement``), exhaustively."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from strato.scheduler.placement import Source, expired, pick_warm, place


@dataclass(frozen=True)
class Env:
    name: str
    idle_since: float


def idle(count: int, prefix: str) -> list[Env]:
    """``count`` environments in the order they became idle (as the pool keeps them)."""
    return [Env(f"{prefix}{i}", float(i)) for i in range(count)]


@pytest.mark.parametrize(("provisioned", "on_demand"), list(itertools.product(range(4), repeat=2)))
def test_provisioned_then_on_demand_then_a_cold_start(provisioned: int, on_demand: int) -> None:
    source = place(idle(provisioned, "p"), idle(on_demand, "o"))
    if provisioned:
        assert source is Source.PROVISIONED
    elif on_demand:
        assert source is Source.ON_DEMAND
    else:
        assert source is Source.COLD_START


@pytest.mark.parametrize("count", range(1, 6))
def test_the_warm_pick_is_the_most_recently_used(count: int) -> None:
    envs = idle(count, "e")
    chosen = envs[pick_warm(envs)]
    assert chosen.idle_since == max(env.idle_since for env in envs)


def test_nothing_to_pick_is_an_error() -> None:
    with pytest.raises(ValueError, match="no idle environment"):
        pick_warm([])


@pytest.mark.parametrize(("keep_alive", "now", "gone"), [
    (10.0, 5.0, []),            # nobody idle long enough
    (10.0, 10.0, ["e0"]),       # exactly the keep-alive: expired
    (10.0, 11.5, ["e0", "e1"]),
    (10.0, 100.0, ["e0", "e1", "e2"]),
    (0.0, 2.0, ["e0", "e1", "e2"]),
])
def test_expired_are_those_idle_past_the_keep_alive(keep_alive: float, now: float,
                                                     gone: list[str]) -> None:
    assert [env.name for env in expired(idle(3, "e"), now, keep_alive)] == gone


def test_nothing_idle_expires_nothing() -> None:
    assert expired([], 100.0, 1.0) == []
