"""API keys: `ovt_<lookup>_<secret>`, shown once, stored as a SHA-256 of the whole key.

Keys carry 256 bits of randomness, so a fast hash is right here (argon2 is for
guessable passwords). A key acts with its scopes, never more than what its creator
may do in the tenant at the moment of use: demoting or removing the creator
narrows or disables their keys at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select

from overture.platform import audit
from overture.platform.db import db, get_or_404, narrow_scope, scoped_to, unscoped, utcnow
from overture.platform.errors import Unauthenticated, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.tenants.access import Access
from overture.tenants.models import ApiKey, Tenant, TenantStatus
from overture.tenants.roles import PERMISSIONS

KEY_PREFIX = "ovt_"
LOOKUP_CHARS = 12
LAST_USED_RESOLUTION = timedelta(minutes=1)  # avoid a write on every request
SEEN_IPS_KEPT = 20  # addresses a key was used from; a use from any other is audited


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    if not token.startswith(KEY_PREFIX):
        return None
    parts = token[len(KEY_PREFIX):].split("_", 1)
    if len(parts) != 2 or len(parts[0]) != LOOKUP_CHARS or not parts[1]:
        return None
    return KEY_PREFIX + parts[0], parts[1]


def create_key(access: Access, name: str, scopes: list[str] | None,
               expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key and its token. The token is returned this once and never stored."""
    access.require("apikey.manage")
    name = (name or "").strip()
    if not 1 <= len(name) <= 120:
        raise ValidationFailed.field("name", "must be 1 to 120 characters")
    scopes = sorted(set(access.permissions) if scopes is None else set(scopes))
    unknown = [s for s in scopes if s not in PERMISSIONS]
    if unknown:
        raise ValidationFailed.field("scopes", f"unknown permissions: {', '.join(unknown)}")
    beyond = [s for s in scopes if not access.can(s)]
    if beyond:
        raise ValidationFailed.field("scopes", f"beyond your own permissions: {', '.join(beyond)}")
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed.field("expires_at", "must be in the future")
    lookup = "".join(secrets.choice("abcdefghijkmnopqrstuvwxyz23456789")
                     for _ in range(LOOKUP_CHARS))
    token = f"{KEY_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
    key = ApiKey(name=name, prefix=KEY_PREFIX + lookup, secret_hash=_digest(token),
                 scopes=scopes, created_by_id=access.principal.user.id, expires_at=expires_at)
    db.session.add(key)
    db.session.flush()
    audit.record("apikey.created", target_type="api_key", target_id=key.id,
                 details={"name": key.name, "prefix": key.prefix, "scopes": scopes,
                          "expires_at": expires_at.isoformat() if expires_at else None})
    return key, token


def list_keys(access: Access, cursor: str | None, limit: int | None) -> Page[ApiKey]:
    access.require("apikey.read")
    return paginate(select(ApiKey), ApiKey.id, cursor, limit)


def get_key(access: Access, key_id: str) -> ApiKey:
    access.require("apikey.read")
    return get_or_404(ApiKey, key_id, "API key")


def revoke(access: Access, key: ApiKey) -> ApiKey:
    access.require("apikey.manage")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record("apikey.revoked", target_type="api_key", target_id=key.id,
                     details={"name": key.name, "prefix": key.prefix})
    return key


def authenticate_key(token: str, ip: str | None) -> ApiKey:
    """The live key for a bearer token, its tenant's scope opened; else Unauthenticated.

    Keys are found by their visible prefix before any tenant is known; the database
    shows this transaction only rows with that prefix.
    """
    parts = _split(token or "")
    if parts is None:
        raise Unauthenticated("invalid API key")
    prefix, _ = parts
    digest = _digest(token)
    narrow_scope(api_key_prefix=prefix)
    candidates = db.session.scalars(unscoped(select(ApiKey).where(ApiKey.prefix == prefix)))
    key = next((k for k in candidates if hmac.compare_digest(k.secret_hash, digest)), None)
    now = utcnow()
    if key is None or key.revoked_at is not None or (key.expires_at and key.expires_at <= now):
        raise Unauthenticated("invalid API key")
    tenant = db.session.get(Tenant, key.tenant_id)
    if tenant is None or tenant.status == TenantStatus.DELETED:
        raise Unauthenticated("invalid API key")
    new_address = ip is not None and ip not in (key.seen_ips or [])
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION \
            or key.last_used_ip != ip:
        with scoped_to(key.tenant_id, api_key_prefix=prefix):
            key.last_used_at = now
            key.last_used_ip = ip
            if new_address:
                key.seen_ips = [*(key.seen_ips or [])[-(SEEN_IPS_KEPT - 1):], ip]
                audit.record("apikey.used_from_new_ip", target_type="api_key",
                             target_id=key.id, details={"ip": ip, "prefix": key.prefix},
                             actor=audit.Actor("api_key", str(key.id), key.prefix))
            # Its own transaction: a read-only request never commits, and the
            # last-used time must stick all the same.
            db.session.commit()
    return key
