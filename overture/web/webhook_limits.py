"""The rate limit of a webhook URL, as Flask-Limiter asks for it on every call.

Each workflow's webhook takes its own number of calls a minute (orchestration/
webhook_rates.py). Reading it costs a query, and the webhook intake is a hot path, so
each process keeps what it read for TTL seconds: a change made through this process
applies at its next call (`forget`), one made through another process within TTL
seconds. The counters themselves live in the one rate-limit store (Redis): every
process counts the same calls. A call past the limit gets 429 with `Retry-After`
(web/ratelimit.py) and a problem body (web/problems.py).
"""

from __future__ import annotations

import time

from flask import request

from overture.orchestration import webhook_rates
from overture.platform.db import scoped_to
from overture.platform.ids import parse_id

TTL = 10.0  # seconds a process keeps a webhook's limit
MAX_ENTRIES = 10_000  # past it the cache starts afresh: random tokens cannot grow it

_cache: dict[str, tuple[float, str]] = {}


def key() -> str:
    """Whose counter a call spends: its webhook URL's."""
    args = request.view_args or {}
    return f"{args.get('tenant_id', '')}/{args.get('token', '')}"


def limit() -> str:
    """The limit of the called webhook, as Flask-Limiter reads it ("600 per minute")."""
    name = key()
    now = time.monotonic()
    found = _cache.get(name)
    if found is not None and found[0] > now:
        return found[1]
    args = request.view_args or {}
    value = f"{_read(str(args.get('tenant_id', '')), str(args.get('token', '')))} per minute"
    if len(_cache) >= MAX_ENTRIES:
        _cache.clear()
    _cache[name] = (now + TTL, value)
    return value


def forget(tenant_id: object, token: str) -> None:
    """This process reads the webhook's limit afresh at its next call."""
    _cache.pop(f"{tenant_id}/{token}", None)


def _read(tenant_id: str, token: str) -> int:
    ident = parse_id(tenant_id)
    if ident is None:
        return webhook_rates.effective(None)
    with scoped_to(ident):
        return webhook_rates.by_token(token)
