"""What a workspace offers MCP clients, and what calling it does.

The tools are the workspace's portal publications that are published: the builder
chooses once (console Portal page) what outsiders may start, for customers in the
portal and for programs over MCP alike, with the same label and description. A key
still needs the `mcp` scope to reach them.

- A workflow tool's input schema is the live version's `input_schema`; a call starts a
  run (trigger `mcp`) and answers with its output when it ends within WAIT_SECONDS, or
  with `overture://runs/<id>`, a resource the client reads until the run is over (a run
  waiting for an approval, or a long one).
- An agent tool takes a `message`; a call runs the agent once, in a conversation of
  its own, and answers with its reply.

Every call is audited (`mcp.tool_called`) and metered (`mcp_calls`, by tool kind),
in its own commit, whatever its outcome.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from overture.billing import usage
from overture.billing.meters import MCP_CALLS
from overture.orchestration import runs, workflows
from overture.orchestration.agents import chat, memory
from overture.orchestration.agents import service as agents
from overture.orchestration.models import Run, StepRun, StepStatus
from overture.orchestration.portal import publishing
from overture.orchestration.portal.models import Publication
from overture.platform import audit
from overture.platform.db import db
from overture.platform.errors import NotFound, OvertureError, ValidationFailed
from overture.platform.ids import parse_id

WAIT_SECONDS = 10.0  # a run that ends sooner is answered with its output
POLL_EVERY = 0.1
RUN_URI = "overture://runs/"
MAX_TOOL_NAME = 64
_UNSAFE = re.compile(r"[^a-z0-9_-]+")
MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["message"],
    "properties": {"message": {"type": "string", "minLength": 1,
                               "maxLength": memory.MAX_MESSAGE,
                               "description": "what to ask the agent"}}}


@dataclass(frozen=True)
class ExposedTool:
    name: str
    kind: str  # workflow or agent
    target_id: uuid.UUID
    title: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """A call's answer: `error` for a failure the caller should read (bad input, a
    failed run), else `value` (the output, or where to follow the run)."""

    value: Any = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def tools() -> list[ExposedTool]:
    """The scope workspace's published workflows and agents, oldest publication first;
    each name unique (a repeated label gets `_2`, `_3`)."""
    found: list[ExposedTool] = []
    taken: set[str] = set()
    for publication in publishing.list_publications():
        if not publication.published:
            continue
        tool = _tool(publication, taken)
        if tool is not None:
            taken.add(tool.name)
            found.append(tool)
    return found


def _tool(publication: Publication, taken: set[str]) -> ExposedTool | None:
    name = _unique(_UNSAFE.sub("_", publication.label.lower()).strip("_") or publication.kind,
                   taken)
    if publication.workflow_id is not None:
        workflow = workflows.get_workflow(publication.workflow_id)
        version = workflows.current_version(workflow)
        if version is None:
            return None
        schema = (version.definition or {}).get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            schema = {"type": "object"}  # MCP wants an object at the root
        return ExposedTool(name, "workflow", workflow.id, publication.label,
                           publication.description or f"Start the workflow {workflow.name!r}",
                           schema)
    agent = agents.get_agent(publication.agent_id)
    return ExposedTool(name, "agent", agent.id, publication.label,
                       publication.description or f"Ask the agent {agent.name!r}",
                       MESSAGE_SCHEMA)


def _unique(base: str, taken: set[str]) -> str:
    base = base[:MAX_TOOL_NAME - 4]
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def call(name: str, arguments: dict[str, Any] | None, user_id: uuid.UUID) -> Outcome:
    """Call the tool `name` of the scope workspace; NotFound for a tool it does not
    offer (another workspace's included). Commits."""
    tool = next((t for t in tools() if t.name == name), None)
    if tool is None:
        raise NotFound(f"no tool {name!r} in this workspace")
    arguments = arguments or {}
    try:
        outcome = (_start_workflow(tool, arguments, user_id) if tool.kind == "workflow"
                   else _ask_agent(tool, arguments))
    except ValidationFailed as invalid:  # refused before anything was written
        outcome = Outcome(error=f"invalid input: {invalid.detail}")
    except OvertureError as error:  # what a failed agent turn used stays recorded
        outcome = Outcome(error=error.detail or error.title)
    _record(tool, outcome)
    db.session.commit()
    if outcome.error is None and "run_id" in outcome.details:
        return _await(outcome)
    return outcome


def _start_workflow(tool: ExposedTool, arguments: dict[str, Any],
                    user_id: uuid.UUID) -> Outcome:
    workflow = workflows.get_workflow(tool.target_id)
    run, _ = runs.start_run(workflow, arguments, "mcp", started_by=user_id,
                            check_schema=True)
    return Outcome(details={"run_id": str(run.id)})


def _ask_agent(tool: ExposedTool, arguments: dict[str, Any]) -> Outcome:
    message = arguments.get("message")
    if not isinstance(message, str):
        raise ValidationFailed.field("message", "a text is required")
    conversation = chat.start(tool.target_id, title=f"MCP: {tool.title}"[:chat.MAX_TITLE])
    reply = chat.send(conversation, message)
    return Outcome(value={"reply": reply.assistant.content, "status": reply.answer.status,
                          "conversation_id": str(conversation.id)},
                   details={"conversation_id": str(conversation.id)})


def _record(tool: ExposedTool, outcome: Outcome) -> None:
    audit.record("mcp.tool_called", target_type=tool.kind, target_id=tool.target_id,
                 details={"tool": tool.name, "outcome": "error" if outcome.error else "ok",
                          "error": outcome.error, **outcome.details})
    usage.record([usage.Entry(MCP_CALLS, Decimal(1), tool.kind)],
                 attribution=usage.Attribution(
                     workflow_id=tool.target_id if tool.kind == "workflow" else None,
                     agent_id=tool.target_id if tool.kind == "agent" else None))


def _await(started: Outcome) -> Outcome:
    """The run's answer if it ends within WAIT_SECONDS, else where to follow it."""
    run_id = started.details["run_id"]
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        state = run_state(run_id)
        if state["finished"] or state["waiting_on"] or time.monotonic() >= deadline:
            break
        time.sleep(POLL_EVERY)
    if state["finished"] and state["status"] != "succeeded":
        return Outcome(error=f"the run {state['status']}: {state.get('error')}", details=state)
    return Outcome(value=state, details=state)


def run_state(run_id: str) -> dict[str, Any]:
    """What a client sees of a run it started over MCP (a run started otherwise is not
    found: a key reads through MCP only what MCP started). `waiting_on`: the steps
    waiting (an approval, a timer, a child run): no use waiting for those here."""
    ident = parse_id(run_id)
    run = db.session.get(Run, ident, populate_existing=True) if ident else None
    if run is None or run.trigger != "mcp":
        raise NotFound("no such run")
    waiting = db.session.scalars(select(StepRun.step_id).where(
        StepRun.run_id == run.id, StepRun.status == StepStatus.WAITING)).all()
    state: dict[str, Any] = {"run_id": str(run.id), "status": str(run.status),
                             "finished": run.finished, "waiting_on": sorted(waiting),
                             "resource": RUN_URI + str(run.id)}
    if run.finished:
        state["output"] = run.output
        state["error"] = run.error
    db.session.rollback()  # the next look sees what the worker committed since
    return state


def run_of_uri(uri: str) -> dict[str, Any]:
    if not uri.startswith(RUN_URI):
        raise NotFound(f"no resource {uri!r}")
    return run_state(uri[len(RUN_URI):])
