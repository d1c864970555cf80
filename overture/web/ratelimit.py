"""The web app's rate limits: what is counted, per what, and what the caller is told.

* API calls are charged after authentication to the caller: one bucket per API key,
  or per user for a signed-in session, shared by every endpoint of the API
  (OVERTURE_API_RATE_LIMIT). A request that does not authenticate is charged to no
  key, so knowing a key's public prefix lets no one spend its bucket.
* Failed authentications (401) are counted per client address in a bucket of their
  own (OVERTURE_AUTH_FAILURE_RATE_LIMIT); past it, failed attempts from that address
  get 429 instead of 401.
* The sign-in form, webhooks and approval links keep their route limits
  (Flask-Limiter decorators, per address, email or webhook).

A locked-out address does not lock out valid callers behind it. Every attempt is
authenticated the same way whether the address is over its limit or not (the key
looked up by its prefix, its digest compared in constant time), and only a failure is
refused; every failure while locked out gets the same 429 whatever the reason
(unknown prefix, wrong secret, revoked, expired). So the lockout reveals nothing a
401 would not, by content or by time, and a key's 256 random bits stay the defence
against guessing.

Counters live in one store (platform.ratelimit_storage): Redis, failing open to each
process's memory while Redis is unreachable. Answers say which limit applied, after
the IETF RateLimit header fields draft: `RateLimit-Policy: "api";q=600;w=60` and
`RateLimit: "api";r=599;t=42` (quota, window, remaining, seconds to reset), and a
429 carries `Retry-After` in seconds.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse

from overture.platform import ratelimit_storage
from overture.platform.config import Settings
from overture.platform.errors import ConfigError, RateLimited, Unauthenticated
from overture.tenants.access import Principal
from overture.web.extensions import client_address, limiter

API = "api"
AUTH_FAILURES = "auth-failures"
_BUCKET = "overture_rate_limit"


@dataclass(frozen=True)
class Bucket:
    """What one limit looked like after this request: for the caller's headers."""

    policy: str
    limit: RateLimitItem
    remaining: int
    reset_at: float

    def seconds_to_reset(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))

    def headers(self) -> dict[str, str]:
        reset = self.seconds_to_reset()
        return {"RateLimit-Policy": f'"{self.policy}";q={self.limit.amount};'
                                    f"w={self.limit.get_expiry()}",
                "RateLimit": f'"{self.policy}";r={self.remaining};t={reset}'}


def install(app: Flask, settings: Settings) -> None:
    for name, value in (("OVERTURE_API_RATE_LIMIT", settings.api_rate_limit),
                        ("OVERTURE_AUTH_FAILURE_RATE_LIMIT", settings.auth_failure_rate_limit),
                        ("OVERTURE_LOGIN_RATE_LIMIT", settings.login_rate_limit)):
        _parse(name, value)
    app.config.update(RATELIMIT_STORAGE_URI=ratelimit_storage.storage_uri(settings.redis_url),
                      RATELIMIT_KEY_PREFIX=settings.redis_namespace,
                      RATELIMIT_HEADERS_ENABLED=False)  # ours, for every limit: below
    # Before the limiter's own hook: a counter's increment tells what the answer's
    # headers say (one round trip to the store, not three).
    app.before_request(ratelimit_storage.count_for_this_request)
    app.teardown_request(lambda _exc: ratelimit_storage.forget_counts())
    limiter.init_app(app)
    app.before_request(lambda: g.pop(_BUCKET, None))  # an app context may outlive a request
    app.after_request(_tell_the_caller)


def charge(principal: Principal) -> None:
    """Charge one API call to the caller's bucket; RateLimited once it is empty."""
    who = (f"key:{principal.api_key.id}" if principal.api_key is not None
           else f"user:{principal.user.id}")
    if not _spend(API, _settings().api_rate_limit, who):
        raise RateLimited(f"this {'API key' if principal.api_key else 'user'} has used its "
                          f"API allowance ({_settings().api_rate_limit}); retry later")


@contextmanager
def authentication_attempt() -> Iterator[None]:
    """Count an authentication that fails against the client address; past the
    address's allowance the failure is a 429 instead of a 401. Success costs nothing."""
    try:
        yield
    except Unauthenticated:
        if not _spend(AUTH_FAILURES, _settings().auth_failure_rate_limit, client_address()):
            raise RateLimited("too many failed authentications from this address; "
                              "retry later") from None
        raise


def _spend(policy: str, rate: str, who: str) -> bool:
    limit = _rate(rate)
    strategy = limiter.limiter  # the store and strategy every limit of this app uses
    identity = (current_app.config["RATELIMIT_KEY_PREFIX"], policy, who)
    allowed = strategy.hit(limit, *identity)
    reset_at, remaining = _window(limit, limit.key_for(*identity),
                                  lambda: strategy.get_window_stats(limit, *identity))
    g.setdefault(_BUCKET, Bucket(policy, limit, remaining, reset_at))
    return allowed


def _window(limit: RateLimitItem, key: str,
            read: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    """(reset_at, remaining) of a limit this request counted: as its increment left it,
    else as `read` finds it."""
    seen = ratelimit_storage.counted(key)
    if seen is None:
        return read()
    count, reset_at = seen
    return reset_at, max(0, limit.amount - count)


def _route_bucket() -> Bucket | None:
    """The route limit (Flask-Limiter decorator) that applied to this request, if any."""
    applied = limiter.current_limit
    if applied is None:
        return None
    # not `reset_at`: Flask-Limiter adds a second
    reset_at, remaining = _window(applied.limit, applied.key, lambda: applied.window)
    return Bucket(request.endpoint or "route", applied.limit, remaining, reset_at)


def _tell_the_caller(response: Response) -> Response:
    bucket = g.get(_BUCKET) or _route_bucket()
    if bucket is not None:
        response.headers.update(bucket.headers())
        if response.status_code == 429:
            response.headers["Retry-After"] = str(bucket.seconds_to_reset())
    return response


@functools.lru_cache(maxsize=32)
def _rate(value: str) -> RateLimitItem:
    return parse(value)


def _settings() -> Settings:
    return current_app.extensions["overture.settings"]  # type: ignore[no-any-return]


def _parse(name: str, value: str) -> RateLimitItem:
    try:
        return parse(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {value!r} is not a rate like '600 per minute'") from exc
