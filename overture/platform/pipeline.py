"""PostgreSQL transactions in one network write and one read, for the engine's hot
path.

The ORM session costs a pool checkout (with its ping), BEGIN, the scope's
`set_config`, the statement and COMMIT: five round trips and a few thousand Python
calls for a statement PostgreSQL runs in a fraction of a millisecond. Here each worker
thread keeps one connection of its own, in libpq's pipeline mode: a block's statements
are queued, and when the block ends (or one of its results is read) they go out in one
write, as prepared statements, followed by a Sync; PostgreSQL runs what came before
the Sync as one implicit transaction and commits it there.

psycopg's own `Connection.pipeline()` sends each statement as it is executed (a write
and a wait per statement, then a Sync and a flush request), which cost the engine more
CPU than the statement itself; this module drives psycopg's libpq wrapper directly and
uses psycopg's adapters (its `Transformer`) for parameters and rows, so values travel
exactly as they do through a psycopg cursor.

The scope is written per transaction with `set_config(..., true)`, exactly as `db.py`
does for the session: row-level security applies the same way, and nothing carries
over from one transaction to the next.

    try:
        with pipeline.transaction(url, tenant_id) as batch:
            result = batch.execute(SQL, params)  # written to change nothing when not due
        row = result.fetchone()  # sent and committed when the block ended
    except pipeline.Declined:
        ...  # not done: fall back to the ORM path
"""

from __future__ import annotations

import collections
import contextlib
import functools
import re
import select
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

from overture.platform.db import CONNECT_TIMEOUT
from overture.platform.logging import get_logger

if TYPE_CHECKING:
    from psycopg.pq.abc import PGresult

log = get_logger(__name__)
_SCOPE = ("SELECT set_config('app.tenant_id', %s, true) AS tenant,"
          " set_config('app.user_id', '', true) AS usr,"
          " set_config('app.api_key_prefix', '', true) AS prefix")
_MAX_PREPARED = 256  # per connection; past it the connection starts afresh
# SQLSTATE classes of a transaction that lost a race or a connection: worth only a note.
_EXPECTED_CLASSES = ("08", "23", "40", "57")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")
_local = threading.local()


class Declined(Exception):
    """The transaction did not happen (lost connection, deadlock, conflicting row):
    nothing it sent is committed. `sqlstate` says why the server refused it;
    `connection_lost`: no answer came at all (see database_outage.infrastructure_error)."""

    def __init__(self, detail: str, sqlstate: str = "", connection_lost: bool = False) -> None:
        super().__init__(detail)
        self.sqlstate = sqlstate
        self.connection_lost = connection_lost


# --------------------------------------------------------------------------- statements


@functools.lru_cache(maxsize=512)
def _numbered(sql: str) -> tuple[bytes, tuple[str, ...] | int]:
    """psycopg's placeholders (%(name)s, or %s) as PostgreSQL's ($1, $2, ...): the
    text, and the parameter names in order (or how many positional ones)."""
    names: list[str] = []
    positional = 0

    def number(match: re.Match[str]) -> str:
        nonlocal positional
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is None:
            positional += 1
            return f"${positional}"
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _PLACEHOLDER.sub(number, sql)
    if names and positional:
        raise ValueError("a statement takes named or positional parameters, not both")
    return text.encode(), tuple(names) if names else positional


@functools.lru_cache(maxsize=256)
def _row_type(names: tuple[str, ...]) -> Any:
    return collections.namedtuple("Row", names, rename=True)._make


class Result:
    """One statement's rows, there once its batch has gone out (reading sends it)."""

    __slots__ = ("_batch", "rows")

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        self.rows: list[Any] = []

    def fetchone(self) -> Any:
        self._batch.send()
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        self._batch.send()
        return self.rows


class Batch:
    """Statements queued on this thread's connection, sent together."""

    def __init__(self, link: _Link) -> None:
        self._link = link
        self._queued: list[tuple[bytes, Sequence[Any], Result]] = []

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None
                ) -> Result:
        text, names = _numbered(sql)
        if isinstance(names, tuple):
            values: Sequence[Any] = [params[name] for name in names]  # type: ignore[index, call-overload]
        else:
            values = list(params or ())
            if len(values) != names:
                raise ValueError(f"the statement takes {names} parameters, not {len(values)}")
        result = Result(self)
        self._queued.append((text, values, result))
        return result

    def send(self) -> None:
        """Send what is queued, with a Sync, and read every result back."""
        if self._queued:
            queued, self._queued = self._queued, []
            self._link.run(queued)


# --------------------------------------------------------------------------- connection


