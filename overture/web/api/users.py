"""Platform administration of user accounts: end a user's sessions, disable, enable."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Integer, Nested

from overture.platform.db import db
from overture.tenants import accounts
from overture.tenants.models import User
from overture.web.api import api
from overture.web.api.schemas import UserOut
from overture.web.auth import current_access, require

TAGS = ["Users"]
PERMISSION = "user.manage"


class SignedOut(Schema):
    user = Nested(UserOut)
    sessions_ended = Integer()


@api.post("/users/<user_id>/sign-out-everywhere")
@require(PERMISSION)
@api.output(SignedOut)
@api.doc(tags=TAGS, summary="End every session of a user (their API keys are untouched)")
def sign_out_everywhere(user_id: str) -> dict[str, Any]:
    user = accounts.user_or_404(user_id)
    ended = accounts.sign_out_everywhere(user)
    db.session.commit()
    return {"user": user, "sessions_ended": ended}


@api.post("/users/<user_id>/disable")
@require(PERMISSION)
@api.output(UserOut)
@api.doc(tags=TAGS, summary="Disable a user: no sign-in, no API keys, every session ends")
def disable_user(user_id: str) -> User:
    user = accounts.disable(accounts.user_or_404(user_id), current_access().principal.user)
    db.session.commit()
    return user


@api.post("/users/<user_id>/enable")
@require(PERMISSION)
@api.output(UserOut)
@api.doc(tags=TAGS, summary="Enable a disabled user again (ended sessions stay ended)")
def enable_user(user_id: str) -> User:
    user = accounts.enable(accounts.user_or_404(user_id))
    db.session.commit()
    return user
