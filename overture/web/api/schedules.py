"""Cron schedules of a workflow: each tick starts one run of its current version."""

from __future__ import annotations

from typing import Any

from overture.orchestration import scheduler, workflows
from overture.orchestration.models import Schedule
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.schemas import PageQuery
from overture.web.api.workflow_schemas import (
    ScheduleCreate,
    ScheduleOut,
    SchedulePage,
    ScheduleUpdate,
)
from overture.web.auth import require

TAGS = ["Schedules"]


@api.get("/workflows/<workflow_id>/schedules")
@require("workflow.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(SchedulePage)
@api.doc(tags=TAGS, summary="A workflow's schedules")
def list_schedules(workflow_id: str, query: dict[str, Any]) -> dict[str, Any]:
    workflow = workflows.get_workflow(workflow_id)
    page = scheduler.list_schedules(query["cursor"], query["limit"], workflow.id)
    return page.body()


@api.post("/workflows/<workflow_id>/schedules")
@require("workflow.edit")
@api.input(ScheduleCreate, arg_name="body")
@api.output(ScheduleOut, status_code=201)
@api.doc(tags=TAGS, summary="Run the workflow on a cron schedule in a time zone")
def create_schedule(workflow_id: str, body: dict[str, Any]) -> Schedule:
    schedule = scheduler.create_schedule(workflows.get_workflow(workflow_id), body["cron"],
                                         body["timezone"], body["input"])
    db.session.commit()
    return schedule


@api.get("/schedules/<schedule_id>")
@require("workflow.read")
@api.output(ScheduleOut)
@api.doc(tags=TAGS, summary="One schedule")
def get_schedule(schedule_id: str) -> Schedule:
    return scheduler.get_schedule(schedule_id)


@api.patch("/schedules/<schedule_id>")
@require("workflow.edit")
@api.input(ScheduleUpdate, arg_name="body")
@api.output(ScheduleOut)
@api.doc(tags=TAGS, summary="Enable, disable or change a schedule")
def update_schedule(schedule_id: str, body: dict[str, Any]) -> Schedule:
    schedule = scheduler.update_schedule(scheduler.get_schedule(schedule_id), **body)
    db.session.commit()
    return schedule


@api.delete("/schedules/<schedule_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a schedule (the runs it started stay)")
def delete_schedule(schedule_id: str) -> tuple[str, int]:
    scheduler.delete_schedule(scheduler.get_schedule(schedule_id))
    db.session.commit()
    return "", 204
