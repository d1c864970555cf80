"""What a test run's steps get instead of the world: declared mocks, recorded outputs,
synthetic answers (see the package's docstring for the order)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from overture.connectors import registry
from overture.connectors.models import Connection
from overture.orchestration.outcomes import Completed, Outcome, StepFailed
from overture.orchestration.testmode import options
from overture.platform.db import db

if TYPE_CHECKING:
    from overture.orchestration.steps import StepContext


def declared(ctx: StepContext) -> Outcome | None:
    """The step's declared mock as its outcome (a mocked error fails it), or None."""
    mock = (options.of_run(ctx.run_id).get("mocks") or {}).get(ctx.step["id"])
    return None if mock is None else _answer(mock)


def _answer(mock: dict[str, Any]) -> Completed:
    if "error" in mock:
        error = mock["error"]
        raise StepFailed(str(error["code"]), str(error.get("message") or "mocked error"),
                         {"mocked": True})
    return Completed(mock.get("output"))


def changes_world(key: str) -> bool:
    """Whether the action `<connector>.<action>` may change the world: as its connector
    declares; an action no connector declares (registered by code) is taken to."""
    connector_key, _, action_key = key.rpartition(".")
    connector = registry.find(connector_key)
    action = connector.action(action_key) if connector is not None else None
    return action is None or action.side_effects


def action_step(ctx: StepContext) -> Outcome | None:
    """An action step of a test run: its mock, recorded or synthetic output; None to
    call the action (it only reads, and reads are not mocked)."""
    key = str(ctx.step["action"])
    opts = options.of_run(ctx.run_id)
    if not changes_world(key) and not opts.get("mock_reads"):
        return None
    mock = (opts.get("action_mocks") or {}).get(key)
    if mock is not None:
        return _answer(mock)
    source = opts.get("source_run_id")
    if source:
        found, output = options.recorded_output(source, ctx.step["id"], ctx.path)
        if found:
            return Completed(output)
    return Completed(synthetic(key, ctx.render(ctx.step.get("input", {}))))


def synthetic(key: str, would_send: Any) -> dict[str, Any]:
    return {"mocked": True, "action": key, "note": options.SYNTHETIC_NOTE,
            "would_send": would_send}


def tool_action(run_id: str, connection_id: uuid.UUID | None, action_key: str,
                arguments: Any) -> tuple[bool, Any]:
    """An agent's action tool in a test run: (True, the mock's output) instead of the
    call, or (False, None) to call it (it only reads). A mocked error is the tool's."""
    connection = db.session.get(Connection, connection_id) if connection_id else None
    key = f"{connection.connector_key if connection else 'unknown'}.{action_key}"
    opts = options.of_run(run_id)
    if not changes_world(key) and not opts.get("mock_reads"):
        return False, None
    mock = (opts.get("action_mocks") or {}).get(key)
    if mock is None:
        return True, synthetic(key, arguments)
    if "error" in mock:
        return True, {"error": mock["error"], "mocked": True}
    return True, mock.get("output")


def scripted_turns(ctx: StepContext) -> list[dict[str, Any]] | None:
    """The scripted model turns the caller gave for this step, if any."""
    turns = (options.of_run(ctx.run_id).get("models") or {}).get(ctx.step["id"])
    return list(turns) if turns else None


def live_models_allowed(ctx: StepContext) -> bool:
    return bool(options.of_run(ctx.run_id).get("allow_live_models"))


def agent_versions(ctx: StepContext) -> dict[str, str]:
    """Agent name -> version id replacing the workflow version's pins, for this run."""
    return dict(options.of_run(ctx.run_id).get("agent_versions") or {})
