"""The engine benchmark (`make bench`): Overture's engine against raw Dramatiq, raw
Dramatiq plus one PostgreSQL commit per step, a fair engine-shaped raw baseline, and
LangGraph with its PostgreSQL checkpointer; the engine with 1, 2, 4 worker processes and
two pools; then webhook-triggered runs through the real HTTP server side by side with
n8n. All measured in this one run on this machine, one system at a time. Prints one
report. See bench/README.md.

It makes its own database (overture_bench_<random>) and Redis namespace, and drops
both at the end. Every load is bounded in count and time and goes to loopback only.
`BENCH_PHASES` (comma-separated, default all: raw,fair,engine,langgraph,scaleout,n8n,
webhooks) runs a subset.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import sys
import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import redis

from bench.common import (
    ALL_PHASES,
    APP_ROLE,
    FINISHED,
    N8N_PUBLISHED,
    OWNER_ROLE,
    PAR_RUNS,
    PAR_WIDTH,
    PG_ADMIN,
    PG_HOST,
    PHASE_TIMEOUT,
    PROCESSES,
    REDIS_URL,
    ROOT,
    ROUND_BUDGET,
    ROUNDS,
    SEQ_RUNS,
    SEQ_STEPS,
    SOLO_RUNS,
    THREADS,
    Proc,
    Result,
    keep_best,
    parallel,
    phase,
    sequential,
    wait_until,
)

__all__ = ["Bench", "main", "phase"]


# --------------------------------------------------------------------------- the bench

# --------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self) -> None:
        tag = secrets.token_hex(5)
        self.dbname = f"overture_bench_{tag}"
        self.namespace = f"ovt-bench-{tag}"
        self.tmp = f"/tmp/overture-bench-{tag}"
        self.owner_url = f"postgresql://{OWNER_ROLE}@{PG_HOST}/{self.dbname}"
        self.admin_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.dbname
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.env = dict(os.environ)
        self.env.update({
            "OVERTURE_ENV": "production",
            "DATABASE_URL": f"postgresql://{APP_ROLE}@{PG_HOST}/{self.dbname}",
            "DATABASE_OWNER_URL": self.owner_url,
            "REDIS_URL": REDIS_URL,
            "OVERTURE_REDIS_NAMESPACE": self.namespace,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "OVERTURE_MASTER_KEY": "bench:" + base64.urlsafe_b64encode(
                secrets.token_bytes(32)).decode().rstrip("="),
            "OVERTURE_INSTANCE_PATH": self.tmp,
            "OVERTURE_LOG_LEVEL": "WARNING",
            "OVERTURE_SESSION_COOKIE_SECURE": "false",
            "BENCH_NAMESPACE": self.namespace,
            "BENCH_REDIS_URL": REDIS_URL,
            "BENCH_PG_URL": self.owner_url,
            "BENCH_TMP": self.tmp,
            "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p),
        })
        self.procs: list[Proc] = []
        self.app: Any = None
        self.tenant_id: uuid.UUID | None = None
        self.released: dict[uuid.UUID, float] = {}  # first step run -> message sent at
        self.cost: dict[str, float] | None = None  # counted cost of one engine step
        self.cost_budgets: dict[str, float] | None = None  # the same, with limits set
        self.costs_counted = 0  # each count publishes a workflow of its own
        self.created_db = False
        self.reader: psycopg.Connection[Any] | None = None

    # ----------------------------------------------------------------- setup / teardown

    def admin(self, *statements: str, dbname: str | None = None) -> None:
        url = PG_ADMIN if dbname is None else self.admin_url
        with psycopg.connect(url, autocommit=True) as conn:
            for stmt in statements:
                conn.execute(stmt)

    def setup(self) -> None:
        os.makedirs(self.tmp, exist_ok=True)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
            if OWNER_ROLE not in existing:
                conn.execute(f"CREATE ROLE {OWNER_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
            if APP_ROLE not in existing:
                conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS "
                             "NOCREATEDB NOCREATEROLE")
            conn.execute(f"CREATE DATABASE {self.dbname} OWNER {OWNER_ROLE}")
            conn.execute(f"GRANT CONNECT ON DATABASE {self.dbname} TO {APP_ROLE}")
        self.created_db = True
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("BENCH_")})

        from overture.platform import migrate
        from overture.platform.config import load_settings

        settings = load_settings(self.env)
        migrate.upgrade(settings)
        with psycopg.connect(self.owner_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_steps (id bigserial PRIMARY KEY, run text NOT NULL,"
                         " step text NOT NULL, at timestamptz NOT NULL DEFAULT now())")

        from overture.platform.db import db
        from overture.tenants.lifecycle import create_tenant
        from overture.tenants.models import TenantKind
        from overture.web.app import create_app

        self.app = create_app(settings)
        with self.app.app_context():
            tenant = create_tenant("Bench", TenantKind.WORKSPACE, None, slug="bench")
            db.session.commit()
            self.tenant_id = tenant.id

    def teardown(self) -> None:
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.stop()
        self.procs.clear()
        if self.app is not None:
            from overture.platform.db import db

            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()
        if self.reader is not None:
            self.reader.close()
        if self.created_db:
            with contextlib.suppress(Exception):
                self.admin(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
        with contextlib.suppress(Exception):
            for pattern in (f"{self.namespace}*", f"LIMITS:*{self.namespace}*"):
                keys = list(self.redis.scan_iter(pattern))
                if keys:
                    self.redis.delete(*keys)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, args: list[str], name: str, env: dict[str, str] | None = None,
              **kw: Any) -> Proc:
        proc = Proc(args, env or self.env, name, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        self.procs.remove(proc)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read as the superuser (no tenant scope needed to count rows), on one kept
        connection: polling must not fork a PostgreSQL backend each time."""
        if self.reader is None:
            self.reader = psycopg.connect(self.admin_url, autocommit=True)
        return self.reader.execute(sql, params).fetchall()

    # ----------------------------------------------------------------- raw Dramatiq

    def raw_workers(self) -> Proc:
        from overture.cli import IDLE_POLL_MS

        # The same broker settings as `overture worker`, idle poll included.
        env = {**self.env, "dramatiq_worker_timeout": str(IDLE_POLL_MS)}
        return self.start([sys.executable, "-m", "dramatiq", "bench.raw_worker",
                           "--processes", str(PROCESSES), "--threads", str(THREADS),
                           "--queues", "raw"], "raw-worker", env=env)

    def raw_done(self, expected: int, procs: tuple[Proc, ...],
                 timeout: float = PHASE_TIMEOUT, poll: float = 0.05) -> list[dict[str, Any]]:
        from bench import raw_worker

        wait_until(lambda: self.redis.llen(raw_worker.DONE_KEY) >= expected, timeout,
                   f"{expected} raw runs", poll=poll, procs=procs)
        docs = [json.loads(d) for d in self.redis.lrange(raw_worker.DONE_KEY, 0, -1)]
        self.redis.delete(raw_worker.DONE_KEY)
        return docs

    # ----------------------------------------------------------------- the engine

    def engine_workers(self) -> Proc:
        return self.start([sys.executable, "-m", "overture.cli", "worker", "--processes",
                           str(PROCESSES), "--threads", str(THREADS)], "engine-worker")

    def publish(self, definition: dict[str, Any], name: str) -> tuple[uuid.UUID, str]:
        from overture.orchestration import workflows
        from overture.platform.db import db, scoped_to

        with self.app.app_context(), scoped_to(self.tenant_id):
            workflow = workflows.create_workflow(name, draft=definition)
            workflows.publish(workflow, None)
            db.session.commit()
            return workflow.id, workflow.webhook_token

    def create_runs(self, workflow_id: uuid.UUID, count: int) -> list[tuple[Any, ...]]:
        """Create `count` runs the way the API does (start_run, one transaction each), but
        hold their first messages back and return them, so a batch's messages can all be
        released at one moment (t0), as the raw baselines send theirs."""
        from overture.orchestration import dispatch, runs, workflows
        from overture.platform.db import db, scoped_to

        held: list[tuple[Any, ...]] = []
        sender = self.app.extensions[dispatch.SENDER]
        dispatch.set_sender(self.app, lambda *args: held.append(args))
        try:
            with self.app.app_context(), scoped_to(self.tenant_id):
                for i in range(count):
                    workflow = workflows.get_workflow(workflow_id)
                    runs.start_run(workflow, {"i": i}, "api")
                    db.session.commit()
                db.session.remove()
        finally:
            dispatch.set_sender(self.app, sender)
        return held

    def release(self, held: list[tuple[Any, ...]]) -> float:
        from overture.orchestration import dispatch

        t0 = time.time()
        sender = self.app.extensions[dispatch.SENDER]
        for args in held:
            self.released[args[0]] = time.time()
            sender(*args)
        return t0

    def engine_finished(self, workflow_id: uuid.UUID) -> tuple[int, int]:
        row = self.query("SELECT count(*) FILTER (WHERE status = ANY(%s)), count(*) FROM runs "
                         "WHERE workflow_id = %s", list(FINISHED), workflow_id)[0]
        return int(row[0]), int(row[1])

    def engine_collect(self, workflow_id: uuid.UUID, t0: float) -> Result:
        runs = self.query("SELECT status, extract(epoch FROM finished_at) FROM runs "
                          "WHERE workflow_id = %s", workflow_id)
        steps = self.query(
            "SELECT s.id, s.step_type, extract(epoch FROM s.enqueued_at), "
            "extract(epoch FROM s.finished_at) FROM step_runs s JOIN runs r ON r.id = s.run_id "
            "WHERE r.workflow_id = %s AND s.status = 'succeeded'", workflow_id)
        # A step is ready when its row is queued, or, for a run's first step (created
        # before t0, its message held back), when its message was released.
        # A parallel step's row stays open while its branches run: it is counted as a
        # step, but its "latency" would be the whole fan-out, so it is left out of p50/p99.
        lat = [float(done) - max(float(queued), self.released.get(sid, 0.0))
               for sid, kind, queued, done in steps if kind != "parallel"]
        end = max(float(r[1]) for r in runs)
        failed = sum(1 for r in runs if r[0] != "succeeded")
        return Result(len(runs), len(steps), end - t0, lat, failed)

    def engine_batch(self, workflow_id: uuid.UUID, count: int, procs: tuple[Proc, ...],
                     poll: float = 0.1) -> Result:
        creating = time.monotonic()
        held = self.create_runs(workflow_id, count)
        created_per_s = count / max(time.monotonic() - creating, 1e-9)
        t0 = self.release(held)
        wait_until(lambda: self.engine_finished(workflow_id)[0] >= count, PHASE_TIMEOUT,
                   f"{count} engine runs", poll=poll, procs=procs)
        result = self.engine_collect(workflow_id, t0)
        result.created_per_s = created_per_s
        return result

    def set_budgets(self, on: bool) -> None:
        """Give the bench workspace a budget and caps far above what it uses (every
        check runs, none refuses), or none at all."""
        from overture.billing import budgets
        from overture.billing.meters import RUNS_STARTED, STEPS
        from overture.platform.db import db, scoped_to

        wanted = budgets.Settings(Decimal(10**6), (budgets.Limit(RUNS_STARTED, Decimal(10**9)),
                                                  budgets.Limit(STEPS, Decimal(10**9)))) \
            if on else budgets.Settings()
        with self.app.app_context(), scoped_to(self.tenant_id):
            budgets.replace(wanted)
            db.session.commit()

    def budgeted_batch(self, workflow_id: uuid.UUID, procs: tuple[Proc, ...]) -> Result:
        """Case (a) again with budget checks on."""
        self.set_budgets(True)
        try:
            return self.engine_batch(workflow_id, SEQ_RUNS, procs)
        finally:
            self.set_budgets(False)

    def engine_solo(self, workflow_id: uuid.UUID, procs: tuple[Proc, ...]) -> Result:
        held = self.create_runs(workflow_id, SOLO_RUNS)
        t0 = time.time()
        for i, message in enumerate(held):
            self.release([message])
            wait_until(lambda n=i + 1: self.engine_finished(workflow_id)[0] >= n, 30,
                       "a solo engine run", poll=0.005, procs=procs)
        return self.engine_collect(workflow_id, t0)

    def run_engine(self, round_no: int) -> dict[str, Result]:
        seq = sequential(SEQ_STEPS)
        par = parallel(PAR_WIDTH)
        warm, _ = self.publish(seq, f"warm-up-{round_no}")
        seq_id, _ = self.publish(seq, f"sequential-{round_no}")
        budgeted_id, _ = self.publish(seq, f"sequential-budgets-{round_no}")
        solo_id, _ = self.publish(seq, f"sequential-solo-{round_no}")
        par_id, _ = self.publish(par, f"parallel-{round_no}")
        proc = self.engine_workers()
        procs = (proc,)
        out: dict[str, Result] = {}
        try:
            self.engine_batch(warm, 2 * PROCESSES * THREADS, procs)
            if round_no % 2:  # budget checks on before off in odd rounds: no order bias
                out["seq/engine+budgets"] = self.budgeted_batch(budgeted_id, procs)
            out["seq/engine"] = self.engine_batch(seq_id, SEQ_RUNS, procs)
            if not round_no % 2:
                out["seq/engine+budgets"] = self.budgeted_batch(budgeted_id, procs)
            out["par/engine"] = self.engine_batch(par_id, PAR_RUNS, procs)
            out["solo/engine"] = self.engine_solo(solo_id, procs)
        finally:
            self.stop(proc)
        return out


