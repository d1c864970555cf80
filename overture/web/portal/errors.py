"""Errors on portal pages: a person gets a page in the portal's own layout (a customer
never lands in the console's frame), a program the usual problem document."""

from __future__ import annotations

from flask import Response, g, make_response
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from overture.platform.db import db
from overture.platform.errors import OvertureError
from overture.platform.logging import get_logger
from overture.web import problems
from overture.web.portal import bp
from overture.web.portal.context import render

log = get_logger(__name__)

HEADLINES = {
    400: ("This did not work", "The page may have been open too long. Go back, reload it "
          "and try again."),
    403: ("This is not available to you", ""),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    410: ("This link can no longer be used", "Links we send work once and for a limited "
          "time. Ask for a new one."),
    429: ("Too many attempts", "Please wait a minute before trying again."),
}
SHOW_DETAIL = {403, 410}


def portal_error(status: int, code: str, title: str, detail: str,
                 headers: dict[str, str] | None = None) -> Response:
    if not problems.wants_html():
        return problems.problem(status, code, title, detail, headers)
    headline, advice = HEADLINES.get(status, ("Something went wrong", "Please try again in "
                                              "a moment."))
    try:
        body, _ = render("portal/error.html", status, error_status=status, headline=headline,
                         advice=advice,
                         detail=detail[:1].upper() + detail[1:] if status in SHOW_DETAIL
                         else None, request_id=g.get("request_id"))
    except Exception:  # the page must answer whatever broke
        log.exception("portal.error_page_failed")
        db.session.rollback()
        return problems.problem(status, code, title, detail, headers)
    response = make_response(body, status)
    response.headers.update(headers or {})
    return response


@bp.errorhandler(OvertureError)
def _overture(error: OvertureError) -> Response:
    db.session.rollback()
    return portal_error(error.status, error.code, error.title, error.detail)


@bp.errorhandler(CSRFError)
def _csrf(error: CSRFError) -> Response:
    return portal_error(400, "csrf-failed", "CSRF check failed", error.description)


@bp.errorhandler(RateLimitExceeded)
def _limited(error: RateLimitExceeded) -> Response:
    return portal_error(429, "rate-limited", "Too many requests",
                        f"rate limit exceeded: {error.description}")


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> Response:
    status = error.code or 500
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return portal_error(status, "http-error" if status != 404 else "not-found",
                        error.name, error.description or error.name, headers)
