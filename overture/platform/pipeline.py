"""PostgreSQL transactions in as few network round trips as possible, for the
engine's hot path.

The ORM session costs a pool checkout (with its ping), BEGIN, the scope's
`set_config`, the statement and COMMIT: five round trips and a few thousand Python
calls for a statement PostgreSQL runs in a fraction of a millisecond. Here each worker
thread keeps one psycopg connection of its own and pipelines BEGIN, the scope, the
statements and COMMIT (libpq pipeline mode): reading a result waits for everything
sent so far, so a transaction that reads once costs one round trip.

The scope is written per transaction with `set_config(..., true)`, exactly as `db.py`
does for the session: row-level security applies the same way, and nothing carries
over from one transaction to the next.

    try:
        with pipeline.transaction(url, tenant_id) as conn:
            cursor = conn.execute(SQL, params)  # written to change nothing when not due
        row = cursor.fetchone()  # after the block: one round trip in all
    except pipeline.Declined:
        ...  # not done: fall back to the ORM path
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row

from overture.platform.logging import get_logger

log = get_logger(__name__)
_SCOPE = ("SELECT set_config('app.tenant_id', %s, true) AS tenant,"
          " set_config('app.user_id', '', true) AS usr,"
          " set_config('app.api_key_prefix', '', true) AS prefix")
_local = threading.local()


class Declined(Exception):
    """The transaction did not happen (lost connection, deadlock, conflicting row):
    nothing it sent is committed."""


def _connection(url: str) -> psycopg.Connection[Any]:
    conn = getattr(_local, "conn", None)
    if conn is not None and not conn.closed and _local.url == url:
        return conn
    conn = psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=namedtuple_row)
    _local.conn, _local.url = conn, url
    return conn


def _discard() -> None:
    conn = getattr(_local, "conn", None)
    _local.conn = None
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            conn.close()


@contextlib.contextmanager
def pipelined(url: str) -> Iterator[psycopg.Connection[Any]]:
    """This thread's connection in pipeline mode: what is sent in the block goes out
    together; reading a result waits for everything sent before it. Any error closes
    the connection, which rolls back whatever transaction it had open."""
    try:
        conn = _connection(url)
        with conn.pipeline():
            yield conn
    except (psycopg.OperationalError, psycopg.IntegrityError, psycopg.InterfaceError) as exc:
        log.info("pipeline.declined", error=type(exc).__name__)
        _discard()  # start afresh: the connection may be broken or mid-pipeline
        raise Declined(str(exc)) from exc
    except psycopg.DatabaseError as exc:  # refused by the server (RLS, a bug): say so
        log.warning("pipeline.refused", error=type(exc).__name__, detail=str(exc)[:300])
        _discard()
        raise Declined(str(exc)) from exc
    except BaseException:
        _discard()
        raise


@contextlib.contextmanager
def scoped(conn: psycopg.Connection[Any], tenant_id: uuid.UUID) -> Iterator[None]:
    """One transaction in the tenant's scope, committed when the block ends. Plain
    BEGIN and COMMIT, so nothing waits for the server before the block's first read
    (psycopg's transaction() would sync at its end). Write statements so that a
    transaction with nothing to do writes nothing: there is no rollback here."""
    conn.execute("BEGIN")
    conn.execute(_SCOPE, (str(tenant_id),))
    yield
    conn.execute("COMMIT")


def begin_implicit(conn: psycopg.Connection[Any], tenant_id: uuid.UUID) -> None:
    """Outside an explicit transaction (first thing in a block, or after `scoped`'s
    COMMIT): what is sent from here to the next sync (the block's end, or the first
    read) is one implicit transaction, in the tenant's scope. An error undoes just
    that transaction."""
    conn.execute(_SCOPE, (str(tenant_id),))


@contextlib.contextmanager
def transaction(url: str, tenant_id: uuid.UUID) -> Iterator[psycopg.Connection[Any]]:
    """One transaction in the tenant's scope on this thread's pipelined connection,
    whose statements are all sent before any result is read. No BEGIN or COMMIT: in a
    pipeline, what comes before a sync point is one implicit transaction, committed at
    the sync (the block's end, or its first read), and `set_config(..., true)` lasts
    exactly that long. A block that reads and then writes again needs `scoped`."""
    with pipelined(url) as conn:
        begin_implicit(conn, tenant_id)
        yield conn


def close() -> None:
    """Close this thread's connection (tests, shutdown)."""
    _discard()
