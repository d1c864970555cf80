"""Test mode: test runs, a replay's per-step diff, A/B comparisons of agent versions
(orchestration/testmode)."""

from __future__ import annotations

from typing import Any

from overture.orchestration import runs, workflows
from overture.orchestration.agents import service as agents
from overture.orchestration.testmode import compare, diff
from overture.orchestration.testmode import start as test_start
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.runs import run_view
from overture.web.api.testing_schemas import CompareIn, CompareOut, RunDiffOut, TestRunIn
from overture.web.api.workflow_schemas import RunOut
from overture.web.auth import current_access, require

TAGS = ["Test mode"]


@api.post("/workflows/<workflow_id>/test-runs")
@require("run.start")
@api.input(TestRunIn, arg_name="body")
@api.output(RunOut, status_code=202)
@api.doc(tags=TAGS, summary="Start a test run: nothing is sent outside, nothing is billed",
         description="World-changing connector actions answer with the step's mock, the "
                     "action's mock, the source run's recorded output, or a synthetic "
                     "`mocked: no response declared` output; agents use the scripted turns "
                     "given, else their offline provider (`local` stands in for network "
                     "models unless `allow_live_models`). No usage, outbound events or mail.")
def start_test_run(workflow_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    workflow = workflows.get_workflow(workflow_id)
    raw = {k: v for k, v in body.items() if k != "input"}
    if raw.get("source_run_id") is not None:
        raw["source_run_id"] = str(raw["source_run_id"])
    run = test_start.start(workflow, body["input"], raw,
                           current_access().principal.user.id)
    db.session.commit()
    return run_view(run), 202


@api.get("/runs/<run_id>/diff")
@require("run.read")
@api.output(RunDiffOut)
@api.doc(tags=TAGS, summary="A replay compared with its source run, step by step")
def run_diff(run_id: str) -> dict[str, Any]:
    return diff.of_replay(runs.get_run(run_id))


@api.post("/agents/<agent_id>/compare")
@require("run.start")
@api.input(CompareIn, arg_name="body")
@api.output(CompareOut, status_code=202)
@api.doc(tags=TAGS, summary="A/B: replay recorded runs in test mode under two agent versions",
         description="Give `run_ids`, or `last` (the last N finished runs of workflows using "
                     "the agent). Read the table with "
                     "`GET /agents/{agent_id}/comparisons/{id}` until `finished`.")
def compare_agent(agent_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    agent = agents.get_agent(agent_id)
    found = compare.start_comparison(
        agent, body["version_a"], body["version_b"],
        [str(r) for r in body["run_ids"]] if body["run_ids"] else None, body["last"],
        current_access().principal.user.id)
    db.session.commit()
    return found, 202


@api.get("/agents/<agent_id>/comparisons/<comparison_id>")
@require("run.read")
@api.output(CompareOut)
@api.doc(tags=TAGS, summary="An A/B comparison's summary table")
def get_comparison(agent_id: str, comparison_id: str) -> dict[str, Any]:
    return compare.summary(agents.get_agent(agent_id), comparison_id)
