"""The output contract every agent answer follows:

    {"status": "ok" | "needs_human" | "needs_info" | "failed",
     "confidence": a number in [0, 1] or null,
     "output": the result (matching the agent's JSON Schema, when it has one)}

A text-only agent (no schema) that answers in plain text gets {"status": "ok",
"output": <the text>, "confidence": null}: models do not always follow the format, and
text is a fine answer for such an agent.
"""

from __future__ import annotations

import json
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


class OutputText:
    """The part of an answer a person reads, while the answer is still arriving.

    Fed the answer's text piece by piece, it gives back what to show so far: a plain
    text answer as it comes; of a JSON answer (fenced or not), the `output` string,
    unescaped, character by character. An `output` that is not a string (structured
    output) shows nothing here: the whole answer is shown when it is complete.
    """

    def __init__(self) -> None:
        self.mode = "start"  # start | fence | plain | json | value | done
        self.depth = 0
        self.in_string = self.escaped = self.reading_key = False
        self.expect_key = self.awaiting_value = False
        self.chars: list[str] = []  # the string being read (a key, at depth 1)
        self.key: str | None = None
        self.raw: list[str] = []  # the output's string as sent (escapes and all)
        self.sent = 0  # characters of it already given back

    def feed(self, delta: str) -> str:
        if self.mode == "plain":
            return delta
        shown: list[str] = []
        for index, char in enumerate(delta):
            if self.mode == "start":
                if char.isspace():
                    continue
                if char in "{`":
                    self._open() if char == "{" else setattr(self, "mode", "fence")
                    continue
                self.mode = "plain"
                shown.append(delta[index:])
                break
            if self.mode == "fence":
                if char == "{":
                    self._open()
            elif self.mode == "json":
                self._scan(char)
            elif self.mode == "value":
                if self._value_char(char):
                    shown.append(self._decoded(final=True))
                    self.mode = "done"
            else:
                break
        if self.mode == "value":
            shown.append(self._decoded())
        return "".join(shown)

    def _open(self) -> None:
        self.mode, self.depth, self.expect_key = "json", 1, True

    def _scan(self, char: str) -> None:
        """One character of the JSON around the output (keys, other values)."""
        if self.in_string:
            if self.escaped:
                self.escaped = False
            elif char == "\\":
                self.escaped = True
            elif char == '"':
                self.in_string = False
                if self.reading_key:
                    self.key = "".join(self.chars)
                return
            self.chars.append(char)
            return
        if char.isspace():
            return
        if self.depth == 1 and self.awaiting_value:
            self.awaiting_value = False
            if self.key == "output":
                self.mode = "value" if char == '"' else "done"
                return
        if char == '"':
            self.in_string, self.chars = True, []
            self.reading_key = self.depth == 1 and self.expect_key
        elif char in "{[":
            self.depth += 1
        elif char in "}]":
            self.depth -= 1
            if self.depth == 0:
                self.mode = "done"
        elif char == "," and self.depth == 1:
            self.expect_key = True
        elif char == ":" and self.depth == 1:
            self.expect_key, self.awaiting_value = False, True

    def _value_char(self, char: str) -> bool:
        """Take one character of the output string; True when it closed the string."""
        if self.escaped:
            self.escaped = False
        elif char == "\\":
            self.escaped = True
        elif char == '"':
            return True
        self.raw.append(char)
        return False

    def _decoded(self, final: bool = False) -> str:
        """What is new of the output string. An escape cut in two by the pieces waits
        for its end, and half a surrogate pair for its other half."""
        raw = "".join(self.raw)
        for cut in range(len(raw), max(-1, len(raw) - 12), -1):
            try:
                text = json.loads(f'"{raw[:cut]}"', strict=False)
                break
            except ValueError:
                if final:
                    return ""
        else:
            return ""
        if not final and text and "\ud800" <= text[-1] <= "\udbff":
            text = text[:-1]
        new, self.sent = text[self.sent:], max(self.sent, len(text))
        return new