# --------------------------------------------------------------------------- main


def main() -> int:
    from bench.cost import engine_cost
    from bench.fair_baseline import run_fair
    from bench.langgraph_phase import run_langgraph
    from bench.n8n import run_n8n
    from bench.raw_phase import run_raw
    from bench.report import report
    from bench.scaleout import run_scaleout
    from bench.webhooks import run_webhooks

    phases = set((os.environ.get("BENCH_PHASES") or ALL_PHASES).split(","))
    unknown = phases - set(ALL_PHASES.split(","))
    if unknown:
        print(f"BENCH_PHASES: unknown {sorted(unknown)}; known: {ALL_PHASES}", file=sys.stderr)
        return 2
    bench = Bench()
    results: dict[str, Result] = {}
    hooks = None
    n8n: list[Any] = []
    load_before = os.getloadavg()
    started = time.monotonic()
    rounds = 0
    try:
        with phase("setup: database, migrations, tenant"):
            bench.setup()
        for round_no in range(ROUNDS):
            if round_no and time.monotonic() - started > ROUND_BUDGET * round_no:
                print(f"... round {round_no + 1} skipped: the time budget is spent",
                      file=sys.stderr)
                break
            rounds += 1
            if "raw" in phases:
                with phase(f"round {round_no + 1}: raw Dramatiq"):
                    keep_best(results, run_raw(bench, round_no))
            if "fair" in phases:
                with phase(f"round {round_no + 1}: fair engine-shaped baseline"):
                    keep_best(results, run_fair(bench, round_no))
            if "engine" in phases:
                if round_no == 0:
                    bench.cost = engine_cost(bench)
                    bench.set_budgets(True)
                    try:
                        bench.cost_budgets = engine_cost(bench)
                    finally:
                        bench.set_budgets(False)
                with phase(f"round {round_no + 1}: Overture engine"):
                    keep_best(results, bench.run_engine(round_no))
            if "langgraph" in phases:
                with phase(f"round {round_no + 1}: LangGraph + PostgresSaver"):
                    keep_best(results, run_langgraph(bench, round_no))
        if "scaleout" in phases:
            with phase("scale-out: 1, 2, 4 worker processes, two pools, scheduler running"):
                results.update(run_scaleout(bench))
        if "n8n" in phases:
            with phase("n8n side by side (webhook -> 3 Set nodes, SQLite, one process)"):
                n8n = run_n8n(bench)
        if "webhooks" in phases:
            with phase("webhooks through gunicorn"):
                rates = [(h.system, h.runs_per_s) for h in n8n if h.completed]
                hooks = run_webhooks(bench, rates or [("n8n's published", N8N_PUBLISHED)])
        print(report(bench, results, hooks, n8n, rounds, load_before, os.getloadavg()))
        print(f"(whole benchmark: {time.monotonic() - started:.0f}s)")
    finally:
        bench.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
