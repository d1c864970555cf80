"""Sealing the audit chains' heads outside the database.

Each tenant's events are hash-chained in the database (`audit`), and the hashes are
computed there too, on the hot path: whoever owns the table can edit an event and
recompute every later hash. So, now and then (the scheduler; `overture audit
checkpoint`), every tenant's head (tenant, seq, hash) is written outside the database
into a checkpoint record, MACed (HMAC-SHA256) with an audit key the database does not
hold. Each record's MAC also covers the MAC of the record before it, so records
cannot be edited, removed or reordered unseen either. `overture audit verify` then
checks every sealed head is still on its chain, with the same hash.

Audit keys: `OVERTURE_AUDIT_KEY` (`kid:base64url-32-bytes`, comma-separated, the
first seals), else keys derived from the vault's master keys with HKDF under their
own label (kid `master.<master kid>`). Both verify, so either can rotate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from overture.platform import crypto
from overture.platform.audit import AuditHead, ChainReport, SealedHead, verify_chain
from overture.platform.audit_sinks import (
    GENESIS_MAC,
    LOG_EVENT,
    CheckpointLedger,
    CheckpointSink,
    FileLedger,
    LogSink,
)
from overture.platform.config import Settings
from overture.platform.db import current_tenant_id, db, scoped_to, utcnow
from overture.platform.errors import ConfigError

VERSION = 1
HEADS_PER_RECORD = 50  # a record stays one log line under common collectors' limits
DERIVATION_LABEL = b"overture audit checkpoint mac v1"
DERIVED_PREFIX = "master."
FIELDS = ("v", "at", "kid", "prev", "heads")


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class AuditKeyring:
    keys: dict[str, bytes] = field(repr=False)  # kid -> key, the sealing key first

    @property
    def primary(self) -> str:
        return next(iter(self.keys))

    def mac(self, kid: str, body: dict[str, Any]) -> str:
        return hmac.new(self.keys[kid], _canonical(body), hashlib.sha256).hexdigest()


def load_audit_keyring(settings: Settings) -> AuditKeyring:
    """OVERTURE_AUDIT_KEY's keys (if set), then one derived from each master key."""
    keys: dict[str, bytes] = {}
    if settings.audit_key:
        for entry in crypto.parse_keyring(settings.audit_key, "OVERTURE_AUDIT_KEY",
                                           "audit key").keys:
            keys[entry.kid] = entry.key
    for master in crypto.load_keyring(settings).keys:
        kid = DERIVED_PREFIX + master.kid
        if kid in keys:
            raise ConfigError(f"OVERTURE_AUDIT_KEY: the kid {kid!r} is taken by the key "
                              "derived from that master key; name yours otherwise")
        keys[kid] = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                         info=DERIVATION_LABEL).derive(master.key)
    return AuditKeyring(keys)


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps({name: body[name] for name in FIELDS}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True).encode()


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Head:
    tenant: str
    seq: int
    hash: str


def current_heads(tenant_ids: Iterable[uuid.UUID]) -> list[Head]:
    """Each tenant's chain head as the database holds it now (tenants with events)."""
    heads = []
    for tenant_id in tenant_ids:
        with scoped_to(tenant_id):
            row = db.session.scalars(select(AuditHead)).one_or_none()
            if row is not None and row.last_seq > 0:
                heads.append(Head(str(tenant_id), row.last_seq, row.last_hash))
    return heads


@dataclass(frozen=True)
class SealReport:
    records: int
    heads: int
    kid: str
    path: Path


class HeadSealer:
    """Writes checkpoints, remembering what it sealed: a later checkpoint holds only
    the heads that moved since (every head, on a new file)."""

    def __init__(self, mirrors: Sequence[CheckpointSink] | None = None) -> None:
        self.mirrors = list(mirrors) if mirrors is not None else [LogSink()]
        self.sealed: dict[str, int] = {}

    def checkpoint(self, settings: Settings, tenant_ids: Iterable[uuid.UUID]) -> SealReport:
        keyring = load_audit_keyring(settings)
        heads = current_heads(tenant_ids)
        ledger: CheckpointLedger = FileLedger(settings.audit_checkpoint_path)
        with ledger.appending() as (prev, write):
            if prev != GENESIS_MAC:
                heads = [h for h in heads if self.sealed.get(h.tenant) != h.seq]
            records = seal_records(keyring, prev, heads)
            for record in records:
                write(record)
                for mirror in self.mirrors:
                    mirror.write(record)
        self.sealed.update({h.tenant: h.seq for h in heads})
        return SealReport(len(records), len(heads), keyring.primary,
                          settings.audit_checkpoint_path)


def seal_records(keyring: AuditKeyring, prev: str, heads: list[Head]) -> list[dict[str, Any]]:
    """Records of `heads`, chained from `prev`; one (empty) when nothing moved, so the
    ledger shows the sealer was alive."""
    at, kid = utcnow().isoformat(timespec="milliseconds"), keyring.primary
    heads, records = sorted(heads, key=lambda h: h.tenant), []
    for start in range(0, max(len(heads), 1), HEADS_PER_RECORD):
        chunk = heads[start:start + HEADS_PER_RECORD]
        body: dict[str, Any] = {
            "v": VERSION, "at": at, "kid": kid, "prev": prev,
            "heads": [{"tenant": h.tenant, "seq": h.seq, "hash": h.hash} for h in chunk]}
        body["mac"] = prev = keyring.mac(kid, body)
        records.append(body)
    return records


