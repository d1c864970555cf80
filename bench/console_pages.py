"""Server time of the API calls behind the console's busiest pages (`python -m
bench.console_pages`), over a workspace with 10,000 runs and 100 workflows, in an
agency of 100 workspaces. Prints one table; see bench/README.md.

Each call is made N times in-process (Flask's test client, an API key, no network),
timed from request to response: that is the server's time, database included. The
baseline, measured in the same run, is the cheapest authenticated call (GET /tenant:
authentication, entering the tenant, one read); each page is shown as its p95 and as
a ratio of p95 to the baseline's, against the issue's budget of 200 ms.

It makes its own database and Redis namespace (bench/engine.py's `Bench`) and drops
both at the end. The rows are written as the superuser, outside any scope.
"""

from __future__ import annotations

import contextvars
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, insert

from bench.engine import Bench, phase

RUNS = int(os.environ.get("BENCH_CONSOLE_RUNS", "10000"))
WORKFLOWS = 100
WORKSPACES = int(os.environ.get("BENCH_CONSOLE_WORKSPACES", "100"))
OTHER_RUNS = 100  # in each of the agency's other workspaces
CALLS = int(os.environ.get("BENCH_CONSOLE_CALLS", "100"))  # timed calls per page
WARMUP = 5
BUDGET_MS = 200.0
CODES = ["http_5xx", "timeout", "agent_failed"]


