"""The tools an agent may use: exactly its grants (plus the specialists a supervisor step
names), as the model sees them, and how connector actions and knowledge searches run.

- action: a connection's connector action; its input JSON Schema is the tool's schema.
  A side-effecting action without `allow_side_effects` is not offered, and refused if
  the model calls it anyway. Through an `mcp` connection, `<connection>/<tool>` names
  one tool of that MCP server, with the schema the server lists for it: the grant is
  the scope (the server's other tools are not offered), and granting it allows what it
  does (the server alone knows whether it has side effects).
- agent: "ask another agent": takes a task, returns that agent's answer (the runtime
  runs it, recursively).
- knowledge: "search a collection": takes a query, returns the best passages.
- notes: `remember`, offered when the agent's spec enables `notes`: keeps a note the
  agent will read in its later invocations (for its `notes_retention_days`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jsonschema import Draft202012Validator
from sqlalchemy import select

from overture.billing.usage import NOWHERE, Attribution
from overture.connectors import registry
from overture.connectors.errors import ActionFailed
from overture.connectors.execute import digest, execute
from overture.connectors.models import Connection
from overture.orchestration.agents import knowledge, memory
from overture.orchestration.agents.spec import AgentSpec, ToolGrant, ToolKind
from overture.orchestration.llm.types import Tool, ToolCall
from overture.orchestration.outcomes import TRANSIENT, StepFailed, budget_exceeded
from overture.platform.db import db
from overture.platform.errors import OvertureError, PaymentRequired, ValidationFailed

MAX_RESULT_CHARS = 20_000  # what one tool result may add to the conversation
MAX_TOOL_NAME = 64
SEARCH_PARAMETERS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["query"],
    "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 2000,
                             "description": "what to look for"},
                   "k": {"type": "integer", "minimum": 1, "maximum": 10,
                         "description": "how many passages (default 3)"}}}
DELEGATE_PARAMETERS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["task"],
    "properties": {"task": {"type": "string", "minLength": 1, "maxLength": 20_000,
                            "description": "what the agent should do, with everything it "
                                           "needs to know"}}}
REMEMBER = "remember"
REMEMBER_PARAMETERS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["text"],
    "properties": {"text": {"type": "string", "minLength": 1, "maxLength": memory.MAX_NOTE,
                            "description": "the note, complete in itself"}}}
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
MCP_CONNECTOR = "mcp"
# What an agent may call: its grants' kinds, and its notes when its spec enables them.
AgentToolKind = Literal[ToolKind, "notes"]


class ToolSetupFailed(OvertureError):
    """An agent's grant names something this tenant does not have (any more)."""

    status = 422
    code = "agent-tool-setup"
    title = "An agent's tool cannot be set up"


@dataclass(frozen=True)
class AgentTool:
    name: str  # what the model sees and calls
    kind: AgentToolKind
    ref: str
    description: str
    parameters: dict[str, Any]
    refusal: str | None = None  # granted, but may not be used: why
    connection_id: uuid.UUID | None = None
    action_key: str = ""
    mcp_tool: str = ""  # through an `mcp` connection: the server's tool

    def as_tool(self) -> Tool:
        return Tool(name=self.name, description=self.description, parameters=self.parameters)


@dataclass(frozen=True)
class Toolbox:
    tools: dict[str, AgentTool] = field(default_factory=dict)

    def offered(self) -> tuple[Tool, ...]:
        return tuple(t.as_tool() for t in self.tools.values() if t.refusal is None)

    def get(self, name: str) -> AgentTool | None:
        return self.tools.get(name)

    def names(self, kind: AgentToolKind) -> list[str]:
        return [t.name for t in self.tools.values() if t.kind == kind and t.refusal is None]


def toolbox_for(spec: AgentSpec, extra_agents: Sequence[str] = ()) -> Toolbox:
    """The agent's grants as tools; `extra_agents` are delegates a step grants."""
    grants = list(spec.tools) + [ToolGrant(kind="agent", ref=name) for name in extra_agents
                                 if not any(g.kind == "agent" and g.ref == name
                                            for g in spec.tools)]
    tools: dict[str, AgentTool] = {}
    for tool in [_BUILDERS[grant.kind](grant) for grant in grants] \
            + ([_notes_tool(spec)] if spec.notes else []):
        if tool.name in tools:
            raise ToolSetupFailed(f"agent {spec.name!r}: two tools are named {tool.name!r}; "
                                  "give one a `name`")
        tools[tool.name] = tool
    return Toolbox(tools)


def tool_name(grant: ToolGrant) -> str:
    if grant.name:
        return grant.name
    prefix = {"action": "", "agent": "ask_", "knowledge": "search_"}[grant.kind]
    return (prefix + _UNSAFE.sub("_", grant.ref).strip("_").lower())[:MAX_TOOL_NAME]


def _action_tool(grant: ToolGrant) -> AgentTool:
    connection_name, _, action_key = grant.ref.rpartition("/")
    connection = db_connection(connection_name)
    if connection is not None and connection.connector_key == MCP_CONNECTOR:
        return _mcp_tool(grant, connection, action_key)
    connector = registry.find(connection.connector_key) if connection else None
    action = connector.action(action_key) if connector else None
    if connection is None or action is None:
        raise ToolSetupFailed(f"tool {grant.ref!r}: no connection {connection_name!r} with "
                              f"an action {action_key!r}")
    refusal = None
    if action.side_effects and not grant.allow_side_effects:
        refusal = (f"{grant.ref} has side effects and the agent is not allowed them "
                   "(allow_side_effects)")
    return AgentTool(tool_name(grant), "action", grant.ref,
                     grant.description or action.description, action.input_schema,
                     refusal=refusal, connection_id=connection.id, action_key=action.key)


