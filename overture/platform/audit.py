"""The audit log: append-only, hash-chained per tenant, written in the transaction
of the change it records.

Each tenant's events form one chain: event n stores the hash of event n-1 and its
own hash, SHA-256 over that previous hash and a canonical JSON of the event. A row
per tenant in `audit_heads` holds the chain's tip; taking it FOR UPDATE serialises
writers of one tenant (and only of that tenant) until their transaction ends, so
concurrent writers still leave one valid chain. Editing, deleting or truncating
events breaks the chain where it happened, and `verify_chain` names that place.
The database also refuses UPDATE, DELETE and TRUNCATE outright (triggers), and the
app role may only INSERT and SELECT.

The table's owner can still rewrite a chain and recompute every later hash. So the
heads are sealed outside the database with a key it does not hold (`audit_seal`),
and `verify_chain` checks the chain against those seals.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import JSON, BigInteger, String, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import (
    PLATFORM_TENANT_ID,
    TenantOwned,
    current_tenant_id,
    db,
    in_tenant,
    utcnow,
)
from overture.platform.errors import ValidationFailed
from overture.platform.ids import new_id

GENESIS = "0" * 64


# --------------------------------------------------------------------------- context


@dataclass(frozen=True)
class Actor:
    """Who did it: a user, an API key, an agent, or the system itself."""

    type: str = "system"
    id: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Origin:
    """Where the request came from, when there was one."""

    request_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None


SYSTEM = Actor()
NOWHERE = Origin()
_actor: ContextVar[Actor] = ContextVar("overture_audit_actor", default=SYSTEM)
_origin: ContextVar[Origin] = ContextVar("overture_audit_origin", default=NOWHERE)


def set_actor(actor: Actor) -> None:
    _actor.set(actor)


def set_origin(origin: Origin) -> None:
    _origin.set(origin)


def current_actor() -> Actor:
    return _actor.get()


# --------------------------------------------------------------------------- tables


class AuditEvent(TenantOwned, db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("tenant_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    actor_label: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(TenantOwned, db.Model):
    """The tip of one tenant's chain; its row lock serialises that tenant's writers."""

    __tablename__ = "audit_heads"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


# --------------------------------------------------------------------------- hashing

HASHED_FIELDS = ("tenant_id", "seq", "occurred_at", "actor_type", "actor_id", "actor_label",
                 "action", "target_type", "target_id", "request_id", "ip", "user_agent",
                 "details")


def canonical(event: AuditEvent) -> str:
    body = {name: getattr(event, name) for name in HASHED_FIELDS}
    body["tenant_id"] = str(body["tenant_id"])
    body["occurred_at"] = event.occurred_at.isoformat(timespec="microseconds")
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


# --------------------------------------------------------------------------- writing


def _lock_head(tenant_id: uuid.UUID) -> AuditHead:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        insert(AuditHead)
        .values(id=new_id(), tenant_id=tenant_id, last_seq=0, last_hash=GENESIS,
                created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    return db.session.scalars(
        select(AuditHead).with_for_update().execution_options(populate_existing=True)
    ).one()


def _clean_details(details: dict[str, Any] | None) -> dict[str, Any]:
    # Round-trip through JSON now, so what is hashed is exactly what is stored.
    return json.loads(json.dumps(details or {}, default=str))


def record(action: str, *, target_type: str | None = None, target_id: object = None,
           details: dict[str, Any] | None = None, tenant_id: uuid.UUID | None = None,
           actor: Actor | None = None) -> AuditEvent:
    """Append an event to a tenant's chain (the scope's tenant unless named) in the
    current transaction, by the actor in context unless named. Never pass secrets in
    `details`."""
    tenant_id = tenant_id or current_tenant_id() or PLATFORM_TENANT_ID
    event = _new_event(tenant_id, action, target_type, target_id, details, actor)
    with in_tenant(tenant_id):
        if db.session.get_bind().dialect.name == "postgresql" and _appended_in_sql(event):
            return event
        head = _lock_head(tenant_id)
        event.seq, event.prev_hash = head.last_seq + 1, head.last_hash
        event.hash = chain_hash(head.last_hash, event)
        db.session.add(event)
        head.last_seq, head.last_hash = event.seq, event.hash
        db.session.flush()
    return event


def _new_event(tenant_id: uuid.UUID, action: str, target_type: str | None, target_id: object,
               details: dict[str, Any] | None, actor: Actor | None) -> AuditEvent:
    """An event by `actor` (the one in context unless named), not yet in the chain."""
    actor, origin = actor or _actor.get(), _origin.get()
    return AuditEvent(
        id=new_id(), tenant_id=tenant_id, seq=_SEQ_MARK, occurred_at=utcnow(),
        actor_type=actor.type, actor_id=actor.id, actor_label=actor.label, action=action,
        target_type=target_type, target_id=str(target_id) if target_id is not None else None,
        request_id=origin.request_id, ip=origin.ip,
        user_agent=(origin.user_agent or "")[:400] or None,
        details=_clean_details(details))


def _appended_in_sql(event: AuditEvent) -> bool:
    """Append `event` in one statement that takes the head, so the tenant's other
    writers wait for this transaction's commit and not for its round trips too;
    False when the tenant has no head yet (its first event goes the ORM way)."""
    params = _unsealed(event).params()
    row = db.session.connection().exec_driver_sql(_APPEND_EVENT, params).first()
    if row is None:
        return False
    event.seq, event.prev_hash, event.hash = row.seq, row.prev_hash, row.hash
    return True


_SEQ_MARK = -1


@dataclass(frozen=True)
class Unsealed:
    """An event for a writer that appends it itself, in SQL, while holding the chain's
    head (the engine's hot path): its columns but its place in the chain (seq,
    prev_hash, hash), and its canonical text around its seq, so that
    hash = sha256(prev_hash + before + str(seq) + after), exactly as `record` hashes."""

    row: dict[str, Any]
    before: str
    after: str

    def params(self) -> dict[str, Any]:
        """The parameters `append_sql` takes (with the writer's tenant_id)."""
        return {**self.row, "details": Json(self.row["details"]), "before": self.before,
                "after": self.after}


def unsealed(tenant_id: uuid.UUID, action: str, *, target_type: str | None = None,
             target_id: object = None, details: dict[str, Any] | None = None) -> Unsealed:
    """An event by the actor in context, to be sealed by its writer (see Unsealed)."""
    return _unsealed(_new_event(tenant_id, action, target_type, target_id, details, None))


def _unsealed(event: AuditEvent) -> Unsealed:
    # Keys are sorted, and only `details` (before `seq`) can hold a nested "seq": the
    # last occurrence is the event's own.
    before, mark, after = canonical(event).rpartition(f'"seq":{_SEQ_MARK},')
    assert mark, "the canonical form names its seq"
    row = {name: getattr(event, name) for name in (*HASHED_FIELDS, "id") if name != "seq"}
    row["created_at"] = event.occurred_at
    return Unsealed(row, before + '"seq":', "," + after)


def append_sql(guard: str = "") -> str:
    """Common table expressions appending an event (Unsealed's row, `before` and
    `after`, in psycopg's placeholders) to its tenant's chain within one statement:
    `h`, the head, locked, and the event's place after it; `a`, the event, hashed as
    `record` hashes; `m`, the head moved on. `guard` ends h's condition (` AND ...`)."""
    return f"""
h AS (
    SELECT last_seq + 1 AS seq, last_hash AS prev_hash,
           encode(sha256(convert_to(last_hash || %(before)s || (last_seq + 1)::text
                                    || %(after)s, 'UTF8')), 'hex') AS hash
    FROM audit_heads WHERE tenant_id = %(tenant_id)s{guard} FOR UPDATE
),
a AS (
    INSERT INTO audit_events (id, tenant_id, created_at, seq, occurred_at, actor_type,
        actor_id, actor_label, action, target_type, target_id, request_id, ip, user_agent,
        details, prev_hash, hash)
    SELECT %(id)s, %(tenant_id)s, %(created_at)s, h.seq, %(occurred_at)s, %(actor_type)s,
        %(actor_id)s, %(actor_label)s, %(action)s, %(target_type)s, %(target_id)s,
        %(request_id)s, %(ip)s, %(user_agent)s, %(details)s, h.prev_hash, h.hash
    FROM h
    RETURNING seq
),
m AS (
    UPDATE audit_heads SET last_seq = h.seq, last_hash = h.hash FROM h
    WHERE audit_heads.tenant_id = %(tenant_id)s
    RETURNING last_seq
)"""


_APPEND_EVENT = f"""
WITH {append_sql()}
SELECT h.seq, h.prev_hash, h.hash, (SELECT count(*) FROM a) AS added,
       (SELECT count(*) FROM m) AS moved
FROM h
"""


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    broken_seq: int | None = None
    reason: str | None = None
    sealed_seq: int | None = None  # the newest head a checkpoint vouches for, if any
    sealed_at: str | None = None


@dataclass(frozen=True)
class SealedHead:
    """A chain head as a checkpoint outside the database recorded it (`audit_seal`)."""

    seq: int
    hash: str
    at: str


def verify_chain(batch: int = 1000, sealed: Mapping[int, SealedHead] | None = None,
                 ) -> ChainReport:
    """Recompute the scope tenant's chain from its first event; stop at the first break.

    A chain the table's owner rewrote (an event edited and every later hash
    recomputed) still hashes: `sealed`, the heads checkpoints recorded, tell it apart.
    Each must still be on the chain with the same hash, and the chain at least as long.
    """
    sealed = sealed or {}
    expected_seq, prev, count, since = 1, GENESIS, 0, 0
    stmt = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=batch)
    for event in db.session.scalars(stmt):
        if event.seq != expected_seq:
            return ChainReport(False, count, expected_seq, "event missing (deleted?)")
        if event.prev_hash != prev or chain_hash(prev, event) != event.hash:
            return ChainReport(False, count, event.seq, "event altered")
        seal = sealed.get(event.seq)
        if seal is not None and seal.hash != event.hash:
            return ChainReport(False, count, event.seq, _rewritten(since, seal))
        since = event.seq if seal is not None else since
        prev, expected_seq, count = event.hash, expected_seq + 1, count + 1
        db.session.expunge(event)  # flat memory over long chains
    head = db.session.scalars(select(AuditHead)).one_or_none()
    if head is not None and (head.last_seq != count or head.last_hash != prev):
        return ChainReport(False, count, count + 1, "events missing at the end of the chain")
    newest = sealed[max(sealed)] if sealed else None
    if newest is not None and newest.seq > count:
        return ChainReport(False, count, count + 1,
                           f"events deleted: the chain ends at seq {count} but seq "
                           f"{newest.seq} was sealed at {newest.at}")
    return ChainReport(True, count, sealed_seq=newest.seq if newest else None,
                       sealed_at=newest.at if newest else None)


