"""The one store of rate-limit counters: Redis, failing open to process memory.

Every limit (the API's, sign-in, webhooks, approval links, a connection's own rate)
counts here. While Redis is unreachable a process counts in its own memory instead:
the limits still hold, per process (so looser by the number of processes), and no
request fails for want of a counter. One warning is logged when the outage starts and
one when it ends, `overture_ratelimit_fallback_active` is 1 meanwhile, and the store
tries Redis again every few seconds, going back to it by itself.

It is a `limits` storage registered under `failover+redis://...` (and `rediss`,
`redis+unix`), so Flask-Limiter and `limits` strategies take it by URI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from limits.storage import MemoryStorage, MovingWindowSupport, RedisStorage, Storage
from redis.backoff import NoBackoff
from redis.retry import Retry

from overture.platform import metrics
from overture.platform.outage import Outage

SCHEME_PREFIX = "failover+"
RETRY_EVERY = 2.0  # seconds between attempts to reach Redis again during an outage
# A counter is one round trip: waiting longer than this is worse than counting in
# memory. One immediate retry replaces a pooled connection that Redis's restart broke.
REDIS_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0,
                                 "retry": Retry(NoBackoff(), 1)}


T = TypeVar("T")
# A counter's increment, its window's expiry set by the window's first hit (as `limits`'
# own script does), and the seconds left in that window: one round trip.
_INCR_AND_TTL = """
local amount = tonumber(ARGV[2])
local current = redis.call("incrby", KEYS[1], amount)
if tonumber(current) == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""
# What this request's increments left each counter at: count, and when its window ends.
_counted: ContextVar[dict[str, tuple[int, float]] | None] = ContextVar("ratelimit_counted",
                                                                     default=None)


def count_for_this_request() -> None:
    """From here, remember what each increment left its counter at (`counted`): a
    request's answer tells the caller its remaining quota without reading the counter
    again (two more round trips). Called as each request starts."""
    _counted.set({})


def forget_counts() -> None:
    """Stop remembering (as each request ends)."""
    _counted.set(None)


def counted(key: str) -> tuple[int, float] | None:
    """The count and the end of the window (epoch seconds) this request's increment of
    `key` left, as `get` and `get_expiry` would read them just after it; None if this
    request has not incremented it."""
    seen = _counted.get()
    return seen.get(key) if seen is not None else None


def storage_uri(redis_url: str | None) -> str:
    """The URI of the counters' store for this Redis (process memory without one)."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):
        redis_url = "redis+" + redis_url
    return SCHEME_PREFIX + redis_url


class FailoverStorage(Storage, MovingWindowSupport):
    STORAGE_SCHEME = [SCHEME_PREFIX + s for s in ("redis", "rediss", "redis+unix")]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        # Builds a client only: nothing connects until the first counter is needed.
        self.primary = RedisStorage(uri.removeprefix(SCHEME_PREFIX), **{**REDIS_OPTIONS,
                                                                        **options})
        self.fallback = MemoryStorage()
        self.outage = Outage("ratelimit.storage", retry_every=RETRY_EVERY,
                             active=metrics.RATELIMIT_FALLBACK_ACTIVE,
                             errors=metrics.RATELIMIT_STORAGE_ERRORS)
        self._script: Any = None  # _INCR_AND_TTL, registered at its first use

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ()  # nothing escapes: a Redis failure is answered from memory

    def _either(self, primary: Callable[[], T], fallback: Callable[[], T]) -> T:
        if self.outage.worth_trying():
            try:
                result = primary()
            except self.primary.base_exceptions as error:
                self.outage.failed(error)
            else:
                self.outage.succeeded()
                return result
        return fallback()

    def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        return self._either(lambda: getattr(self.primary, operation)(*args, **kwargs),
                            lambda: getattr(self.fallback, operation)(*args, **kwargs))

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        seen = _counted.get()
        if seen is None:
            return int(self._call("incr", key, expiry, amount=amount))
        count, ends = self._either(lambda: self._incr_and_ttl(key, expiry, amount),
                                   lambda: (self.fallback.incr(key, expiry, amount=amount),
                                            self.fallback.get_expiry(key)))
        seen[key] = (int(count), float(ends))
        return int(count)

    def _incr_and_ttl(self, key: str, expiry: int, amount: int) -> tuple[int, float]:
        if self._script is None:
            self._script = self.primary.get_connection().register_script(_INCR_AND_TTL)
        count, ttl = self._script([self.primary.prefixed_key(key)], [expiry, amount])
        return int(count), max(int(ttl), 0) + time.time()  # as RedisStorage.get_expiry

    def get(self, key: str) -> int:
        return int(self._call("get", key))

    def get_expiry(self, key: str) -> float:
        return float(self._call("get_expiry", key))

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return bool(self._call("acquire_entry", key, limit, expiry, amount=amount))

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        start, count = self._call("get_moving_window", key, limit, expiry)
        return float(start), int(count)

    def check(self) -> bool:
        return True  # always usable: memory stands in for Redis

    def reset(self) -> int | None:
        self.fallback.reset()
        return self._call("reset")  # type: ignore[no-any-return]

    def clear(self, key: str) -> None:
        self.fallback.clear(key)
        self._call("clear", key)