def _mcp_tool(grant: ToolGrant, connection: Connection, tool: str) -> AgentTool:
    """The server's own name, description and schema of the granted tool, read from its
    list (an outbound call, audited and metered as any)."""
    try:
        listed = execute(connection.id, "list_tools", {})["tools"]
    except OvertureError as error:
        raise ToolSetupFailed(f"tool {grant.ref!r}: the MCP server's tools could not be "
                              f"listed: {error.detail}") from error
    found = next((t for t in listed if t["name"] == tool), None)
    if found is None:
        raise ToolSetupFailed(f"tool {grant.ref!r}: the MCP server of {connection.name!r} "
                              f"has no tool {tool!r}")
    schema = found["input_schema"] if isinstance(found["input_schema"], dict) else {}
    name = grant.name or _UNSAFE.sub("_", tool).strip("_")[:MAX_TOOL_NAME] or tool_name(grant)
    return AgentTool(name, "action", grant.ref,
                     grant.description or found["description"] or f"MCP tool {tool}",
                     {"type": "object", **schema}, connection_id=connection.id,
                     action_key="call_tool", mcp_tool=tool)


def db_connection(name: str) -> Connection | None:
    return db.session.scalars(select(Connection).where(Connection.name == name)).one_or_none()


def _agent_tool(grant: ToolGrant) -> AgentTool:
    return AgentTool(tool_name(grant), "agent", grant.ref,
                     grant.description or f"Ask the agent {grant.ref!r} to do a task; "
                                          "returns its answer (status, confidence, output).",
                     DELEGATE_PARAMETERS)


def _knowledge_tool(grant: ToolGrant) -> AgentTool:
    return AgentTool(tool_name(grant), "knowledge", grant.ref,
                     grant.description or f"Search the knowledge collection {grant.ref!r}; "
                                          "returns the best passages.",
                     SEARCH_PARAMETERS)


def _notes_tool(spec: AgentSpec) -> AgentTool:
    kept = f"for {spec.notes_retention_days} days" if spec.notes_retention_days else "for good"
    return AgentTool(REMEMBER, "notes", spec.name,
                     "Keep a short note for your later tasks and conversations (a fact, a "
                     f"preference, a decision); you will see it in your instructions, {kept}. "
                     "Never store secrets.", REMEMBER_PARAMETERS)


_BUILDERS = {"action": _action_tool, "agent": _agent_tool, "knowledge": _knowledge_tool}


# --------------------------------------------------------------------------- calls


class ToolError(Exception):
    """A tool call failed in a way the model should read and may work around."""


def argument_problem(tool: AgentTool, call: ToolCall) -> str | None:
    """Why the call's arguments do not fit the tool (None: they do)."""
    if call.malformed:
        return f"the arguments are not a JSON object: {call.raw_arguments[:200]!r}"
    error = next(iter(sorted(Draft202012Validator(tool.parameters).iter_errors(call.arguments),
                             key=lambda e: list(e.absolute_path))), None)
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def input_digest(arguments: Any) -> str:
    """sha256 of the canonical JSON: what the audit log keeps instead of the input."""
    return digest(arguments)


def run_action(tool: AgentTool, arguments: dict[str, Any], idempotency_key: str,
               timeout: float, attribution: Attribution = NOWHERE) -> Any:
    """The connector action's output. A failure the app may get over (rate limit, 5xx,
    timeout) fails the step, so its retry policy runs it again with the same keys; any
    other failure is the model's to read (ToolError)."""
    assert tool.connection_id is not None
    if tool.mcp_tool:
        arguments = {"tool": tool.mcp_tool, "arguments": arguments}
    try:
        output = execute(tool.connection_id, tool.action_key, arguments, idempotency_key,
                         timeout, attribution)
    except ActionFailed as failure:
        if failure.retryable or failure.reason in TRANSIENT:
            raise StepFailed(failure.reason, f"tool {tool.name}: {failure.detail}") from failure
        raise ToolError(f"{failure.reason}: {failure.detail}") from failure
    except ValidationFailed as invalid:
        raise ToolError(invalid.detail) from invalid
    except PaymentRequired as refused:  # a limit stops the step, not just the tool
        raise budget_exceeded(refused) from refused
    except OvertureError as error:
        raise ToolError(error.detail) from error
    if tool.mcp_tool and output.get("is_error"):
        raise ToolError(output.get("text") or "the MCP tool failed")
    return output


def run_search(tool: AgentTool, arguments: dict[str, Any]) -> dict[str, Any]:
    try:
        passages = knowledge.search(tool.ref, arguments["query"], int(arguments.get("k", 3)))
    except OvertureError as error:
        raise ToolError(error.detail) from error
    return {"passages": [{"document_title": p.document_title, "text": p.text,
                          "score": p.score} for p in passages]}


def run_remember(agent_id: uuid.UUID, arguments: dict[str, Any],
                 retention_days: int | None) -> dict[str, Any]:
    """Keep the note and commit it at once: a step's work is rolled back when it ends,
    and what the agent chose to remember must stay (as an action's records do)."""
    try:
        note = memory.keep(agent_id, arguments["text"], retention_days)
        db.session.commit()
    except OvertureError as error:
        db.session.rollback()
        raise ToolError(error.detail) from error
    return {"remembered": True, "note_id": str(note.id),
            "expires_at": note.expires_at.isoformat() if note.expires_at else None}


def result_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)
    if len(text) > MAX_RESULT_CHARS:
        return text[:MAX_RESULT_CHARS] + f"... [cut: {len(text) - MAX_RESULT_CHARS} more chars]"
    return text
