"""PostgreSQL: run a query against the tenant's own database (psycopg).

Read-only by default: the session starts with `default_transaction_read_only` and the
transaction with `SET TRANSACTION READ ONLY`, and the query is sent alone through the
extended protocol, so it cannot end that transaction and start another. (Grant the
connection's user only what it needs all the same: that is the real boundary.)
Every query runs under a `statement_timeout` and returns at most `max_rows` rows. The
host is checked like any tenant-supplied URL, and the connection goes to the checked
address.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import math
import uuid
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg
from psycopg.rows import dict_row

from overture.connectors.context import ActionContext
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Action, Auth, Connector, Field, obj
from overture.connectors.tcp import destination
from overture.platform.outbound import Target, connect_postgres

DEFAULT_MAX_ROWS = 1000
FALSE = {"false", "0", "no", "off"}
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
AUTH_FAILURES = ("password authentication failed", "authentication failed",
                 "does not exist", "no pg_hba.conf entry", "password is required",
                 "permission denied for database")


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in FALSE


def _connect(ctx: ActionContext, target: Target, read_only: bool,
             timeout_ms: int) -> psycopg.Connection[Any]:
    sslmode = str(ctx.value("sslmode") or "prefer")
    if sslmode not in SSL_MODES:
        raise ActionFailed("misconfigured", f"sslmode must be one of {', '.join(SSL_MODES)}")
    options = f"-c statement_timeout={timeout_ms}"
    if read_only:
        options += " -c default_transaction_read_only=on"
    database = str(ctx.require("database"))
    try:
        return connect_postgres(
            target, dbname=database,
            user=str(ctx.require("user")), password=str(ctx.value("password") or ""),
            sslmode=sslmode, connect_timeout=max(2, math.ceil(ctx.timeout)),
            application_name="overture", options=options, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        message = str(exc)
        if f'database "{database}" does not exist' in message:
            raise ActionFailed("misconfigured", f"the server has no database {database!r}") \
                from exc
        if any(sign in message for sign in AUTH_FAILURES):
            raise ActionFailed("auth_failed", "the database refused the credentials: "
                                              + _last_line(message)) from exc
        if "timeout expired" in message:
            raise ActionFailed("timeout", f"the database at {target.host}:{target.port} did "
                                          f"not answer within {ctx.timeout:g}s") from exc
        raise ActionFailed("connection", f"cannot reach the database at {target.host}:"
                                         f"{target.port}: {_last_line(message)}") from exc


def _last_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else message


def query(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    target = destination(ctx, 5432)
    read_only = _flag(ctx.value("read_only"), True)
    seconds = min(float(data.get("timeout_seconds") or ctx.timeout), ctx.timeout)
    timeout_ms = max(1, int(seconds * 1000))
    max_rows = int(data.get("max_rows") or DEFAULT_MAX_ROWS)
    conn = _connect(ctx, target, read_only, timeout_ms)
    try:
        with conn.cursor() as cur:
            if read_only:
                cur.execute("SET TRANSACTION READ ONLY")
            cur.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)])
            rows, truncated, columns = _rows(cur, data["sql"], data.get("params"), max_rows,
                                             read_only)
            status = cur.statusmessage
            affected = cur.rowcount
        if read_only:
            conn.rollback()
        else:
            conn.commit()
    except pg.QueryCanceled as exc:
        raise ActionFailed("timeout", f"the query ran longer than {seconds:g}s and was "
                                      "cancelled") from exc
    except pg.ReadOnlySqlTransaction as exc:
        raise ActionFailed("read_only", "the connection is read-only; this query writes "
                                        f"({exc.diag.message_primary})") from exc
    except pg.InsufficientPrivilege as exc:
        raise ActionFailed("permission_denied", f"the database refused: "
                                                f"{exc.diag.message_primary}") from exc
    except psycopg.OperationalError as exc:
        raise ActionFailed("connection", f"the database connection failed: "
                                         f"{_last_line(str(exc))}") from exc
    except psycopg.Error as exc:
        primary = exc.diag.message_primary if exc.diag else None
        raise ActionFailed("query_failed", f"the query failed: {primary or exc}",
                           sqlstate=exc.sqlstate) from exc
    finally:
        conn.close()
    return {"columns": columns, "rows": [{k: _jsonable(v) for k, v in row.items()}
                                         for row in rows],
            "row_count": len(rows), "truncated": truncated, "status": status,
            "affected_rows": affected if affected >= 0 and not columns else None}


def _rows(cur: psycopg.Cursor[Any], sql: str, params: Any, max_rows: int,
          read_only: bool) -> tuple[list[dict[str, Any]], bool, list[str]]:
    """Run the one statement (prepared: the extended protocol takes a single statement,
    so it cannot end the transaction and go on). Reading streams the rows and stops at
    `max_rows`; a query that may write runs to its end and keeps the first `max_rows`."""
    params = params if params not in (None, [], {}) else None
    if not read_only:
        cur.execute(sql, params, prepare=True)
        if cur.description is None:
            return [], False, []
        return cur.fetchmany(max_rows), cur.rowcount > max_rows, _columns(cur)
    rows: list[dict[str, Any]] = []
    truncated, columns = False, []
    stream = cur.stream(sql, params)
    try:
        for row in stream:
            columns = columns or _columns(cur)
            if len(rows) >= max_rows:
                truncated = True
                break
            rows.append(row)
    except psycopg.ProgrammingError as exc:
        if "didn't produce a result" not in str(exc):
            raise
        return [], False, []  # a statement without rows (SET, say)
    finally:
        stream.close()  # cancels what is left of a query cut short
    return rows, truncated, columns or _columns(cur)


def _columns(cur: psycopg.Cursor[Any]) -> list[str]:
    return [c.name for c in cur.description or []]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address
                  | ipaddress.IPv4Network | ipaddress.IPv6Network
                  | ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def check(ctx: ActionContext) -> str:
    out = query(ctx, {"sql": "SELECT current_user AS user, current_database() AS database"})
    row = out["rows"][0]
    return f"connected to {row['database']} as {row['user']}"


CONNECTOR = Connector(
    key="postgres",
    name="PostgreSQL",
    description="Query your own PostgreSQL database (read-only unless you say otherwise).",
    icon="database",
    auth=Auth(kind="custom", fields=(
        Field("host"), Field("port", required=False, description="default 5432"),
        Field("database"), Field("user"), Field("password", secret=True, required=False),
        Field("read_only", required=False,
              description="true (default): refuse every write; false: allow writes"),
        Field("sslmode", required=False, description="prefer (default), require, "
                                                     "verify-full, ..."),
    )),
    base_url=None,
    docs_url="https://www.postgresql.org/docs/current/sql.html",
    tags=("database",),
    test=check,
    actions=(Action(
        key="query", name="Run a query",
        description="Run one SQL statement with parameters (%s, or %(name)s with an object) "
                    "and return its rows.",
        input_schema=obj({
            "sql": {"type": "string", "minLength": 1, "maxLength": 100_000,
                    "description": "one statement; placeholders %s or %(name)s"},
            "params": {"type": ["array", "object"], "maxProperties": 1000, "maxItems": 1000,
                       "description": "values for the placeholders (never formatted into "
                                      "the SQL)"},
            "max_rows": {"type": "integer", "minimum": 1, "maximum": 10_000,
                         "default": DEFAULT_MAX_ROWS},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
        }, ["sql"]),
        output_schema=obj({
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "object"}},
            "row_count": {"type": "integer"}, "truncated": {"type": "boolean"},
            "status": {"type": ["string", "null"]},
            "affected_rows": {"type": ["integer", "null"]},
        }),
        run=query, side_effects=True),),
)
