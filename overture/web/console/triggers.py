"""What starts the workspace's workflows: webhooks (their URL, copied in a click, their
signing secret, rotated and shown once, and their on/off switch), cron schedules (with
their next five fire times in the schedule's own zone), polling triggers, app events
(vendor feeds: console/vendor_triggers.py) and hosted forms (console/form_triggers.py). The
services are the ones behind the API's workflows, schedules and triggers endpoints."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from croniter import CroniterError
from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.connectors import connections, registry
from overture.orchestration import (
    form_triggers,
    scheduler,
    triggers,
    vendor_events,
    vendor_triggers,
    webhook_rates,
    workflows,
)
from overture.orchestration.models import Schedule, Workflow
from overture.platform.db import db, utcnow
from overture.platform.errors import ValidationFailed
from overture.tenants import domains
from overture.web import webhook_limits
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of

register_nav("Triggers", "console.triggers", "workflow.read")

SCHEDULE_FIELDS = {"workflow_id", "cron", "timezone", "input"}
LIMIT = 200


def next_times(schedule: Schedule, count: int = 5) -> list[datetime]:
    """The next `count` ticks, in the schedule's zone (what its cron means)."""
    ticks: list[datetime] = []
    try:
        for tick in scheduler.fire_times(schedule.cron, schedule.timezone, utcnow()):
            ticks.append(tick)
            if len(ticks) == count:
                break
    except (CroniterError, ValueError):
        pass  # a cron that stopped naming dates: shown as "no upcoming time"
    return ticks


def _sources(conns: Any) -> list[tuple[str, str]]:
    """Each (connection, polling trigger) a workflow may watch: value and label."""
    found = []
    for conn in conns:
        connector = registry.find(conn.connector_key)
        for trigger in connector.triggers if connector else ():
            if trigger.kind == "polling":
                found.append((f"{conn.id}:{trigger.key}", f"{conn.name}: {trigger.name}"))
    return found


def webhook_url(workflow: Workflow) -> str:
    base = domains.public_base_url(workflow.tenant_id)
    return f"{base}/hooks/{workflow.tenant_id}/{workflow.webhook_token}"


def _page(errors: FormErrors | None = None, form: dict[str, str] | None = None,
          secret: tuple[Workflow, str] | None = None, edit_errors: dict[str, Any] | None = None,
          poll_errors: FormErrors | None = None, poll_form: dict[str, str] | None = None,
          vendor_errors: FormErrors | None = None, vendor_form: dict[str, str] | None = None,
          rate_errors: dict[str, Any] | None = None,
          hosted_errors: FormErrors | None = None, hosted_form: dict[str, str] | None = None
          ) -> Any:
    access = console_access()
    flows = workflows.list_workflows(None, LIMIT).items
    names = {w.id: w.name for w in flows}
    schedules = scheduler.list_schedules(None, LIMIT).items
    polling = triggers.list_subscriptions(None, LIMIT).items
    conns = ({c.id: c for c in connections.list_connections(access, None, LIMIT).items}
             if access.can("credential.read") else {})
    errors = errors or FormErrors()
    poll_form = poll_form or {"workflow_id": "", "source": "", "interval": "300"}
    body, status = render(
        "console/triggers.html",
        422 if edit_errors or poll_errors or vendor_errors or rate_errors or hosted_errors
        else status_of(errors),
        title="Triggers", workflows=flows, names=names, schedules=schedules,
        polling=polling, conns=conns, next_times=next_times, webhook_url=webhook_url,
        errors=errors, form=form or {"workflow_id": "", "cron": "0 9 * * 1-5",
                                     "timezone": "UTC", "input": ""},
        secret=secret, edit_errors=edit_errors or {}, sources=_sources(conns.values()),
        rate_of=webhook_rates.of, rate_ceiling=webhook_rates.ceiling(),
        rate_default=webhook_rates.effective(None),
        rate_errors=rate_errors or {},
        poll_errors=poll_errors or FormErrors(), poll_form=poll_form,
        vendor=vendor_triggers.list_all(LIMIT), vendor_sources=vendor_events.SOURCES,
        vendor_url=vendor_triggers.public_url, vendor_errors=vendor_errors or FormErrors(),
        vendor_form=vendor_form or {"workflow_id": "", "source": "slack", "channels": ""},
        hosted=form_triggers.list_all(LIMIT), hosted_url=form_triggers.public_url,
        hosted_errors=hosted_errors or FormErrors(),
        hosted_form=hosted_form or {"workflow_id": "", "title": "", "description": "",
                                    "success_message": "", "honeypot": "on"},
        can_edit=access.can("workflow.edit"),
        can_sign=access.can("workflow.edit") and access.can("credential.manage"))
    return body, status, {"Cache-Control": "no-store"}


def _saved(message: str, section: str) -> Response:
    """Commit, say what happened, and go back to the section of the triggers page."""
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for("console.triggers") + f"#{section}")


@bp.get("/triggers", endpoint="triggers")
@page("workflow.read")
def triggers_page() -> Any:
    return _page()



# --------------------------------------------------------------------------- webhooks


@bp.post("/triggers/webhooks/<workflow_id>/rotate")
@page("workflow.edit")
def rotate_webhook_secret(workflow_id: str) -> Any:
    """A new signing secret, shown in this one response; calls signed with the old one
    are refused from now."""
    workflow = workflows.get_workflow(workflow_id)
    secret = workflows.new_webhook_secret(console_access(), workflow)
    db.session.commit()
    return _page(secret=(workflow, secret))


