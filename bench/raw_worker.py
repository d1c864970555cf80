"""The raw Dramatiq baselines, run by `python -m dramatiq bench.raw_worker` (started by
bench/engine.py with the same processes and threads as `overture worker`).

One message per step and nothing else: a step is an actor that sends the next
message. With BENCH_COMMIT set on a message, each step also does one INSERT and one
COMMIT on PostgreSQL (psycopg, one connection per worker thread) before it sends on.

The fair baseline (bench/fair_baseline.py) is shaped like the engine instead: one
message per run (`chain`), each step one INSERT committed in the same round trip
(autocommit), the next step run at once in the same thread.

Measurement costs one Redis write per run (sequential chains carry their per-step
latencies in the message) or one pipelined Redis round trip per step (parallel
branches, which also serves as the join counter the fan-in needs).
"""

from __future__ import annotations

import json
import os
import threading
import time

import dramatiq
import psycopg
import redis
from dramatiq.brokers.redis import RedisBroker

NAMESPACE = os.environ["BENCH_NAMESPACE"]
REDIS_URL = os.environ["BENCH_REDIS_URL"]
PG_URL = os.environ["BENCH_PG_URL"]
QUEUE = "raw"
DONE_KEY = f"{NAMESPACE}:bench:done"  # one JSON document per finished run
LAT_KEY = f"{NAMESPACE}:bench:lat"  # per-step latencies of the parallel runs

broker = RedisBroker(url=REDIS_URL, namespace=f"{NAMESPACE}-dramatiq")
dramatiq.set_broker(broker)
results = redis.Redis.from_url(REDIS_URL)
_local = threading.local()


def _autocommit() -> psycopg.Connection:
    conn = getattr(_local, "auto", None)
    if conn is None:
        conn = _local.auto = psycopg.connect(PG_URL, autocommit=True)
    return conn


def _commit_one(run: str, step: str) -> None:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(PG_URL)
    conn.execute("INSERT INTO bench_steps (run, step) VALUES (%s, %s)", (run, step))
    conn.commit()


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def hop(run: str, step: int, total: int, sent_at: float, lat: list[float], commit: bool) -> None:
    """One step of a sequential chain: (commit,) then send the next step."""
    if commit:
        _commit_one(run, str(step))
    now = time.time()
    lat.append(now - sent_at)
    if step + 1 < total:
        hop.send(run, step + 1, total, time.time(), lat, commit)
    else:
        results.rpush(DONE_KEY, json.dumps({"run": run, "end": now, "lat": lat}))


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def fan(run: str, width: int, sent_at: float, commit: bool) -> None:
    """The parallel step: send one message per branch."""
    if commit:
        _commit_one(run, "fan")
    results.rpush(LAT_KEY, time.time() - sent_at)
    for index in range(width):
        branch.send(run, index, width, time.time(), commit)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def branch(run: str, index: int, width: int, sent_at: float, commit: bool) -> None:
    """A branch: (commit,) count itself in; the last one in sends the step after the join."""
    if commit:
        _commit_one(run, f"b{index}")
    pipe = results.pipeline(transaction=False)
    pipe.incr(f"{NAMESPACE}:bench:join:{run}")
    pipe.rpush(LAT_KEY, time.time() - sent_at)
    arrived, _ = pipe.execute()
    if arrived == width:
        after.send(run, time.time(), commit)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def after(run: str, sent_at: float, commit: bool) -> None:
    """The step after the join."""
    if commit:
        _commit_one(run, "after")
    now = time.time()
    results.rpush(LAT_KEY, now - sent_at)
    results.rpush(DONE_KEY, json.dumps({"run": run, "end": now, "lat": []}))


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def chain(run: str, total: int, sent_at: float) -> None:
    """A whole sequential run from one message, shaped like the engine: each step one
    INSERT committed in the same round trip, then the next step in this thread."""
    conn = _autocommit()
    lat: list[float] = []
    ready = sent_at
    for step in range(total):
        conn.execute("INSERT INTO bench_steps (run, step) VALUES (%s, %s)", (run, str(step)))
        now = time.time()
        lat.append(now - ready)
        ready = now
    results.rpush(DONE_KEY, json.dumps({"run": run, "end": ready, "lat": lat}))
