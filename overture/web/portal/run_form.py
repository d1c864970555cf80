"""The form that starts a run, made from the workflow's `input_schema` (JSON Schema of an
object): one field per property, in the schema's order.

The console's `schema_form` does the same for a connector's credentials (text and
secrets); a run's input needs more kinds of field:

| property | field |
| --- | --- |
| `enum` | a list to choose from |
| `boolean` | a checkbox |
| `integer`, `number` | a number field (`minimum`, `maximum` as limits) |
| `string` with `format` `email` or `date` | an email or a date field |
| `string` with `maxLength` over 200 | a text area |
| `string` | a text field |
| anything else (objects, lists) | a text area for JSON |

`read` turns what was posted into typed values and notes what could not be read (a
number that is not one, JSON that does not parse); everything else the schema says is
checked by the service (`runs.check_input_schema`), whose messages name the field too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

LONG_TEXT = 200
PREFIX = "f_"


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    widget: str  # text | textarea | email | date | number | checkbox | select | json
    required: bool
    description: str = ""
    options: tuple[str, ...] = ()
    integer: bool = False
    minimum: Any = None
    maximum: Any = None
    max_length: int | None = None

    @property
    def input_name(self) -> str:
        return PREFIX + self.name


def _label(name: str, prop: dict[str, Any]) -> str:
    title = prop.get("title")
    return str(title) if title else name.replace("_", " ").capitalize()


def _widget(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "select"
    kind = prop.get("type")
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return "number"
    if kind == "string":
        if prop.get("format") in ("email", "date"):
            return str(prop["format"])
        if int(prop.get("maxLength") or 0) > LONG_TEXT:
            return "textarea"
        return "text"
    return "json"


def fields_of(schema: dict[str, Any]) -> list[Field]:
    required = set(schema.get("required") or [])
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        fields.append(Field(
            name=str(name), label=_label(str(name), prop), widget=_widget(prop),
            required=name in required, description=str(prop.get("description") or ""),
            options=tuple(str(o) for o in prop.get("enum") or ()),
            integer=prop.get("type") == "integer", minimum=prop.get("minimum"),
            maximum=prop.get("maximum"),
            max_length=prop.get("maxLength") if isinstance(prop.get("maxLength"), int)
            else None))
    return fields


def read(schema: dict[str, Any], form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(the input, messages by field name for values that could not be read)."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    properties = schema.get("properties") or {}
    for field in fields_of(schema):
        raw = form.get(field.input_name)
        if field.widget == "checkbox":
            values[field.name] = raw is not None
            continue
        raw = (raw or "").strip()
        if raw == "":
            continue  # a required one is named by the schema's check
        try:
            values[field.name] = _typed(field, properties.get(field.name) or {}, raw)
        except ValueError as exc:
            problems[field.name] = str(exc)
    return values, problems


def _typed(field: Field, prop: dict[str, Any], raw: str) -> Any:
    if field.widget == "number":
        try:
            return int(raw) if field.integer else float(raw)
        except ValueError:
            raise ValueError("must be a whole number" if field.integer
                             else "must be a number") from None
    if field.widget == "select":
        for option in prop.get("enum") or ():
            if str(option) == raw:
                return option
        raise ValueError("choose one of the options")
    if field.widget == "json":
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError("is not valid JSON") from None
    return raw


def shown(schema: dict[str, Any], form: Any) -> dict[str, str]:
    """What the form shows again after a refusal: what the person typed."""
    return {f.name: form.get(f.input_name, "") for f in fields_of(schema)
            if f.widget != "checkbox"} | {
        f.name: "on" for f in fields_of(schema)
        if f.widget == "checkbox" and form.get(f.input_name) is not None}


def field_messages(errors: list[dict[str, str]], names: set[str]) -> dict[str, str]:
    """The service's messages (`input.<name>...`) by form field; `_form` for the rest."""
    found: dict[str, str] = {}
    for error in errors:
        path = error["field"].split(".")
        name = path[1] if len(path) > 1 and path[0] == "input" else None
        if name in names:
            where = ".".join(path[2:])
            found.setdefault(name, f"{where}: {error['message']}" if where else error["message"])
        else:
            found.setdefault("_form", error["message"])
    return found
