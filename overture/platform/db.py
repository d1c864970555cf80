"""Database session, typed model base, and the one tenant-scoping mechanism.

A request or job sets the *scope* once (`activate_scope`). From then on:

* every ORM SELECT, UPDATE and DELETE touching a `TenantOwned` model is limited to
  the scope's tenant (no tenant in scope: no rows at all, it fails closed);
* every new `TenantOwned` row gets the scope's tenant and may not name another;
* on PostgreSQL the same scope is written into the transaction with
  `set_config(..., true)` so row-level security enforces it a second time. It is
  transaction-local: a pooled connection never carries it into the next one.

The only way past the ORM half is the `UNSCOPED` execution option, used by a few
named lookups that are keyed by identity (a user's own memberships, an API key by
its prefix); the database lets those through only for the identity in scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import has_app_context
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import Connection, DateTime, ForeignKey, MetaData, Select, event, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    registry,
    with_loader_criteria,
)
from sqlalchemy.types import TypeDecorator

from overture.platform.errors import Conflict, NotFound
from overture.platform.ids import new_id, parse_id

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UNSCOPED = "overture_unscoped"
NO_TENANT = uuid.UUID(int=0)
# The installation itself, as a tenant row: its audit chain holds platform-level events.
PLATFORM_TENANT_ID = uuid.UUID(int=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    registry = registry(metadata=MetaData(naming_convention=NAMING),
                        type_annotation_map={datetime: UTCDateTime()})


class EndingSession(FlaskSession):
    """A session whose transaction always ends: a rollback or close that finds the
    connection lost (the database restarted under it) is not an error, as the server
    has already ended that transaction; SQLAlchemy has invalidated the connection, and
    the pool (with its pre-ping) replaces it. Otherwise a request's teardown raised a
    second error, past every error handler, and a worker's cleanup a third."""

    def rollback(self) -> None:
        try:
            super().rollback()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            super().rollback()  # now on the invalidated connection: ends cleanly

    def close(self) -> None:
        try:
            super().close()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            super().close()


db = SQLAlchemy(model_class=Base, session_options={"class_": EndingSession})
# Seconds to wait for a connection to the database: libpq would wait for ever for a
# host that does not answer, and every request and worker thread with it.
CONNECT_TIMEOUT = 5


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantOwned(IdMixin):
    """A row that belongs to one tenant. Scoped by the ORM and by RLS.

    A table written many times a second per tenant sets `__tenant_fk__ = False`: the
    foreign key's check takes a share lock on the tenant's row in every writing
    transaction, and PostgreSQL turns many concurrent share lockers into multixacts,
    which cost more than the insert itself. Such a table is reached through another
    (a step run through its run) or outlives its tenant on purpose (usage), and RLS
    still only lets the scope's own tenant be written. It declares its own indexes.
    """

    __tenant_fk__ = True

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        if not cls.__tenant_fk__:
            return mapped_column(nullable=False)
        return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


# --------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class Scope:
    """Who is acting and for which tenant. Identity fields open identity-keyed rows."""

    tenant_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    api_key_prefix: str | None = None


EMPTY_SCOPE = Scope()
_scope: ContextVar[Scope] = ContextVar("overture_scope", default=EMPTY_SCOPE)


def current_scope() -> Scope:
    return _scope.get()


def current_tenant_id() -> uuid.UUID | None:
    return _scope.get().tenant_id


def activate_scope(scope: Scope) -> None:
    """Make `scope` current for this request or job, and for its open transaction."""
    unchanged = _scope.get() == scope
    _scope.set(scope)
    if unchanged:
        return  # the open transaction already carries it (after_begin wrote it)
    if has_app_context():
        _write_scope_into_transaction(db.session())


def narrow_scope(**changes: Any) -> None:
    activate_scope(replace(current_scope(), **changes))


@contextmanager
def scoped_to(tenant_id: uuid.UUID | None, **identity: Any) -> Iterator[Scope]:
    """Run a block in another scope and restore the previous one afterwards."""
    previous = current_scope()
    scope = Scope(tenant_id=tenant_id, **identity)
    activate_scope(scope)
    try:
        yield scope
    finally:
        activate_scope(previous)


