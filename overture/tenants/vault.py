"""The vault: envelope encryption of credential secrets, per tenant.

    master key (env/file, `platform.crypto`) --wraps--> tenant data key (`tenant_keys`)
    tenant data key --seals--> a credential's secret fields (`credentials.sealed`)

Associated data binds every ciphertext to where it belongs: a data key to its tenant
and version, a credential's secrets to its tenant, its id and the key version. A
ciphertext copied into another row, or another tenant, does not open.

Plaintext leaves this module only through `use_credential`, which records the use.
Data keys are unwrapped per operation and never cached: a process holds no table
of decrypted keys or secrets for a memory dump to find.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from overture.platform import audit, crypto
from overture.platform.config import Settings
from overture.platform.crypto import DecryptionFailed, KeyWrapper, LocalKeyWrapper
from overture.platform.db import current_tenant_id, db, get_or_404, utcnow
from overture.platform.errors import ConfigError, ValidationFailed
from overture.platform.logging import get_logger
from overture.tenants.vault_models import Credential, MasterKeyProbe, TenantKey

log = get_logger(__name__)

WRAPPER = "overture.vault.wrapper"
VERIFIED = "overture.vault.verified"
PROBE_PLAINTEXT = b"overture master key probe v1"


# --------------------------------------------------------------------------- start-up


def install(app: Flask, settings: Settings) -> None:
    """Load the master keyring into `app` and prove it opens what the database holds.

    Raises ConfigError naming the master key that is missing or wrong: a process that
    cannot decrypt must not start and serve credentials that silently do not work.
    """
    wrapper = LocalKeyWrapper(crypto.load_keyring(settings))
    app.extensions[WRAPPER] = wrapper
    app.extensions[VERIFIED] = False
    with app.app_context():
        try:
            verify_master_keys(wrapper)
        except (OperationalError, ProgrammingError) as exc:
            # Database down or not migrated yet: /readyz reports the first; the check
            # runs again before this process first touches a data key.
            db.session.rollback()
            log.warning("vault.startup_check_deferred", reason=type(exc).__name__)
            return
        app.extensions[VERIFIED] = True


def verify_master_keys(wrapper: KeyWrapper) -> list[str]:
    """Every master key that has wrapped data keys is held and is the right one."""
    kids = []
    for probe in db.session.scalars(select(MasterKeyProbe).order_by(MasterKeyProbe.kid)):
        if not wrapper.holds(probe.kid):
            raise ConfigError(
                f"master key '{probe.kid}' is missing: tenant data keys are wrapped under it. "
                "Add it to OVERTURE_MASTER_KEY (or OVERTURE_MASTER_KEY_FILE); the vault "
                "will not start without it")
        try:
            ok = wrapper.unwrap(probe.kid, probe.wrapped, _probe_aad(probe.kid)) \
                == PROBE_PLAINTEXT
        except DecryptionFailed:
            ok = False
        if not ok:
            raise ConfigError(
                f"master key '{probe.kid}' cannot unwrap the stored data keys: this is not "
                "the key they were wrapped with. Restore the original key under that id")
        kids.append(probe.kid)
    return kids


def key_wrapper() -> KeyWrapper:
    app = current_app
    wrapper = app.extensions.get(WRAPPER)
    if wrapper is None:
        raise ConfigError("the vault is not installed in this app (call vault.install)")
    if not app.extensions.get(VERIFIED):
        verify_master_keys(wrapper)
        app.extensions[VERIFIED] = True
    return wrapper


def _probe_aad(kid: str) -> bytes:
    return f"overture/master-key-probe|{kid}".encode()


def ensure_probe(kid: str) -> None:
    """Record that `kid` wraps data keys (in the caller's transaction)."""
    if db.session.get(MasterKeyProbe, kid) is not None:
        return
    wrapped_kid, wrapped = key_wrapper().wrap(PROBE_PLAINTEXT, _probe_aad(kid))
    assert wrapped_kid == kid, "probes are written for the primary master key"
    try:
        with db.session.begin_nested():
            db.session.add(MasterKeyProbe(kid=kid, wrapped=wrapped))
    except IntegrityError:
        pass  # another process wrote it first: same kid, same key


# --------------------------------------------------------------------------- data keys


def _tenant() -> uuid.UUID:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise RuntimeError("the vault needs a tenant in scope")
    return tenant_id


def _data_key_aad(tenant_id: uuid.UUID, version: int) -> bytes:
    return f"overture/tenant-key|{tenant_id}|{version}".encode()


def latest_key_version() -> int | None:
    return db.session.scalar(select(func.max(TenantKey.version)))


def add_key_version(version: int) -> int:
    """A fresh random data key as `version` of the scope tenant's key, wrapped under the
    primary master key. Two processes racing for the same version: the first wins."""
    tenant_id = _tenant()
    wrapper = key_wrapper()
    kid, wrapped = wrapper.wrap(crypto.new_key(), _data_key_aad(tenant_id, version))
    ensure_probe(kid)
    try:
        with db.session.begin_nested():
            db.session.add(TenantKey(tenant_id=tenant_id, version=version, master_kid=kid,
                                     wrapped_key=wrapped))
    except IntegrityError:
        pass
    return version


def current_key_version() -> int:
    """The version new secrets are sealed under: the newest, created on first use."""
    version = latest_key_version()
    return version if version is not None else add_key_version(1)


def _data_key(version: int) -> bytes:
    row = db.session.scalars(select(TenantKey).where(TenantKey.version == version)
                             .execution_options(populate_existing=True)).one_or_none()
    if row is None:
        raise DecryptionFailed(f"data key version {version} of this tenant is gone")
    return key_wrapper().unwrap(row.master_kid, row.wrapped_key,
                                _data_key_aad(_tenant(), version))


def rewrap(key: TenantKey) -> bool:
    """Wrap `key` under the primary master key, if it is not already. True if changed."""
    wrapper = key_wrapper()
    if key.master_kid == wrapper.primary_kid:
        return False
    aad = _data_key_aad(_tenant(), key.version)
    kid, wrapped = wrapper.wrap(wrapper.unwrap(key.master_kid, key.wrapped_key, aad), aad)
    ensure_probe(kid)
    key.master_kid, key.wrapped_key, key.rewrapped_at = kid, wrapped, utcnow()
    return True


# --------------------------------------------------------------------------- secrets


def _secrets_aad(credential: Credential, version: int) -> bytes:
    return f"overture/credential|{_tenant()}|{credential.id}|{version}".encode()


def _open(credential: Credential) -> dict[str, str]:
    key = _data_key(credential.key_version)
    plain = crypto.open_sealed(key, credential.sealed,
                               _secrets_aad(credential, credential.key_version))
    return json.loads(plain)


def _seal(credential: Credential, secrets: dict[str, str], version: int | None = None) -> None:
    version = current_key_version() if version is None else version
    payload = json.dumps(secrets, sort_keys=True, separators=(",", ":")).encode()
    credential.sealed = crypto.seal(_data_key(version), payload,
                                    _secrets_aad(credential, version))
    credential.key_version = version
    credential.secret_fields = sorted(secrets)


def seal_secrets(credential: Credential, secrets: dict[str, str]) -> None:
    """Seal a new credential's secrets. Its id must be set: the ciphertext is bound to it."""
    if credential.id is None:
        raise RuntimeError("give the credential its id before sealing")
    credential.tenant_id = _tenant()
    _seal(credential, secrets)


def replace_secrets(credential: Credential, new_values: dict[str, str],
                    keep: set[str]) -> None:
    """Re-seal with the stored values of the fields in `keep` and `new_values` on top.

    The caller never sees the stored values; it names which to keep.
    """
    stored = _open(credential)
    missing = sorted(keep - set(stored))
    if missing:
        raise ValidationFailed.field(f"fields.{missing[0]}", "has no stored value to keep")
    _seal(credential, {**{k: stored[k] for k in keep}, **new_values})


def reseal(credential: Credential, version: int) -> bool:
    """Re-seal under data key `version` (rotation). True if it changed."""
    if credential.key_version == version:
        return False
    _seal(credential, _open(credential), version)
    return True


def use_credential(credential_id: uuid.UUID | str, purpose: str) -> dict[str, Any]:
    """The credential's values, secrets included, for a call this process is about to make.

    The one door out of the vault. It records `credential.used` (with the purpose) and
    the last-used time, and commits them at once: the record of a secret leaving must
    stick even if the caller's work then fails. Call it outside other pending writes.
    Never log, store or return what it gives you.
    """
    values = use_in_transaction(get_or_404(Credential, credential_id, "credential"), purpose)
    db.session.commit()
    return values


def use_in_transaction(credential: Credential, purpose: str) -> dict[str, Any]:
    """As `use_credential`, inside the caller's transaction (which holds a lock it must
    keep, as a token refresh does); the caller commits."""
    purpose = (purpose or "").strip()
    if not purpose:
        raise ValueError("say what the credential is used for")
    values = {**credential.public, **_open(credential)}
    credential.last_used_at = utcnow()
    audit.record("credential.used", target_type="credential", target_id=credential.id,
                 details={"name": credential.name, "kind": credential.kind,
                          "purpose": purpose[:200]})
    return values
