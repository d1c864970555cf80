"""Runs: start one (idempotently), read them as timelines, cancel, replay."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request

from overture.orchestration import runs, workflows
from overture.orchestration.models import Run
from overture.orchestration.testmode import start as test_start
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
                          query["status"], query["trigger"], mode=query["mode"])
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
@api.doc(tags=TAGS, summary="Replay a run: again from a step (live), or in test mode "
                             "against another workflow or agent version",
         description="With `from_step`: a new live run that reuses the outputs of the steps "
                     "before it. With `version`, `agent_versions` or `test: true`: a test run "
                     "(sends nothing, bills nothing) of the same input, whose world-changing "
                     "actions answer with this run's recorded outputs; compare it with "
                     "`GET /runs/{id}/diff`.")
def replay_run(run_id: str, body: dict[str, Any]) -> dict[str, Any]:
    source = runs.get_run(run_id)
    user_id = current_access().principal.user.id
    testing = body["test"] or body["version"] is not None or body["agent_versions"]
    if testing and body["from_step"]:
        raise ValidationFailed.field("from_step", "a test replay runs the whole workflow: "
                                                  "leave out from_step")
    if testing:
        replay = test_start.replay(source, user_id, version=body["version"],
                                   agent_versions=[{**a, "agent_id": str(a["agent_id"])}
                                                   for a in body["agent_versions"] or []])
    elif body["from_step"]:
        replay = runs.replay_run(source, body["from_step"], user_id)
    else:
        raise ValidationFailed.field("from_step", "name the step to replay from, or ask for "
                                                  "a test replay (version, agent_versions)")
    db.session.commit()
    return run_view(replay)
