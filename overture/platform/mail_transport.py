"""Which SMTP server a mail leaves through: a tenant's own, or the installation's relay.

An agency or a workspace may send its mail through its own server (`tenants/mail_servers.py`
keeps the settings, the vault the password). This floor cannot look tenants up, so that
floor registers two callables with `set_transport_hooks`: one that names the server for
the tenant a mail is about (None: the installation's relay, `mail_delivery.transmit`), and
one that hears how each delivery through it went, so its settings page can show the last
error.

A tenant's server is a tenant-supplied place, so it is reached through the outbound guard
(`platform/outbound.py`): resolved once, refused when private, connected to the checked
address. Errors are kept and shown; `Transport.scrub` takes every form of the password a
server could echo back (as typed, and as AUTH PLAIN and LOGIN send it) out of them first.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from overture.platform import outbound
from overture.platform.logging import get_logger

log = get_logger(__name__)

SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
MASK = "********"


@dataclass(frozen=True)
class Transport:
    """A tenant's SMTP server, with its sign-in opened from the vault for one delivery."""

    host: str
    port: int
    security: str
    from_address: str
    owner_tenant_id: uuid.UUID  # whose server it is (an agency's serves its workspaces)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        return f"{self.host}:{self.port}"

    def scrub(self, text: str) -> str:
        """`text` without the password in any form a server might echo."""
        for secret in self._secret_forms():
            text = text.replace(secret, MASK)
        return text

    def _secret_forms(self) -> list[str]:
        if not self.password:
            return []
        user, password = self.username or "", self.password
        forms = [password, _b64(password), _b64(f"\0{user}\0{password}"),
                 _b64(f"{user}\0{user}\0{password}")]
        return sorted({f for f in forms if f}, key=len, reverse=True)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


Resolver = Callable[[uuid.UUID], Transport | None]
Reporter = Callable[[Transport, str | None], None]
_resolver: Resolver = lambda tenant_id: None  # noqa: E731
_reporter: Reporter = lambda transport, error: None  # noqa: E731


def set_transport_hooks(resolver: Resolver | None, reporter: Reporter | None = None) -> None:
    """Where tenants' servers come from (None: every mail goes through the relay)."""
    global _resolver, _reporter
    _resolver = resolver or (lambda tenant_id: None)
    _reporter = reporter or (lambda transport, error: None)


def transport_for(tenant_id: uuid.UUID | None) -> Transport | None:
    """The server a mail about `tenant_id` leaves through; None for the relay."""
    return None if tenant_id is None else _resolver(tenant_id)


def report(transport: Transport, error: str | None) -> None:
    """Tell the server's owner how a delivery went; never raises into the delivery."""
    try:
        _reporter(transport, error)
    except Exception:
        log.warning("mail.transport_report_failed", host=transport.host, exc_info=True)


def send(email: object, transport: Transport, timeout: float) -> None:
    """Deliver through a tenant's server, by the guard's checked address."""
    target = outbound.check_host(transport.host, transport.port)
    context = ssl.create_default_context()
    server: smtplib.SMTP
    if transport.security == "tls":
        server = outbound.PinnedSMTPSSL(target, timeout, context=context)
    else:
        server = outbound.PinnedSMTP(target, timeout)
    with server:
        if transport.security == "starttls":
            server.starttls(context=context)
        if transport.username:
            server.login(transport.username, transport.password or "")
        server.send_message(email)  # type: ignore[arg-type]
