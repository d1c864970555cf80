"""The agent form: a flat HTML form to and from the agent's configuration (the JSON the
API takes), and the service's field paths (`config.tools.2.ref`) back to the form's
fields, so an error shows beside the input that caused it.

Knowledge collections are tools of kind `knowledge`; the form shows them as a checklist
and the other tools (actions, delegate agents) as rows. What the form does not show
(a scripted provider's script, an output schema set by the API) is kept as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from overture.orchestration.agents.spec import PROVIDERS
from overture.platform.errors import ValidationFailed
from overture.web.console.forms import FormErrors

BLANK_ROWS = 2  # empty tool rows offered below the agent's own
MAX_ROWS = 64 + BLANK_ROWS  # the spec allows 64 tools: a forged count reads no further
ROW_KINDS = ("action", "agent")
SIMPLE = {"config.role": "role", "config.instructions": "instructions",
          "config.credential_id": "credential_id", "config.model": "provider",
          "config.notes": "notes", "config.notes_retention_days": "notes_retention_days",
          "config.output": "output_schema", "config.output.schema": "output_schema",
          "config.name": "name", "name": "name", "description": "description",
          "config.limits": "max_iterations", "config.tools": "tools"}


@dataclass
class AgentForm:
    """What the form shows: the values as typed, the tool rows, the checked collections."""

    values: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, str]] = field(default_factory=list)
    knowledge: list[str] = field(default_factory=list)
    # config.tools index -> the form field that made it ("tool-1" or "knowledge")
    tool_fields: list[str] = field(default_factory=list)


def providers(current: str = "") -> list[str]:
    # `scripted` answers from a script only the API can set: offered to agents using it.
    return [p for p in PROVIDERS if p != "scripted" or current == "scripted"]


def from_config(name: str, description: str, config: dict[str, Any]) -> AgentForm:
    model = config.get("model") or {}
    limits = config.get("limits") or {}
    schema = (config.get("output") or {}).get("schema")
    values = {
        "name": name, "description": description, "role": config.get("role", ""),
        "instructions": config.get("instructions", ""),
        "provider": model.get("provider", "local"), "model": model.get("model", ""),
        "temperature": _text(model.get("temperature")),
        "max_output_tokens": _text(model.get("max_output_tokens", 1024)),
        "credential_id": config.get("credential_id") or "",
        "max_iterations": _text(limits.get("max_iterations", 8)),
        "max_tokens": _text(limits.get("max_tokens", 50_000)),
        "max_cost": _text(limits.get("max_cost")),
        "notes": "on" if config.get("notes") else "",
        "notes_retention_days": _text(config.get("notes_retention_days", 30)),
        "output_schema": json.dumps(schema, indent=2) if schema else "",
    }
    tools = config.get("tools") or []
    rows = [_row(t) for t in tools if t.get("kind") in ROW_KINDS]
    return AgentForm(values, _pad(rows), [t["ref"] for t in tools if t.get("kind") == "knowledge"])


def blank() -> AgentForm:
    return from_config("", "", {"model": {"provider": "local", "model": "wordllama"}})


def read(form: MultiDict[str, str]) -> AgentForm:
    """The form as posted (to show again with its errors, or to turn into a config)."""
    keys = ("name", "description", "role", "instructions", "provider", "model", "temperature",
            "max_output_tokens", "credential_id", "max_iterations", "max_tokens", "max_cost",
            "notes", "notes_retention_days", "output_schema")
    values = {k: form.get(k, "").strip() if k != "instructions" else form.get(k, "")
              for k in keys}
    count = form.get("tool_rows", "")
    rows = []
    for i in range(min(int(count), MAX_ROWS) if count.isdigit() else 0):
        rows.append({"kind": form.get(f"tool-{i}-kind", "action"),
                     "ref": form.get(f"tool-{i}-ref", "").strip(),
                     "name": form.get(f"tool-{i}-name", "").strip(),
                     "description": form.get(f"tool-{i}-description", "").strip(),
                     "side": "on" if form.get(f"tool-{i}-side") else ""})
    filled = [r for r in rows if r["ref"]]
    return AgentForm(values, _pad(filled), form.getlist("knowledge"))


def to_config(form: AgentForm, previous: dict[str, Any]) -> dict[str, Any]:
    """The configuration the form describes, on top of what the form does not show.
    Raises ValidationFailed (with the API's field paths) for what is not a number."""
    v = form.values
    config = {k: val for k, val in previous.items() if k in ("script", "output")}
    config.update({
        "role": v["role"], "instructions": v["instructions"],
        "credential_id": v["credential_id"] or None,
        "model": {"provider": v["provider"], "model": v["model"],
                  "temperature": _number(v["temperature"], "config.model.temperature", float),
                  "max_output_tokens": _number(v["max_output_tokens"],
                                               "config.model.max_output_tokens", int, 1024)},
        "limits": {"max_iterations": _number(v["max_iterations"], "config.limits.max_iterations",
                                             int, 8),
                   "max_tokens": _number(v["max_tokens"], "config.limits.max_tokens", int,
                                         50_000),
                   "max_cost": v["max_cost"] or None},
        "notes": bool(v["notes"]),
        "notes_retention_days": _number(v["notes_retention_days"],
                                        "config.notes_retention_days", int),
    })
    if v["output_schema"]:
        try:
            config["output"] = {"schema": json.loads(v["output_schema"])}
        except ValueError as error:
            raise ValidationFailed.field("config.output.schema", "must be JSON") from error
    else:
        config.pop("output", None)
    kept = {t["ref"]: t for t in previous.get("tools") or [] if t.get("kind") == "knowledge"}
    tools, form.tool_fields = [], []
    for index, row in enumerate(form.rows):
        if row["ref"]:
            tools.append({"kind": row["kind"], "ref": row["ref"], "name": row["name"],
                          "description": row["description"],
                          "allow_side_effects": bool(row["side"])})
            form.tool_fields.append(f"tool-{index}")
    for ref in form.knowledge:
        tools.append(kept.get(ref) or {"kind": "knowledge", "ref": ref})
        form.tool_fields.append("knowledge")
    config["tools"] = tools
    return config


def place(errors: FormErrors, form: AgentForm) -> FormErrors:
    """The service's field paths as the form's field names; the rest for the whole form."""
    placed = FormErrors()
    for path, message in errors.items():
        name = _field_of(path, form)
        if name is None:
            name, message = "_form", f"{path}: {message}"
        placed[name] = placed[name] + " " + message if name in placed else message
    return placed


def _field_of(path: str, form: AgentForm) -> str | None:
    if path in SIMPLE:
        return SIMPLE[path]
    parts = path.split(".")
    if parts[:2] in (["config", "model"], ["config", "limits"]) and len(parts) == 3:
        return parts[2]
    if parts[:2] == ["config", "tools"] and len(parts) >= 3 and parts[2].isdigit():
        index = int(parts[2])
        if index < len(form.tool_fields):
            where = form.tool_fields[index]
            part = parts[3] if len(parts) > 3 else "ref"
            return where if where == "knowledge" else f"{where}-{part}"
    return None


def _row(tool: dict[str, Any]) -> dict[str, str]:
    return {"kind": tool.get("kind", "action"), "ref": tool.get("ref", ""),
            "name": tool.get("name", ""), "description": tool.get("description", ""),
            "side": "on" if tool.get("allow_side_effects") else ""}


def _pad(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    empty = {"kind": "action", "ref": "", "name": "", "description": "", "side": ""}
    return rows + [dict(empty) for _ in range(BLANK_ROWS)]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(text: str, path: str, kind: type, default: Any = None) -> Any:
    if not text:
        return default
    try:
        return kind(text)
    except ValueError as error:
        raise ValidationFailed.field(path, "must be a whole number" if kind is int
                                     else "must be a number") from error
