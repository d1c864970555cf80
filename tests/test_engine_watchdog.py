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


def test_engine_watchdog_sleeps_through_steps_with_long_limits():
    """Steps of a few milliseconds with limits of minutes (the usual case) must not
    wake the watchdog thread each: that was a thread switch per step."""
    watchdog = Watchdog()
    watchdog.disarm(watchdog.arm(300.0))  # starts its thread
    time.sleep(0.05)
    before = watchdog.wakeups
    started = time.monotonic()
    steps = 0
    while time.monotonic() - started < 1.5 * LOOK_EVERY:
        ticket = watchdog.arm(300.0)
        watchdog.disarm(ticket)  # a no-op step: it ends before the watchdog could run
        time.sleep(0.001)  # recording it waits on I/O: the watchdog thread may run
        steps += 1
    assert steps > 200
    assert watchdog.wakeups - before <= 4  # its own look every LOOK_EVERY, no more


def test_engine_watchdog_wakes_for_a_short_limit_armed_behind_long_ones():
    watchdog = Watchdog()
    long = watchdog.arm(300.0)
    time.sleep(0.05)  # the watchdog now sleeps until its own next look, a second away
    started = time.monotonic()
    short = watchdog.arm(0.1)
    with pytest.raises(StepTimeout):
        while time.monotonic() - started < 3:
            time.sleep(0.005)
    fired_after = time.monotonic() - started
    assert watchdog.disarm(short) is True
    watchdog.disarm(long)
    assert fired_after < 0.6, fired_after
