"""The concurrency window of a function's asynchronous queue."""

from __future__ import annotations

from strato.async_invoke.scaling import MIN_WINDOW, ConcurrencyWindow


def _run(window: ConcurrencyWindow, duration_s: float, rounds: int, *, waiting: bool = True) -> None:
    for _ in range(rounds):
        for _ in range(window.size):
            window.started()
        for _ in range(window.in_flight):
            window.finished(duration_s, waiting=waiting)


def test_a_fast_function_keeps_a_small_window() -> None:
    window = ConcurrencyWindow(1000)
    _run(window, 0.0003, 50)
    assert window.size <= MIN_WINDOW + 1


def test_a_slow_function_is_scaled_up_gradually() -> None:
    window = ConcurrencyWindow(1000)
    assert window.size == MIN_WINDOW
    _run(window, 1.0, 1)
    assert window.size == 2 * MIN_WINDOW  # one slot per completed invocation: it doubles
    _run(window, 1.0, 10)
    assert window.size == window.target() == MIN_WINDOW + 500


def test_the_window_grows_only_while_events_wait() -> None:
    window = ConcurrencyWindow(1000)
    _run(window, 1.0, 3, waiting=False)
    assert window.size == MIN_WINDOW


def test_the_limit_caps_the_window_and_a_throttle_halves_it() -> None:
    window = ConcurrencyWindow(10)
    _run(window, 1.0, 5)
    assert window.size == 10
    window.started()
    window.throttled()
    assert window.size == 5 and window.in_flight == 0
    window.set_limit(2)
    assert window.size == 2 and window.free == 2


def test_the_window_shrinks_when_invocations_get_faster() -> None:
    window = ConcurrencyWindow(1000)
    _run(window, 0.1, 6)
    grown = window.size
    _run(window, 0.0001, 60)
    assert window.size < grown and window.size <= MIN_WINDOW + 1
