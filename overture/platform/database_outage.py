"""Our database failing under the work, told apart from the work's own errors.

A lost connection, a server shutting down or starting up (a restart, a failover), a
deadlock or a serialization failure are never the fault of the request or the step
that met them: the same work, done again once the database answers, succeeds. The web
answers 503 with `Retry-After` for them; the engine records again (`patiently`) and
never counts them against a step's retry policy.

Errors of other databases (a connector's PostgreSQL) are the step's own: they never
reach here as SQLAlchemy errors, and the hot path's come as `pipeline.Declined`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from sqlalchemy.exc import DBAPIError

from overture.platform import pipeline
from overture.platform.db import db
from overture.platform.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

# Connection exceptions (class 08); admin shutdown, crash shutdown, cannot connect now
# (starting up or shutting down); serialization failure, deadlock; too many connections.
INFRASTRUCTURE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "40001", "40P01", "53300")
RETRY_AFTER_SECONDS = 5  # what a client is told to wait while the database is away
FIRST_PAUSE, LONGEST_PAUSE = 0.05, 2.0  # seconds between tries, doubling


def infrastructure_error(exc: BaseException) -> bool:
    """Whether `exc` is our database failing under the work, not the work's doing."""
    if isinstance(exc, pipeline.Declined):
        return exc.connection_lost or _infrastructure_sqlstate(exc.sqlstate)
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:  # SQLAlchemy's own verdict: the connection is gone
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return _infrastructure_sqlstate(sqlstate)
    # no SQLSTATE: libpq's own errors (connection refused, closed unexpectedly)
    return isinstance(exc.orig, psycopg.OperationalError | psycopg.InterfaceError)


def _infrastructure_sqlstate(sqlstate: str) -> bool:
    return bool(sqlstate) and sqlstate.startswith(INFRASTRUCTURE_SQLSTATES)


def patiently(fn: Callable[..., T], *args: Any, within: float) -> T:
    """`fn(*args)`, done again while our database fails under it, with growing pauses,
    for up to `within` seconds; then its error is raised. Each try must be one whole
    transaction that is harmless to repeat (written to change nothing when it already
    happened): a commit whose answer was lost may have happened."""
    deadline = time.monotonic() + within
    pause = FIRST_PAUSE
    while True:
        try:
            return fn(*args)
        except Exception as exc:
            if not infrastructure_error(exc):
                raise
            db.session.rollback()  # never fails for a lost connection (db.Session)
            if time.monotonic() + pause > deadline:
                raise
            log.warning("database.retrying", function=getattr(fn, "__name__", repr(fn)),
                        error=summary(exc))
            time.sleep(pause * random.uniform(0.5, 1.0))  # noqa: S311  (jitter)
            pause = min(pause * 2, LONGEST_PAUSE)


def summary(exc: BaseException) -> str:
    """One line for the log: an outage is expected, its traceback is noise."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0][:200] if lines else ''}"
