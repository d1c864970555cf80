"""The audit log of the tenant this request acts in: read, export, verify.

An agency reads a client's log by naming the client in X-Overture-Tenant; auditors
read and export, and nothing here changes anything.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, stream_with_context

from overture.platform import audit, audit_seal
from overture.platform.db import activate_scope, current_scope
from overture.platform.errors import ValidationFailed
from overture.web.api import api
from overture.web.api.schemas import (
    AuditEventOut,
    AuditExportQuery,
    AuditPage,
    AuditQuery,
    ChainReportOut,
)
from overture.web.auth import require

TAGS = ["Audit"]
CSV_COLUMNS = ["seq", "occurred_at", "actor_type", "actor_id", "actor_label", "action",
               "target_type", "target_id", "request_id", "ip", "user_agent", "details",
               "prev_hash", "hash"]


def _filter(query: dict[str, Any]) -> audit.EventFilter:
    return audit.EventFilter(actor_id=query["actor"], action_prefix=query["action"],
                             target_type=query["target_type"], target_id=query["target_id"],
                             since=query["since"], until=query["until"])


def _after_seq(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise ValidationFailed.field("cursor", "not a cursor this API handed out")
    return int(cursor)


@api.get("/audit")
@require("audit.read")
@api.input(AuditQuery, location="query", arg_name="query")
@api.output(AuditPage)
@api.doc(tags=TAGS, summary="Audit events, oldest first, filtered")
def list_audit(query: dict[str, Any]) -> dict[str, Any]:
    events, last = audit.list_events(_filter(query), _after_seq(query["cursor"]), query["limit"])
    return {"items": events, "next_cursor": str(last) if last is not None else None}


@api.get("/audit/verify")
@require("audit.read")
@api.output(ChainReportOut)
@api.doc(tags=TAGS, summary="Recompute this tenant's hash chain and check it against the "
                            "checkpoints sealed outside the database",
         description="`sealed_seq` is the newest head a checkpoint vouches for (null: none "
                     "yet, or this process cannot see the checkpoint file); `ok` is false "
                     "when the chain breaks, differs from a sealed head, is shorter than "
                     "one, or the checkpoints themselves fail verification.")
def verify_audit() -> audit.ChainReport:
    settings = current_app.extensions["overture.settings"]
    checkpoints = audit_seal.load_checkpoints(settings)
    if checkpoints is None:
        return audit.verify_chain()
    return audit_seal.verify_sealed_chain(checkpoints)


@api.get("/audit/export")
@require("audit.export")
@api.input(AuditExportQuery, location="query", arg_name="query")
@api.doc(tags=TAGS, summary="Export matching events as JSON lines or CSV, streamed",
         responses={200: {"description": "a stream of events",
                          "content": {"application/x-ndjson": {}, "text/csv": {}}}})
def export_audit(query: dict[str, Any]) -> Response:
    flt, fmt, scope = _filter(query), query["format"], current_scope()
    if flt.since and flt.until and flt.since >= flt.until:
        raise ValidationFailed.field("until", "must be after since")

    def rows() -> Iterator[str]:
        activate_scope(scope)  # the stream outlives the view; keep its tenant
        render = _csv_lines if fmt == "csv" else _json_lines
        yield from render(audit.iter_events(flt))

    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = Response(stream_with_context(rows()), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
    return response


def _json_lines(events: Iterator[audit.AuditEvent]) -> Iterator[str]:
    schema = AuditEventOut()
    for event in events:
        yield json.dumps(schema.dump(event), separators=(",", ":")) + "\n"


def _csv_safe(value: object) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas; defuse them."""
    text = "" if value is None else value if isinstance(value, str) else \
        json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_lines(events: Iterator[audit.AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    schema = AuditEventOut()
    for event in events:
        dumped = schema.dump(event)
        writer.writerow([_csv_safe(dumped[c]) for c in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
