"""Messages for step runs, sent only after the transaction that made the rows commits.

The rows are the outbox: a message lost between commit and send (or with Redis)
is re-sent by the sweeper, and a duplicate is dropped by the claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from overture.platform.logging import get_logger

log = get_logger(__name__)

OUTBOX = "overture_outbox"
SENDER = "overture.step_sender"
Sender = Callable[[uuid.UUID, uuid.UUID, int | None], None]


def set_sender(app: Any, sender: Sender) -> None:
    """Where this app's messages go: its broker's step actor, bound at boot."""
    app.extensions[SENDER] = sender


def after_commit(session: Session, step_run_id: uuid.UUID, tenant_id: uuid.UUID,
                 delay_ms: int | None = None) -> None:
    session.info.setdefault(OUTBOX, []).append((step_run_id, tenant_id, delay_ms))


def send_now(step_run_id: uuid.UUID, tenant_id: uuid.UUID, delay_ms: int | None = None) -> None:
    sender = current_app.extensions.get(SENDER) if has_app_context() else None
    if sender is not None:
        sender(step_run_id, tenant_id, delay_ms)


def send_committed(messages: list[tuple[uuid.UUID, uuid.UUID, int | None]]) -> None:
    """Send messages for rows already committed; a broker that is down loses them, and
    the sweeper re-sends (what committed stands)."""
    for args in messages:
        try:
            send_now(*args)
        except Exception:
            log.warning("dispatch.send_failed", step_run_id=str(args[0]), exc_info=True)


@event.listens_for(Session, "after_commit")
def _flush_outbox(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: nothing is committed until the outer commit
    send_committed(session.info.pop(OUTBOX, []))


@event.listens_for(Session, "after_rollback")
def _drop_outbox(session: Session) -> None:
    if session.in_nested_transaction():
        # Only a savepoint was undone: the outer transaction's messages must still go.
        # One for a row undone with the savepoint finds no row and is dropped.
        return
    session.info.pop(OUTBOX, None)


def pending(session: Session) -> list[Any]:
    return list(session.info.get(OUTBOX, []))
