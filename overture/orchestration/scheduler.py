"""`overture scheduler`: cron schedules fire each tick exactly once, however many
schedulers run, because a tick is a row with a unique key; the sweeper runs; and now
and then expired agent notes are deleted and the audit chains' heads are sealed."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from overture.billing import meter_outbox, stripe_plans
from overture.orchestration import runs, triggers, worker
from overture.orchestration.agents import memory
from overture.orchestration.models import Schedule, ScheduleFire, Workflow
from overture.platform import audit, audit_seal, mail, metrics_export
from overture.platform.db import db, get_or_404, scoped_to, utcnow
from overture.platform.errors import PaymentRequired, ValidationFailed
from overture.platform.logging import get_logger
from overture.platform.pagination import Page, paginate
from overture.tenants.events import sender as events_sender
from overture.tenants.lifecycle import all_tenants

log = get_logger(__name__)


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first tick of `cron` in `timezone` strictly after `after` (returned in UTC)."""
    return next(fire_times(cron, timezone, after)).astimezone(ZoneInfo("UTC"))


def fire_times(cron: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """The ticks strictly after `after`, in `timezone` (what the cron means there). One
    iterator for them all: parsing the expression costs more than a step."""
    ticks = croniter(cron, after.astimezone(ZoneInfo(timezone)))
    while True:
        yield ticks.get_next(datetime)


def _check(cron: str, timezone: str) -> None:
    if not croniter.is_valid(cron):
        raise ValidationFailed.field("cron", f"not a cron expression: {cron!r}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed.field("timezone", f"unknown time zone {timezone!r}") from exc
    try:  # valid syntax can still name no date at all ("0 0 31 2 *"): refuse it now,
        next_fire(cron, timezone, utcnow())  # not with a 500 here or in every scheduler round
    except CroniterError as exc:
        raise ValidationFailed.field("cron", f"never fires: {cron!r}") from exc


def create_schedule(workflow: Workflow, cron: str, timezone: str = "UTC",
                    input: Any = None) -> Schedule:
    _check(cron, timezone)
    runs.check_input(input)  # refused now, not at every tick
    schedule = Schedule(workflow_id=workflow.id, cron=cron, timezone=timezone,
                        input=input if input is not None else {},
                        next_fire_at=next_fire(cron, timezone, utcnow()))
    db.session.add(schedule)
    db.session.flush()
    audit.record("schedule.created", target_type="schedule", target_id=schedule.id,
                 details={"workflow_id": str(workflow.id), "cron": cron, "timezone": timezone})
    return schedule


def list_schedules(cursor: str | None, limit: int | None,
                   workflow_id: uuid.UUID | None = None) -> Page[Schedule]:
    stmt = select(Schedule)
    if workflow_id is not None:
        stmt = stmt.where(Schedule.workflow_id == workflow_id)
    return paginate(stmt, Schedule.id, cursor, limit)


def get_schedule(schedule_id: str) -> Schedule:
    return get_or_404(Schedule, schedule_id, "schedule")


def update_schedule(schedule: Schedule, *, enabled: bool | None = None, cron: str | None = None,
                    timezone: str | None = None, input: Any = None) -> Schedule:
    """Change a schedule. The next tick is computed afresh from now whenever the cron,
    zone or switch changes, so re-enabling never fires a tick missed while off."""
    changed = {name: value for name, value in
               (("enabled", enabled), ("cron", cron), ("timezone", timezone), ("input", input))
               if value is not None}
    cron = cron if cron is not None else schedule.cron
    timezone = timezone if timezone is not None else schedule.timezone
    _check(cron, timezone)
    runs.check_input(input)
    for name, value in changed.items():
        setattr(schedule, name, value)
    if changed.keys() & {"enabled", "cron", "timezone"}:
        schedule.next_fire_at = next_fire(cron, timezone, utcnow())
    audit.record("schedule.updated", target_type="schedule", target_id=schedule.id,
                 details={k: v for k, v in changed.items() if k != "input"}
                 | {"input_changed": "input" in changed})
    return schedule


def delete_schedule(schedule: Schedule) -> None:
    audit.record("schedule.deleted", target_type="schedule", target_id=schedule.id)
    db.session.delete(schedule)


def fire_due(now: datetime | None = None) -> int:
    """Fire every due tick of the scope tenant's schedules; returns how many fired here."""
    now = now or utcnow()
    fired = 0
    due = db.session.scalars(select(Schedule).where(Schedule.enabled.is_(True),
                                                    Schedule.next_fire_at <= now)).all()
    for schedule in due:
        schedule_id = schedule.id
        try:
            fired += _fire(schedule)
        except Exception:  # one schedule that cannot start must not stop all after it
            db.session.rollback()
            log.exception("schedule.fire_failed", schedule_id=str(schedule_id))
    return fired


def _fire(schedule: Schedule) -> int:
    """Fire the schedule's due tick once; 1 if a run started here."""
    tick = schedule.next_fire_at
    try:
        with db.session.begin_nested():
            db.session.add(ScheduleFire(schedule_id=schedule.id, fire_at=tick))
            db.session.flush()
    except IntegrityError:
        # another scheduler fired this tick; move on from it
        _advance(schedule, tick)
        db.session.commit()
        return 0
    fired = 0
    workflow = db.session.get(Workflow, schedule.workflow_id)
    if workflow is not None and workflow.current_version_id and workflow.archived_at is None:
        try:
            run, _ = runs.start_run(workflow, schedule.input, "schedule",
                                    idempotency_key=f"schedule:{schedule.id}:{tick.isoformat()}")
        except PaymentRequired as refused:  # the tick passes without a run, and says why
            _refused(schedule, tick, refused)
        else:
            db.session.scalars(select(ScheduleFire).where(
                ScheduleFire.schedule_id == schedule.id, ScheduleFire.fire_at == tick)
            ).one().run_id = run.id
            fired = 1
    schedule.last_fired_at = tick
    _advance(schedule, tick)
    db.session.commit()
    return fired


def _refused(schedule: Schedule, tick: datetime, refused: PaymentRequired) -> None:
    log.warning("schedule.refused", schedule_id=str(schedule.id), problem=refused.code)
    audit.record("schedule.run_refused", target_type="schedule", target_id=schedule.id,
                 details={"workflow_id": str(schedule.workflow_id), "tick": tick.isoformat(),
                          "problem": refused.code, "detail": refused.detail})


def _advance(schedule: Schedule, tick: datetime) -> None:
    schedule.next_fire_at = next_fire(schedule.cron, schedule.timezone, max(tick, utcnow()))


def fire_all() -> int:
    fired = 0
    for tenant in all_tenants():
        if not tenant.usable:  # suspended, or its agency is: its schedules rest
            continue
        with scoped_to(tenant.id):
            fired += fire_due()
    return fired


@dataclass
class Periodic:
    """Due at most once per `interval` seconds (of this process's monotonic clock)."""

    interval: float
    last: float | None = None

    def due(self, now: float) -> bool:
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        return True


# Recall never shows an expired note, so deleting them is housekeeping: no need to
# scan every tenant each round.
NOTES_PURGE = Periodic(interval=60.0)


def purge_notes(now: float | None = None) -> int:
    """Delete every tenant's expired agent notes, when NOTES_PURGE is due."""
    if not NOTES_PURGE.due(time.monotonic() if now is None else now):
        return 0
    purged = memory.purge_all_expired()
    db.session.commit()
    if purged:
        log.info("agent_notes.purged", count=purged)
    return purged


# Every tenant's audit chain head, sealed outside the database now and then; the
# interval comes from the settings (OVERTURE_AUDIT_CHECKPOINT_SECONDS).
AUDIT_CHECKPOINT = Periodic(interval=300.0)
AUDIT_SEALER = audit_seal.HeadSealer()


def checkpoint_audit(now: float | None = None) -> audit_seal.SealReport | None:
    """Seal the heads of every tenant's audit chain, when AUDIT_CHECKPOINT is due."""
    settings = current_app.extensions["overture.settings"]
    AUDIT_CHECKPOINT.interval = settings.audit_checkpoint_seconds
    if not AUDIT_CHECKPOINT.due(time.monotonic() if now is None else now):
        return None
    report = AUDIT_SEALER.checkpoint(settings, [t.id for t in all_tenants()])
    db.session.rollback()  # it only read
    return report


# Closed hours of usage go to Stripe through the meter-event outbox (billing/meter_outbox.py).
STRIPE_USAGE = Periodic(interval=60.0)


def report_usage(now: float | None = None) -> meter_outbox.SendReport | None:
    """Queue every tenant's closed hours and send what is due, when STRIPE_USAGE is due."""
    if not STRIPE_USAGE.due(time.monotonic() if now is None else now):
        return None
    meter_outbox.enqueue_all()
    report = meter_outbox.send_due()
    if report.sent or report.failed:
        log.info("stripe.usage_sent", sent=report.sent, failed=report.failed,
                 waiting=report.waiting)
    return report


# `overture_approvals_waiting`, counted across tenants now and then (a count per tenant).
APPROVALS_COUNT = Periodic(interval=15.0)


def count_approvals(now: float | None = None) -> int | None:
    if not APPROVALS_COUNT.due(time.monotonic() if now is None else now):
        return None
    waiting = worker.count_waiting_approvals()
    db.session.rollback()  # it only read
    return waiting


# Plans, prices and subscriptions follow their edits to Stripe (billing/stripe_plans.py).
STRIPE_PLANS = Periodic(interval=60.0)


def sync_plans(now: float | None = None) -> stripe_plans.SyncReport | None:
    """Sync the plans and subscriptions that are due, when STRIPE_PLANS is due."""
    if not STRIPE_PLANS.due(time.monotonic() if now is None else now):
        return None
    report = stripe_plans.sync_due()
    if report.synced or report.failed:
        log.info("stripe.plans_synced", synced=report.synced, failed=report.failed,
                 waiting=report.waiting, unsupported=report.unsupported)
    return report


# Outbound events whose actor message was lost (tenants/events/sender.py): a sweep of
# every tenant, so not every round.
EVENTS_RESEND = Periodic(interval=60.0)


def resend_events(now: float | None = None) -> int:
    if not EVENTS_RESEND.due(time.monotonic() if now is None else now):
        return 0
    return events_sender.resend_due()


def one_round(app: Any) -> None:
    """Fire due cron ticks, sweep for lost or overdue work (mail too), poll due connector
    triggers, and now and then delete expired agent notes and seal the audit chains' heads."""
    with app.app_context():
        try:
            fire_all()
            worker.sweep_all()
            triggers.poll_all()
            purge_notes()
            mail.resend_due()
            count_approvals()
            resend_events()
        except Exception:  # keep going; the next round retries
            log.exception("scheduler.round_failed")
            db.session.rollback()
        try:  # Stripe being down must not hold up the other jobs, nor they it
            sync_plans()
        except Exception:
            log.exception("stripe.plans_round_failed")
            db.session.rollback()
        try:
            report_usage()
        except Exception:
            log.exception("stripe.usage_round_failed")
            db.session.rollback()
        try:  # sealing must not wait for the other jobs to stop failing
            checkpoint_audit()
        except Exception:
            log.exception("audit.checkpoint_failed")
            db.session.rollback()
        finally:
            db.session.remove()


def run_scheduler(app: Any, interval: float) -> None:
    """`overture scheduler`: rounds until SIGTERM or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    settings = app.extensions["overture.settings"]
    if settings.scheduler_metrics_port:
        metrics_export.serve(settings.scheduler_metrics_port,
                             metrics_export.registry(settings.redis_url,
                                                     settings.redis_namespace))
    log.info("scheduler.started", interval=interval)
    while not stop.is_set():
        one_round(app)
        stop.wait(interval)


class SchedulerThread(threading.Thread):
    """The scheduler inside the process, for the embedded mode (`overture up`)."""

    def __init__(self, app: Any, interval: float = 2.0) -> None:
        super().__init__(name="overture-scheduler", daemon=True)
        self.app, self.interval, self._stop = app, interval, threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            one_round(self.app)

    def stop(self) -> None:
        self._stop.set()
