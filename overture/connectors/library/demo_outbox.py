"""Demo outbox: emails and chat posts that are recorded, never delivered.

A built-in app for demos and for trying workflows without sending anything to anyone.
`send_email` takes exactly the input of the SMTP connector's `send_email`, and
`post_message` that of Slack's `post_message`, so switching a step to a real `smtp` or
`slack` connection changes nothing else. Instead of delivering, each message is
appended to the outbox of the connection it went through: the connection's
`settings.messages` (the latest MAX_MESSAGES), which `GET /api/v1/connections/{id}`
shows. Every answer says `"delivered": false`, so nothing passes for a real delivery.

Calls go through the connector framework like any other (validated, audited as
`connector.action_called`, metered as `action_calls`). A repeated call with the same
idempotency key (an engine retry) finds the message it recorded and records nothing
more.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import select, update

from overture.connectors.context import ActionContext
from overture.connectors.errors import ActionFailed
from overture.connectors.library import slack, smtp
from overture.connectors.models import Connection
from overture.connectors.spec import Action, Auth, Connector, obj
from overture.platform.db import db, utcnow

MAX_MESSAGES = 200  # the oldest fall out of the outbox
STATUS = "sent_to_outbox"
RECORDED = obj({
    "message_id": {"type": "string"},
    "status": {"const": STATUS, "description": "recorded in the outbox, not delivered"},
    "delivered": {"const": False},
    "outbox": {"type": "string", "description": "the connection whose outbox holds it"},
    "recorded_at": {"type": "string"},
    "replayed": {"type": "boolean", "description": "a retry found the message already there"},
}, additional=True)


def _message_id(ctx: ActionContext) -> str:
    """Stable for one idempotency key, as the SMTP connector's Message-ID is."""
    if ctx.idempotency_key:
        return "outbox-" + hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:24]
    return "outbox-" + uuid.uuid4().hex[:24]


def record(ctx: ActionContext, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Append a message to the connection's outbox (once per idempotency key)."""
    if ctx.connection_id.int == 0:
        raise ActionFailed("misconfigured", "the outbox needs a connection to keep messages in")
    # Write first: the UPDATE takes the connection's row lock (PostgreSQL) or the write
    # lock (SQLite) before the read, so two senders at once cannot lose a message.
    locked = db.session.execute(
        update(Connection).where(Connection.id == ctx.connection_id)
        .values(last_used_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if locked != 1:
        db.session.rollback()
        raise ActionFailed("not_found", "the outbox's connection is gone")
    connection = db.session.scalars(
        select(Connection).where(Connection.id == ctx.connection_id)
        .execution_options(populate_existing=True)).one()
    settings = dict(connection.settings or {})
    messages = settings.get("messages")
    messages = list(messages) if isinstance(messages, list) else []
    message_id = _message_id(ctx)
    earlier = next((m for m in messages if isinstance(m, dict)
                    and m.get("message_id") == message_id), None)
    if earlier is not None:
        db.session.commit()
        return _answer(connection.name, earlier, replayed=True)
    message = {"message_id": message_id, "kind": kind, **fields,
               "recorded_at": utcnow().isoformat(), "idempotency_key": ctx.idempotency_key}
    settings["messages"] = [*messages, message][-MAX_MESSAGES:]
    connection.settings = settings
    name = connection.name
    db.session.commit()
    return _answer(name, message, replayed=False)


def _answer(outbox: str, message: dict[str, Any], replayed: bool) -> dict[str, Any]:
    shown = {k: v for k, v in message.items() if k != "idempotency_key"}
    return {**shown, "status": STATUS, "delivered": False, "outbox": outbox,
            "replayed": replayed}


def send_email(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    fields = {k: data[k] for k in ("to", "cc", "bcc", "subject", "text", "html", "reply_to",
                                   "from_name") if k in data}
    return record(ctx, "email", fields)


def post_message(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    fields = {k: data[k] for k in ("channel", "text", "blocks", "thread_ts") if k in data}
    return record(ctx, "chat", fields)


def check(ctx: ActionContext) -> str:
    held = ctx.settings.get("messages")
    count = len(held) if isinstance(held, list) else 0
    return f"the outbox holds {count} message(s); it delivers nothing"


def _input_of(connector: Connector, action_key: str) -> dict[str, Any]:
    action = connector.action(action_key)
    assert action is not None, f"{connector.key} has no {action_key}"
    return action.input_schema


CONNECTOR = Connector(
    key="demo_outbox",
    name="Demo outbox (delivers nothing)",
    description="Built in, for demos and offline tests: emails and chat posts are kept in "
                "this connection's outbox (settings.messages) and never delivered. Takes "
                "the same input as the SMTP and Slack connectors.",
    icon="inbox",
    auth=Auth(kind="none"),
    base_url=None,
    tags=("demo", "email", "chat"),
    test=check,
    actions=(
        Action(key="send_email", name="Record an email (not delivered)",
               description="Record an email in the outbox, as the SMTP connector would send "
                           "it; nothing is delivered.",
               input_schema=_input_of(smtp.CONNECTOR, "send_email"),
               output_schema=RECORDED, run=send_email, side_effects=True, idempotent=True),
        Action(key="post_message", name="Record a chat post (not delivered)",
               description="Record a message for a channel in the outbox, as the Slack "
                           "connector would post it; nothing is posted.",
               input_schema=_input_of(slack.CONNECTOR, "post_message"),
               output_schema=RECORDED, run=post_message, side_effects=True, idempotent=True),
    ),
)
