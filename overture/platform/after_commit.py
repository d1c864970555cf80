"""Work that may happen only once a transaction has committed: messages to the broker.

A row written in a transaction (a queued step, an outbox mail) is announced to workers
only after the transaction commits, so a worker never looks for a row that is not
there yet, and a rolled-back act announces nothing. Each kind of message names a key;
`defer` collects messages in the session under it, and the registered sender gets them
after the outermost commit. A savepoint's commit or rollback is not the end of the
transaction: released savepoints keep their messages for the outer commit, and a
message for a row undone with a savepoint finds no row and is dropped by its worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

_senders: dict[str, Callable[[list[Any]], object]] = {}


def register(key: str, send: Callable[[list[Any]], object]) -> None:
    """`send(messages)` runs after each commit that deferred messages under `key`."""
    _senders[key] = send


def defer(session: Session, key: str, message: Any) -> None:
    session.info.setdefault(key, []).append(message)


def deferred(session: Session, key: str) -> list[Any]:
    return list(session.info.get(key, []))


@event.listens_for(Session, "after_commit")
def _send(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for key, send in _senders.items():
        messages = session.info.pop(key, None)
        if messages:
            send(messages)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    if session.in_nested_transaction():
        return
    for key in _senders:
        session.info.pop(key, None)