# --------------------------------------------------------------------------- reading


@dataclass
class Checkpoints:
    """What the checkpoint files vouch for, and everything wrong with them."""

    records: int = 0
    last_at: str | None = None
    problems: list[str] = field(default_factory=list)
    heads: dict[uuid.UUID, dict[int, SealedHead]] = field(default_factory=dict)

    def of(self, tenant_id: uuid.UUID) -> dict[int, SealedHead]:
        return self.heads.get(tenant_id, {})


def read_checkpoints(paths: Sequence[Path], keyring: AuditKeyring) -> Checkpoints:
    """Check every record of `paths` (one chain, in that order): its MAC under its key,
    and that it follows the record before it. Heads count only from records whose MAC
    holds. Lines of other log events (a shipped log) are skipped."""
    found = Checkpoints()
    expected: str | None = GENESIS_MAC
    for path in paths:
        for number, text in _lines(path, found):
            where = f"{path}:{number}"
            record = _parse(text)
            if record is _NOT_OURS:
                continue
            found.records += 1
            problem = _record_problem(record, keyring)
            if problem is None:
                _collect(found, record, where)  # authentic, even if out of place
                if expected is not None and record["prev"] != expected:
                    problem = ("does not follow the record before it: a checkpoint was "
                               "removed, reordered or inserted" if expected != GENESIS_MAC
                               else "is not the first checkpoint: earlier ones were cut")
            if problem is not None:
                found.problems.append(f"{where}: {problem}")
            mac = record.get("mac") if isinstance(record, dict) else None
            expected = mac if isinstance(mac, str) else None
    return found


_NOT_OURS: Any = object()


def _lines(path: Path, found: Checkpoints) -> Iterator[tuple[int, str]]:
    try:
        yield from FileLedger(path).lines()
    except OSError as exc:
        found.problems.append(f"{path}: cannot be read: {exc.strerror}")


def _parse(text: str) -> Any:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if isinstance(record, dict) and record.get("event", LOG_EVENT) != LOG_EVENT:
        return _NOT_OURS
    return record


def _record_problem(record: Any, keyring: AuditKeyring) -> str | None:
    if not _well_formed(record):
        return "not a checkpoint record (damaged or edited)"
    if record["kid"] not in keyring.keys:
        return (f"sealed with audit key {record['kid']!r}, which is not one of this "
                f"installation's ({', '.join(keyring.keys)}): written with another key?")
    if not hmac.compare_digest(keyring.mac(record["kid"], record), record["mac"]):
        return ("its MAC does not verify: the record was edited, or sealed with another "
                "key under the same id")
    return None


def _well_formed(record: Any) -> bool:
    if not isinstance(record, dict) or any(name not in record for name in (*FIELDS, "mac")):
        return False
    if record["v"] != VERSION or not isinstance(record["heads"], list):
        return False
    if not all(isinstance(record[n], str) for n in ("at", "kid", "prev", "mac")):
        return False
    return all(isinstance(h, dict) and isinstance(h.get("tenant"), str)
               and type(h.get("seq")) is int and isinstance(h.get("hash"), str)
               for h in record["heads"])


def _collect(found: Checkpoints, record: dict[str, Any], where: str) -> None:
    found.last_at = record["at"]
    for head in record["heads"]:
        try:
            tenant_id = uuid.UUID(head["tenant"])
        except ValueError:
            found.problems.append(f"{where}: names no tenant id: {head['tenant']!r}")
            continue
        seals = found.heads.setdefault(tenant_id, {})
        seen = seals.setdefault(head["seq"], SealedHead(head["seq"], head["hash"], record["at"]))
        if seen.hash != head["hash"]:
            found.problems.append(f"{where}: tenant {tenant_id} seq {head['seq']} was sealed "
                                  f"with another hash at {seen.at}")


# --------------------------------------------------------------------------- verifying


def verify_sealed_chain(checkpoints: Checkpoints) -> ChainReport:
    """The scope tenant's chain, checked against the checkpoints; failed too when the
    checkpoints themselves do not verify (a head they vouch for may be forged)."""
    tenant_id = current_tenant_id()
    report = verify_chain(sealed=checkpoints.of(tenant_id) if tenant_id else None)
    if report.ok and checkpoints.problems:
        return ChainReport(False, report.events, None,
                           "the audit checkpoints fail verification: run `overture audit "
                           "verify` for details")
    return report


def load_checkpoints(settings: Settings, paths: Sequence[Path] = ()) -> Checkpoints | None:
    """The checkpoints at `paths` (the configured file by default); None when there is
    no checkpoint yet."""
    paths = list(paths) or [settings.audit_checkpoint_path]
    if not any(p.exists() for p in paths):
        return None
    found = read_checkpoints([p for p in paths if p.exists()], load_audit_keyring(settings))
    return found if found.records or found.problems else None
