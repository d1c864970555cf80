"""What the triggers behind a secret URL token share (vendor event feeds, hosted forms):
listing them and finding the scope tenant's one behind a token, compared in constant
time."""

from __future__ import annotations

import secrets
import uuid
from typing import Any, TypeVar

from sqlalchemy import select

from overture.platform.db import db

T = TypeVar("T")
MAX_TOKEN = 64  # the column's length: a longer token names nothing


def for_workflow(model: type[T], workflow_id: uuid.UUID) -> list[T]:
    m: Any = model
    return list(db.session.scalars(select(m).where(m.workflow_id == workflow_id)
                                   .order_by(m.created_at)))


def all_of(model: type[T], limit: int) -> list[T]:
    m: Any = model
    return list(db.session.scalars(select(m).order_by(m.created_at).limit(limit)))


def by_token(model: type[T], token: str, *where: Any) -> T | None:
    """The scope tenant's trigger behind this URL token (and `where`), else None."""
    if not token or len(token) > MAX_TOKEN:
        return None
    m: Any = model
    found = db.session.scalars(select(m).where(m.token == token, *where)).one_or_none()
    if found is None or not secrets.compare_digest(found.token, token):
        return None
    return found  # type: ignore[no-any-return]
