"""The one way a person becomes signed in, whatever proved who they are.

Password, emailed link, invitation and SSO each establish the user, then hand over to
`complete_sign_in`: a new server-side session (fresh id and CSRF token, nothing planted
survives) and a redirect to a same-site page. A second factor, where owed, is demanded
here too, so no sign-in path can skip it.
"""

from __future__ import annotations

from flask import redirect, url_for
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.logging import get_logger
from overture.tenants.models import User
from overture.web import sessions

log = get_logger(__name__)


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
    """Start `user`'s session (proved by `method`) and send them on to `next_url`."""
    sessions.begin(user)
    db.session.commit()
    log.info("auth.login", user_id=str(user.id), method=method)
    return redirect(safe_next(next_url))
