"""The one outbound HTTP client: timeouts always, and every connection through the
outbound guard (`platform.outbound`), for our own requests and the SDKs' alike.

The guard sits in the transport, where httpx opens a TCP connection: the host is
resolved once, every address checked, and the socket opened to a checked address, while
the URL keeps its host, so the Host header and the TLS server name (SNI and certificate
check) are the original ones. Every request passes there, so redirects, retries and
whatever an SDK does are checked the same way. A client may also be locked to some
origins (scheme, host, port): a connection's credentials, a provider's key, go nowhere
else, not even by a redirect.

    response = request("GET", url, origins={"https://api.example.com:443"})
    openai.OpenAI(..., http_client=client(base_url))

The SDKs (openai, anthropic) and Authlib speak httpx2, so this module does too.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Collection, Iterable
from typing import Any

import anyio.to_thread
import httpcore2
import httpx2

from overture.platform import tracing
from overture.platform.outbound import (  # re-exported: the names callers know
    BlockedDestination,
    OriginNotAllowed,
    Target,
    Unresolvable,
    check_host,
)

__all__ = ["BlockedDestination", "HTTPError", "HTTPStatusError", "OriginNotAllowed",
           "Response", "Target", "TimeoutException", "Unresolvable", "async_client",
           "check_destination", "check_host", "client", "origin_of", "request", "transport"]

DEFAULT_TIMEOUT = 30.0
MAX_REDIRECTS = 5
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}

# What callers catch and read, without importing httpx2 themselves.
Response = httpx2.Response
HTTPError = httpx2.HTTPError
HTTPStatusError = httpx2.HTTPStatusError
TimeoutException = httpx2.TimeoutException


def _url(url: str | httpx2.URL) -> httpx2.URL:
    """The URL as httpx parses it: the same parser that picks where to connect."""
    try:
        parsed = url if isinstance(url, httpx2.URL) else httpx2.URL(url)
    except (httpx2.InvalidURL, TypeError) as exc:
        raise BlockedDestination(f"not a valid URL: {str(url)[:200]!r}") from exc
    if parsed.scheme not in SCHEMES or not parsed.host:
        raise BlockedDestination(f"only http(s) URLs with a host are allowed: "
                                 f"{str(url)[:200]!r}")
    return parsed


def origin_of(url: str | httpx2.URL) -> str:
    """`scheme://host:port`, normalised (lower case, IDNA, the default port spelled
    out), for comparing origins."""
    parsed = _url(url)
    host = parsed.raw_host.decode("ascii").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parsed.scheme}://{host}:{parsed.port or DEFAULT_PORTS[parsed.scheme]}"


def check_destination(url: str) -> Target:
    """Raise BlockedDestination unless `url` is http(s) and every address its host
    resolves to is allowed. For an early, clear answer; the transport checks again
    where it connects."""
    parsed = _url(url)
    return check_host(parsed.host, parsed.port or DEFAULT_PORTS[parsed.scheme])


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context for every client: loading the CA store costs milliseconds
    a request need not pay each time, and a context is safe to share between threads."""
    return httpx2.create_ssl_context(trust_env=False)