def _rewritten(since: int, seal: SealedHead) -> str:
    return (f"chain rewritten: seq {seal.seq} no longer has the hash sealed at {seal.at}; "
            f"an event in seqs {since + 1}-{seal.seq} was altered and the later hashes "
            "recomputed")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class EventFilter:
    actor_id: str | None = None
    action_prefix: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, stmt: Any) -> Any:
        if self.actor_id:
            stmt = stmt.where(AuditEvent.actor_id == self.actor_id)
        if self.action_prefix:
            escaped = self.action_prefix.replace("\\", "\\\\").replace("%", r"\%") \
                .replace("_", r"\_")
            stmt = stmt.where(AuditEvent.action.like(escaped + "%", escape="\\"))
        if self.target_type:
            stmt = stmt.where(AuditEvent.target_type == self.target_type)
        if self.target_id:
            stmt = stmt.where(AuditEvent.target_id == self.target_id)
        if self.since:
            stmt = stmt.where(AuditEvent.occurred_at >= self.since)
        if self.until:
            stmt = stmt.where(AuditEvent.occurred_at < self.until)
        return stmt


def list_events(flt: EventFilter, cursor: int | None, limit: int, *,
                newest_first: bool = False) -> tuple[list[AuditEvent], int | None]:
    """One page of the scope tenant's events and the seq to continue from (None on the
    last page): oldest first, continuing after `cursor`, or newest first, continuing
    before it. Seqs are dense per tenant and never reused, so a page boundary holds
    while new events are appended: they only go before the first newest-first page."""
    if flt.since and flt.until and flt.since >= flt.until:
        raise ValidationFailed.field("until", "must be after since")
    stmt = flt.apply(select(AuditEvent))
    if cursor is not None:
        stmt = stmt.where(AuditEvent.seq < cursor if newest_first else AuditEvent.seq > cursor)
    order = AuditEvent.seq.desc() if newest_first else AuditEvent.seq
    rows = list(db.session.scalars(stmt.order_by(order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].seq if more and rows else None


def iter_events(flt: EventFilter, batch: int = 500) -> Iterator[AuditEvent]:
    """Every matching event, streamed from a server-side cursor in batches."""
    stmt = flt.apply(select(AuditEvent)).order_by(AuditEvent.seq) \
        .execution_options(yield_per=batch)
    for event in db.session.scalars(stmt):
        yield event
        db.session.expunge(event)
