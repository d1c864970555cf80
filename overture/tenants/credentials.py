"""Credentials: create, list, read (masked), update, delete. Sealing is `vault`'s job.

Which fields are secret is decided by the kind (`custom` credentials name theirs),
never guessed from the values. Reads show every secret as the placeholder; an update
that sends the placeholder back keeps the stored value. A secret field never becomes
public again: declassifying would hand its value to anyone who can read.

Errors and audit details name fields, never their values.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select

from overture.platform import audit
from overture.platform.db import db, get_or_404, save_named, utcnow
from overture.platform.errors import Conflict, NotFound, ValidationFailed
from overture.platform.ids import new_id, parse_id
from overture.platform.pagination import Page, paginate
from overture.platform.validation import clean_name
from overture.tenants import vault
from overture.tenants.access import Access
from overture.tenants.events.models import EventSubscription
from overture.tenants.vault_models import PLACEHOLDER, Credential

# The secret fields of each kind, and the fields it cannot do without.
SECRET_FIELDS: dict[str, frozenset[str]] = {
    "api_key": frozenset({"api_key"}),
    "basic": frozenset({"password"}),
    "oauth2": frozenset({"access_token", "refresh_token", "client_secret"}),
    "custom": frozenset(),  # the caller lists them in `secret_fields`
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "api_key": ("api_key",),
    "basic": ("username", "password"),
    "oauth2": (),
    "custom": (),
}
KINDS = tuple(SECRET_FIELDS)
FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
CONNECTOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
MAX_FIELDS = 50
MAX_SECRET_CHARS = 16_384
MAX_PUBLIC_CHARS = 2_000
UNSET: Any = object()


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.field(field, message)


def _clean_connector(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if not CONNECTOR_RE.match(key):
        raise _invalid("connector_key", "letters, digits, '.', '_' or '-', at most 80")
    return key


def _check_unique(name: str, credential_id: uuid.UUID | None = None) -> None:
    stmt = select(Credential.id).where(Credential.name == name)
    if credential_id is not None:
        stmt = stmt.where(Credential.id != credential_id)
    if db.session.scalars(stmt).first() is not None:
        raise Conflict(f"a credential named '{name}' exists")


def _check_field_name(fname: object) -> str:
    if not isinstance(fname, str) or not FIELD_RE.match(fname):
        raise _invalid("fields", "field names are letters, digits, '_', '.' or '-' "
                                 "(at most 64), starting with a letter or '_'")
    return fname


def _secret_value(fname: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"fields.{fname}", "a secret must be a non-empty string")
    if len(value) > MAX_SECRET_CHARS:
        raise _invalid(f"fields.{fname}", f"at most {MAX_SECRET_CHARS} characters")
    return value


def _public_value(fname: str, value: object) -> object:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and len(value) <= MAX_PUBLIC_CHARS:
        return value
    raise _invalid(f"fields.{fname}", "must be a string (at most "
                                      f"{MAX_PUBLIC_CHARS} characters), number or boolean")


def _declared(kind: str, secret_fields: list[str] | None) -> set[str]:
    if kind not in SECRET_FIELDS:
        raise _invalid("kind", f"must be one of {', '.join(KINDS)}")
    if kind != "custom":
        if secret_fields is not None and set(secret_fields) != SECRET_FIELDS[kind]:
            raise _invalid("secret_fields", f"only custom credentials choose them; {kind} "
                                            f"seals {', '.join(sorted(SECRET_FIELDS[kind]))}")
        return set(SECRET_FIELDS[kind])
    return {_check_field_name(f) for f in secret_fields or []}


def _check_shape(kind: str, public: dict[str, Any], secret_names: set[str]) -> None:
    present = set(public) | secret_names
    for fname in REQUIRED[kind]:
        if fname not in present:
            raise _invalid(f"fields.{fname}", f"is required for {kind} credentials")
    if not secret_names:
        raise _invalid("fields", "a credential needs at least one secret field ("
                       + (", ".join(sorted(SECRET_FIELDS[kind])) or "named in secret_fields")
                       + ")")
    if len(present) > MAX_FIELDS:
        raise _invalid("fields", f"at most {MAX_FIELDS} fields")


def create(access: Access, *, name: str, kind: str, fields: dict[str, Any],
           connector_key: str | None = None,
           secret_fields: list[str] | None = None) -> Credential:
    access.require("credential.manage")
    tenant = access.require_tenant()
    name, connector_key = clean_name(name), _clean_connector(connector_key)
    declared = _declared(kind, secret_fields)
    if kind == "custom" and not declared:
        raise _invalid("secret_fields", "name the fields to seal")
    public: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for fname, value in (fields or {}).items():
        _check_field_name(fname)
        if fname in declared:
            if value == PLACEHOLDER:
                raise _invalid(f"fields.{fname}", "send the value itself, not the mask")
            secrets[fname] = _secret_value(fname, value)
        elif value is None:
            raise _invalid(f"fields.{fname}", "must not be null")
        else:
            public[fname] = _public_value(fname, value)
    missing = sorted(declared - set(secrets)) if kind == "custom" else []
    if missing:
        raise _invalid(f"fields.{missing[0]}", "is listed in secret_fields but has no value")
    _check_shape(kind, public, set(secrets))
    _check_unique(name)
    credential = Credential(id=new_id(), tenant_id=tenant.id, name=name, kind=kind,
                            connector_key=connector_key, public=public,
                            created_by_id=access.principal.user.id)
    vault.seal_secrets(credential, secrets)
    save_named(credential, name, "a credential", add=True)
    audit.record("credential.created", target_type="credential", target_id=credential.id,
                 details={"name": name, "kind": kind, "connector_key": connector_key,
                          "fields": sorted(public), "secret_fields": sorted(secrets)})
    return credential


def list_credentials(access: Access, cursor: str | None, limit: int | None,
                     kind: str | None = None,
                     connector_key: str | None = None) -> Page[Credential]:
    access.require("credential.read")
    stmt = select(Credential)
    if kind:
        stmt = stmt.where(Credential.kind == kind)
    if connector_key:
        stmt = stmt.where(Credential.connector_key == connector_key)
    return paginate(stmt, Credential.id, cursor, limit)


def get_credential(access: Access, credential_id: str | uuid.UUID) -> Credential:
    access.require("credential.read")
    return get_or_404(Credential, credential_id, "credential")


def _check_not_an_event_secret(credential: Credential) -> None:
    """An event subscription's signing secret changes only with its subscription."""
    if db.session.scalar(select(EventSubscription.id).where(
            EventSubscription.credential_id == credential.id).limit(1)) is not None:
        raise Conflict("this credential holds an event subscription's signing secret: "
                       "rotate it or delete the subscription on the Events page instead")


