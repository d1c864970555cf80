"""Failures: the tenant's failed runs grouped by workflow, step and reason, the dead
letters (steps the platform gave up on), and retrying failed runs from the failed step,
one or a whole group, with what happened to each run said plainly. And a workflow's
own page: its live version, links to the builder and its runs, and how it performs
(runs, error rate, most frequent failure reasons) over 7, 30 or 90 days.

The services and permissions are the API's (web/api/ops.py): reading is `run.read`,
retrying `run.cancel`, the workflow page `workflow.read`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, request

from overture.orchestration import failures, performance, workflows
from overture.platform.db import db, utcnow
from overture.platform.errors import ValidationFailed
from overture.web.console import bp, workflow_alerts
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of

READ = "run.read"
RETRY = "run.cancel"
PERIODS = (1, 7, 30, 90)  # days looked back on the failures page
# Groups and dead letters shown at once: the largest groups and the newest dead letters
# (the page says when there are more; a workflow's filter narrows it). Two hundred
# groups with their sample runs made a page of half a megabyte.
SHOWN = 50
PERF_PERIODS = (7, 30, 90)  # on a workflow's page
BUILDER = "builder.builder"
OUTCOMES = {"retried": "Retried", "already_retried": "Already retried",
            "not_failed": "Not failed", "not_found": "Not found", "refused": "Refused"}

register_nav("Failures", "console.failures", READ)


def _days(allowed: tuple[int, ...], default: int = 7) -> int:
    raw = (request.values.get("days") or "").strip()
    return int(raw) if raw.isdigit() and int(raw) in allowed else default


def _workflow_filter() -> Any:
    """The workflow named by the filter (404 when unknown), or None for all."""
    raw = (request.values.get("workflow") or "").strip()[:80]
    return workflows.get_workflow(raw) if raw else None


def _failures_page(results: list[Any] | None = None, errors: FormErrors | None = None,
                   status: int = 200) -> Any:
    access = console_access()
    days = _days(PERIODS)
    workflow = _workflow_filter()
    now = utcnow()
    since = now - timedelta(days=days)
    workflow_id = workflow.id if workflow is not None else None
    groups = failures.failure_groups(since, workflow_id, SHOWN + 1)
    dead = failures.dead_letters(now, since, workflow_id, SHOWN + 1)
    names = {w.id: w.name for w in workflows.list_workflows(None, 200).items}
    return render("console/failures.html", status, title="Failures", groups=groups[:SHOWN],
                  dead=dead[:SHOWN], more_groups=len(groups) > SHOWN,
                  more_dead=len(dead) > SHOWN, shown=SHOWN, names=names, days=days,
                  periods=PERIODS,
                  workflow=workflow, results=results, outcomes=OUTCOMES,
                  errors=errors or FormErrors(), can_retry=access.can(RETRY))


@bp.get("/failures", endpoint="failures")
@page(READ)
def failures_page() -> Any:
    return _failures_page()


def _run_ids() -> list[str]:
    """One run (`run_id`), or all the not-yet-retried runs of a group (its workflow,
    step and reason over the period shown)."""
    single = request.form.get("run_id")
    if single:
        return [single.strip()[:80]]
    workflow = workflows.get_workflow(request.form.get("group_workflow", "").strip()[:80])
    reason = request.form.get("reason", "").strip()[:80]
    if not reason:
        raise ValidationFailed.field("run_ids", "say which failures to retry")
    since = utcnow() - timedelta(days=_days(PERIODS))
    step = request.form.get("step", "").strip()[:80] or None
    ids = failures.group_run_ids(since, workflow.id, step, reason)
    if not ids:
        raise ValidationFailed.field("run_ids", "every run of this group was retried "
                                                "already")
    return [str(i) for i in ids]


@bp.post("/failures/retry", endpoint="retry_failures")
@page(RETRY)
def retry_failures() -> Any:
    with form_errors({"run_ids"}) as errors:
        results = failures.retry_runs(_run_ids(), console_access().principal.user.id)
        db.session.commit()
        return _failures_page(results)
    return _failures_page(errors=errors, status=status_of(errors))


# --------------------------------------------------------------------------- a workflow


@bp.get("/workflows/<workflow_id>", endpoint="workflow")
@page("workflow.read")
def workflow_page(workflow_id: str) -> Any:
    return render_workflow(workflows.get_workflow(workflow_id))


def render_workflow(workflow: Any, alerts: dict[str, Any] | None = None,
                    status: int = 200) -> Any:
    """A workflow's page; `alerts` is its failure-alerts panel (web/console/
    workflow_alerts.py), given when a refused form comes back to it."""
    access = console_access()
    days = _days(PERF_PERIODS)
    perf = None
    if access.can(READ):
        until = utcnow()
        perf = performance.workflow_performance(workflow.id, until - timedelta(days=days),
                                                until)
    frame_builder = BUILDER if BUILDER in current_app.view_functions else None
    return render("console/workflow.html", status, title=workflow.name, workflow=workflow,
                  version=workflows.current_version(workflow), perf=perf, days=days,
                  periods=PERF_PERIODS, builder=frame_builder, can_runs=access.can(READ),
                  alerts=alerts or workflow_alerts.panel(workflow))
