"""Per-step time limits: one watchdog thread per process interrupts a step that
overruns, by raising StepTimeout in the thread running it (as Dramatiq's time limit
does). A thread per step would cost more than a no-op step itself.

    with time_limit(30.0):
        run_the_step()
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

LOOK_EVERY = 1.0  # seconds


class StepTimeout(BaseException):
    """Raised inside a step's thread when it overruns (BaseException: not swallowed)."""


@dataclass(order=True)
class _Ticket:
    deadline: float
    seq: int
    thread_id: int = field(compare=False)
    done: bool = field(default=False, compare=False)
    fired: bool = field(default=False, compare=False)


class Watchdog:
    def __init__(self) -> None:
        self._heap: list[_Ticket] = []
        # A plain lock, entered by C code only: an interruption raised in a step's
        # thread may land anywhere in Python code, and one landing inside a Python
        # __enter__ (Condition's) would leave the lock held for good.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = 0.0  # when the watchdog, asleep, looks again by itself
        self.wakeups = 0

    def arm(self, seconds: float) -> _Ticket:
        ticket = _Ticket(time.monotonic() + seconds, next(self._seq), threading.get_ident())
        with self._lock:
            heapq.heappush(self._heap, ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="overture-watchdog",
                                                daemon=True)
                self._thread.start()
            elif ticket.deadline < self._wakes_at:
                # Only a limit due before the watchdog's own next look needs waking
                # it: steps' limits are usually minutes, and a wake-up per step
                # would cost a thread switch per step.
                self._wake.notify()
        return ticket

    def disarm(self, ticket: _Ticket) -> bool:
        """Stop watching; True when the limit had fired. An interrupt sent but not yet
        raised is taken back, or it would surface later, outside any handler."""
        with self._lock:
            ticket.done = True
            if ticket.fired:
                _raise_in(ticket.thread_id, None)
            return ticket.fired

    def _watch(self) -> None:
        # Wakes at least every LOOK_EVERY seconds: ended tickets leave the heap then
        # (steps end in about the order they start, so they gather at its top), and a
        # wake-up lost to an interruption landing inside notify() costs that long.
        # Waking for every step instead would cost a thread switch per step.
        with self._lock:
            while True:
                self.wakeups += 1
                while self._heap and self._heap[0].done:
                    heapq.heappop(self._heap)
                now = time.monotonic()
                wait = self._heap[0].deadline - now if self._heap else LOOK_EVERY
                if wait > 0:
                    self._wakes_at = now + min(wait, LOOK_EVERY)
                    self._wake.wait(timeout=min(wait, LOOK_EVERY))
                    continue
                ticket = heapq.heappop(self._heap)
                ticket.fired = True
                _raise_in(ticket.thread_id, StepTimeout)


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc) if exc else None)


_watchdog = Watchdog()


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise StepTimeout in this thread if the block runs longer than `seconds`.
    Blocking C calls end when their own timeouts do."""
    ticket = _watchdog.arm(seconds)
    try:
        yield
    finally:
        _watchdog.disarm(ticket)