@bp.post("/triggers/webhooks/<workflow_id>/toggle")
@page("workflow.edit")
def toggle_webhook(workflow_id: str) -> Response:
    workflow = workflows.get_workflow(workflow_id)
    workflows.set_webhook_enabled(workflow, not workflow.webhook_enabled)
    return _saved(f"The webhook of {workflow.name} is "
                  f"{'on' if workflow.webhook_enabled else 'off: calls to it are refused'}.",
                  "webhooks")


@bp.post("/triggers/webhooks/<workflow_id>/rate")
@page("workflow.edit")
def set_webhook_rate(workflow_id: str) -> Any:
    """The calls a minute the webhook takes; empty: the installation's default."""
    workflow = workflows.get_workflow(workflow_id)
    raw = request.form.get("webhook_rate_per_minute", "").strip()
    with form_errors({webhook_rates.FIELD}) as errors:
        if raw and not raw.isdigit():
            raise ValidationFailed.field(webhook_rates.FIELD,
                                         "a whole number of calls a minute, at least 1")
        webhook_rates.set_rate(workflow, int(raw) if raw else None)
        db.session.commit()
        webhook_limits.forget(workflow.tenant_id, workflow.webhook_token)
        flash(f"The webhook of {workflow.name} takes {webhook_rates.of(workflow)} calls a "
              "minute.", "ok")
        return redirect(url_for("console.triggers") + "#webhooks")
    return _page(rate_errors={"id": workflow_id, "errors": errors, "value": raw})


# --------------------------------------------------------------------------- schedules


def _input(raw: str) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed.field("input", "must be JSON, e.g. {\"report\": \"daily\"}") \
            from exc


@bp.post("/triggers/schedules")
@page("workflow.edit")
def create_schedule() -> Any:
    form = {k: request.form.get(k, "") for k in ("workflow_id", "cron", "timezone", "input")}
    with form_errors(SCHEDULE_FIELDS) as errors:
        if not form["workflow_id"]:
            raise ValidationFailed.field("workflow_id", "choose a workflow")
        workflow = workflows.get_workflow(form["workflow_id"])
        scheduler.create_schedule(workflow, form["cron"].strip(),
                                  form["timezone"].strip() or "UTC", _input(form["input"]))
        return _saved(f"{workflow.name} now runs on “{form['cron'].strip()}”.", "schedules")
    return _page(errors, form)


@bp.post("/triggers/schedules/<schedule_id>")
@page("workflow.edit")
def update_schedule(schedule_id: str) -> Any:
    schedule = scheduler.get_schedule(schedule_id)
    with form_errors({"cron", "timezone"}) as errors:
        scheduler.update_schedule(schedule, cron=request.form.get("cron", "").strip(),
                                  timezone=request.form.get("timezone", "").strip())
        return _saved("The schedule is changed.", "schedules")
    return _page(edit_errors={"id": schedule_id, "errors": errors,
                              "cron": request.form.get("cron", ""),
                              "timezone": request.form.get("timezone", "")})


@bp.post("/triggers/schedules/<schedule_id>/toggle")
@page("workflow.edit")
def toggle_schedule(schedule_id: str) -> Response:
    schedule = scheduler.get_schedule(schedule_id)
    scheduler.update_schedule(schedule, enabled=not schedule.enabled)
    return _saved(f"The schedule is {'on' if schedule.enabled else 'paused'}.", "schedules")


@bp.post("/triggers/schedules/<schedule_id>/delete")
@page("workflow.edit")
def delete_schedule(schedule_id: str) -> Response:
    scheduler.delete_schedule(scheduler.get_schedule(schedule_id))
    return _saved("The schedule is deleted; the runs it started stay.", "schedules")


# --------------------------------------------------------------------------- polling


@bp.post("/triggers/polling")
@page("workflow.edit")
def create_polling() -> Any:
    form = {k: request.form.get(k, "") for k in ("workflow_id", "source", "interval")}
    with form_errors({"workflow_id", "connection_id", "trigger_key", "interval_seconds"}) \
            as errors:
        connection_id, _, trigger_key = form["source"].partition(":")
        if not trigger_key:
            raise ValidationFailed.field("trigger_key", "choose what to watch")
        if not form["interval"].strip().isdigit():
            raise ValidationFailed.field("interval_seconds", "whole seconds")
        workflow = workflows.get_workflow(form["workflow_id"])
        triggers.create_subscription(workflow, connection_id, trigger_key,
                                     int(form["interval"]), True,
                                     console_access().principal.user.id)
        return _saved(f"{workflow.name} now runs on each new event.", "polling")
    return _page(poll_errors=errors, poll_form=form)


@bp.post("/triggers/polling/<subscription_id>/toggle")
@page("workflow.edit")
def toggle_polling(subscription_id: str) -> Response:
    found = triggers.get_subscription(subscription_id)
    triggers.update_subscription(found, enabled=not found.enabled)
    return _saved(f"The trigger is {'on' if found.enabled else 'paused'}.", "polling")


@bp.post("/triggers/polling/<subscription_id>/delete")
@page("workflow.edit")
def delete_polling(subscription_id: str) -> Response:
    triggers.delete_subscription(triggers.get_subscription(subscription_id))
    return _saved("The trigger is deleted; the runs it started stay.", "polling")
