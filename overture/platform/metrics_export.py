"""What a scrape returns: the declared metrics (added up over the processes of a
gunicorn or Dramatiq pool, in multiprocess mode), and values read at scrape time: the
Dramatiq queues in Redis and the registered backlogs (`metrics.backlog`).

`overture web` serves them at `/metrics`; `overture worker` from a process Dramatiq
forks for it, and `overture scheduler` from a thread, each on a port of its own
(`OVERTURE_WORKER_METRICS_PORT`, `OVERTURE_SCHEDULER_METRICS_PORT`).
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from overture.platform import metrics
from overture.platform.logging import get_logger

log = get_logger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
QUEUES = ("steps", "mail")  # the queues `overture worker` consumes
REDIS_TIMEOUT = 1.0  # a scrape never waits long for Redis: the queue gauges are left out


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def process_exited(pid: int) -> None:
    """A pool process ended: its "live" gauges no longer count."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)


class _Declared(Collector):
    """This process's own values of the declared metrics."""

    def collect(self) -> Iterator[Metric]:
        yield from metrics.REGISTRY.collect()


class QueueCollector(Collector):
    """Messages waiting in each Dramatiq queue and the age of the oldest, read from
    Redis at scrape time: two pipelined round trips, whatever the queues hold."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT,
                                           socket_connect_timeout=REDIS_TIMEOUT)
        self.prefix = f"{namespace}-dramatiq:"

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("overture_queue_depth", "Messages waiting in the queue "
                                  "for a worker to fetch them.", labels=["queue"])
        age = GaugeMetricFamily("overture_queue_oldest_message_age_seconds", "Age of the "
                                "oldest message waiting in the queue (0 when empty).",
                                labels=["queue"])
        try:
            found = self._read()
        except Exception as exc:  # Redis away: the scrape still answers, without these
            log.warning("metrics.queue_read_failed", error=str(exc)[:200])
            return
        for queue, (length, oldest) in found.items():
            depth.add_metric([queue], length)
            age.add_metric([queue], oldest)
        yield depth
        yield age

    def _read(self) -> dict[str, tuple[int, float]]:
        with self.client.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                pipe.llen(self.prefix + queue)
                pipe.lindex(self.prefix + queue, 0)
            heads = pipe.execute()
        lengths, first_ids = heads[0::2], heads[1::2]
        with self.client.pipeline(transaction=False) as pipe:
            for queue, first in zip(QUEUES, first_ids, strict=True):
                pipe.hget(f"{self.prefix}{queue}.msgs", first or b"")
            bodies = pipe.execute()
        now_ms = time.time() * 1000
        return {queue: (int(length), _age(body, now_ms))
                for queue, length, body in zip(QUEUES, lengths, bodies, strict=True)}


def _age(body: bytes | None, now_ms: float) -> float:
    if not body:
        return 0.0
    try:
        sent_ms = float(json.loads(body)["message_timestamp"])
    except (ValueError, KeyError, TypeError):
        return 0.0
    return max(0.0, (now_ms - sent_ms) / 1000)


class BacklogCollector(Collector):
    """The registered backlogs, each read now; one that fails is left out."""

    def __init__(self, around: Callable[[Callable[[], float]], float] | None = None) -> None:
        self.around = around or (lambda read: read())

    def collect(self) -> Iterator[Metric]:
        for name, read in sorted(metrics.backlogs().items()):
            try:
                value = float(self.around(read))
            except Exception:
                log.warning("metrics.backlog_failed", backlog=name, exc_info=True)
                continue
            gauge = GaugeMetricFamily(f"overture_{name}_backlog", f"Backlog of {name}, "
                                      "read at scrape time.")
            gauge.add_metric([], value)
            yield gauge


def registry(redis_url: str | None, namespace: str,
             extra: tuple[Collector, ...] = ()) -> CollectorRegistry:
    """A registry for one scrape (or one exporter): every process's values, the queues."""
    scrape = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        multiprocess.MultiProcessCollector(scrape)
    else:
        scrape.register(_Declared())
    if redis_url:
        scrape.register(_queues(redis_url, namespace))
    for collector in extra:
        scrape.register(collector)
    return scrape


@functools.cache
def _queues(redis_url: str, namespace: str) -> QueueCollector:
    """One per Redis, reused by every scrape (and its connections with it)."""
    return QueueCollector(redis_url, namespace)


def render(scrape: CollectorRegistry) -> bytes:
    return generate_latest(scrape)


def serve(port: int, scrape: CollectorRegistry, host: str = "0.0.0.0") -> Any:  # noqa: S104
    """prometheus_client's HTTP server on a thread of this process (any path answers);
    None when the port is taken: the process goes on without it, and says so."""
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=host, registry=scrape)
    except OSError as exc:
        log.error("metrics.port_unavailable", port=port, error=str(exc))
        return None
    log.info("metrics.serving", port=port)
    return server, thread


def serve_worker_metrics() -> None:
    """Dramatiq's main process forks this (`--fork-function`, via the Observability
    middleware): the pool's metrics on OVERTURE_WORKER_METRICS_PORT, until stopped."""
    from overture.platform.config import load_settings

    settings = load_settings()
    if serve(settings.worker_metrics_port,
             registry(settings.redis_url, settings.redis_namespace)) is None:
        return  # the workers go on; only their metrics are not served
    while True:
        time.sleep(3600)
