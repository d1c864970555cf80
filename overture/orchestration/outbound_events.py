"""The engine's facts as outbound events (tenants/events), written in the transaction of
the fact itself, like notifications.py's mail. Each call is one cached lookup for a
tenant that subscribes to nothing."""

from __future__ import annotations

from typing import Any

from overture.orchestration.models import Approval, Run, RunStatus, Workflow, WorkflowVersion
from overture.tenants.events import outbox

ENDED = {RunStatus.SUCCEEDED: "run.succeeded", RunStatus.FAILED: "run.failed",
         RunStatus.TIMED_OUT: "run.failed"}


def _run(run: Run) -> dict[str, Any]:
    return {"run_id": str(run.id), "workflow_id": str(run.workflow_id),
            "status": str(run.status), "trigger": run.trigger,
            "started_at": run.started_at, "finished_at": run.finished_at}


def run_started(run: Run) -> None:
    outbox.emit("run.started", _run(run), tenant_id=run.tenant_id)


def run_finished(run: Run) -> None:
    """`run.succeeded` or `run.failed` (a timeout is a failure); a cancelled run is
    neither."""
    event_type = ENDED.get(RunStatus(run.status))
    if event_type is None:
        return
    data = _run(run)
    if event_type == "run.failed":
        data["error"] = run.error
    outbox.emit(event_type, data, tenant_id=run.tenant_id)


def approval_requested(approval: Approval) -> None:
    outbox.emit("approval.requested", _approval(approval), tenant_id=approval.tenant_id)


def approval_decided(approval: Approval) -> None:
    outbox.emit("approval.decided", {**_approval(approval), "decided_at": approval.decided_at,
                                     "decided_by": str(approval.decided_by_id or "") or None},
                tenant_id=approval.tenant_id)


def _approval(approval: Approval) -> dict[str, Any]:
    return {"approval_id": str(approval.id), "run_id": str(approval.run_id),
            "status": str(approval.status), "prompt": approval.prompt,
            "deadline_at": approval.deadline_at}


def workflow_published(workflow: Workflow, version: WorkflowVersion) -> None:
    outbox.emit("workflow.published", {"workflow_id": str(workflow.id), "name": workflow.name,
                                       "version": version.number},
                tenant_id=workflow.tenant_id)
