"""OpenTelemetry traces (the SDK's in-memory exporter): one trace from the HTTP request
that starts a run, through the Dramatiq message, to the step and its outbound call,
whose callee gets the trace's `traceparent`; log lines carry the trace id."""

from __future__ import annotations

import contextvars
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from werkzeug import Request, Response

from overture.orchestration import workflows
from overture.platform import tracing
from overture.platform.db import db, scoped_to
from overture.platform.logging import configure_logging, get_logger
from overture.platform.queue import EmbeddedWorker
from tests.engine_support import publish, wait_for


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)


@pytest.fixture
def in_process(settings) -> Iterator[Any]:
    """The app on the stub broker with worker threads in this process, as `overture up`
    runs it."""
    from overture.web.app import create_app

    app = create_app(settings, broker=StubBroker())
    worker = EmbeddedWorker(app.extensions["overture.broker"], threads=2)
    worker.start()
    try:
        yield app
    finally:
        worker.stop()


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


def test_a_request_its_run_step_and_outbound_call_are_one_trace(
        app_ctx, world, httpserver, spans, in_process):
    a = world.tenants["a"].id
    received: list[str | None] = []

    def callee(request: Request) -> Response:
        received.append(request.headers.get("traceparent"))
        return Response(json.dumps({"ok": True}), content_type="application/json")

    httpserver.expect_request("/callee", method="POST").respond_with_handler(callee)
    wf = publish(a, {"steps": [{"id": "call", "type": "action", "action": "http.request",
                                "input": {"method": "POST", "url": httpserver.url_for("/callee"),
                                          "json": {}}}]})
    with scoped_to(a):
        token = workflows.get_workflow(wf).webhook_token
        db.session.rollback()

    client = in_process.test_client()
    answer = contextvars.Context().run(client.post, f"/hooks/{a}/{token}", json={"n": 1})
    assert answer.status_code == 202
    run = wait_for(a, answer.get_json()["run_id"])
    assert run.status == "succeeded", run.error

    finished = spans.get_finished_spans()
    request_span = _one(finished, "POST /hooks/<tenant_id>/<token>")
    step_span = _one(finished, "step action")
    outbound = _one(finished, "POST", SpanKind.CLIENT)
    message = _one(finished, "run_step process", SpanKind.CONSUMER)
    trace_id = request_span.context.trace_id
    # request -> the Dramatiq message it sent (its traceparent) -> the step -> the call
    assert message.parent.span_id == request_span.context.span_id
    assert step_span.parent.span_id == message.context.span_id
    assert {s.context.trace_id for s in (request_span, step_span, outbound)} == {trace_id}
    assert request_span.kind == SpanKind.SERVER
    assert request_span.attributes["http.response.status_code"] == 202
    assert step_span.attributes["overture.step.type"] == "action"
    assert outbound.parent.span_id == step_span.context.span_id
    # the callee was told the trace and the outbound span it came from
    (traceparent,) = received
    version, sent_trace, sent_parent, flags = traceparent.split("-")
    assert (version, sent_trace, sent_parent) == ("00", f"{trace_id:032x}",
                                                  f"{outbound.context.span_id:016x}")
    assert int(flags, 16) & 1  # sampled
    # nothing of the URL's path (a secret may live there) on the outbound span
    assert "/callee" not in json.dumps(dict(outbound.attributes))


def test_tracing_off_sends_no_traceparent_and_makes_no_spans(app_ctx, world, httpserver,
                                                              in_process):
    a = world.tenants["a"].id
    received: list[str | None] = []

    def callee(request: Request) -> Response:
        received.append(request.headers.get("traceparent"))
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/callee").respond_with_handler(callee)
    wf = publish(a, {"steps": [{"id": "call", "type": "action", "action": "http.request",
                                "input": {"url": httpserver.url_for("/callee")}}]})
    with scoped_to(a):
        token = workflows.get_workflow(wf).webhook_token
        db.session.rollback()
    answer = contextvars.Context().run(in_process.test_client().post, f"/hooks/{a}/{token}",
                                       json={})
    assert wait_for(a, answer.get_json()["run_id"]).status == "succeeded"
    assert received == [None]


def test_log_lines_carry_the_trace_id_while_a_span_is_active(spans):
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    log = get_logger("tests.tracing")
    try:
        with tracing.span("work") as current:
            log.info("inside")
        log.info("outside")
    finally:
        configure_logging("WARNING")
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines()[-2:])
    assert inside["trace_id"] == f"{current.get_span_context().trace_id:032x}"
    assert inside["span_id"] == f"{current.get_span_context().span_id:016x}"
    assert "trace_id" not in outside


def test_configured_spans_go_to_the_collector_over_otlp_http(httpserver):
    httpserver.expect_request("/v1/traces", method="POST").respond_with_data(b"")
    provider = tracing.configure(httpserver.url_for("/v1/traces"), "overture-test")
    try:
        assert tracing.enabled()
        with tracing.span("exported"):
            pass
        assert provider.force_flush(10_000)
    finally:
        tracing.install(None)
        provider.shutdown()
    (sent, _), = httpserver.log
    assert sent.headers["Content-Type"] == "application/x-protobuf"
    assert b"exported" in sent.get_data() and b"overture-test" in sent.get_data()
    assert not tracing.enabled()


def _one(spans: Any, name: str, kind: SpanKind | None = None) -> Any:
    found = [s for s in spans if s.name == name and (kind is None or s.kind == kind)]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]
