"""A tenant's own SMTP server: the mail about an agency or a workspace may leave through
the agency's (or the workspace's) server instead of the installation's relay.

Which server a mail about a tenant uses: the tenant's own, else (a client workspace)
its agency's, else the installation's relay. The sign-in is a vault credential of kind
`basic` (username, and the password sealed) that this module keeps for the server,
opened for each delivery and recorded as used; settings, pages and errors never hold the
password, and a form that leaves it empty keeps the stored one. `install` registers the
delivery hooks with `platform/mail_transport.py`, whose outbound guard refuses a host
that resolves to a private address (checked here too, when the settings are saved, so
the form says so at once).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from overture.platform import audit, mail, mail_transport, outbound
from overture.platform.db import db, in_tenant, utcnow
from overture.platform.errors import NotFound, ValidationFailed
from overture.platform.ids import parse_id
from overture.platform.mail import OutboxMessage
from overture.tenants import credentials, vault
from overture.tenants.access import Access
from overture.tenants.mail_server_models import MailServer
from overture.tenants.models import Tenant, TenantKind
from overture.tenants.users import normalize_email
from overture.tenants.vault_models import PLACEHOLDER, Credential

TEST_TEMPLATE = "test_message"
HOST_RE = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
USE_PURPOSE = "mail delivery through the tenant's SMTP server"


@dataclass(frozen=True)
class Route:
    """Where the mail about a tenant leaves: `own`, `agency` (its agency's server) or
    `platform` (the installation's relay); `owner` is whose server it is."""

    source: str
    owner: Tenant | None
    server: MailServer | None


# --------------------------------------------------------------------------- reading


def _row(tenant_id: uuid.UUID) -> MailServer | None:
    # No autoflush: the caller's pending rows belong to its own scope.
    with db.session.no_autoflush, in_tenant(tenant_id):
        return db.session.scalars(select(MailServer).where(MailServer.tenant_id == tenant_id)
                                  .execution_options(populate_existing=True)).one_or_none()


def _chain(tenant: Tenant) -> list[Tenant]:
    """The tenant, then the agency whose server it falls back on."""
    if tenant.kind == TenantKind.WORKSPACE and tenant.parent is not None:
        return [tenant, tenant.parent]
    return [tenant]


def route(tenant: Tenant) -> Route:
    for owner in _chain(tenant):
        server = _row(owner.id)
        if server is not None:
            return Route("own" if owner.id == tenant.id else "agency", owner, server)
    return Route("platform", None, None)


def view(access: Access) -> dict[str, Any]:
    """The tenant's own settings (None when it has none) and the route its mail takes."""
    access.require("tenant.read")
    tenant = access.require_tenant()
    own = _row(tenant.id)
    used = route(tenant)
    return {
        "own": _public(own) if own is not None else None,
        "route": {"source": used.source,
                  "tenant_name": used.owner.name if used.owner is not None else None,
                  "from_address": used.server.from_address if used.server else None},
    }


def _public(server: MailServer) -> dict[str, Any]:
    credential = db.session.get(Credential, server.credential_id) \
        if server.credential_id is not None else None
    return {"host": server.host, "port": server.port, "security": server.security,
            "from_address": server.from_address,
            "username": (credential.public or {}).get("username") if credential else None,
            "password_set": credential is not None, "updated_at": server.updated_at,
            "last_sent_at": server.last_sent_at, "last_error_at": server.last_error_at,
            "last_error": server.last_error}


# --------------------------------------------------------------------------- changing


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """The settings cleaned, or ValidationFailed naming every wrong field at once."""
    errors: list[dict[str, str]] = []
    clean: dict[str, Any] = {}

    def fail(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    security = str(values.get("security") or "starttls")
    if security not in mail_transport.SECURITY:
        fail("security", "must be one of " + ", ".join(mail_transport.SECURITY))
    clean["security"] = security
    host = str(values.get("host") or "").strip().rstrip(".").lower()
    if not host or not HOST_RE.fullmatch(host):
        fail("host", "enter the server's host name, such as smtp.example.com")
    clean["host"] = host
    port = values.get("port")
    if port in (None, ""):
        port = mail_transport.DEFAULT_PORTS.get(security, 587)
    try:
        clean["port"] = int(port)  # type: ignore[arg-type]
        if not 0 < clean["port"] < 65536 or isinstance(port, bool):
            raise ValueError
    except (TypeError, ValueError):
        fail("port", "must be a port number from 1 to 65535")
    try:
        clean["from_address"] = normalize_email(str(values.get("from_address") or ""),
                                                "from_address")
    except ValidationFailed as exc:
        errors += exc.errors
    username = str(values.get("username") or "").strip()
    if len(username) > 254 or any(c in username for c in "\r\n\0"):
        fail("username", "at most 254 characters, on one line")
    clean["username"] = username or None
    if not errors:
        _check_reachable(clean["host"], clean["port"])
    if errors:
        raise ValidationFailed(errors)
    return clean


def _check_reachable(host: str, port: int) -> None:
    try:
        outbound.check_host(host, port)
    except outbound.BlockedDestination as exc:
        raise ValidationFailed.field("host", exc.detail) from exc
    except outbound.Unresolvable as exc:
        raise ValidationFailed.field("host", f"{host} has no address: check the "
                                             "name") from exc


def save(access: Access, values: dict[str, Any]) -> MailServer:
    """Set the tenant's own server (all fields at once); the caller commits. A username
    signs in with `password`, sealed in the vault; an empty password (or the mask)
    keeps the stored one."""
    access.require("tenant.manage")
    tenant = access.require_tenant()
    clean = validate(values)
    username = clean.pop("username")
    server = _row(tenant.id)
    if server is None:
        server = MailServer(tenant_id=tenant.id, **clean)
        db.session.add(server)
    else:
        for name, value in clean.items():
            setattr(server, name, value)
    previous = server.credential_id
    server.credential_id = _sign_in(access, previous, username, str(values.get("password")
                                                                     or ""), clean["host"])
    server.updated_at = utcnow()
    db.session.flush()
    if previous is not None and server.credential_id is None:
        credentials.delete(access, previous)
    audit.record("mail_server.updated", target_type="tenant", target_id=tenant.id,
                 details={**clean, "username": username})
    return server


def _sign_in(access: Access, current: uuid.UUID | None, username: str | None,
             password: str, host: str) -> uuid.UUID | None:
    """The credential the server signs in with (None: no sign-in)."""
    if username is None:
        return None
    keep = password in ("", PLACEHOLDER)
    if current is None:
        if keep:
            raise ValidationFailed.field("password", "enter the password for this username")
        made = credentials.create(access, name=f"Mail server sign-in ({host})"[:120],
                                  kind="basic",
                                  fields={"username": username, "password": password})
        return made.id
    fields = {"username": username} if keep else {"username": username, "password": password}
    credentials.update(access, current, fields=fields)
    return current


def remove(access: Access) -> None:
    """Back to the agency's server or the relay; the caller commits."""
    access.require("tenant.manage")
    tenant = access.require_tenant()
    server = _row(tenant.id)
    if server is None:
        raise NotFound("this workspace has no mail server of its own")
    credential_id = server.credential_id
    db.session.delete(server)
    db.session.flush()
    if credential_id is not None:
        credentials.delete(access, credential_id)
    audit.record("mail_server.removed", target_type="tenant", target_id=tenant.id,
                 details={"host": server.host})


def send_test(access: Access) -> OutboxMessage:
    """A test message to the person asking, by the route the tenant's mail takes now;
    the caller commits. Its status (and the error of a failed attempt) is `test_message`."""
    access.require("tenant.manage")
    tenant = access.require_tenant()
    user = access.principal.user
    used = route(tenant)
    message = mail.queue_mail(user.email, TEST_TEMPLATE, {
        "name": user.name,
        "server": used.server.host if used.server is not None and used.source == "own"
        else None,
    }, tenant_id=tenant.id)
    audit.record("mail_server.tested", target_type="tenant", target_id=tenant.id,
                 details={"to": user.email, "route": used.source})
    return message


def test_message(access: Access, message_id: str) -> OutboxMessage:
    """A test message this tenant sent (404 for anything else)."""
    access.require("tenant.read")
    tenant = access.require_tenant()
    ident = parse_id(message_id)
    message = db.session.get(OutboxMessage, ident, populate_existing=True) if ident else None
    if message is None or message.sender_tenant_id != tenant.id \
            or message.template != TEST_TEMPLATE:
        raise NotFound("no such test message")
    return message


# --------------------------------------------------------------------------- delivery


def transport_for(tenant_id: uuid.UUID) -> mail_transport.Transport | None:
    """The server a mail about `tenant_id` leaves through, its sign-in opened from the
    vault (a use the vault records); None: the installation's relay."""
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        return None
    used = route(tenant)
    if used.server is None or used.owner is None:
        return None
    owner_id, server = used.owner.id, used.server
    # Read before the vault commits its record: afterwards the row is out of scope.
    settings = {"host": server.host, "port": server.port, "security": server.security,
                "from_address": server.from_address}
    credential_id = server.credential_id
    username = password = None
    if credential_id is not None:
        with in_tenant(owner_id):
            values = vault.use_credential(credential_id, USE_PURPOSE)
        username = str(values.get("username") or "") or None
        password = str(values.get("password") or "") or None
    return mail_transport.Transport(**settings, owner_tenant_id=owner_id, username=username,
                                    password=password)


def report(transport: mail_transport.Transport, error: str | None) -> None:
    """Keep how the last delivery through a tenant's server went, for its page."""
    now = utcnow()
    values: dict[str, Any] = {"last_sent_at": now} if error is None else \
        {"last_error_at": now, "last_error": error[:2000]}
    with in_tenant(transport.owner_tenant_id):
        db.session.execute(update(MailServer).where(
            MailServer.tenant_id == transport.owner_tenant_id).values(**values))
        db.session.commit()


def install() -> None:
    mail_transport.set_transport_hooks(transport_for, report)
