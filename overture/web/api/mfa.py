"""The caller's own second factor: status, TOTP enrolment, recovery codes, turning off.

Session only, like the caller's password and sessions: an API key must not be able to
enrol, see recovery codes or remove the factor of the person who made it.
"""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Integer, List, String
from apiflask.validators import Length

from overture.platform.db import db
from overture.platform.errors import Forbidden
from overture.tenants import mfa
from overture.tenants.models import User
from overture.web import sessions
from overture.web.api import api
from overture.web.api.schemas import Strict
from overture.web.auth import authenticated, current_principal
from overture.web.extensions import limiter

TAGS = ["Me"]
RECENT = ("Needs a sign-in or reauthentication (`POST /api/v1/me/reauthenticate`) from "
          "the last 10 minutes (403 `reauthentication-required` otherwise).")


class MfaStatus(Schema):
    enabled = Boolean(metadata={"description": "a confirmed authenticator is asked at sign-in"})
    pending = Boolean(metadata={"description": "an enrolment begun but not confirmed"})
    confirmed_at = DateTime(allow_none=True)
    recovery_codes_left = Integer()


class TotpEnrolment(Schema):
    uri = String(metadata={"description": "the otpauth:// URI authenticator apps import"})
    secret = String(metadata={"description": "the key in base32, for manual entry"})
    svg = String(metadata={"description": "a QR code of `uri`, as an SVG document"})


class TotpConfirmation(Strict):
    code = String(required=True, validate=Length(1, 16),
                  metadata={"description": "the code the authenticator shows now"})


class RecoveryCodes(Schema):
    recovery_codes = List(String(), metadata={"description": "shown only in this answer; "
                                                             "each works once"})


def _person() -> User:
    principal = current_principal()
    if principal.api_key is not None or sessions.current_record_id() is None:
        raise Forbidden("only a person signed in with a session can manage their second "
                        "factor, not an API key")
    return principal.user


def _user_key() -> str:
    return f"mfa-user|{sessions.current_user_id()}"


@api.get("/me/mfa")
@authenticated
@api.output(MfaStatus)
@api.doc(tags=TAGS, summary="Your two-factor authentication: on, pending or off")
def get_my_mfa() -> dict[str, Any]:
    return mfa.status(_person())


@api.post("/me/mfa/totp")
@authenticated
@api.output(TotpEnrolment, status_code=201)
@api.doc(tags=TAGS, summary="Begin enrolling an authenticator app (confirm with a code)",
         description=RECENT)
def begin_my_totp() -> dict[str, Any]:
    user = _person()
    sessions.require_recent_authentication()
    enrolment = mfa.begin_enrolment(user)
    db.session.commit()
    return {"uri": enrolment.uri, "secret": enrolment.secret, "svg": enrolment.svg}


@api.post("/me/mfa/totp/confirm")
@limiter.limit("20 per minute", key_func=_user_key)
@authenticated
@api.input(TotpConfirmation, arg_name="body")
@api.output(RecoveryCodes)
@api.doc(tags=TAGS, summary="Confirm the authenticator with a code; returns recovery codes")
def confirm_my_totp(body: dict[str, Any]) -> dict[str, Any]:
    codes = mfa.confirm(_person(), body["code"])
    db.session.commit()
    return {"recovery_codes": codes}


@api.post("/me/mfa/recovery-codes")
@authenticated
@api.output(RecoveryCodes)
@api.doc(tags=TAGS, summary="Replace your recovery codes (the old ones stop working)",
         description=RECENT)
def regenerate_my_recovery_codes() -> dict[str, Any]:
    user = _person()
    sessions.require_recent_authentication()
    codes = mfa.regenerate_recovery_codes(user)
    db.session.commit()
    return {"recovery_codes": codes}


@api.delete("/me/mfa")
@authenticated
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Turn off two-factor authentication", description=RECENT)
def disable_my_mfa() -> tuple[str, int]:
    user = _person()
    sessions.require_recent_authentication()
    mfa.disable(user)
    db.session.commit()
    return "", 204
