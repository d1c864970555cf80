"""Runs: the workspace's runs, filtered and paged; the run viewer (its header, a Gantt
timeline of step runs, each step's input, output, error and costs, agent transcripts,
the approval history), kept live by htmx polling while the run goes on; cancel and
replay from a step, with the API's own services and permissions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from overture.orchestration import approvals, runs, workflows
from overture.orchestration.models import FINISHED_RUN, RunStatus
from overture.orchestration.testmode import diff
from overture.platform.db import db, utcnow
from overture.platform.errors import ValidationFailed
from overture.tenants.users import get_user
from overture.web.console import bp
from overture.web.console.context import console_access, page, render, shell
from overture.web.console.forms import form_errors

PAGE_SIZE = 50
TRIGGERS = ("api", "portal", "webhook", "schedule", "polling", "replay", "test",
            "subworkflow", "mcp",
            "slack", "hubspot", "zendesk", "jira", "typeform", "form")
TRIGGER_LABELS = {"api": "API", "subworkflow": "Parent run", "hubspot": "HubSpot",
                  "mcp": "MCP"}
POLL = "2s"  # how often a run that goes on is read again
# The builder's React island (ui/, `make ui`) draws the run's graph when it is built.
ISLAND = Path(__file__).parent.parent / "static" / "builder" / "builder.js"


@bp.app_template_global("duration")
def duration(start: datetime | None, end: datetime | None) -> str:
    """How long something took (or has taken so far): 850 ms, 4.2 s, 3 min 05 s, 2 h 10 min."""
    if start is None:
        return "—"
    seconds = ((end or utcnow()) - start).total_seconds()
    if seconds < 1:
        return f"{max(seconds, 0) * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@bp.app_template_filter("trigger_label")
def trigger_label(trigger: str) -> str:
    return TRIGGER_LABELS.get(trigger, trigger.capitalize())


@bp.app_template_filter("pretty")
def pretty(value: Any) -> str:
    """A JSON value as an operator reads it (the template escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


# --------------------------------------------------------------------------- the list


def _day(name: str, raw: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed.field(name, "a date like 2026-12-31") from exc


def _filters() -> dict[str, str]:
    args = request.args
    return {key: args.get(key, "").strip()[:80]
            for key in ("workflow", "status", "trigger", "since", "until", "cursor", "mode")}


def _at(day: date | None, days: int = 0) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=days), time.min, tzinfo=UTC)


@bp.get("/runs", endpoint="runs")
@page("run.read")
def runs_page() -> Any:
    f = _filters()
    found: list[Any] = []
    next_cursor = None
    fields = {"workflow_id", "status", "trigger", "since", "until", "cursor"}
    with form_errors(fields) as errors:
        since, until = _day("since", f["since"]), _day("until", f["until"])
        listed = runs.list_runs(f["cursor"] or None, PAGE_SIZE, f["workflow"] or None,
                                f["status"] or None, f["trigger"] or None,
                                since=_at(since), before=_at(until, 1), newest_first=True,
                                mode=f["mode"] or None)
        found, next_cursor = listed.items, listed.next_cursor
    names = {w.id: w.name for w in workflows.list_workflows(None, 200).items}
    # htmx's filters swap the table alone; a history restore wants the whole page.
    partial = request.headers.get("HX-Request") and not (
        request.headers.get("HX-Boosted") or request.headers.get("HX-History-Restore-Request"))
    template = "console/_runs_table.html" if partial else "console/runs.html"
    return render(template, 422 if errors else 200, title="Runs", runs=found,
                  next_cursor=next_cursor, names=names, f=f, errors=errors,
                  statuses=[s.value for s in RunStatus], triggers=TRIGGERS,
                  starters=_starters(found), now=utcnow())


def _starters(found: list[Any]) -> dict[uuid.UUID, str]:
    people: dict[uuid.UUID, str] = {}
    for run in found:
        if run.started_by_id and run.started_by_id not in people:
            user = get_user(run.started_by_id)
            people[run.started_by_id] = (user.name or user.email) if user else "someone"
    return people


# --------------------------------------------------------------------------- the viewer


