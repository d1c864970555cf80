"""Webhook-triggered runs of a 3-step workflow through `overture web` + `overture worker`,
driven by the load generator of bench/httpload.py (the same one that drives n8n in
bench/n8n.py), then measured the same way as n8n: completed runs per second, CPU per
completed run of every process of the system (PostgreSQL and Redis included), client
send-to-finished p50/p99 (the run's `finished_at` minus the moment the client sent the
request that started it: no polling), the same at n8n's throughput, and the resident
memory of each process once idle."""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench import procstat
from bench.common import (
    FINISHED,
    HOOK_CLIENTS,
    HOOK_REQUESTS,
    HOOK_SECONDS,
    HOOK_STEPS,
    PACED_SECONDS,
    PHASE_TIMEOUT,
    Proc,
    free_port,
    note,
    percentile,
    sequential,
    wait_until,
)
from bench.httpload import Load, get, load

if TYPE_CHECKING:
    from bench.engine import Bench

HOOK_WORKFLOWS = 24  # webhooks are limited to 600/min per URL: spread over several
IDLE_WAIT = 5.0  # seconds after the load before idle memory is read


@dataclass
class Paced:
    """A load paced at `rate` requests/s: the client's send -> finished latencies."""

    of: str  # whose throughput the rate is
    rate: float
    sent: int
    late: float  # how far behind schedule the client got, seconds
    lat: list[float]

    def ms(self, q: float) -> float:
        return percentile(self.lat, q) * 1000


