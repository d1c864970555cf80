"""Key rotation: re-wrap data keys under a new master key; re-seal a tenant's secrets
under a fresh data key. Both commit one row at a time and work out where they stand
from the rows themselves, so a run that is killed half-way is finished by running it
again.

* rotate-master: every data key whose master kid is not the primary is unwrapped
  with its old master key and wrapped under the primary. Once no data key anywhere
  uses an old master key, its probe goes, and that key may leave the keyring.
  Roll the new primary out to every process before running it: a process still
  wrapping under the old primary would put new keys back under it.
* rotate-tenant: if the tenant has one data key version N, version N+1 is created
  (committed first). Then, while any credential is sealed under a version other than
  the newest, one is re-sealed under the newest and committed. Finally every version
  but the newest is deleted. A run that finds more than one version is a rotation
  in progress and resumes it instead of starting another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from overture.platform import audit
from overture.platform.db import db, scoped_to
from overture.tenants import mfa, vault
from overture.tenants.models import Tenant
from overture.tenants.vault_models import Credential, MasterKeyProbe, TenantKey

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class TenantRotation:
    slug: str
    to_version: int
    resumed: bool
    resealed: int = 0
    removed_versions: list[int] = field(default_factory=list)


@dataclass
class MasterRotation:
    primary_kid: str
    rewrapped: int = 0
    retired_kids: list[str] = field(default_factory=list)


def _next_stale(target: int) -> Credential | None:
    return db.session.scalars(
        select(Credential).where(Credential.key_version != target)
        .order_by(Credential.id).limit(1).with_for_update()
        .execution_options(populate_existing=True)).first()


def rotate_tenant(tenant: Tenant, progress: Progress = _quiet) -> TenantRotation:
    """Re-seal every credential of `tenant` under a fresh data key (see the module doc)."""
    with scoped_to(tenant.id):
        versions = sorted(db.session.scalars(select(TenantKey.version)))
        resumed = len(versions) > 1
        if resumed:
            target = versions[-1]
            progress(f"{tenant.slug}: resuming the rotation to data key version {target}")
        else:
            target = vault.add_key_version(versions[-1] + 1 if versions else 1)
            db.session.commit()
            progress(f"{tenant.slug}: new data key version {target}")
        report = TenantRotation(tenant.slug, target, resumed)
        total = db.session.scalar(select(func.count()).select_from(Credential)
                                  .where(Credential.key_version != target)) or 0
        while (credential := _next_stale(target)) is not None:
            vault.reseal(credential, target)
            db.session.commit()  # one credential per transaction: progress survives a kill
            report.resealed += 1
            progress(f"{tenant.slug}: resealed {report.resealed}/{total}")
        old = list(db.session.scalars(select(TenantKey).where(TenantKey.version != target)
                                      .order_by(TenantKey.version)))
        report.removed_versions = [k.version for k in old]
        for key in old:
            db.session.delete(key)
        audit.record("vault.key_rotated", target_type="tenant", target_id=tenant.id,
                     details={"to_version": target, "resealed": report.resealed,
                              "removed_versions": report.removed_versions,
                              "resumed": resumed})
        db.session.commit()
    return report


def rotate_master(progress: Progress = _quiet) -> MasterRotation:
    """Re-wrap every tenant's data keys under the primary master key."""
    primary = vault.key_wrapper().primary_kid
    report = MasterRotation(primary)
    # Every tenant, deleted ones included: their sealed rows still exist.
    tenants = db.session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.id)).all()
    for tenant_id, slug in tenants:
        with scoped_to(tenant_id):
            while (key := db.session.scalars(
                    select(TenantKey).where(TenantKey.master_kid != primary)
                    .order_by(TenantKey.version).limit(1).with_for_update()
                    .execution_options(populate_existing=True)).first()) is not None:
                old_kid = key.master_kid
                vault.rewrap(key)
                audit.record("vault.key_rewrapped", target_type="tenant", target_id=tenant_id,
                             details={"version": key.version, "from_kid": old_kid,
                                      "to_kid": primary})
                db.session.commit()  # one data key per transaction
                report.rewrapped += 1
                progress(f"{slug}: data key version {key.version} {old_kid} -> {primary}")
    # Two-factor seeds are sealed under the master key itself (tenants.mfa).
    if resealed := mfa.reseal_under_primary():
        db.session.commit()
        progress(f"two-factor seeds: {resealed} re-sealed under {primary}")
    # Nothing is wrapped under another master key now: its probe goes, and it may too.
    retired = list(db.session.scalars(select(MasterKeyProbe)
                                      .where(MasterKeyProbe.kid != primary)))
    report.retired_kids = sorted(p.kid for p in retired)
    for probe in retired:
        db.session.delete(probe)
    db.session.commit()
    return report
