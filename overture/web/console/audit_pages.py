"""The audit viewer of the workspace in use: events filtered by action, target and
actor; the hash chain verified on demand; export as JSON Lines or CSV. The same
services and the same export format as /api/v1/audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, current_app, request, stream_with_context

from overture.platform import audit, audit_seal
from overture.platform.db import activate_scope, current_scope
from overture.platform.errors import ValidationFailed
from overture.web.api.audit import _csv_lines, _json_lines
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import form_errors

PAGE = 100
FIELDS = ("action", "target_type", "actor", "since", "until")


def _filter() -> audit.EventFilter:
    args = request.args
    return audit.EventFilter(actor_id=args.get("actor") or None,
                             action_prefix=args.get("action") or None,
                             target_type=args.get("target_type") or None,
                             since=_day(args.get("since"), "since"),
                             until=_day(args.get("until"), "until"))


def _day(raw: str | None, field: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed.field(field, "a date such as 2026-12-01") from exc


def _after() -> int | None:
    raw = request.args.get("after", "")
    return int(raw) if raw.isdigit() else None


@bp.get("/audit", endpoint="audit")
@page("audit.read")
def audit_page() -> Any:
    filters = {name: request.args.get(name, "") for name in FIELDS}
    report = None
    with form_errors(set(FIELDS) | {"until"}) as errors:
        events, last = audit.list_events(_filter(), _after(), PAGE)
        if request.args.get("verify"):
            report = _verify()
        return render("console/audit.html", title="Audit", events=events, next_after=last,
                      filters=filters, report=report, errors=errors,
                      linked={k: v for k, v in filters.items() if v},
                      can_export=console_access().can("audit.export"))
    return render("console/audit.html", 422, title="Audit", events=[], next_after=None,
                  filters=filters, report=None, errors=errors, can_export=False, linked={})


def _verify() -> audit.ChainReport:
    checkpoints = audit_seal.load_checkpoints(current_app.extensions["overture.settings"])
    if checkpoints is None:
        return audit.verify_chain()
    return audit_seal.verify_sealed_chain(checkpoints)


@bp.get("/audit/export")
@page("audit.export")
def audit_export() -> Response:
    fmt = request.args.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise ValidationFailed.field("format", "jsonl or csv")
    flt, scope = _filter(), current_scope()

    def rows() -> Any:
        activate_scope(scope)  # the stream outlives the view; keep its tenant
        lines = _csv_lines if fmt == "csv" else _json_lines
        yield from lines(audit.iter_events(flt))

    response = Response(stream_with_context(rows()),
                        mimetype="text/csv" if fmt == "csv" else "application/x-ndjson")
    response.headers["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
    return response