def _bars(run: Any, steps: list[Any]) -> dict[uuid.UUID, tuple[float, float]]:
    """Each step run's bar on the timeline as (offset, width) in thousandths of the
    run's span: drawn as SVG geometry, which the page's CSP allows (no inline style)."""
    now = utcnow()
    # From the first step's start: the wait for a worker is not part of the picture.
    starts = [s.started_at for s in steps if s.started_at]
    first = min(starts) if starts else run.started_at or run.created_at
    last = run.finished_at or now
    span = max((last - first).total_seconds(), 0.001)
    bars = {}
    for s in steps:
        if s.started_at is None:
            continue
        start = (s.started_at - first).total_seconds() / span * 1000
        width = ((s.finished_at or now) - s.started_at).total_seconds() / span * 1000
        bars[s.id] = (round(min(start, 1000), 1), round(max(min(width, 1000 - start), 4), 1))
    return bars


def _transcript(output: Any) -> list[dict[str, Any]]:
    """What an agent pattern recorded turn by turn (a group's transcript, a review
    loop's history), if it did."""
    if isinstance(output, dict):
        for key in ("transcript", "history"):
            turns = output.get(key)
            if isinstance(turns, list) and all(isinstance(t, dict) for t in turns):
                return turns
    return []


def _viewer_context(run_id: str) -> dict[str, Any]:
    access = console_access()
    run = runs.get_run(run_id)
    workflow, version = runs.version_of(run)
    steps = runs.timeline(run)
    top = [s.get("id") for s in version.definition.get("steps", []) if isinstance(s, dict)]
    latest: dict[str, Any] = {}
    for s in steps:
        if not s.path:
            latest[s.step_id] = s
    starter = get_user(run.started_by_id) if run.started_by_id else None
    return {
        "run": run, "workflow": workflow, "version": version, "steps": steps,
        "bars": _bars(run, steps), "transcripts": {s.id: _transcript(s.output) for s in steps},
        "graph": [(step_id, latest.get(step_id)) for step_id in top],
        "approvals": approvals.of_run(run), "tools": runs.tool_calls(run),
        "finished": run.status in FINISHED_RUN,
        "starter": (starter.name or starter.email) if starter else None,
        "can_cancel": access.can("run.cancel"), "now": utcnow(), "poll": POLL,
        "replayable": top, "island": ISLAND.exists(), "tenant_id": access.tenant.id,
        # A replay is read beside its source run, step by step (testmode.diff).
        "diff": diff.of_replay(run) if run.replay_of_id else None,
        "versions": workflows.versions(workflow) if access.can("run.cancel") else [],
    }


@bp.get("/runs/<run_id>", endpoint="run")
@page("run.read")
def run_page(run_id: str) -> Any:
    context = _viewer_context(run_id)
    # The navigation marks "Runs" while a run is open, as on the list.
    frame = {**shell(), "endpoint": "console.runs"}
    return render_template("console/run.html", shell=frame,
                           title=f"Run of {context['workflow'].name}", **context)


@bp.get("/runs/<run_id>/live")
@page("run.read")
def run_live(run_id: str) -> Any:
    """The part of the viewer that changes while a run goes on; it polls itself until
    the run ends (the last answer carries no trigger, so htmx stops)."""
    return render("console/_run_live.html", **_viewer_context(run_id))


@bp.post("/runs/<run_id>/cancel")
@page("run.cancel")
def cancel_run(run_id: str) -> Response:
    with form_errors() as errors:
        runs.cancel_run(runs.get_run(run_id))
        db.session.commit()
        flash("The run is cancelled, with its waiting steps and approvals.", "ok")
    if errors:
        flash(errors.general or "The run could not be cancelled.", "error")
    return redirect(url_for("console.run", run_id=run_id))


@bp.post("/runs/<run_id>/replay")
@page("run.cancel")
def replay_run(run_id: str) -> Response:
    with form_errors() as errors:
        replay = runs.replay_run(runs.get_run(run_id), request.form.get("from_step", ""),
                                 console_access().principal.user.id)
        db.session.commit()
        flash(f"Replaying from {request.form.get('from_step')}: this is the new run.", "ok")
        return redirect(url_for("console.run", run_id=replay.id))
    flash(next(iter(errors.values()), "The run could not be replayed."), "error")
    return redirect(url_for("console.run", run_id=run_id))
