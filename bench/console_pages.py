"""Server time of the console's pages (`python -m bench.console_pages`), and of the
API calls behind them, over a workspace with 10,000 runs and 100 workflows in an
agency of 100 workspaces (bench/console_seed.py). Prints one table; see
bench/README.md.

Each page is asked for N times in-process (Flask's test client, no network) by a
person signed in through the login form (a session cookie, as a browser holds it);
each API call with an API key. Timed from request to response: that is the server's
time, database, template rendering and session included. The baseline, measured in
the same run, is the cheapest authenticated call (GET /api/v1/tenant: authentication,
entering the tenant, one read); each row shows p50, p95 and p95 as a multiple of the
baseline's, against the issue's budget of 200 ms for p95.

It makes its own database and Redis namespace (bench/engine.py's `Bench`) and drops
both at the end.
"""

from __future__ import annotations

import contextvars
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.console_seed import EMAIL, OTHER_RUNS, PASSWORD, RUNS, WORKFLOWS, WORKSPACES, seed
from bench.engine import Bench, phase
from overture.embedded import settle_heap

CALLS = int(os.environ.get("BENCH_CONSOLE_CALLS", "100"))  # timed requests per row
WARMUP = 3
BUDGET_MS = 200.0
ONLY = os.environ.get("BENCH_CONSOLE_ONLY", "")  # a substring of the rows to measure
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Row:
    label: str
    p50: float
    p95: float
    kind: str  # "baseline" | "page" | "api"
    statements: int  # SQL statements one request sent through SQLAlchemy


def quantile(samples: list[float], q: float) -> float:
    """Milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def timed(calls: list[Callable[[], Any]]) -> list[list[float]]:
    """Each call's samples, taken in rounds: every round asks for each page once, so a
    burst of work from a neighbour on these cores falls on all pages alike instead of
    on the one that happened to be measured then."""
    for _ in range(WARMUP):
        for call in calls:
            call()
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(CALLS):
        for call, taken in zip(calls, samples, strict=True):
            began = time.perf_counter()
            call()
            taken.append(time.perf_counter() - began)
    return samples


def isolated(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn` in an empty context, as a server runs each request (no app context, `g` or
    scope left over from the previous one)."""
    return contextvars.Context().run(fn, *args, **kwargs)


# --------------------------------------------------------------------------- clients


def signed_in(bench: Bench, tenant_id: Any) -> Any:
    """A test client signed in through the form, acting in `tenant_id` (chosen with
    the console's workspace switcher, kept in the server-side session)."""
    client = bench.app.test_client()
    login = isolated(client.get, "/login").get_data(as_text=True)
    token = CSRF_RE.search(login)
    assert token, "the login page carries a CSRF token"
    done = isolated(client.post, "/login", data={"email": EMAIL, "password": PASSWORD,
                                                 "csrf_token": token.group(1)})
    assert done.status_code == 302, done.get_data(as_text=True)[:500]
    home = isolated(client.get, "/", headers=HTML).get_data(as_text=True)
    token = CSRF_RE.search(home)
    assert token, "the signed-in home carries a CSRF token"
    switched = isolated(client.post, "/switch", headers=HTML,
                        data={"tenant": str(tenant_id), "csrf_token": token.group(1)})
    assert switched.status_code == 302, switched.get_data(as_text=True)[:500]
    return client


def page(client: Any, path: str, marker: str, **query: Any) -> Callable[[], None]:
    def call() -> None:
        response = isolated(client.get, path, headers=HTML, query_string=query)
        body = response.get_data(as_text=True)
        if response.status_code != 200 or marker not in body:
            raise RuntimeError(f"{path}: {response.status_code}, {marker!r} "
                               f"{'found' if marker in body else 'missing'}: {body[:300]!r}")
    return call


def api(client: Any, path: str, headers: dict[str, str], **query: Any) -> Callable[[], None]:
    def call() -> None:
        response = isolated(client.get, "/api/v1" + path, headers=headers, query_string=query)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.get_data()!r}")
    return call


# --------------------------------------------------------------------------- the rows


