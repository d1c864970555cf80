"""A dependency that may be down (Redis, as rate-limit store or as broker), seen from
one process: an outage is logged once when it starts and once when it ends, not once
per request; a gauge is 1 while it lasts; and while it lasts callers skip the
dependency, but for one attempt per `retry_every` seconds that finds out whether it
is back. Recovery needs no restart: the first attempt that succeeds ends the outage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from overture.platform.logging import get_logger

log = get_logger(__name__)


class Outage:
    def __init__(self, name: str, *, retry_every: float, active: Gauge, errors: Counter,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.retry_every, self.clock = name, retry_every, clock
        self._active, self._errors = active, errors
        self._since: float | None = None
        self._next_attempt = 0.0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._since is not None

    def worth_trying(self) -> bool:
        """Whether to use the dependency now: always while it is up; during an outage
        once per `retry_every`, and then for one caller only."""
        if self._since is None:
            return True
        now = self.clock()
        with self._lock:
            if now < self._next_attempt:
                return False
            self._next_attempt = now + self.retry_every
            return True

    def failed(self, error: BaseException) -> None:
        self._errors.inc()
        now = self.clock()
        with self._lock:
            starting = self._since is None
            if starting:
                self._since, self._next_attempt = now, now + self.retry_every
        if starting:
            self._active.set(1)
            log.warning(f"{self.name}.unreachable", error=f"{type(error).__name__}: {error}",
                        retry_every_seconds=self.retry_every)

    def succeeded(self) -> None:
        if self._since is None:  # the common case costs no lock
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            self._active.set(0)
            log.warning(f"{self.name}.recovered", outage_seconds=round(self.clock() - since, 1))