def quantile(samples: list[float], q: float) -> float:
    """Milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


# --------------------------------------------------------------------------- data


def seed(bench: Bench) -> dict[str, Any]:
    """An agency with WORKSPACES workspaces; the first holds RUNS runs of WORKFLOWS
    workflows (2 step runs and 4 usage events each), the others OTHER_RUNS each."""
    from overture.platform.db import db, scoped_to
    from overture.tenants.access import Principal, access_to
    from overture.tenants.apikeys import create_key
    from overture.tenants.lifecycle import create_tenant
    from overture.tenants.models import Membership, TenantKind
    from overture.tenants.roles import Role
    from overture.tenants.users import create_user

    with bench.app.app_context():
        agency = create_tenant("Bench agency", TenantKind.AGENCY, None, slug="bench-agency")
        spaces = [create_tenant(f"Client {i}", TenantKind.WORKSPACE, None, parent=agency,
                                slug=f"client-{i}") for i in range(WORKSPACES)]
        owner = create_user("owner@bench.example.com", "a long bench password 1")
        with scoped_to(agency.id):
            db.session.add(Membership(user_id=owner.id, role=Role.OWNER))
            db.session.flush()
        db.session.commit()
        with scoped_to(agency.id, user_id=owner.id):
            _key, token = create_key(access_to(Principal(owner), agency), "bench", None)
            db.session.commit()
        ids = {"agency": agency.id, "workspace": spaces[0].id, "token": token,
               "others": [s.id for s in spaces[1:]]}
    engine = create_engine(bench.admin_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        ids.update(_rows(conn, ids["workspace"], RUNS, WORKFLOWS))
        for other in ids["others"]:
            _rows(conn, other, OTHER_RUNS, 2)
    engine.dispose()
    return ids


def _rows(conn: Any, tenant_id: uuid.UUID, runs: int, workflows: int) -> dict[str, Any]:
    from overture.billing.usage import UsageEvent
    from overture.orchestration.agents.models import Agent
    from overture.orchestration.models import Run, StepRun, Workflow, WorkflowVersion

    now = datetime.now(UTC)
    rand = random.Random(str(tenant_id))
    agent_id = uuid.uuid4()
    conn.execute(insert(Agent.__table__), [{"id": agent_id, "tenant_id": tenant_id,
                                            "name": "triage", "description": ""}])
    flows = [{"id": uuid.uuid4(), "tenant_id": tenant_id, "name": f"workflow {i}",
              "description": "", "draft": {}, "webhook_token": uuid.uuid4().hex}
             for i in range(workflows)]
    conn.execute(insert(Workflow.__table__), flows)
    definition = {"steps": [{"id": "triage", "type": "agent", "agent": "triage", "next": "act"},
                            {"id": "act", "type": "transform", "output": 1}]}
    versions = [{"id": uuid.uuid4(), "tenant_id": tenant_id, "workflow_id": f["id"],
                 "number": 1, "definition": definition, "pins": {}} for f in flows]
    conn.execute(insert(WorkflowVersion.__table__), versions)
    run_rows, step_rows, usage_rows = [], [], []
    for i in range(runs):
        flow = i % workflows
        created = now - timedelta(seconds=rand.uniform(0, 30 * 86400))
        status = rand.choices(["succeeded", "failed", "running", "cancelled"],
                              [80, 10, 5, 5])[0]
        error = {"code": rand.choice(CODES), "step": "act", "message": f"run {i} failed"} \
            if status == "failed" else None
        done = created + timedelta(seconds=rand.uniform(0.1, 5))
        run_id = uuid.uuid4()
        run_rows.append({"id": run_id, "tenant_id": tenant_id, "workflow_id": flows[flow]["id"],
                         "version_id": versions[flow]["id"], "status": status,
                         "trigger": "api", "input": {"n": i}, "error": error,
                         "created_at": created, "started_at": created,
                         "finished_at": None if status == "running" else done,
                         "tokens": 120, "cost": Decimal("0.0012")})
        for step_id, step_type in (("triage", "agent"), ("act", "transform")):
            failed = status == "failed" and step_id == "act"
            step_rows.append({"tenant_id": tenant_id, "run_id": run_id, "step_id": step_id,
                              "step_type": step_type, "created_at": created,
                              "status": "failed" if failed else "succeeded",
                              "started_at": created, "finished_at": done, "error": None,
                              "output": {"status": "ok", "confidence": rand.random()}})
        for metric, quantity in (("agent_invocations", 1), ("llm_input_tokens", 100),
                                 ("llm_output_tokens", 20), ("llm_cost", "0.0012")):
            usage_rows.append({"tenant_id": tenant_id, "metric": metric,
                               "quantity": Decimal(str(quantity)), "run_id": run_id,
                               "workflow_id": flows[flow]["id"], "step_id": "triage",
                               "agent_id": agent_id, "created_at": done})
    conn.execute(insert(Run.__table__), run_rows)
    conn.execute(insert(StepRun.__table__), step_rows)
    conn.execute(insert(UsageEvent.__table__), usage_rows)
    return {"workflow_id": flows[0]["id"], "agent_id": agent_id}


# --------------------------------------------------------------------------- timing


def timed(call: Callable[[], Any]) -> list[float]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(CALLS):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return samples


def measure(bench: Bench, ids: dict[str, Any]) -> list[tuple[str, float, float]]:
    client = bench.app.test_client()
    auth = {"Authorization": f"Bearer {ids['token']}"}
    space = {**auth, "X-Overture-Tenant": str(ids["workspace"])}
    agency = {**auth, "X-Overture-Tenant": str(ids["agency"])}
    month = {"since": (datetime.now(UTC) - timedelta(days=30)).isoformat()}

    def get(path: str, headers: dict[str, str], **query: Any) -> Callable[[], Any]:
        def call() -> None:
            # An empty context per request, as a server gives each (no app context,
            # `g` or scope left over from the previous one).
            response = contextvars.Context().run(client.get, "/api/v1" + path,
                                                 headers=headers, query_string=query)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.get_data()!r}")
        return call

    pages = [
        ("baseline: GET /tenant", get("/tenant", space)),
        (f"agency home: GET /overview ({WORKSPACES} workspaces)",
         get("/overview", agency, limit=200)),
        ("runs: GET /runs (first page of 50)", get("/runs", space)),
        ("runs of a workflow, failed: GET /runs?workflow_id&status",
         get("/runs", space, workflow_id=str(ids["workflow_id"]), status="failed")),
        ("failures: GET /failures (last 30 days)", get("/failures", space, **month)),
        ("workflow page: GET /workflows/{id}/performance (30 days)",
         get(f"/workflows/{ids['workflow_id']}/performance", space, **month)),
        ("agent page: GET /agents/{id}/performance (30 days)",
         get(f"/agents/{ids['agent_id']}/performance", space, **month)),
    ]
    results = []
    for label, call in pages:
        samples = timed(call)
        results.append((label, quantile(samples, 0.5), quantile(samples, 0.95)))
    return results


def report(results: list[tuple[str, float, float]]) -> str:
    baseline = results[0][2]
    head = (f"{'API call behind the page':62} {'p50 ms':>7} {'p95 ms':>7} {'p95 x base':>10}"
            f"  p95 within {BUDGET_MS:.0f} ms")
    lines = ["", f"Console pages: server time, {CALLS} calls each after {WARMUP} warm-up, "
             f"workspace of {RUNS} runs / {WORKFLOWS} workflows, agency of {WORKSPACES} "
             "workspaces", f"load average (1 min) now: {os.getloadavg()[0]:.2f} (above ~0.5 "
             "something else shared these cores: the ratios suffer less than the times)",
             head, "-" * len(head)]
    for label, p50, p95 in results:
        verdict = "" if label.startswith("baseline") else \
            ("MET" if p95 <= BUDGET_MS else "NOT MET")
        lines.append(f"{label:62} {p50:7.1f} {p95:7.1f} {p95 / baseline:10.1f}  {verdict}")
    return "\n".join(lines)


def main() -> int:
    bench = Bench()
    bench.env.update({"OVERTURE_ENV": "test", "OVERTURE_API_RATE_LIMIT": "1000000 per minute"})
    try:
        with phase("setup: database, migrations"):
            bench.setup()
        with phase(f"seed: {WORKSPACES} workspaces, {RUNS} + {OTHER_RUNS} x "
                   f"{WORKSPACES - 1} runs"):
            ids = seed(bench)
            bench.admin("ANALYZE", dbname=bench.dbname)
        with phase("measure"):
            results = measure(bench, ids)
        print(report(results))
    finally:
        bench.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
