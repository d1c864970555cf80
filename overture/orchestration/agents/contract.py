"""The output contract every agent answer follows:

    {"status": "ok" | "needs_human" | "needs_info" | "failed",
     "confidence": a number in [0, 1] or null,
     "output": the result (matching the agent's JSON Schema, when it has one)}

A text-only agent (no schema) that answers in plain text gets {"status": "ok",
"output": <the text>, "confidence": null}: models do not always follow the format, and
text is a fine answer for such an agent.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from overture.orchestration.agents.spec import STATUSES
from overture.platform import jsonbody

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class InvalidAnswer(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def envelope(schema: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON Schema of a whole answer whose `output` fits `schema`."""
    return {"type": "object", "required": ["status", "confidence", "output"],
            "additionalProperties": False,
            "properties": {"status": {"enum": list(STATUSES)},
                           "confidence": {"type": ["number", "null"], "minimum": 0,
                                          "maximum": 1},
                           "output": schema if schema is not None else {}}}


def parse_answer(text: str, schema: dict[str, Any] | None) -> tuple[str, float | None, Any]:
    """(status, confidence, output), or InvalidAnswer saying what to fix."""
    value = _json(text)
    if not (isinstance(value, dict) and "status" in value):
        if schema is not None:
            raise InvalidAnswer('the answer is not a JSON object with "status", '
                                '"confidence" and "output"')
        return "ok", None, text.strip()
    status = value["status"]
    if status not in STATUSES:
        raise InvalidAnswer(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    confidence = value.get("confidence")
    if confidence is not None and (isinstance(confidence, bool)
                                   or not isinstance(confidence, int | float)
                                   or not 0 <= confidence <= 1):
        raise InvalidAnswer(f"confidence must be a number from 0 to 1, not {confidence!r}")
    output = value.get("output")
    if schema is not None and status == "ok":
        problem = schema_problem(schema, output)
        if problem:
            raise InvalidAnswer(f"output does not match its schema: {problem}")
    return status, None if confidence is None else float(confidence), output


def schema_problem(schema: dict[str, Any], value: Any) -> str | None:
    try:
        errors = sorted(Draft202012Validator(schema).iter_errors(value),
                        key=lambda e: list(e.absolute_path))
    except SchemaError as exc:  # the agent's schema itself is broken
        return f"the agent's output schema is invalid: {exc.message}"
    if not errors:
        return None
    where = ".".join(str(p) for p in errors[0].absolute_path)
    return f"{'output.' + where + ': ' if where else ''}{errors[0].message}"


def _json(text: str) -> Any:
    stripped = text.strip()
    fenced = _FENCE.match(stripped)  # models like to wrap JSON in a code fence
    try:
        return jsonbody.loads(fenced.group(1) if fenced else stripped)
    except ValueError:
        return None
