"""Event subscriptions of the tenant in scope: create, read, change, rotate the signing
secret, delete. Managing them needs `tenant.manage` (reading too: a subscription's URL
says where the workspace's data goes).

The signing secret is a Standard Webhooks secret (`whsec_` + base64 of 32 random bytes),
kept sealed in the vault as a credential of the subscription; it is shown once, when it
is made. Rotating keeps the old secret valid for an overlap (a day unless told): until
then every delivery carries a signature with each, space-separated in
`webhook-signature`, so the receiver can switch secrets at its own pace.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from overture.platform import audit, http
from overture.platform.db import db, get_or_404, utcnow
from overture.platform.errors import ValidationFailed
from overture.platform.ids import new_id
from overture.tenants import vault
from overture.tenants.access import Access
from overture.tenants.events import outbox
from overture.tenants.events.models import EventSubscription, as_dict
from overture.tenants.vault_models import Credential

PERMISSION = "tenant.manage"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)
MAX_TYPES = 20
UNSET: Any = object()


@dataclass(frozen=True)
class WithSecret:
    """A subscription and its new secret, which this response alone shows."""

    subscription: EventSubscription
    secret: str


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# --------------------------------------------------------------------------- checks


def clean_url(url: object) -> str:
    """An http(s) URL the outbound guard lets the platform reach, or a 422 on `url`."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationFailed.field("url", "give the URL the events are POSTed to")
    url = url.strip()
    if len(url) > 2000:
        raise ValidationFailed.field("url", "at most 2000 characters")
    if not url.lower().startswith(("https://", "http://")):
        raise ValidationFailed.field("url", "must start with https:// (or http://)")
    try:
        http.check_destination(url)
    except http.Unresolvable:
        raise ValidationFailed.field("url", "its host name does not resolve") from None
    except http.BlockedDestination as exc:
        raise ValidationFailed.field("url", f"the platform may not send there: {exc}") \
            from None
    return url


def clean_types(types: object) -> list[str]:
    if not isinstance(types, list) or not types:
        raise ValidationFailed.field("event_types", "choose at least one event type, or *")
    allowed = {*outbox.EVENT_TYPES, "*"}
    unknown = [t for t in types if t not in allowed]
    if unknown:
        raise ValidationFailed.field("event_types", f"unknown event type {unknown[0]!r}: "
                                     f"use {', '.join(outbox.EVENT_TYPES)} or *")
    return sorted(set(types))[:MAX_TYPES]


def _clean_description(text: object) -> str:
    if text is None:
        return ""
    if not isinstance(text, str) or len(text) > 500:
        raise ValidationFailed.field("description", "text of at most 500 characters")
    return text.strip()


def _clean_include_clients(access: Access, include: bool) -> bool:
    if include and not access.require_tenant().is_agency:
        raise ValidationFailed.field("include_clients",
                                     "only an agency has client workspaces to include")
    return bool(include)


# --------------------------------------------------------------------------- CRUD


def list_subscriptions(access: Access) -> list[EventSubscription]:
    access.require(PERMISSION)
    return list(db.session.scalars(select(EventSubscription)
                                   .order_by(EventSubscription.created_at)))


def get_subscription(access: Access, subscription_id: str | uuid.UUID) -> EventSubscription:
    access.require(PERMISSION)
    return get_or_404(EventSubscription, subscription_id,
                      "event subscription")


def create(access: Access, *, url: object, event_types: object, description: object = None,
           enabled: bool = True, include_clients: bool = False) -> WithSecret:
    access.require(PERMISSION)
    tenant = access.require_tenant()
    subscription = EventSubscription(
        id=new_id(), tenant_id=tenant.id, url=clean_url(url),
        event_types=clean_types(event_types), description=_clean_description(description),
        enabled=bool(enabled), include_clients=_clean_include_clients(access, include_clients),
        created_by_id=access.principal.user.id)
    secret = new_secret()
    credential = Credential(id=new_id(), tenant_id=tenant.id,
                            name=f"Event subscription {subscription.id}", kind="custom",
                            public={"purpose": "event subscription signing secret"})
    vault.seal_secrets(credential, {"current": secret})
    db.session.add(credential)
    db.session.flush()
    subscription.credential_id = credential.id
    db.session.add(subscription)
    db.session.flush()
    audit.record("event_subscription.created", target_type="event_subscription",
                 target_id=subscription.id, details=as_dict(subscription))
    outbox.forget()
    return WithSecret(subscription, secret)


def update(access: Access, subscription: EventSubscription, *, url: object = UNSET,
           event_types: object = UNSET, description: object = UNSET, enabled: object = UNSET,
           include_clients: object = UNSET) -> EventSubscription:
    access.require(PERMISSION)
    if url is not UNSET:
        subscription.url = clean_url(url)
    if event_types is not UNSET:
        subscription.event_types = clean_types(event_types)
    if description is not UNSET:
        subscription.description = _clean_description(description)
    if include_clients is not UNSET:
        subscription.include_clients = _clean_include_clients(access, bool(include_clients))
    if enabled is not UNSET:
        if enabled and not subscription.enabled:  # back on: its waiting deliveries go
            subscription.disabled_reason = subscription.disabled_at = None
            outbox.announce_waiting(subscription)
        subscription.enabled = bool(enabled)
    db.session.flush()
    audit.record("event_subscription.updated", target_type="event_subscription",
                 target_id=subscription.id, details=as_dict(subscription))
    outbox.forget()
    return subscription


def delete(access: Access, subscription: EventSubscription) -> None:
    access.require(PERMISSION)
    credential = db.session.get(Credential, subscription.credential_id)
    audit.record("event_subscription.deleted", target_type="event_subscription",
                 target_id=subscription.id, details=as_dict(subscription))
    db.session.delete(subscription)
    db.session.flush()
    if credential is not None:
        db.session.delete(credential)
    outbox.forget()


# --------------------------------------------------------------------------- secrets


def rotate_secret(access: Access, subscription: EventSubscription,
                  overlap: timedelta = DEFAULT_OVERLAP,
                  now: datetime | None = None) -> WithSecret:
    """A new current secret; the one it replaces stays valid for `overlap`."""
    access.require(PERMISSION)
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise ValidationFailed.field("overlap_seconds", "from 0 to 604800 (seven days)")
    credential = get_or_404(Credential, subscription.credential_id, "credential")
    secret = new_secret()
    old = vault.use_in_transaction(credential, "rotate an event subscription's secret")
    vault.replace_secrets(credential, {"current": secret,
                                       "previous": str(old.get("current") or "")}, keep=set())
    subscription.previous_expires_at = (now or utcnow()) + overlap
    audit.record("event_subscription.secret_rotated", target_type="event_subscription",
                 target_id=subscription.id,
                 details={"overlap_seconds": int(overlap.total_seconds())})
    return WithSecret(subscription, secret)


def signing_secrets(subscription: EventSubscription, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    until its overlap ends. Opening them is recorded (the vault's rule); the caller
    commits."""
    credential = get_or_404(Credential, subscription.credential_id, "credential")
    values = vault.use_in_transaction(credential, "sign an outbound event")
    found = [str(values["current"])]
    previous = str(values.get("previous") or "")
    if previous and subscription.previous_expires_at and now < subscription.previous_expires_at:
        found.append(previous)
    return found
