"""Runs: start one (idempotently), read them as timelines, cancel, replay."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request

from overture.orchestration import runs, workflows
from overture.orchestration.models import Run
from overture.platform.db import db
from overture.platform.errors import ValidationFailed
from overture.web.api import api
from overture.web.api.workflow_schemas import (
    ReplayIn,
    RunDetail,
    RunOut,
    RunPage,
    RunQuery,
    RunStart,
)
from overture.web.auth import current_access, require

TAGS = ["Runs"]
IDEMPOTENCY_HEADER = "Idempotency-Key"


def run_view(run: Run, versions: dict[uuid.UUID, int] | None = None,
             steps: bool = False) -> dict[str, Any]:
    """`versions`: the version numbers of a page of runs, read together (one statement
    for the page, not one per run)."""
    if versions is None or run.version_id not in versions:
        versions = workflows.version_numbers([run.version_id])
    view = {name: getattr(run, name) for name in RunOut().fields if name != "version"}
    view["version"] = versions[run.version_id]
    view["cost"] = str(run.cost)
    if steps:
        view["steps"] = runs.timeline(run)
    return view


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 1 <= len(key) <= 200:
        raise ValidationFailed.field(IDEMPOTENCY_HEADER, "must be 1 to 200 characters")
    return key


@api.post("/workflows/<workflow_id>/runs")
@require("run.start")
@api.input(RunStart, arg_name="body")
@api.output(RunOut, status_code=202)
@api.doc(tags=TAGS, summary="Start a run; the same Idempotency-Key gives the same run",
         responses={202: "started", 200: "started before with this Idempotency-Key"})
def start_run(workflow_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    workflow = workflows.get_workflow(workflow_id)
    run, created = runs.start_run(workflow, body["input"], "api",
                                  idempotency_key=_idempotency_key(),
                                  started_by=current_access().principal.user.id,
                                  check_schema=True)
    db.session.commit()
    return run_view(run), 202 if created else 200


@api.get("/runs")
@require("run.read")
@api.input(RunQuery, location="query", arg_name="query")
@api.output(RunPage)
@api.doc(tags=TAGS, summary="List runs, filtered by workflow, status or trigger")
def list_runs(query: dict[str, Any]) -> dict[str, Any]:
    page = runs.list_runs(query["cursor"], query["limit"], query["workflow_id"],
                          query["status"], query["trigger"])
    versions = workflows.version_numbers(r.version_id for r in page.items)
    return page.body([run_view(r, versions) for r in page.items])


@api.get("/runs/<run_id>")
@require("run.read")
@api.output(RunDetail)
@api.doc(tags=TAGS, summary="A run with its timeline of step runs")
def get_run(run_id: str) -> dict[str, Any]:
    return run_view(runs.get_run(run_id), steps=True)


@api.post("/runs/<run_id>/cancel")
@require("run.cancel")
@api.output(RunOut)
@api.doc(tags=TAGS, summary="Cancel a run, its queued steps, approvals and child runs")
def cancel_run(run_id: str) -> dict[str, Any]:
    run = runs.cancel_run(runs.get_run(run_id))
    db.session.commit()
    return run_view(run)


@api.post("/runs/<run_id>/replay")
@require("run.cancel")
@api.input(ReplayIn, arg_name="body")
@api.output(RunOut, status_code=202)
@api.doc(tags=TAGS, summary="A new run that reuses earlier outputs and runs again from a step")
def replay_run(run_id: str, body: dict[str, Any]) -> dict[str, Any]:
    replay = runs.replay_run(runs.get_run(run_id), body["from_step"],
                             current_access().principal.user.id)
    db.session.commit()
    return run_view(replay)
