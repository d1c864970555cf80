"""Password reset over the API, for clients with their own sign-in screens.

These two operations take no credentials (the person has lost theirs): the emailed
token is the proof. Asking always answers 202, whoever the address belongs to; the
same rate limits as the page apply, shared with it.
"""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import String
from apiflask.validators import Length

from overture.platform.db import db
from overture.tenants import recovery
from overture.tenants.password_policy import MAX_LENGTH
from overture.tenants.users import normalize_email
from overture.web.api import api
from overture.web.api.schemas import Strict
from overture.web.recovery_pages import (
    absolute_link,
    host_tenant_id,
    link_checks,
    resets_per_address,
    resets_per_email,
)

TAGS = ["Account recovery"]
# An empty requirement: callable without an API key or a session (OpenAPI 3).
ANONYMOUS: list[dict[str, list[str]]] = [{}]


class ResetRequest(Strict):
    email = String(required=True, validate=Length(1, 320))


class ResetAccepted(Schema):
    status = String(metadata={"description": "always `accepted`: whether the address has "
                                             "an account is not told"})


class ResetConfirm(Strict):
    token = String(required=True, validate=Length(1, 200),
                   metadata={"description": "the last part of the emailed link"})
    password = String(required=True, validate=Length(0, MAX_LENGTH),
                      metadata={"description": "at least 12 characters, not a common "
                                               "password; no other rules"})


@api.post("/auth/password-reset")
@resets_per_email
@resets_per_address
@api.input(ResetRequest)
@api.output(ResetAccepted, status_code=202)
@api.doc(tags=TAGS, security=ANONYMOUS,
         summary="Email a password reset link (valid 15 minutes) if the address has an account")
def request_password_reset(json_data: dict[str, Any]) -> dict[str, str]:
    email = normalize_email(json_data["email"])
    recovery.request_password_reset(
        email, lambda secret: absolute_link("recovery.reset_password", secret),
        host_tenant_id())
    db.session.commit()
    return {"status": "accepted"}


@api.post("/auth/password-reset/confirm")
@link_checks
@api.input(ResetConfirm)
@api.output({}, status_code=204)
@api.doc(tags=TAGS, security=ANONYMOUS, responses={
    204: "The password is set and every session of the account has ended",
    410: "The link is unknown, expired, used or withdrawn (`reason` says which)"},
    summary="Set a new password with the token of a reset link")
def confirm_password_reset(json_data: dict[str, Any]) -> tuple[str, int]:
    recovery.reset_password(json_data["token"], json_data["password"])
    db.session.commit()
    return "", 204
