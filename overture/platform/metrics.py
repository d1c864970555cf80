"""The process's Prometheus metrics, in one registry of our own (not the client
library's global one), so that what is exported is exactly what is declared here.

Every label takes values from a small set fixed by the code (a route's rule, a step
type, a status): never a tenant, run or user id, which would make a series per
tenant (tenants' numbers are in the usage API). The web app serves them at `/metrics`,
`overture worker` and `overture scheduler` on a port of their own (`metrics_export`).

Under gunicorn and Dramatiq each process writes its values into files in
`PROMETHEUS_MULTIPROC_DIR` (set by the CLI before any metric exists) and a scrape
adds them up; a gauge says how (`multiprocess_mode`).

Recording is cheap enough for the engine's hot path: a counter or histogram update
is a dictionary lookup and an add (a few microseconds in multiprocess mode), and
nothing here reads the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


REGISTRY = CollectorRegistry()

RATELIMIT_FALLBACK_ACTIVE = Gauge(
    "overture_ratelimit_fallback_active",
    "1 while this process keeps rate-limit counters in its own memory because Redis "
    "is unreachable (limits then count per process), else 0.",
    registry=REGISTRY, multiprocess_mode="livemax")
RATELIMIT_STORAGE_ERRORS = Counter(
    "overture_ratelimit_storage_errors",
    "Rate-limit counter operations that failed on Redis and were counted in memory instead.",
    registry=REGISTRY)
BROKER_UNREACHABLE = Gauge(
    "overture_broker_unreachable",
    "1 while this process cannot send step messages to the broker (the sweeper sends "
    "them once it is back), else 0.",
    registry=REGISTRY, multiprocess_mode="livemax")
BROKER_SEND_FAILURES = Counter(
    "overture_broker_send_failures",
    "Step messages this process could not send; each step stays queued in the database "
    "and the sweeper sends it.",
    registry=REGISTRY)

# --------------------------------------------------------------------------- web

HTTP_REQUESTS = Counter(
    "overture_http_requests", "HTTP requests answered, by route (the URL rule, not the "
    "path), method and status.", ["route", "method", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram(
    "overture_http_request_duration_seconds", "Time from the request's first hook to its "
    "answer, by route and method.", ["route", "method"], registry=REGISTRY)
WEBHOOK_INTAKE = Counter(
    "overture_webhook_intake", "Calls of workflow webhooks, by outcome: accepted (a run "
    "started or found), rate_limited, refused (4xx), error (5xx).", ["outcome"],
    registry=REGISTRY)

# --------------------------------------------------------------------------- engine

RUNS_STARTED = Counter(
    "overture_runs_started", "Runs started, by trigger.", ["trigger"], registry=REGISTRY)
RUNS_FINISHED = Counter(
    "overture_runs_finished", "Runs ended, by final status.", ["status"], registry=REGISTRY)
RUN_DURATION = Histogram(
    "overture_run_duration_seconds", "Time from a run's start to its end.",
    registry=REGISTRY, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
                                3600, 4 * 3600, 86400))
STEP_DURATION = Histogram(
    "overture_step_duration_seconds", "Time a step's executor ran, by step type.",
    ["step_type"], registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
SWEEPER_REDISPATCHES = Counter(
    "overture_sweeper_redispatches", "Step messages the sweeper sent again (lost, "
    "unsent, or a lease that ran out).", registry=REGISTRY)
APPROVALS_WAITING = Gauge(
    "overture_approvals_waiting", "Approvals waiting for a decision, in every tenant "
    "(counted by the scheduler now and then).", registry=REGISTRY,
    multiprocess_mode="livemostrecent")
MODEL_TOKENS = Counter(
    "overture_model_tokens", "Tokens of model calls, by direction (input, output).",
    ["direction"], registry=REGISTRY)
MODEL_COST = Counter(
    "overture_model_cost_usd", "Cost of model calls with a price, in US dollars.",
    registry=REGISTRY)
CONNECTOR_CALLS = Counter(
    "overture_connector_calls", "Connector action calls, by connector and outcome (ok, "
    "or the failure's reason).", ["connector", "outcome"], registry=REGISTRY)

_METRICS_AFTER_COMMIT = "overture_metrics"
_step_timers: dict[str, Any] = {}  # labelled children, made once: labels() takes a lock
_runs_finished: dict[str, Any] = {}


def _count_committed(updates: list[Callable[[], None]]) -> None:
    for update in updates:
        update()


def on_commit(session: Session, update: Callable[[], None]) -> None:
    """Count what a transaction did once it commits (a rolled-back one did nothing)."""
    # Imported here, not above: the worker pool's metrics process imports this module
    # for the metric names and never commits, so it need not load SQLAlchemy.
    from overture.platform import after_commit

    after_commit.register(_METRICS_AFTER_COMMIT, _count_committed)
    after_commit.defer(session, _METRICS_AFTER_COMMIT, update)


def run_started(session: Session, trigger: str) -> None:
    on_commit(session, RUNS_STARTED.labels(trigger).inc)


def run_finished(status: str, started_at: datetime | None, finished_at: datetime) -> None:
    counter = _runs_finished.get(status)
    if counter is None:
        counter = _runs_finished[status] = RUNS_FINISHED.labels(str(status))
    counter.inc()
    if started_at is not None:
        RUN_DURATION.observe(max(0.0, (finished_at - started_at).total_seconds()))


def step_ran(step_type: str, seconds: float) -> None:
    timer = _step_timers.get(step_type)
    if timer is None:
        timer = _step_timers[step_type] = STEP_DURATION.labels(step_type)
    timer.observe(seconds)


def model_call(input_tokens: int, output_tokens: int, cost: Decimal | None) -> None:
    if input_tokens:
        MODEL_TOKENS.labels("input").inc(input_tokens)
    if output_tokens:
        MODEL_TOKENS.labels("output").inc(output_tokens)
    if cost:
        MODEL_COST.inc(float(cost))  # Prometheus only knows floats; billing keeps Decimals


def connector_called(connector: str, outcome: str) -> None:
    CONNECTOR_CALLS.labels(connector, outcome[:40]).inc()


# --------------------------------------------------------------------------- backlogs

_backlogs: dict[str, Callable[[], float]] = {}
_backlogs_lock = threading.Lock()


def backlog(name: str, read: Callable[[], float]) -> None:
    """Export `overture_<name>_backlog`, whose value `read()` gives at each scrape of
    the web app's `/metrics` (inside an app context): e.g. the Stripe outbox's rows not
    yet sent, `metrics.backlog("stripe_outbox", count_unsent)`. It should be one cheap,
    bounded query that the app role may run."""
    with _backlogs_lock:
        _backlogs[name] = read


def backlogs() -> dict[str, Callable[[], float]]:
    with _backlogs_lock:
        return dict(_backlogs)
