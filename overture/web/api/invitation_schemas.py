"""Request and response shapes of invitations (API v1)."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, DateTime, Integer, List, Nested, String
from apiflask.validators import OneOf

from overture.web.api.schemas import PageQuery


class InvitationOut(Schema):
    """The same fields whatever the address: nothing here depends on whether the invited
    address has an account, or where."""

    id = UUID()
    tenant_id = UUID()
    email = String()
    role = String()
    status = String(metadata={"description": "`pending`, `accepted` or `revoked`"})
    expires_at = DateTime()
    created_at = DateTime()
    last_sent_at = DateTime(allow_none=True)
    send_count = Integer()


class InvitationPage(Schema):
    items = List(Nested(InvitationOut))
    next_cursor = String(allow_none=True)


class InvitationQuery(PageQuery):
    status = String(load_default="pending", validate=OneOf(["pending", "accepted", "revoked"]))
