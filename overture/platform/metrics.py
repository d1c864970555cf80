"""The process's Prometheus metrics, in one registry of our own (not the client
library's global one), so that what is exported is exactly what is declared here."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry()

RATELIMIT_FALLBACK_ACTIVE = Gauge(
    "overture_ratelimit_fallback_active",
    "1 while this process keeps rate-limit counters in its own memory because Redis "
    "is unreachable (limits then count per process), else 0.",
    registry=REGISTRY)
RATELIMIT_STORAGE_ERRORS = Counter(
    "overture_ratelimit_storage_errors",
    "Rate-limit counter operations that failed on Redis and were counted in memory instead.",
    registry=REGISTRY)
BROKER_UNREACHABLE = Gauge(
    "overture_broker_unreachable",
    "1 while this process cannot send step messages to the broker (the sweeper sends "
    "them once it is back), else 0.",
    registry=REGISTRY)
BROKER_SEND_FAILURES = Counter(
    "overture_broker_send_failures",
    "Step messages this process could not send; each step stays queued in the database "
    "and the sweeper sends it.",
    registry=REGISTRY)
