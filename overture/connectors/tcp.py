"""Connectors that speak a TCP protocol of their own (SMTP, IMAP, PostgreSQL) rather
than HTTP: where to connect, checked by the outbound guard (`platform.outbound`).

The host is resolved once and checked; the connection then goes to a checked address
(the guard's openers: `PinnedSMTP`, `PinnedIMAP`, `connect_postgres`), while TLS still
verifies the host name, so a DNS answer that changes between the check and the
connect cannot redirect it to a private address.
"""

from __future__ import annotations

from typing import Any

from overture.connectors.context import ActionContext
from overture.connectors.errors import ActionFailed, DestinationBlocked
from overture.platform.outbound import BlockedDestination, Target, Unresolvable, check_host

SECURITY = ("ssl", "starttls", "none")


def port_of(ctx: ActionContext, default: int) -> int:
    raw = ctx.value("port")
    if raw in (None, ""):
        return default
    try:
        port = int(raw)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise ActionFailed("misconfigured", f"the connection's port is not a port: {raw!r}")
    return port


def destination(ctx: ActionContext, default_port: int) -> Target:
    """The connection's host and port, refused unless public or allow-listed."""
    host = str(ctx.require("host")).strip()
    port = port_of(ctx, default_port)
    try:
        return check_host(host, port)
    except BlockedDestination as exc:
        raise DestinationBlocked(exc.detail) from exc
    except Unresolvable as exc:
        raise ActionFailed("connection", str(exc)) from exc


def security_of(ctx: ActionContext, default: str) -> str:
    security = str(ctx.value("security") or default).lower()
    if security not in SECURITY:
        raise ActionFailed("misconfigured", f"security must be one of {', '.join(SECURITY)}, "
                                            f"not {security!r}")
    return security


def timed_out(exc: BaseException) -> bool:
    """Whether an error is, or was raised while handling, a socket timeout (smtplib and
    imaplib wrap a read timeout in their own 'connection closed' errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TimeoutError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def failure(exc: BaseException, what: str, timeout: float) -> ActionFailed:
    """A socket-level error as the stable reasons the engine understands."""
    if timed_out(exc):
        return ActionFailed("timeout", f"{what} did not answer within {timeout:g}s")
    return ActionFailed("connection", f"cannot talk to {what}: {_describe(exc)}")


def _describe(exc: Any) -> str:
    return str(exc) or type(exc).__name__