def _locked(credential_id: str | uuid.UUID) -> Credential:
    """The row, locked until commit: a rotation re-sealing it waits, and vice versa."""
    ident = parse_id(credential_id)
    row = None
    if ident is not None:
        row = db.session.scalars(
            select(Credential).where(Credential.id == ident).with_for_update()
            .execution_options(populate_existing=True)).one_or_none()
    if row is None:
        raise NotFound("credential not found")
    return row


def update(access: Access, credential_id: str | uuid.UUID, *, name: str | None = None,
           connector_key: Any = UNSET, fields: dict[str, Any] | None = None,
           secret_fields: list[str] | None = None) -> Credential:
    """Apply a merge patch: given fields replace, null removes, the placeholder keeps."""
    access.require("credential.manage")
    credential = _locked(credential_id)
    _check_not_an_event_secret(credential)
    changed: list[str] = []
    new_name = credential.name
    if name is not None and clean_name(name) != credential.name:
        new_name = clean_name(name)
        _check_unique(new_name, credential.id)
        changed.append("name")
    if connector_key is not UNSET and _clean_connector(connector_key) != credential.connector_key:
        credential.connector_key = _clean_connector(connector_key)
        changed.append("connector_key")
    replaced: list[str] = []
    field_changes: list[str] = []
    if fields is not None or secret_fields is not None:
        field_changes = _patch_fields(credential, fields or {}, secret_fields, replaced)
    if field_changes:
        changed.append("fields")
    if changed:
        user_id = access.principal.user.id
        credential.updated_at, credential.updated_by_id = utcnow(), user_id
        if replaced:
            credential.rotated_at, credential.rotated_by_id = credential.updated_at, user_id
        save_named(credential, new_name, "a credential")
        audit.record("credential.updated", target_type="credential", target_id=credential.id,
                     details={"name": credential.name, "kind": credential.kind,
                              "changed": changed, "fields_changed": field_changes,
                              "secrets_replaced": replaced})
    return credential


def _patch_fields(credential: Credential, patch: dict[str, Any],
                  secret_fields: list[str] | None, replaced: list[str]) -> list[str]:
    kind, stored = credential.kind, set(credential.secret_fields)
    declared = _declared(kind, secret_fields) if secret_fields is not None else (
        stored if kind == "custom" else set(SECRET_FIELDS[kind]))
    for fname in stored - declared:
        if patch.get(fname, UNSET) is not None:
            raise _invalid(f"fields.{fname}", "a secret field stays secret; remove it (null) "
                                              "to drop it")
    public, keep = dict(credential.public), set(stored)
    new_secrets: dict[str, str] = {}
    changed: set[str] = set()
    for fname, value in patch.items():
        _check_field_name(fname)
        if value is None:
            if fname in public or fname in keep:
                changed.add(fname)
            public.pop(fname, None)
            keep.discard(fname)
        elif fname in declared:
            if value == PLACEHOLDER:
                if fname not in stored:
                    raise _invalid(f"fields.{fname}", "has no stored value to keep")
                continue
            new_secrets[fname] = _secret_value(fname, value)
            keep.discard(fname)
            public.pop(fname, None)
            changed.add(fname)
        else:
            value = _public_value(fname, value)
            if public.get(fname, UNSET) != value:
                public[fname] = value
                changed.add(fname)
    for fname in sorted(declared & set(public)):  # a public field newly declared secret
        new_secrets[fname] = _secret_value(fname, public.pop(fname))
        changed.add(fname)
    if kind == "custom" and secret_fields is not None:
        unset = sorted(declared - keep - set(new_secrets))
        if unset:
            raise _invalid(f"fields.{unset[0]}", "is listed in secret_fields but has no value")
    _check_shape(kind, public, keep | set(new_secrets))
    if new_secrets or keep != stored:
        vault.replace_secrets(credential, new_secrets, keep)
    credential.public = public
    replaced += sorted(new_secrets)
    return sorted(changed)


def delete(access: Access, credential_id: str | uuid.UUID) -> None:
    access.require("credential.manage")
    credential = _locked(credential_id)
    _check_not_an_event_secret(credential)
    audit.record("credential.deleted", target_type="credential", target_id=credential.id,
                 details={"name": credential.name, "kind": credential.kind})
    db.session.delete(credential)
    db.session.flush()
