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
        self._lock = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> _Ticket:
        ticket = _Ticket(time.monotonic() + seconds, next(self._seq), threading.get_ident())
        with self._lock:
            heapq.heappush(self._heap, ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="overture-watchdog",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0] is ticket:
                self._lock.notify()
        return ticket

    def disarm(self, ticket: _Ticket) -> bool:
        """Stop watching; True when the limit had fired. An interrupt sent but not yet
        raised is taken back, or it would surface later, outside any handler."""
        with self._lock:
            ticket.done = True
            # Steps mostly end in the order they started: drop ended tickets from the
            # top now, or they pile up until the earliest deadline wakes the watchdog.
            while self._heap and self._heap[0].done:
                heapq.heappop(self._heap)
            if ticket.fired:
                _raise_in(ticket.thread_id, None)
            return ticket.fired

    def _watch(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait(timeout=60)
                    continue
                wait = self._heap[0].deadline - time.monotonic()
                if wait > 0:
                    self._lock.wait(timeout=wait)
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
