"""What an agent is told: its system prompt (who it is, its instructions, its notes,
the answer contract and schema), and, once its rounds of tool calls are used up, to
answer now."""

from __future__ import annotations

import json
from typing import Any

from overture.orchestration.agents import tools
from overture.orchestration.agents.spec import AgentSpec

NOTES_IN_PROMPT = 20  # the newest notes an agent with `notes` reads in its system prompt
NOTES_PROMPT_CHARS = 8_000  # and at most this much of them
WRAP_UP = ("You have used all your rounds of tool calls. Do not call any more tools: give "
           "your final answer now, from what you have.")


def system_prompt(spec: AgentSpec, schema: dict[str, Any] | None,
                  notes: list[str] | None = None) -> str:
    parts = [f"You are {spec.name}" + (f", {spec.role}." if spec.role else ".")]
    if spec.instructions:
        parts.append(spec.instructions)
    if notes is not None:
        parts.append(notes_section(notes))
    parts.append(
        "When you are done, reply with only a JSON object: {\"status\": \"ok\" | "
        "\"needs_human\" | \"needs_info\" | \"failed\", \"confidence\": a number from 0 to 1, "
        "\"output\": your result}. Say needs_human when a person must decide, needs_info "
        "when information is missing, failed when you cannot do the task.")
    if schema is not None:
        parts.append("`output` must match this JSON Schema: " + json.dumps(schema))
    return "\n\n".join(parts)


def notes_section(notes: list[str]) -> str:
    """The agent's notes, newest first, cut to NOTES_PROMPT_CHARS: a prompt that grows
    with every note would crowd out the task and cost more each call."""
    head = (f"Your notes from earlier work, newest first (keep one with the "
            f"`{tools.REMEMBER}` tool):")
    if not notes:
        return head + "\n(none yet)"
    lines: list[str] = []
    used = 0
    for text in notes:
        line = "- " + " ".join(text.split())
        if used + len(line) > NOTES_PROMPT_CHARS:
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join([head, *lines])
