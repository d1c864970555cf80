"""OpenTelemetry tracing, off unless configured: one trace from an HTTP request through
the Dramatiq message it sends (W3C `traceparent` in the message's options) to each step
and the step's outbound HTTP calls (`traceparent` sent on to the callee).

On when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set:
spans go to that collector over OTLP/HTTP, named by `OTEL_SERVICE_NAME`. Off, nothing
here does more than test a module variable: the engine's hot path pays nothing.

The provider is this module's own (not the API's global one, which can be set only
once per process): tests install one with an in-memory exporter (`install`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from overture.platform import metrics_export
from overture.platform.logging import get_logger

log = get_logger(__name__)
TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None
_configured_endpoint: str | None = None
on = False  # read by the engine's hot path as a plain attribute: no call when off


def configure(endpoint: str | None, service_name: str) -> Any:
    """Export spans to `endpoint` (the collector's traces URL) over OTLP/HTTP, once per
    process: a gunicorn or Dramatiq process calls this after its fork, where the export
    thread lives. Returns the provider it made, if it made one."""
    global _configured_endpoint
    if not endpoint or _configured_endpoint == endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    install(provider)
    _configured_endpoint = endpoint
    log.info("tracing.on", endpoint=endpoint, service=service_name)
    return provider


def install(provider: trace.TracerProvider | None) -> None:
    """Use `provider` for every span from now on; None turns tracing off."""
    global _tracer, _configured_endpoint, on
    _tracer = provider.get_tracer("overture") if provider is not None else None
    _configured_endpoint = None
    on = _tracer is not None


def enabled() -> bool:
    return _tracer is not None


@contextmanager
def span(name: str, kind: SpanKind = SpanKind.INTERNAL,
         attributes: dict[str, Any] | None = None) -> Iterator[trace.Span | None]:
    """A span around the block, child of the current one; nothing when tracing is off."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


def inject(carrier: dict[str, str]) -> None:
    """Write the current span's `traceparent` into `carrier` (nothing when none)."""
    if _tracer is not None and trace.get_current_span().get_span_context().is_valid:
        _propagator.inject(carrier)


def start_server_span(name: str, headers: Any, attributes: dict[str, Any]) -> Any:
    """Start and enter a SERVER span continuing the caller's `traceparent`; returns what
    `end_server_span` takes, or None when tracing is off."""
    if _tracer is None:
        return None
    parent = _propagator.extract({TRACEPARENT: headers.get(TRACEPARENT, "")})
    current = _tracer.start_span(name, context=parent, kind=SpanKind.SERVER,
                                 attributes=attributes)
    token = otel_context.attach(trace.set_span_in_context(current, parent))
    return current, token


def end_server_span(started: Any, status: int | None, error: BaseException | None) -> None:
    if started is None:
        return
    current, token = started
    if status is not None:
        current.set_attribute("http.response.status_code", status)
    if error is not None or (status or 0) >= 500:
        current.set_status(Status(StatusCode.ERROR))
    current.end()
    otel_context.detach(token)


# Called once a Dramatiq worker has stopped (its threads are done): see
# `queue.at_worker_shutdown`. Kept here so that no further middleware is called for
# every message.
WORKER_STOPPED: list[Any] = []


class Telemetry(dramatiq.Middleware):
    """Carries the trace from whoever sends a message to the worker that runs it (one
    middleware for tracing and metrics: Dramatiq calls each one for every signal)."""

    def __init__(self) -> None:
        self._open = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message,
                       delay: int) -> None:
        carrier: dict[str, str] = {}
        inject(carrier)  # a message re-sent from a delay queue keeps the one it had
        if carrier:
            message.options[TRACEPARENT] = carrier[TRACEPARENT]

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if _tracer is None:
            return
        parent = _propagator.extract({TRACEPARENT: message.options.get(TRACEPARENT, "")})
        current = _tracer.start_span(f"{message.actor_name} process", context=parent,
                                     kind=SpanKind.CONSUMER,
                                     attributes={"messaging.system": "dramatiq",
                                                 "messaging.destination.name":
                                                     message.queue_name})
        token = otel_context.attach(trace.set_span_in_context(current, parent))
        self._open.started = (current, token)

    def after_process_message(self, broker: dramatiq.Broker, message: Any, *,
                              result: Any = None, exception: BaseException | None = None
                              ) -> None:
        started = vars(self._open).pop("started", None)
        if started is not None:
            end_server_span(started, None, exception)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # A Dramatiq worker process that stops takes its "live" gauges with it.
        metrics_export.process_exited(os.getpid())
        for fn in list(WORKER_STOPPED):
            try:
                fn()
            except Exception:  # the worker stops anyway
                log.warning("worker.shutdown_hook_failed", exc_info=True)

    after_skip_message = after_process_message
