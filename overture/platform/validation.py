"""Small input checks shared by every domain's services."""

from __future__ import annotations

from overture.platform.errors import ValidationFailed

MAX_NAME = 120


def clean_name(name: str | None, field: str = "name") -> str:
    """A display name: trimmed, 1 to 120 characters, or ValidationFailed naming the field."""
    name = (name or "").strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise ValidationFailed.field(field, f"must be 1 to {MAX_NAME} characters")
    return name
