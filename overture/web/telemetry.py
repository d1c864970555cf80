"""Each request counted and timed by its route (the URL rule, never the path: a path
holds ids), traced when tracing is on, and `/metrics` for Prometheus.

`/metrics` is outside the API (no API key, no rate limit); with
`OVERTURE_METRICS_TOKEN` set it asks for `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, current_app, g, request

from overture.platform import metrics, metrics_export, tracing
from overture.platform.config import Settings

bp = Blueprint("telemetry", __name__)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # no rule matched (a 404): one series for every such path
WEBHOOK_ENDPOINT = "hooks.webhook"
_STARTED = "overture_telemetry_started"
_SPAN = "overture_telemetry_span"


@bp.get("/metrics")
def scrape() -> Response:
    settings: Settings = current_app.extensions["overture.settings"]
    if settings.metrics_token and not _bearer_matches(settings.metrics_token):
        return Response("a bearer token is needed for /metrics\n", 401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    scrape_registry = metrics_export.registry(
        settings.redis_url, settings.redis_namespace,
        extra=(metrics_export.BacklogCollector(),))
    return Response(metrics_export.render(scrape_registry),
                    mimetype="text/plain; version=0.0.4; charset=utf-8")


def _bearer_matches(token: str) -> bool:
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode())


def install(app: Flask) -> None:
    """Call after the hooks that insert themselves first (sessions, hosts): this one
    goes before them all, so that their time and their early answers count too."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_count)
    app.teardown_request(_end_span)
    app.register_blueprint(bp)


def route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def _method() -> str:
    return request.method if request.method in METHODS else "OTHER"


def _start() -> None:
    g.setdefault(_STARTED, time.perf_counter())
    if tracing.enabled() and _SPAN not in g:
        setattr(g, _SPAN, tracing.start_server_span(
            f"{_method()} {route()}", request.headers,
            {"http.request.method": _method(), "http.route": route()}))


def _count(response: Response) -> Response:
    started = g.get(_STARTED)
    labels = (route(), _method())
    metrics.HTTP_REQUESTS.labels(*labels, str(response.status_code)).inc()
    if started is not None:
        metrics.HTTP_DURATION.labels(*labels).observe(time.perf_counter() - started)
    if request.endpoint == WEBHOOK_ENDPOINT:
        metrics.WEBHOOK_INTAKE.labels(_intake_outcome(response.status_code)).inc()
    g.telemetry_status = response.status_code
    return response


def _intake_outcome(status: int) -> str:
    if status < 400:
        return "accepted"
    if status == 429:
        return "rate_limited"
    return "refused" if status < 500 else "error"


def _end_span(exc: BaseException | None) -> None:
    started = g.pop(_SPAN, None)
    g.pop(_STARTED, None)
    tracing.end_server_span(started, g.pop("telemetry_status", None), exc)
