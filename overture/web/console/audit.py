"""The audit viewer: the workspace's events filtered by actor, action, target and date,
a page at a time; each event's details; the hash chain verified on demand; the
filtered events exported as JSON Lines or CSV. The same services as /api/v1/audit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Response, current_app, redirect, request, stream_with_context, url_for

from overture.platform import audit, audit_seal
from overture.platform.db import activate_scope, current_scope
from overture.platform.errors import ValidationFailed
from overture.tenants import members
from overture.web.api.audit import _csv_lines, _json_lines
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, form_errors, status_of

PER_PAGE = 50
FIELDS = ("actor", "action", "target_type", "target_id", "since", "until")


def _form() -> dict[str, str]:
    return {name: request.args.get(name, "").strip() for name in FIELDS}


def _day(form: dict[str, str], name: str) -> date | None:
    if not form[name]:
        return None
    try:
        return date.fromisoformat(form[name])
    except ValueError:
        raise ValidationFailed.field(name, "enter a date as YYYY-MM-DD") from None


def _filter(form: dict[str, str]) -> audit.EventFilter:
    """The form's filter; dates are whole UTC days, the `until` day included."""
    since, until = _day(form, "since"), _day(form, "until")
    for name in ("action", "target_type", "target_id", "actor"):
        if len(form[name]) > (80 if name == "action" else 64):
            raise ValidationFailed.field(name, "too long")
    start = datetime.combine(since, datetime.min.time(), UTC) if since else None
    end = datetime.combine(until, datetime.min.time(), UTC) + timedelta(days=1) \
        if until else None
    if start and end and start >= end:
        raise ValidationFailed.field("until", "must be on or after the first day")
    return audit.EventFilter(actor_id=form["actor"] or None,
                             action_prefix=form["action"] or None,
                             target_type=form["target_type"] or None,
                             target_id=form["target_id"] or None, since=start, until=end)


def _cursor() -> int | None:
    cursor = request.args.get("cursor", "")
    return int(cursor) if cursor.isdigit() else None


def _actors() -> list[tuple[str, str]]:
    """The workspace's people, to pick an actor by name (ids are what events carry)."""
    access = console_access()
    if not access.can("member.read"):
        return []
    rows = members.list_members(access, None, 200).items
    return sorted(((str(m.user.id), m.user.name or m.user.email) for m in rows),
                  key=lambda pair: pair[1].lower())


def verify() -> audit.ChainReport:
    """As GET /api/v1/audit/verify: the chain, checked against the sealed checkpoints
    when this process can see them."""
    checkpoints = audit_seal.load_checkpoints(current_app.extensions["overture.settings"])
    if checkpoints is None:
        return audit.verify_chain()
    return audit_seal.verify_sealed_chain(checkpoints)


@bp.get("/audit", endpoint="audit")
@page("audit.read")
def audit_log() -> Any:
    access = console_access()
    form = _form()
    events: list[audit.AuditEvent] = []
    after: int | None = None
    errors: FormErrors
    with form_errors(set(FIELDS)) as errors:
        events, after = audit.list_events(_filter(form), _cursor(), PER_PAGE,
                                           newest_first=True)
    filtered = {k: v for k, v in form.items() if v}
    template = "console/audit_rows.html" if request.headers.get("HX-Request") and \
        request.headers.get("HX-Target") == "audit-results" else "console/audit.html"
    return render(template, status_of(errors), title="Audit log", events=events,
                  next_cursor=after, form=form, filtered=filtered, errors=errors,
                  actors=_actors(), can_export=access.can("audit.export"),
                  report=verify() if request.args.get("verify") else None,
                  first_page=_cursor() is None)


@bp.get("/audit/verify")
@page("audit.read")
def verify_audit_chain() -> Any:
    if request.headers.get("HX-Request"):
        return render("console/audit_verify.html", report=verify())
    return redirect(url_for("console.audit", verify=1))


@bp.get("/audit/export")
@page("audit.export")
def export_audit_log() -> Any:
    fmt = request.args.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        fmt = "jsonl"
    form = _form()
    errors: FormErrors
    with form_errors(set(FIELDS)) as errors:
        flt, scope = _filter(form), current_scope()

        def rows() -> Iterator[str]:
            activate_scope(scope)  # the stream outlives the view; keep its tenant
            lines = _csv_lines if fmt == "csv" else _json_lines
            yield from lines(audit.iter_events(flt))

        response = Response(stream_with_context(rows()),
                            mimetype="text/csv" if fmt == "csv" else "application/x-ndjson")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        response.headers["Content-Disposition"] = \
            f'attachment; filename="audit-{console_access().tenant.slug}-{stamp}.{fmt}"'
        return response
    return render("console/audit.html", status_of(errors), title="Audit log", events=[],
                  next_cursor=None, form=form, filtered={}, errors=errors, actors=_actors(),
                  can_export=True, report=None, first_page=True, hide_events=True)