class GuardedBackend(httpcore2.SyncBackend):
    """httpcore's network backend, resolving and checking before it connects."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        try:
            target = check_host(host, port)
        except Unresolvable as exc:  # a connection failure: clients retry those
            raise httpcore2.ConnectError(str(exc)) from exc
        last: Exception = httpcore2.ConnectError(f"cannot connect to {host!r}")
        for address in target.addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address,
                                           socket_options)
            except httpcore2.ConnectError as exc:
                last = exc
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore2.NetworkStream:
        raise BlockedDestination("a unix socket is not an outbound destination")


class GuardedTransport(httpx2.HTTPTransport):
    """httpx's transport on the guarded backend, optionally locked to `origins`.

    HTTPTransport takes no network backend, so its pool is built here instead of by
    its constructor (which only builds that pool); no proxy from the environment is
    used: a proxy would connect on our behalf where the guard cannot look."""

    def __init__(self, origins: Collection[str] | None = None) -> None:
        self._pool = httpcore2.ConnectionPool(
            ssl_context=_ssl_context(), max_connections=100, max_keepalive_connections=20,
            keepalive_expiry=5.0, network_backend=GuardedBackend())
        self.origins = frozenset(origins) if origins is not None else None

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        origin = origin_of(request.url)
        if self.origins is not None and origin not in self.origins:
            raise OriginNotAllowed(origin, f"{origin} is not an origin these credentials "
                                           f"may be sent to ({', '.join(sorted(self.origins))})")
        if not tracing.enabled():
            return super().handle_request(request)
        return self._traced(request)

    def _traced(self, request: httpx2.Request) -> httpx2.Response:
        """A CLIENT span per request (each redirect hop too), its `traceparent` sent on.
        Named by the method, with the host and port only: a URL's path and query may
        hold secrets (a webhook's token, a signed link)."""
        with tracing.span(request.method, tracing.SpanKind.CLIENT, {
                "http.request.method": request.method, "server.address": request.url.host,
                "server.port": request.url.port or DEFAULT_PORTS[request.url.scheme]}) as span:
            carrier: dict[str, str] = {}
            tracing.inject(carrier)
            request.headers.update(carrier)
            response = super().handle_request(request)
            if span is not None:
                span.set_attribute("http.response.status_code", response.status_code)
            return response


class AsyncGuardedBackend(httpcore2.AnyIOBackend):
    """The same guard for async SDKs (the MCP client): resolution and checks run in a
    worker thread (they block on DNS), then the socket opens to a checked address."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore2.AsyncNetworkStream:
        try:
            target = await anyio.to_thread.run_sync(check_host, host, port)
        except Unresolvable as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        last: Exception = httpcore2.ConnectError(f"cannot connect to {host!r}")
        for address in target.addresses:
            try:
                return await super().connect_tcp(address, port, timeout, local_address,
                                                 socket_options)
            except httpcore2.ConnectError as exc:
                last = exc
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore2.AsyncNetworkStream:
        raise BlockedDestination("a unix socket is not an outbound destination")


class AsyncGuardedTransport(httpx2.AsyncHTTPTransport):
    """GuardedTransport's async twin (see there), optionally locked to `origins`."""

    def __init__(self, origins: Collection[str] | None = None) -> None:
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=_ssl_context(), max_connections=20, max_keepalive_connections=5,
            keepalive_expiry=5.0, network_backend=AsyncGuardedBackend())
        self.origins = frozenset(origins) if origins is not None else None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        origin = origin_of(request.url)
        if self.origins is not None and origin not in self.origins:
            raise OriginNotAllowed(origin, f"{origin} is not an origin these credentials "
                                           f"may be sent to ({', '.join(sorted(self.origins))})")
        return await super().handle_async_request(request)


def transport(origins: Collection[str] | None = None) -> GuardedTransport:
    """For clients built elsewhere (Authlib's OAuth client): `transport=transport()`."""
    return GuardedTransport(origins)


def client(base_url: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
           follow_redirects: bool = True) -> httpx2.Client:
    """An httpx client for an SDK (`http_client=`). Given a tenant's `base_url`, it is
    locked to that origin: the key it carries is refused anywhere else."""
    origins = {origin_of(base_url)} if base_url else None
    return httpx2.Client(transport=GuardedTransport(origins), timeout=timeout,
                         follow_redirects=follow_redirects, max_redirects=MAX_REDIRECTS,
                         trust_env=False)


def async_client(base_url: str, *, headers: dict[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> httpx2.AsyncClient:
    """An async httpx client for an async SDK (the MCP client's `http_client=`), locked
    to `base_url`'s origin; it follows no redirects itself (the MCP SDK follows those
    within the origin, and the transport refuses any other)."""
    return httpx2.AsyncClient(transport=AsyncGuardedTransport({origin_of(base_url)}),
                              headers=headers, timeout=timeout, follow_redirects=False,
                              trust_env=False)


def request(method: str, url: str, *, headers: dict[str, str] | None = None,
            content: bytes | None = None, json: object = None,
            params: Iterable[tuple[str, str]] | dict[str, Any] | None = None,
            timeout: float = DEFAULT_TIMEOUT,
            origins: Collection[str] | None = None) -> httpx2.Response:
    """One request to a tenant-supplied URL, every redirect hop checked (and, given
    `origins`, refused unless it stays on them)."""
    _url(url)
    with httpx2.Client(transport=GuardedTransport(origins), timeout=timeout,
                       follow_redirects=True, max_redirects=MAX_REDIRECTS,
                       trust_env=False) as session:
        try:
            return session.request(method, url, headers=headers, content=content, json=json,
                                   params=params)
        except httpx2.TooManyRedirects as exc:
            raise BlockedDestination(f"more than {MAX_REDIRECTS} redirects") from exc
        except httpx2.InvalidURL as exc:
            raise BlockedDestination(f"not a valid URL: {exc}") from exc
