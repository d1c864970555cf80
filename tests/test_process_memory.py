"""No Overture process holds more than 200 MiB (issue 17): a real `overture web`
(gunicorn, 2 workers) and `overture worker` (2 Dramatiq processes), after runs
started through webhooks and the API pages read. Each process's resident memory is
read from /proc/<pid>/smaps_rollup; the proportional share (PSS, the pages it shares
with its siblings counted once) is printed beside it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from overture.orchestration import workflows
from overture.platform.db import db, scoped_to
from tests.engine_support import WorkerProcess, publish, wait_for
from tests.fault_support import WebProcess
from tests.test_distributed_mode import descendants

LIMIT_MIB = 200
STEPS = {"steps": [
    {"id": "shape", "type": "transform", "output": {"n": "{{ input.n }}"}, "next": "check"},
    {"id": "check", "type": "condition", "if": "input.n > 2", "then": "big", "else": "small"},
    {"id": "big", "type": "transform", "output": {"size": "big"}},
    {"id": "small", "type": "transform", "output": {"size": "small"}}]}


def memory_of(pid: int) -> dict[str, float]:
    """Rss and Pss of a process, in MiB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            found[name] = int(rest.split()[0]) / 1024
    return found


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        return json.loads(response.read())


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        return response.status


def test_no_web_or_worker_process_holds_more_than_200_mib(app_ctx, world, settings):
    a = world.tenants["a"].id
    flow = publish(a, STEPS, name="sizes")
    with scoped_to(a):
        token = workflows.get_workflow(flow).webhook_token
        db.session.rollback()
    web = WebProcess(settings, workers=2)
    worker = WorkerProcess(settings, processes=2, threads=4)
    try:
        web.start()
        worker.start()
        runs = [_post(f"{web.base}/hooks/{a}/{token}", {"n": n})["run_id"] for n in range(12)]
        for run_id in runs:
            assert wait_for(a, run_id, timeout=120).status == "succeeded"
        for path in ("/healthz", "/login", "/api/v1/openapi.json", "/api/v1/docs"):
            assert _get(web.base + path) == 200, path
        sizes: dict[str, dict[str, float]] = {}
        for name, proc in (("web", web.proc), ("worker", worker.proc)):
            assert proc is not None
            tree = {proc.pid: name, **descendants(proc.pid)}
            for pid, command in tree.items():
                sizes[f"{name} {pid} {command[:60]}"] = memory_of(pid)
    finally:
        web.stop()
        worker.stop()
    report = "\n".join(f"{label:80} RSS {m['Rss']:6.1f} MiB  PSS {m['Pss']:6.1f} MiB"
                       for label, m in sizes.items())
    print("\n" + report)
    over = {label: m["Rss"] for label, m in sizes.items() if m["Rss"] > LIMIT_MIB}
    assert over == {}, report