class _Link:
    """This thread's connection in pipeline mode, and the statements it has prepared."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        self.pgconn = self.conn.pgconn
        self.pgconn.enter_pipeline_mode()
        self.prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self.poll = select.poll()
        self.poll.register(self.pgconn.socket, select.POLLIN)

    def run(self, queued: list[tuple[bytes, Sequence[Any], Result]]) -> None:
        adapt = Transformer(self.conn)
        expected: list[Result | None] = []  # per command sent: whose rows, None for a prepare
        for text, values, result in queued:
            dumped = adapt.dump_sequence(values, [PyFormat.AUTO] * len(values))
            name = self._prepared_name(text, tuple(adapt.types or ()), expected)
            self.pgconn.send_query_prepared(name, dumped, adapt.formats if values else None)
            expected.append(result)
        self.pgconn.pipeline_sync()
        self._write_out()
        self._take(self._results(), expected, adapt)

    def _prepared_name(self, text: bytes, types: tuple[int, ...],
                       expected: list[Result | None]) -> bytes:
        name = self.prepared.get((text, types))
        if name is None:
            name = f"ovt_{len(self.prepared)}".encode()
            self.pgconn.send_prepare(name, text, types)
            expected.append(None)
            self.prepared[text, types] = name  # kept only if the batch succeeds
        return name

    def _write_out(self) -> None:
        """Send the whole batch. While the socket is full, read what the server has
        answered meanwhile: a big batch with big results would otherwise leave both
        sides waiting to write."""
        sock = self.pgconn.socket
        while self.pgconn.flush():
            readable, _, _ = select.select([sock], [sock], [])
            if readable:
                self.pgconn.consume_input()

    def _results(self) -> list[list[PGresult]]:
        """Every command's results up to the Sync."""
        commands: list[list[PGresult]] = []
        current: list[PGresult] = []
        while True:
            while self.pgconn.is_busy():
                self.poll.poll()
                self.pgconn.consume_input()
            res = self.pgconn.get_result()
            if res is None:  # the end of one command's results
                if current:
                    commands.append(current)
                current = []
            elif res.status == pq.ExecStatus.PIPELINE_SYNC:
                return commands
            else:
                current.append(res)

    def _take(self, commands: list[list[PGresult]], expected: list[Result | None],
              adapt: Transformer) -> None:
        failed = None
        for results, result in zip(commands, expected, strict=True):
            res = results[-1]
            if res.status == pq.ExecStatus.FATAL_ERROR:
                failed = failed or res
            elif result is not None and res.status == pq.ExecStatus.TUPLES_OK:
                adapt.set_pgresult(res)
                names = tuple(res.fname(i).decode() for i in range(res.nfields))  # type: ignore[union-attr]
                result.rows = adapt.load_rows(0, res.ntuples, _row_type(names))
        if failed is not None:
            raise _declined(failed)

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error, OSError):
            self.conn.close()


def _declined(res: PGresult) -> Declined:
    sqlstate = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
    detail = (res.error_message or b"").decode(errors="replace").strip()
    if sqlstate.startswith(_EXPECTED_CLASSES):
        log.info("pipeline.declined", sqlstate=sqlstate)
    else:  # refused by the server (RLS, a bug): say so
        log.warning("pipeline.refused", sqlstate=sqlstate, detail=detail[:300])
    return Declined(detail, sqlstate)


def _link(url: str) -> _Link:
    link = getattr(_local, "link", None)
    if link is not None and link.url == url and not link.conn.closed \
            and len(link.prepared) < _MAX_PREPARED:
        return link
    _discard()
    _local.link = _Link(url)
    return _local.link


def _discard() -> None:
    link = getattr(_local, "link", None)
    _local.link = None
    if link is not None:
        link.close()


# --------------------------------------------------------------------------- interface


@contextlib.contextmanager
def pipelined(url: str) -> Iterator[Batch]:
    """A batch on this thread's connection: what is executed in the block goes out
    together when it ends, or earlier when one of its results is read. An exception
    in the block sends nothing. Any error closes the connection, which rolls back
    whatever transaction it had open."""
    try:
        batch = Batch(_link(url))
        yield batch
        batch.send()
    except Declined:
        _discard()  # start afresh: prepared statements of a failed batch may not exist
        raise
    except psycopg.Error as exc:  # the connection broke
        log.info("pipeline.declined", error=type(exc).__name__)
        _discard()
        raise Declined(str(exc), getattr(exc, "sqlstate", None) or "",
                       connection_lost=isinstance(exc, psycopg.OperationalError
                                                  | psycopg.InterfaceError)) from exc
    except BaseException:
        _discard()
        raise


@contextlib.contextmanager
def scoped(batch: Batch, tenant_id: uuid.UUID) -> Iterator[None]:
    """One transaction in the tenant's scope, committed when the block ends. Plain
    BEGIN and COMMIT inside the batch: nothing waits for the server. Write statements
    so that a transaction with nothing to do writes nothing: there is no rollback here."""
    batch.execute("BEGIN")
    batch.execute(_SCOPE, (str(tenant_id),))
    yield
    batch.execute("COMMIT")


def begin_implicit(batch: Batch, tenant_id: uuid.UUID) -> None:
    """Outside an explicit transaction (first thing in a block, or after `scoped`'s
    COMMIT): what is queued from here to the next Sync (the block's end, or the first
    read) is one implicit transaction, in the tenant's scope. An error undoes just
    that transaction."""
    batch.execute(_SCOPE, (str(tenant_id),))


@contextlib.contextmanager
def transaction(url: str, tenant_id: uuid.UUID) -> Iterator[Batch]:
    """One transaction in the tenant's scope on this thread's connection, sent in one
    write when the block ends and committed there. No BEGIN or COMMIT: what comes
    before a Sync is one implicit transaction, and `set_config(..., true)` lasts
    exactly that long. Reading a result inside the block sends (and so commits) what
    was queued so far: a block that reads and then writes again needs `scoped`."""
    with pipelined(url) as batch:
        begin_implicit(batch, tenant_id)
        yield batch


def close() -> None:
    """Close this thread's connection (tests, shutdown)."""
    _discard()
