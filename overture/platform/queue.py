"""The Dramatiq broker: Redis in production, the stub broker with in-process worker
threads in the embedded default."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from overture.platform import tracing
from overture.platform.logging import get_logger
from overture.platform.tracing import Telemetry

log = get_logger(__name__)


def make_broker(redis_url: str | None, namespace: str = "overture") -> dramatiq.Broker:
    broker: dramatiq.Broker = (RedisBroker(url=redis_url, namespace=f"{namespace}-dramatiq")
                               if redis_url else StubBroker())
    instrument(broker)
    dramatiq.set_broker(broker)
    return broker


def instrument(broker: dramatiq.Broker) -> None:
    """Traces carried in messages, metrics files tidied; once per broker."""
    if not any(isinstance(m, Telemetry) for m in broker.middleware):
        broker.add_middleware(Telemetry())


def at_worker_shutdown(fn: Any) -> None:
    """Call `fn` once a Dramatiq worker of this process has stopped (once per `fn`)."""
    if fn not in tracing.WORKER_STOPPED:
        tracing.WORKER_STOPPED.append(fn)


def broker_reachable(broker: dramatiq.Broker) -> bool:
    if isinstance(broker, RedisBroker):
        try:
            return bool(broker.client.ping())
        except Exception:  # any connection failure means "not ready"
            log.warning("broker.unreachable", exc_info=True)
            return False
    return True


class EmbeddedWorker:
    """Dramatiq worker threads inside this process (embedded mode only)."""

    def __init__(self, broker: dramatiq.Broker, threads: int = 4) -> None:
        self._worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()
