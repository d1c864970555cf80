"""Error pages for people: what `web.problems` answers as problem JSON to programs, a
browser on a console page gets as an HTML page in the console's frame."""

from __future__ import annotations

import contextlib

from flask import Response, current_app, g, make_response, render_template, url_for
from flask_login import current_user
from markupsafe import escape

from overture.platform.db import db
from overture.platform.errors import OvertureError
from overture.platform.logging import get_logger
from overture.tenants import access as tenant_access
from overture.web import problems
from overture.web.console.context import console_access, shell

log = get_logger(__name__)

# What a person is told, by status; the detail of the error follows where it helps.
HEADLINES = {
    400: ("This request could not be handled", "The form may have expired. Go back, "
          "reload the page and try again."),
    401: ("Please sign in", "Your session has ended."),
    403: ("You do not have access to this", "Your role in this workspace does not allow "
          "it. Ask an owner or admin of the workspace if you need it."),
    404: ("Page not found", "There is nothing here, or it belongs to a workspace you "
          "cannot reach."),
    410: ("This link can no longer be used", "Links we send work once and for a limited "
          "time."),
    429: ("Too many requests", "Please wait a minute before trying again."),
    500: ("Something went wrong on our side", "The error has been logged. Please try "
          "again; if it keeps happening, quote the reference below to support."),
    503: ("This service is briefly unavailable", "Please try again in a moment."),
}
SHOW_DETAIL = {400, 403, 409, 410, 422, 429}


def error_page(status: int, code: str, title: str, detail: str,
               headers: dict[str, str]) -> Response | None:
    headline, advice = HEADLINES.get(status, (title, ""))
    try:
        if status >= 500:
            db.session.rollback()  # whatever failed must not fail the page too
            _known_person_or_anonymous()
        if status < 500:
            _enter_quietly()
        portals = _customer_portals() if status < 500 else []
        # A portal user is not shown the console's frame: only the way to their portal.
        context = shell() if status < 500 and not portals else _bare_shell()
    except Exception:  # the page must render whatever broke
        log.exception("console.error_page_failed")
        db.session.rollback()
        context, portals = _bare_shell(), []
    try:
        body = render_template("console/error.html", shell=context, status=status, code=code,
                               portals=portals, headline=headline, advice=advice,
                               detail=detail if status in SHOW_DETAIL else None,
                               request_id=g.get("request_id"))
    except Exception:  # never an error page's own error in place of the answer
        log.exception("console.error_page_failed")
        body = f"<!doctype html><title>{escape(headline)}</title><h1>{escape(headline)}</h1>" \
               f"<p>{escape(advice)}</p>"
    response = make_response(body, status)
    response.headers.update(headers)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


def _known_person_or_anonymous() -> None:
    """Who is signed in, if that can still be read; else the page is drawn for nobody
    (Flask-Login would otherwise ask the failing database again while drawing it)."""
    try:
        current_user.is_authenticated  # noqa: B018  (loads the person once, or fails)
    except Exception:
        db.session.rollback()
        g._login_user = current_app.login_manager.anonymous_user()


def _enter_quietly() -> None:
    """Show the page in the person's workspace where there is one (a URL that matched
    no page never entered it)."""
    if g.get("access") is None and current_user.is_authenticated:
        with contextlib.suppress(OvertureError):
            console_access()


def _customer_portals() -> list[tuple[str, str]]:
    """(workspace name, portal address) for someone who is only a portal user."""
    if not current_user.is_authenticated:
        return []
    user = current_user._get_current_object()
    if not tenant_access.is_portal_only(user):
        return []
    return [(t.name, url_for("portal.home", slug=t.slug))
            for t, _ in tenant_access.reachable_tenants(user)]


def _bare_shell() -> dict[str, object]:
    return {"user": None, "access": None, "tenant": None, "reachable": [], "nav": [],
            "endpoint": None}


problems.html_page = error_page
