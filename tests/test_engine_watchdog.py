"""The watchdog that enforces step time limits in a worker process."""

from __future__ import annotations

import time

import pytest

from overture.orchestration.watchdog import LOOK_EVERY, StepTimeout, Watchdog, time_limit


def test_engine_watchdog_interrupts_a_step_over_its_limit():
    started = time.monotonic()
    with pytest.raises(StepTimeout), time_limit(0.2):
        while time.monotonic() - started < 10:
            time.sleep(0.01)
    assert time.monotonic() - started < 5


def test_engine_watchdog_forgets_steps_that_ended():
    """A worker runs thousands of steps a minute, each with a limit of minutes: the
    ones that ended must not pile up until the first limit would have passed."""
    watchdog = Watchdog()
    for _ in range(5000):
        ticket = watchdog.arm(300.0)
        assert watchdog.disarm(ticket) is False
    time.sleep(2.5 * LOOK_EVERY)
    assert len(watchdog._heap) <= 1


def test_engine_watchdog_still_fires_after_racing_interruptions():
    """Limits that fire just as their steps end (interruptions landing anywhere, even
    inside the watchdog's own calls) leave it watching: the next limit still fires."""
    for i in range(300):
        try:
            with time_limit(0.0005):
                end = time.perf_counter() + 0.0004 + (i % 5) * 0.0001
                while time.perf_counter() < end:
                    pass
        except StepTimeout:
            pass
    started = time.monotonic()
    with pytest.raises(StepTimeout), time_limit(0.2):
        while time.monotonic() - started < 10:
            time.sleep(0.01)
    assert time.monotonic() - started < 3
