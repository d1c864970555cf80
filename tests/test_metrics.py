"""`/metrics` of the app in this process: requests by route (never by path), the
backlogs billing registers, the settings of the metrics ports."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from overture.platform import metrics
from overture.platform.config import load_settings
from overture.platform.errors import ConfigError
from tests.metrics_support import labelled_like_ids, parse, value


@pytest.fixture
def client(app_ctx: Any) -> Any:
    return app_ctx.test_client()


def scrape(client: Any) -> Any:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain"
    return parse(answer.get_data(as_text=True))


def test_requests_are_counted_by_their_route_not_their_path(world, client):
    before = scrape(client)
    route = "/api/v1/workflows/<workflow_id>"
    counted = value(before, "overture_http_requests_total", route=route, method="GET",
                    status="401") or 0
    for _ in range(3):
        assert client.get(f"/api/v1/workflows/{uuid.uuid4()}").status_code == 401
    assert client.get(f"/no/such/page/{uuid.uuid4()}").status_code == 404
    assert client.open("/healthz", method="BREW").status_code == 405
    after = scrape(client)
    assert value(after, "overture_http_requests_total", route=route, method="GET",
                 status="401") == counted + 3
    assert value(after, "overture_http_request_duration_seconds_count", route=route,
                 method="GET") >= 3
    assert value(after, "overture_http_requests_total", route="<unmatched>",
                 status="404") >= 1
    assert value(after, "overture_http_requests_total", method="OTHER", status="405") >= 1
    assert labelled_like_ids(after) == []


def test_a_registered_backlog_is_read_at_each_scrape(client):
    backlog = {"rows": 4}
    metrics.backlog("stripe_outbox", lambda: backlog["rows"])
    metrics.backlog("broken", lambda: 1 / 0)
    try:
        assert value(scrape(client), "overture_stripe_outbox_backlog") == 4
        backlog["rows"] = 0
        samples = scrape(client)
        assert value(samples, "overture_stripe_outbox_backlog") == 0
        assert value(samples, "overture_broken_backlog") is None  # left out, scrape answers
    finally:
        metrics._backlogs.clear()


def test_the_web_metrics_need_no_api_key_and_skip_the_api_rate_limit(client):
    samples = scrape(client)
    assert value(samples, "overture_queue_depth", queue="steps") is not None
    assert "RateLimit" not in client.get("/metrics").headers


def test_metrics_ports_are_settings_zero_turns_them_off():
    base = {"OVERTURE_ENV": "test", "OVERTURE_INSTANCE_PATH": "/tmp/overture-metrics-test"}
    defaults = load_settings(base)
    assert (defaults.worker_metrics_port, defaults.scheduler_metrics_port) == (9191, 9192)
    assert defaults.metrics_token is None and defaults.tracing_endpoint is None
    off = load_settings({**base, "OVERTURE_WORKER_METRICS_PORT": "0",
                         "OVERTURE_SCHEDULER_METRICS_PORT": "9300",
                         "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert (off.worker_metrics_port, off.scheduler_metrics_port) == (0, 9300)
    assert off.tracing_endpoint == "http://collector:4318/v1/traces"
    with pytest.raises(ConfigError, match="OVERTURE_WORKER_METRICS_PORT"):
        load_settings({**base, "OVERTURE_WORKER_METRICS_PORT": "70000"})
