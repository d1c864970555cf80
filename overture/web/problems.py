"""Every error leaves as an RFC 9457 problem document (`application/problem+json`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiflask import APIFlask
from apiflask.exceptions import HTTPError as APIFlaskHTTPError
from flask import Response, g, json, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from overture.platform import database_outage
from overture.platform.errors import PROBLEM_TYPE_PREFIX, OvertureError, ServiceUnavailable
from overture.platform.logging import get_logger

log = get_logger(__name__)

_HTTP_CODES = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 409: "conflict", 413: "payload-too-large",
               415: "unsupported-media-type", 422: "validation-error", 429: "rate-limited"}


# Set by the console: renders an error as an HTML page for a browser on a page (never
# for /api/ or the webhooks). Problem JSON otherwise.
html_page: Callable[..., Response | None] | None = None


def problem(status: int, code: str, title: str, detail: str,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    if html_page is not None and wants_html():
        page = html_page(status, code, title, detail, headers or {})
        if page is not None:
            return page
    body = {"type": PROBLEM_TYPE_PREFIX + code, "title": title, "status": status,
            "detail": detail, **extra}
    rid = getattr(g, "request_id", None)
    if rid:
        body["request_id"] = rid
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    response.headers.update(headers or {})
    return response


def database_unavailable() -> Response:
    """503 while our database cannot be reached (or refused the transaction for reasons
    of its own): the client should come back shortly."""
    err = ServiceUnavailable("the database is unavailable for a moment; try again shortly")
    return problem(err.status, err.code, err.title, err.detail,
                   headers={"Retry-After": str(database_outage.RETRY_AFTER_SECONDS)})


def _field_errors(detail: Any, path: str = "") -> list[dict[str, str]]:
    """Flatten marshmallow's nested messages into [{field, message}]."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            if key in ("json", "query", "headers", "form", "path", "view_args") and not path:
                out += _field_errors(value, "")
            else:
                out += _field_errors(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(detail, list) and all(isinstance(x, str) for x in detail):
        return [{"field": path or "body", "message": " ".join(detail)}]
    if isinstance(detail, list):
        return [e for item in detail for e in _field_errors(item, path)]
    return [{"field": path or "body", "message": str(detail)}]


def wants_html() -> bool:
    """A browser asking for a page: it names HTML before JSON (`*/*` alone is a program)."""
    if request.path.startswith(("/api/", "/hooks/")):
        return False
    accepted = request.accept_mimetypes
    return accepted.best_match(["application/json", "text/html"]) == "text/html" \
        and accepted["text/html"] > accepted["application/json"]


def register(app: APIFlask) -> None:
    @app.errorhandler(OvertureError)
    def _overture(err: OvertureError) -> Response:
        return problem(err.status, err.code, err.title, err.detail, **err.extra)

    @app.error_processor
    def _apiflask(err: APIFlaskHTTPError) -> Response:
        if err.status_code == 422:
            errors = _field_errors(err.detail)
            return problem(422, "validation-error", "Validation failed",
                           "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                           errors=errors)
        code = _HTTP_CODES.get(err.status_code, "http-error")
        return problem(err.status_code, code, err.message or "Error",
                       err.message or "Error", headers=dict(err.headers or {}))

    @app.errorhandler(RateLimitExceeded)
    def _limited(err: RateLimitExceeded) -> Response:
        # Retry-After and the RateLimit fields are added by web.ratelimit, for every 429.
        return problem(429, "rate-limited", "Too many requests",
                       f"rate limit exceeded: {err.description}")

    @app.errorhandler(CSRFError)
    def _csrf(err: CSRFError) -> Response:
        return problem(400, "csrf-failed", "CSRF check failed", err.description)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        status = err.code or 500
        # The exception's own headers (Allow on 405, WWW-Authenticate, Retry-After)
        # belong to the answer; only its HTML Content-Type does not.
        headers = {name: value for name, value in err.get_headers()
                   if name.lower() != "content-type"}
        return problem(status, _HTTP_CODES.get(status, "http-error"), err.name,
                       err.description or err.name, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        if database_outage.infrastructure_error(err):  # the database is away: not a bug, and brief
            log.warning("request.database_unavailable", error=database_outage.summary(err))
            return database_unavailable()
        log.exception("request.failed")
        return problem(500, "internal-error", "Internal error",
                       "something went wrong on our side; quote the request id to support")