@dataclass
class HookResult:
    """One system's webhook figures (Overture's or n8n's)."""

    system: str
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    send_seconds: float = 0.0
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    seconds: float = 0.0  # first request sent -> last run finished
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process group
    lat: list[float] = field(default_factory=list)  # send -> finished, seconds
    paced: list[Paced] = field(default_factory=list)  # latency at given rates
    memory: list[procstat.Memory] = field(default_factory=list)
    load_cpu: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def runs_per_s(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_run_ms(self) -> float:
        return sum(self.cpu.values()) / self.completed * 1000 if self.completed else 0.0

    def ms(self, q: float) -> float:
        return percentile(self.lat, q) * 1000


def run_ids(sent: Load) -> dict[uuid.UUID, float]:
    """Run id -> the moment its request was sent, from the 202 bodies."""
    out: dict[uuid.UUID, float] = {}
    for r in sent.requests:
        if r.status == 202:
            try:
                out[uuid.UUID(json.loads(r.body)["run_id"])] = r.sent
            except (ValueError, KeyError):
                continue
    return out


class Overture:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        hooks = [bench.publish(sequential(HOOK_STEPS), f"hook-{i}")
                 for i in range(HOOK_WORKFLOWS)]
        self.ids = [h[0] for h in hooks]
        self.paths = [f"/hooks/{bench.tenant_id}/{token}" for _, token in hooks]

    def finished(self) -> int:
        return int(self.bench.query(
            "SELECT count(*) FROM runs WHERE workflow_id = ANY(%s) AND status = ANY(%s)",
            self.ids, list(FINISHED))[0][0])

    def backends(self) -> tuple[list[int], list[int]]:
        """PostgreSQL: the backends serving the bench database (but the benchmark's own
        reader), and the server's own processes (postmaster, writers: shared with other
        databases, so their exited children are not counted)."""
        rows = self.bench.query(
            "SELECT pid, backend_type, datname = current_database(), pid = pg_backend_pid() "
            "FROM pg_stat_activity")
        ours = [r[0] for r in rows if r[1] == "client backend" and r[2] and not r[3]]
        server = [r[0] for r in rows if r[1] != "client backend"]
        if ours or server:  # the postmaster: the parent of any of them
            server.append(procstat.parents().get((ours or server)[0], 0))
        return ours, [p for p in server if p > 1]

    def usage(self, web: Proc, worker: Proc) -> procstat.Usage:
        usage = procstat.Usage()
        usage.add("web", roots=[web.pid])
        usage.add("worker", roots=[worker.pid])
        ours, server = self.backends()
        usage.add("PostgreSQL backends", pids=ours, with_children=False)
        usage.add("PostgreSQL server (shared)", pids=server, with_children=False)
        redis_pid = int(self.bench.redis.info("server").get("process_id", 0))
        usage.add("Redis server (shared)", pids=[redis_pid] if redis_pid else [],
                  with_children=False)
        return usage

    def collect(self, sent: dict[uuid.UUID, float]) -> tuple[list[tuple[Any, ...]], list[float]]:
        rows = self.bench.query(
            "SELECT id, status, extract(epoch FROM finished_at) FROM runs WHERE id = ANY(%s)",
            list(sent))
        ok = [r for r in rows if r[1] == "succeeded"]
        return rows, [float(r[2]) - sent[r[0]] for r in ok]

    def run(self, rates: list[tuple[str, float]]) -> HookResult:
        bench = self.bench
        port = free_port()
        bench.env.update({"HOST": "127.0.0.1", "PORT": str(port)})
        web = bench.start([sys.executable, "-m", "overture.cli", "web", "--workers", "2"], "web")
        worker = bench.engine_workers()
        procs = (web, worker)
        out = HookResult("Overture")
        try:
            wait_until(lambda: get(port, "/healthz") == 200, 60, "the web server", poll=0.2,
                       procs=procs)
            load(port, self.paths[:1], 20, 4, 30)  # warm-up: both gunicorn and engine workers
            wait_until(lambda: self.finished() >= 20, 60, "warm-up webhook runs", procs=procs)
            base = self.finished()
            usage = self.usage(web, worker)
            usage.start()
            sent = load(port, self.paths, HOOK_REQUESTS, HOOK_CLIENTS, HOOK_SECONDS)
            accepted = sent.statuses.get(202, 0)
            try:  # count what finished in time; the rate says the rest
                wait_until(lambda: self.finished() >= base + accepted, PHASE_TIMEOUT,
                           "webhook runs to finish", poll=0.2, procs=procs)
            except RuntimeError:
                if not (web.alive() and worker.alive()):
                    raise
            usage.add_pids("PostgreSQL backends", self.backends()[0])
            out.cpu = usage.stop()
            ids = run_ids(sent)
            rows, out.lat = self.collect(ids)
            ok = [r for r in rows if r[1] == "succeeded"]
            out.requests, out.statuses = sent.count, dict(sent.statuses)
            out.send_seconds, out.load_cpu = sent.send_seconds, sent.cpu
            out.completed = len(ok)
            out.failed = sum(1 for r in rows if r[1] in FINISHED and r[1] != "succeeded")
            out.unfinished = len(ids) - len(out.lat) - out.failed
            out.seconds = max((float(r[2]) for r in ok), default=sent.start) - sent.start
            for of, rate in rates:  # the same load at n8n's throughput: latency, not rate
                base = self.finished()
                paced = load(port, self.paths, int(rate * PACED_SECONDS) + 1,
                             HOOK_CLIENTS, PACED_SECONDS + 5, rate=rate)
                accepted = paced.statuses.get(202, 0)
                wait_until(lambda a=accepted, b=base: self.finished() >= b + a, PHASE_TIMEOUT,
                           "paced webhook runs to finish", poll=0.2, procs=procs)
                out.paced.append(Paced(of, rate, paced.count, paced.late,
                                       self.collect(run_ids(paced))[1]))
            time.sleep(IDLE_WAIT)
            out.memory = (procstat.tree_memory(web.pid, "web")
                          + procstat.tree_memory(worker.pid, "worker"))
        finally:
            bench.stop(web)
            bench.stop(worker)
        note(f"Overture: {out.completed} runs in {out.seconds:.1f}s")
        return out


def run_webhooks(bench: Bench, rates: list[tuple[str, float]]) -> HookResult:
    """`rates`: (whose, requests/s) to pace a load at after the full one."""
    return Overture(bench).run(rates)
