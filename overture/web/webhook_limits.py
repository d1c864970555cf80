"""The rate limit of a webhook URL, as Flask-Limiter asks for it on every call.

Each workflow's webhook takes its own number of calls a minute (orchestration/
webhook_rates.py), and so does each vendor event feed into it (Slack, HubSpot, ...).
Reading it costs a query, and the webhook intake is a hot path, so each process keeps
what it read for TTL seconds: a change made through this process applies at its next
call (`forget`), one made through another process within TTL seconds. The counters
themselves live in the one rate-limit store (Redis): every process counts the same
calls. A call past the limit gets 429 with `Retry-After` (web/ratelimit.py) and a
problem body (web/problems.py).
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
    """Whose counter a call spends: its webhook URL's (a workflow's own, or a vendor
    feed's `/hooks/<tenant>/<source>/<token>`)."""
    args = request.view_args or {}
    source = args.get("source")
    where = f"{source}/" if source else ""
    return f"{args.get('tenant_id', '')}/{where}{args.get('token', '')}"


def limit() -> str:
    """The limit of the called webhook, as Flask-Limiter reads it ("600 per minute")."""
    name = key()
    now = time.monotonic()
    found = _cache.get(name)
    if found is not None and found[0] > now:
        return found[1]
    args = request.view_args or {}
    rate = _read(str(args.get("tenant_id", "")), str(args.get("token", "")),
                 vendor=bool(args.get("source")))
    value = f"{rate} per minute"
    if len(_cache) >= MAX_ENTRIES:
        _cache.clear()
    _cache[name] = (now + TTL, value)
    return value


def forget(tenant_id: object, token: str) -> None:
    """This process reads the webhook's limit afresh at its next call."""
    _cache.pop(f"{tenant_id}/{token}", None)


def _read(tenant_id: str, token: str, vendor: bool) -> int:
    ident = parse_id(tenant_id)
    if ident is None:
        return webhook_rates.effective(None)
    with scoped_to(ident):
        return webhook_rates.by_vendor_token(token) if vendor else webhook_rates.by_token(token)
