"""The one way a person becomes signed in, whatever proved who they are.

Password, emailed link, invitation and SSO each establish the user, then hand over to
`complete_sign_in`: a new server-side session (fresh id and CSRF token, nothing planted
survives) and a redirect to a same-site page. A second factor, where owed, is demanded
here too, so no sign-in path can skip it: a person with a confirmed TOTP enrolment
gets no session here, only a challenge (a random id in an HttpOnly cookie scoped to
/login/mfa) that `mfa_pages` completes.
"""

from __future__ import annotations

from flask import current_app, redirect, url_for
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.logging import get_logger
from overture.tenants import mfa
from overture.tenants.models import User
from overture.web import sessions

log = get_logger(__name__)
CHALLENGE_COOKIE = "mfa_challenge"
CHALLENGE_PATH = "/login/mfa"


def safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect.

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so
    `/<TAB>/evil.example` is `//evil.example` to them: control characters are refused too.
    """
    if (target and target.startswith("/") and not target.startswith("//")
            and "\\" not in target and target.isprintable()):
        return target
    return url_for("console.home")


def complete_sign_in(user: User, method: str, next_url: str | None = None) -> Response:
    """Start `user`'s session (proved by `method`) and send them on to `next_url`, or,
    when they have a second factor, ask for it first."""
    if mfa.is_enrolled(user.id):
        token = mfa.start_challenge(user, method, safe_next(next_url))
        db.session.commit()
        log.info("auth.mfa_challenged", user_id=str(user.id), method=method)
        response = redirect(url_for("mfa_pages.challenge"))
        set_challenge_cookie(response, token)
        return response
    return begin_session(user, method, next_url)


def begin_session(user: User, method: str, next_url: str | None) -> Response:
    sessions.begin(user, method=method[:mfa.METHOD_LENGTH])
    db.session.commit()
    log.info("auth.login", user_id=str(user.id), method=method)
    return redirect(safe_next(next_url))


def set_challenge_cookie(response: Response, token: str) -> None:
    secure = current_app.extensions["overture.settings"].session_cookie_secure
    response.set_cookie(CHALLENGE_COOKIE, token, max_age=int(mfa.CHALLENGE_LIFETIME
                                                            .total_seconds()),
                        path=CHALLENGE_PATH, httponly=True, samesite="Lax", secure=secure)


def clear_challenge_cookie(response: Response) -> None:
    response.delete_cookie(CHALLENGE_COOKIE, path=CHALLENGE_PATH, httponly=True,
                           samesite="Lax")