def rows(bench: Bench, ids: dict[str, Any]) -> list[tuple[str, str, Callable[[], None]]]:
    key = bench.app.test_client()
    auth = {"Authorization": f"Bearer {ids['token']}"}
    space_h = {**auth, "X-Overture-Tenant": str(ids["workspace"])}
    agency_h = {**auth, "X-Overture-Tenant": str(ids["agency"])}
    month = {"since": (datetime.now(UTC) - timedelta(days=30)).isoformat()}
    agency, space = signed_in(bench, ids["agency"]), signed_in(bench, ids["workspace"])
    flow, agent, run = ids["workflow_id"], ids["agent_id"], ids["failed_run_id"]
    return [
        ("baseline", "baseline: GET /api/v1/tenant", api(key, "/tenant", space_h)),
        ("page", f"agency home: / ({WORKSPACES} workspaces)",
         page(agency, "/", "Client 99" if WORKSPACES == 100 else "Client 1")),
        ("page", "workspace home: /", page(space, "/", "Recent runs")),
        ("page", "workflows: /workflows", page(space, "/workflows", "workflow 99")),
        ("page", "a workflow: /workflows/{id} (30 days)",
         page(space, f"/workflows/{flow}", "workflow 0", days=30)),
        ("page", "runs: /runs (first page of 50)", page(space, "/runs", "Runs")),
        ("page", "runs, filtered: /runs?workflow&status=failed",
         page(space, "/runs", "Runs", workflow=str(flow), status="failed")),
        ("page", "run viewer: /runs/{id}", page(space, f"/runs/{run}", "triage")),
        ("page", "failures: /failures (30 days)", page(space, "/failures", "Failures", days=30)),
        ("page", "approvals: /approvals", page(space, "/approvals", "Refund")),
        ("page", "agents: /agents", page(space, "/agents", "triage")),
        ("page", "an agent: /agents/{id} (30 days)",
         page(space, f"/agents/{agent}", "triage", days=30)),
        ("page", "connections: /connections", page(space, "/connections", "Inbox")),
        ("page", "triggers: /triggers", page(space, "/triggers", "new_email")),
        ("page", "audit: /audit (first page of 50)", page(space, "/audit", "Audit log")),
        ("page", "templates: /templates (agency)", page(agency, "/templates", "Template 4")),
        ("api", f"GET /overview ({WORKSPACES} workspaces)",
         api(key, "/overview", agency_h, limit=200)),
        ("api", "GET /runs (first page of 50)", api(key, "/runs", space_h)),
        ("api", "GET /runs?workflow_id&status=failed",
         api(key, "/runs", space_h, workflow_id=str(flow), status="failed")),
        ("api", "GET /runs/{id}", api(key, f"/runs/{run}", space_h)),
        ("api", "GET /failures (30 days)", api(key, "/failures", space_h, **month)),
        ("api", "GET /workflows/{id}/performance (30 days)",
         api(key, f"/workflows/{flow}/performance", space_h, **month)),
        ("api", "GET /agents/{id}/performance (30 days)",
         api(key, f"/agents/{agent}/performance", space_h, **month)),
    ]


def counted(bench: Bench, call: Callable[[], None]) -> int:
    """SQL statements one request sends through SQLAlchemy (the agency overview's
    pipelined batch counts as none): not timed, so not moved by a busy machine."""
    from sqlalchemy import event

    from overture.platform.db import db

    with bench.app.app_context():
        engine = db.engine
    seen = [0]

    def count(*_: Any) -> None:
        seen[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return seen[0]


def measure(bench: Bench, ids: dict[str, Any]) -> list[Row]:
    chosen = [(kind, label, call) for kind, label, call in rows(bench, ids)
              if not ONLY or kind == "baseline" or ONLY in label]
    samples = timed([call for _, _, call in chosen])
    return [Row(label, quantile(taken, 0.5), quantile(taken, 0.95), kind, counted(bench, call))
            for (kind, label, call), taken in zip(chosen, samples, strict=True)]


def report(results: list[Row], load_before: float) -> str:
    baseline = results[0].p95
    head = (f"{'page (server-rendered HTML) / API call':56} {'SQL':>4} {'p50 ms':>7} "
            f"{'p95 ms':>7} {'p95 x base':>10}  p95 within {BUDGET_MS:.0f} ms")
    lines = ["", f"Console pages: server time, {CALLS} requests each (in rounds of one request "
             f"per row) after {WARMUP} warm-up rounds, "
             f"workspace of {RUNS} runs / {WORKFLOWS} workflows, agency of {WORKSPACES} "
             f"workspaces ({OTHER_RUNS} runs in each other one)",
             f"load average (1 min): {load_before:.2f} before measuring, "
             f"{os.getloadavg()[0]:.2f} after (above ~1 something else shared these cores: "
             "the ratios suffer less than the times)", head, "-" * len(head)]
    for kind in ("baseline", "page", "api"):
        if kind == "api":
            lines.append("API calls behind the pages (API key):")
        for r in (r for r in results if r.kind == kind):
            verdict = "" if kind == "baseline" else ("MET" if r.p95 <= BUDGET_MS else "NOT MET")
            lines.append(f"{r.label:56} {r.statements:4} {r.p50:7.1f} {r.p95:7.1f} "
                         f"{r.p95 / baseline:10.1f}  {verdict}")
    over = [r.label for r in results if r.kind != "baseline" and r.p95 > BUDGET_MS]
    lines.append(f"over budget: {', '.join(over)}" if over else
                 f"every page and call within {BUDGET_MS:.0f} ms at p95")
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
            bench.admin("VACUUM ANALYZE", dbname=bench.dbname)
        settle_heap()  # as `overture web` does once its app is loaded
        load_before = os.getloadavg()[0]
        with phase("measure"):
            results = measure(bench, ids)
        print(report(results, load_before))
    finally:
        bench.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