@contextmanager
def in_tenant(tenant_id: uuid.UUID) -> Iterator[Scope]:
    """Switch only the tenant, keeping who is acting, for one block."""
    previous = current_scope()
    scope = replace(previous, tenant_id=tenant_id)
    activate_scope(scope)
    try:
        yield scope
    finally:
        activate_scope(previous)


@contextmanager
def tenant_transaction(tenant_id: uuid.UUID) -> Iterator[Connection]:
    """A short transaction of its own, on another connection, in one tenant's scope
    (RLS included): for a write that must not join the session's transaction, such as
    one made after that transaction committed."""
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(*_settings_sql(Scope(tenant_id=tenant_id)))
        yield connection


def _settings_sql(scope: Scope) -> tuple[Any, dict[str, str]]:
    return text(
        "SELECT set_config('app.tenant_id', :tenant, true),"
        " set_config('app.user_id', :user, true),"
        " set_config('app.api_key_prefix', :prefix, true)"
    ), {
        "tenant": str(scope.tenant_id or ""),
        "user": str(scope.user_id or ""),
        "prefix": scope.api_key_prefix or "",
    }


def _write_scope_into_transaction(session: Session) -> None:
    if not session.in_transaction():
        return  # after_begin will write it when the transaction starts
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(*_settings_sql(current_scope()))


@event.listens_for(Session, "after_begin")
def _scope_new_transaction(session: Session, transaction: Any, connection: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(*_settings_sql(current_scope()))


@event.listens_for(Session, "do_orm_execute")
def _limit_to_scope(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria travel with the statement that loaded the parent
    if state.execution_options.get(UNSCOPED):
        return
    if state.is_select or state.is_update or state.is_delete:
        # Never None: a None here would compile to IS NULL and SQLAlchemy's lambda
        # cache would then reuse that SQL for every later tenant. The nil UUID
        # matches no tenant, so an empty scope still sees nothing.
        tenant_id = current_tenant_id() or NO_TENANT
        state.statement = state.statement.options(
            with_loader_criteria(
                TenantOwned,
                lambda cls: cls.tenant_id == tenant_id,
                include_aliases=True,
            )
        )


class CrossTenantWrite(RuntimeError):
    """A bug: code tried to write a row into a tenant outside the scope."""


@event.listens_for(Session, "before_flush")
def _stamp_tenant(session: Session, flush_context: Any, instances: Any) -> None:
    tenant_id = current_tenant_id()
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantOwned):
            continue
        if obj.tenant_id is None:
            obj.tenant_id = tenant_id
        if obj.tenant_id is None or obj.tenant_id != tenant_id:
            raise CrossTenantWrite(
                f"{type(obj).__name__} for tenant {obj.tenant_id} written in scope {tenant_id}"
            )


# --------------------------------------------------------------------------- helpers

M = TypeVar("M", bound=Base)


def get_or_404(model: type[M], ident: Any, what: str | None = None) -> M:
    """Load one row by id through the scope (never the identity map alone)."""
    ident = parse_id(ident)
    if ident is None:
        raise NotFound(f"{what or model.__name__} not found")
    row = db.session.scalars(
        select(model).where(model.id == ident).execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise NotFound(f"{what or model.__name__} not found")
    return row


def unscoped(stmt: Select[Any]) -> Select[Any]:
    """Mark an identity-keyed lookup. Callers must filter by that identity themselves."""
    return stmt.execution_options(**{UNSCOPED: True})


def save_named(obj: Any, name: str, what: str, *, add: bool = False) -> None:
    """Give `obj` its unique `name` inside a savepoint, so a name already taken (by
    another row or a concurrent writer) rolls back only that, as a Conflict (409). The
    name must change inside the savepoint: begin_nested() first flushes what is pending,
    outside it, where a unique violation would abort the whole transaction."""
    try:
        with db.session.begin_nested():
            obj.name = name
            if add:
                db.session.add(obj)
            db.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{what} named {name!r} exists") from exc
