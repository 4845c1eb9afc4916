"""The engine's clocks: real, scaled (``--time-scale``) and virtual."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from strato.domain.clock import ScaledClock, SystemClock, VirtualClock
from strato.domain.clock_origin import engine_clock


def test_a_scaled_clock_runs_faster_than_the_real_one() -> None:
    clock = ScaledClock(100)
    start, real = clock.monotonic(), time.monotonic()
    time.sleep(0.05)  # the point is real time passing, which the scaled clock multiplies
    elapsed, real_elapsed = clock.monotonic() - start, time.monotonic() - real
    assert elapsed == pytest.approx(real_elapsed * 100, rel=0.05)


def test_a_scaled_clock_with_an_origin_goes_on_from_it() -> None:
    """Scaled time since an origin 10 real seconds ago is 1,000 s later at scale 100: a
    restarted server's clock never goes back to the wall clock."""
    origin = time.time() - 10
    clock = ScaledClock(100, origin)
    assert clock.now() == pytest.approx(origin + 10 * 100, abs=2)
    with pytest.raises(ValueError):
        ScaledClock(0)


def test_the_application_keeps_the_scaled_clocks_origin(tmp_path: Path) -> None:
    origin_file = tmp_path / "clock-origin.json"
    first = engine_clock(50, origin_file)
    assert isinstance(first, ScaledClock)
    stored = json.loads(origin_file.read_text())["origin"]
    second = engine_clock(50, origin_file)
    assert isinstance(second, ScaledClock) and second.origin == stored
    assert second.now() >= first.now() - 0.01  # the same time, up to wall/monotonic drift
    assert isinstance(engine_clock(1.0, tmp_path / "unused.json"), SystemClock)
    assert not (tmp_path / "unused.json").exists()


def test_a_virtual_clock_wakes_sleepers_as_it_advances() -> None:
    async def scenario() -> list[str]:
        clock, woken = VirtualClock(), []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woken.append(name)

        tasks = [asyncio.ensure_future(sleeper("late", 60)), asyncio.ensure_future(sleeper("soon", 1))]
        await asyncio.sleep(0)
        clock.advance(30)
        await asyncio.sleep(0)
        assert woken == ["soon"]
        clock.advance(30)
        await asyncio.gather(*tasks)
        return woken

    assert asyncio.run(scenario()) == ["soon", "late"]
