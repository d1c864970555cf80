"""Pages for the second factor: the sign-in challenge (/login/mfa) and the person's own
settings (/account/mfa: enrol, recovery codes, turn off).

Recovery codes are rendered into the answer of the request that made them and never
again: no page reads them back. Turning the factor off or replacing the codes asks
for the password again (the existing reauthentication), whatever the session's age.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.errors import ReauthenticationRequired
from overture.platform.logging import get_logger
from overture.tenants import accounts, mfa
from overture.tenants.models import User
from overture.web import sessions
from overture.web.console.context import render
from overture.web.extensions import client_address, limiter
from overture.web.problems import problem, wants_html
from overture.web.signin_flow import (
    CHALLENGE_COOKIE,
    begin_session,
    clear_challenge_cookie,
)

bp = Blueprint("mfa_pages", __name__)
log = get_logger(__name__)
# Five wrong codes end a challenge; these bound how fast challenges can be tried.
CODES_PER_ADDRESS = "30 per minute"
CODES_PER_CHALLENGE = "10 per minute"
CODES_PER_USER = "20 per minute"
GONE = ("This sign-in has expired or had too many wrong codes. Sign in again.")


def _challenge_key() -> str:
    token = request.cookies.get(CHALLENGE_COOKIE, "")
    return "mfa-challenge|" + hashlib.sha256(token.encode()).hexdigest()


def _user_key() -> str:
    return f"mfa-user|{sessions.current_user_id()}"


def _me() -> User:
    return current_user._get_current_object()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- sign-in


@bp.route("/login/mfa", methods=["GET", "POST"])
@limiter.limit(CODES_PER_CHALLENGE, key_func=_challenge_key, methods=["POST"])
@limiter.limit(CODES_PER_ADDRESS, key_func=client_address, methods=["POST"])
def challenge() -> str | Response | tuple[str, int]:
    recovery = request.values.get("recovery") == "1"
    token = request.cookies.get(CHALLENGE_COOKIE)
    if request.method == "GET":
        if not mfa.challenge_is_live(token):
            return render_template("mfa_challenge.html", gone=GONE, error=None,
                                   recovery=recovery), 410
        return render_template("mfa_challenge.html", gone=None, error=None, recovery=recovery)
    try:
        user, method, next_url = mfa.answer_challenge(token, request.form.get("code", ""))
    except mfa.ChallengeGone:
        db.session.commit()  # the failed attempt is audited and the challenge closed
        response = Response(render_template("mfa_challenge.html", gone=GONE, error=None,
                                            recovery=recovery), status=410)
        clear_challenge_cookie(response)
        return response
    except mfa.WrongCode:
        db.session.commit()  # the attempt is counted and audited
        log.info("auth.mfa_failed", ip=client_address())
        error = ("That recovery code is not valid, or was used already." if recovery
                 else "That code is not valid. Enter the current code from your app.")
        return render_template("mfa_challenge.html", gone=None, error=error,
                               recovery=recovery), 401
    response = begin_session(user, method, next_url)
    clear_challenge_cookie(response)
    return response


# --------------------------------------------------------------------------- settings


def _recently_proven() -> bool:
    try:
        sessions.require_recent_authentication()
    except ReauthenticationRequired:
        return False
    return True


def _account(error: str | None = None, status: int = 200) -> tuple[str, int]:
    return render("mfa_account.html", status, title="Two-factor authentication",
                  state=mfa.status(_me()), error=error,
                  required=request.args.get("required") == "1", recent=_recently_proven())


@bp.get("/account/mfa")
@login_required
def account() -> tuple[str, int]:
    return _account()


@bp.post("/account/mfa/enrol")
@limiter.limit(CODES_PER_USER, key_func=_user_key)
@login_required
def enrol() -> str | tuple[str, int]:
    # Changing what signs one in needs a password proven lately (ASVS 7.5.1): a stolen
    # session must not enrol its own authenticator and lock the person out.
    if not _recently_proven() and not _password_proven():
        return _account("That is not your password.", 422)
    enrolment = mfa.begin_enrolment(_me())
    db.session.commit()
    return _enrol_page(enrolment, None)


def _enrol_page(enrolment: mfa.Enrolment, error: str | None,
                status: int = 200) -> tuple[str, int]:
    groups = " ".join(enrolment.secret[i:i + 4] for i in range(0, len(enrolment.secret), 4))
    return render("mfa_enrol.html", status, title="Set up an authenticator app",
                  enrolment=enrolment, key_groups=groups, error=error)


@bp.post("/account/mfa/confirm")
@limiter.limit(CODES_PER_USER, key_func=_user_key)
@login_required
def confirm() -> str | Response | tuple[str, int]:
    user = _me()
    try:
        codes = mfa.confirm(user, request.form.get("code", ""))
    except mfa.WrongCode:
        pending = mfa.pending_enrolment(user)
        if pending is None:
            return redirect(url_for("mfa_pages.account"))
        return _enrol_page(pending, "That code does not match. Enter the code your "
                                    "authenticator app shows now.", 422)
    db.session.commit()
    return _codes_page(codes, new=True)


def _codes_page(codes: list[str], new: bool) -> tuple[str, int]:
    return render("mfa_codes.html", title="Recovery codes", codes=codes, new=new,
                  download="\n".join(codes) + "\n")


def _password_proven() -> bool:
    """The existing reauthentication: the password again, audited, and the session
    marked as recently proven. False (committed, audited) when it is wrong."""
    session_id = sessions.current_record_id()
    if session_id is None:
        return False
    try:
        accounts.reauthenticate(_me(), request.form.get("password", ""), session_id)
    except accounts.WrongPassword:
        db.session.commit()
        return False
    sessions.mark_authenticated_now()
    sessions.require_recent_authentication()
    return True


@bp.post("/account/mfa/recovery-codes")
@limiter.limit(CODES_PER_USER, key_func=_user_key)
@login_required
def regenerate() -> str | tuple[str, int]:
    if not _password_proven():
        return _account("That is not your password.", 422)
    codes = mfa.regenerate_recovery_codes(_me())
    db.session.commit()
    return _codes_page(codes, new=False)


@bp.post("/account/mfa/disable")
@limiter.limit(CODES_PER_USER, key_func=_user_key)
@login_required
def disable() -> Response | tuple[str, int]:
    if not _password_proven():
        return _account("That is not your password.", 422)
    mfa.disable(_me())
    db.session.commit()
    return redirect(url_for("mfa_pages.account"))


@bp.app_errorhandler(mfa.MfaEnrolmentRequired)
def _enrolment_required(err: mfa.MfaEnrolmentRequired) -> Any:
    """Pages send the person to enrol; the API answers the problem document."""
    if wants_html():
        return redirect(url_for("mfa_pages.account", required="1"))
    return problem(err.status, err.code, err.title, err.detail, **err.extra)
