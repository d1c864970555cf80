"""The HTTP side of a connection: its base URL, its auth, its rate limit, and retries
on 429 and 5xx that honour Retry-After. Every request goes through the one outbound
client (`platform.http`), so SSRF checks apply to every hop.

A connection's credentials go only to its own origins: its base URL's (scheme, host,
port) and those its `allowed_origins` setting lists. The client of a connection that
holds credentials is locked to them (`origins`): a request elsewhere, by an absolute
URL or by a redirect, is refused before anything is sent, whoever attached the
credentials (the framework's auth headers or the connector itself), and reported to
`on_refused` for the audit log. A connection without a base URL (the `http`
connector) sends its credentials nowhere until it lists origins. A client without
credentials (`origins=None`) may call any public URL.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urljoin

from flask import current_app, has_app_context
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from overture.connectors.errors import ActionFailed, DestinationBlocked, OriginRefused
from overture.platform import http, ratelimit_storage

MAX_RETRIES = 3
MAX_RETRY_AFTER = 30.0  # longer waits go back to the engine, which reschedules the step
MAX_THROTTLE_WAIT = 10.0
_limiters: dict[str, MovingWindowRateLimiter] = {}


def _limiter() -> MovingWindowRateLimiter:
    settings = current_app.extensions.get("overture.settings") if has_app_context() else None
    # The shared store: a Redis outage counts in memory instead of failing the step.
    uri = ratelimit_storage.storage_uri(settings.redis_url if settings is not None else None)
    if uri not in _limiters:
        _limiters[uri] = MovingWindowRateLimiter(storage_from_string(uri))
    return _limiters[uri]


def retry_after_seconds(response: http.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class ConnectionClient:
    def __init__(self, base_url: str | None, headers: dict[str, str], *,
                 params: dict[str, str] | None = None, rate_key: str | None = None,
                 rate: str | None = None, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep,
                 origins: Collection[str] | None = None,
                 on_refused: Callable[[str], None] | None = None) -> None:
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self.headers, self.params = headers, params or {}
        self.rate_key, self.rate = rate_key, parse(rate) if rate else None
        self.timeout, self.sleep = timeout, sleep
        self.origins = frozenset(origins) if origins is not None else None
        self.on_refused = on_refused

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")) or self.base_url is None:
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def request(self, method: str, path: str, *, json: Any = None,
                params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                content: bytes | None = None, ok: tuple[int, ...] = (),
                data: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
                ) -> http.Response:
        """A request with retries; an error status becomes ActionFailed (except `ok`).
        `data` is a form body (application/x-www-form-urlencoded; a list value repeats
        its key)."""
        url = self.url(path)
        merged = {**self.headers, **(headers or {})}
        if data is not None:
            content = urlencode(data, doseq=True).encode()
            if not any(k.lower() == "content-type" for k in merged):
                merged["Content-Type"] = "application/x-www-form-urlencoded"
        query = {**self.params, **(params or {})}
        for attempt in range(MAX_RETRIES + 1):
            self._throttle()
            response = self._send(method, url, merged, query, json, content)
            if response.status_code < 400 or response.status_code in ok:
                return response
            if response.status_code == 429 or (response.status_code >= 500
                                                and _safe_to_repeat(method, merged)):
                wait = retry_after_seconds(response)
                wait = min(2.0 ** attempt * 0.25, 8.0) if wait is None else wait
                if attempt < MAX_RETRIES and wait <= MAX_RETRY_AFTER:
                    self.sleep(wait)
                    continue
            raise self._failure(response)
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, headers: dict[str, str], params: dict[str, Any],
              json: Any, content: bytes | None) -> http.Response:
        try:
            return http.request(method, url, headers=headers, params=params or None, json=json,
                                content=content, timeout=self.timeout, origins=self.origins)
        except http.TimeoutException as exc:
            raise ActionFailed("timeout", f"{url} did not answer within {self.timeout:g}s") \
                from exc
        except http.HTTPError as exc:
            raise ActionFailed("connection", f"cannot reach {url}: {exc}") from exc
        except http.OriginNotAllowed as exc:
            if self.on_refused is not None:
                self.on_refused(exc.origin)
            raise OriginRefused(exc.origin, f"this connection's credentials go only to "
                                            f"{self._allowed()}, not to {exc.origin} (list "
                                            "it in the connection's allowed_origins)") from exc
        except http.BlockedDestination as exc:
            raise DestinationBlocked(exc.detail) from exc

    def _allowed(self) -> str:
        return ", ".join(sorted(self.origins or ())) or "no origin (it has no base URL)"

    def _throttle(self) -> None:
        """The connection's own rate limit: wait for room, briefly, then give up."""
        if self.rate is None or self.rate_key is None:
            return
        limiter, waited = _limiter(), 0.0
        while not limiter.hit(self.rate, "connection", self.rate_key):
            if waited >= MAX_THROTTLE_WAIT:
                raise ActionFailed("rate_limited", "this connection's rate limit is reached")
            self.sleep(0.2)
            waited += 0.2

    @staticmethod
    def _failure(response: http.Response) -> ActionFailed:
        status = response.status_code
        body = _excerpt(response)
        if status in (401, 403):
            return ActionFailed("auth_failed", f"the app refused the credentials ({status})",
                                http_status=status, body=body)
        if status == 404:
            return ActionFailed("not_found", "the app has no such resource", http_status=status,
                                body=body)
        if status == 429:
            return ActionFailed("rate_limited", "the app's rate limit is reached",
                                http_status=status, retry_after=retry_after_seconds(response))
        if status >= 500:
            return ActionFailed("http_5xx", f"the app failed ({status})", http_status=status,
                                body=body)
        return ActionFailed("http_4xx", f"the app rejected the request ({status})",
                            http_status=status, body=body)


def _safe_to_repeat(method: str, headers: dict[str, str]) -> bool:
    """A 5xx may come after the app acted: repeat only requests that cannot act twice
    (a 429 was refused before acting, so it is always safe)."""
    if method.upper() in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"):
        return True
    return any(k.lower() == "idempotency-key" for k in headers)


def _excerpt(response: http.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]
