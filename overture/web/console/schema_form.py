"""Forms generated from a JSON Schema: a connector's auth schema becomes the fields of
its "New connection" form, and the posted values become the credential fields the
API takes. Secret fields (`format: password` or `writeOnly`) are password inputs whose
values are never put back into a page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from overture.platform.errors import ValidationFailed

LABELS = {"api_key": "API key", "client_id": "Client ID", "client_secret": "Client secret",
          "username": "Username", "password": "Password"}


def auth_schema(auth: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of what a connection of this connector needs, from the catalogue's
    view of its auth (`connector_view(...)["auth"]`)."""
    kind = auth["kind"]
    secret = {"type": "string", "format": "password", "writeOnly": True}
    props: dict[str, Any] = {}
    required: list[str] = []
    if kind == "api_key":
        props["api_key"] = {**secret, "title": "API key"}
        required.append("api_key")
    elif kind == "basic":
        props["username"] = {"type": "string", "title": "Username"}
        props["password"] = {**secret, "title": "Password"}
        required += ["username", "password"]
    elif kind == "oauth2":
        props["client_id"] = {"type": "string", "title": "Client ID",
                              "description": "from the app's OAuth settings"}
        props["client_secret"] = {**secret, "title": "Client secret"}
        required += ["client_id", "client_secret"]
    for f in auth.get("fields", []):
        prop: dict[str, Any] = {"type": "string", "title": _label(f["name"])}
        if f.get("description"):
            prop["description"] = f["description"]
        if f.get("secret"):
            prop.update(format="password", writeOnly=True)
        props[f["name"]] = prop
        if f.get("required", True):
            required.append(f["name"])
    return {"type": "object", "properties": props, "required": required}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    widget: str  # text | password | number | checkbox | select
    required: bool
    description: str = ""
    options: tuple[str, ...] = ()

    @property
    def secret(self) -> bool:
        return self.widget == "password"


def _label(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def _widget(prop: dict[str, Any]) -> str:
    if prop.get("format") == "password" or prop.get("writeOnly"):
        return "password"
    if "enum" in prop:
        return "select"
    kind = prop.get("type")
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "checkbox"
    return "text"


def fields_of(schema: dict[str, Any]) -> list[FormField]:
    required = set(schema.get("required", []))
    return [FormField(name, prop.get("title") or _label(name), _widget(prop),
                      name in required, prop.get("description", ""),
                      tuple(str(o) for o in prop.get("enum", ())))
            for name, prop in schema.get("properties", {}).items()]


def values_of(schema: dict[str, Any], form: Any, prefix: str = "f_") -> dict[str, Any]:
    """The posted values, typed as the schema says; an empty optional field is left out.
    Errors are `fields.<name>`, the way the credentials service names them."""
    values: dict[str, Any] = {}
    for field in fields_of(schema):
        prop = schema["properties"][field.name]
        if field.widget == "checkbox":
            values[field.name] = form.get(prefix + field.name) == "on"
            continue
        raw = (form.get(prefix + field.name) or "")
        raw = raw if field.secret else raw.strip()
        if raw == "":
            if field.required:
                raise ValidationFailed.field(f"fields.{field.name}", "is required")
            continue
        if field.widget == "number":
            try:
                values[field.name] = int(raw) if prop.get("type") == "integer" else float(raw)
            except ValueError as exc:
                raise ValidationFailed.field(f"fields.{field.name}", "must be a number") \
                    from exc
        elif field.widget == "select" and raw not in field.options:
            raise ValidationFailed.field(f"fields.{field.name}", "choose one of the options")
        else:
            values[field.name] = raw
    return values


def public_form(schema: dict[str, Any], form: Any, prefix: str = "f_") -> dict[str, str]:
    """What a form shows again after an error: the public values only, never a secret."""
    return {f.name: form.get(prefix + f.name, "") for f in fields_of(schema) if not f.secret}
