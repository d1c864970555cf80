"""`overture up --distributed`: web, worker and scheduler as separate processes on the
suite's PostgreSQL and Redis, a run started through the HTTP API succeeding, and Ctrl-C
stopping every process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.engine_api_support import publish_via_api
from tests.engine_support import ROOT, free_port, settings_env
from tests.support import as_key

ECHO = {"steps": [{"id": "echo", "type": "transform",
                   "output": {"hello": "{{ input.name }}"}}]}


def http(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def wait_until_serving(base: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            assert proc.poll() is None, "overture up --distributed exited"
            assert time.monotonic() < deadline, "web did not answer /healthz"
            time.sleep(0.2)


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid`, with its command line, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = _cmdline(child)
                frontier.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_distributed_mode_runs_a_workflow_and_ctrl_c_stops_every_process(
        app, world, settings, tmp_path):
    workflow = publish_via_api(as_key(app, world, "a_admin"), ECHO)
    token = world.keys["a_admin"][1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    output = tmp_path / "up.log"
    with output.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "overture.cli", "up", "--distributed", "--web-workers", "1",
             "--worker-processes", "1"],
            env=settings_env(settings, HOST="127.0.0.1", PORT=str(port),
                             OVERTURE_PUBLIC_URL=base,
                             OVERTURE_WORKER_METRICS_PORT=str(free_port()),
                             OVERTURE_SCHEDULER_METRICS_PORT=str(free_port())),
            cwd=ROOT, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(base, up)
        status, run = http("POST", f"{base}/api/v1/workflows/{workflow['id']}/runs", token,
                           {"input": {"name": "distributed"}})
        assert status == 202, run
        deadline = time.monotonic() + 60
        while run["status"] not in ("succeeded", "failed", "cancelled", "timed_out"):
            assert time.monotonic() < deadline, f"run still {run['status']}"
            time.sleep(0.1)
            status, run = http("GET", f"{base}/api/v1/runs/{run['id']}", token)
        assert run["status"] == "succeeded"
        assert run["output"] == {"hello": "distributed"}

        children = descendants(up.pid)
        for command in ("overture.cli web", "dramatiq overture.worker_main",
                        "overture.cli scheduler"):
            assert any(command in line for line in children.values()), (command, children)
        up.send_signal(signal.SIGINT)  # what Ctrl-C in its terminal sends it
        assert up.wait(timeout=60) == 0
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    assert [pid for pid in children if running(pid)] == []
    printed = output.read_text()
    assert f"Overture (distributed) at {base}/" in printed
    assert "no demo seeded" in printed  # the world's tenants were there already
    assert "stopped web, worker and scheduler" in printed


def _refused(settings: Any, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "overture.cli", "up", "--distributed"],
                          env=settings_env(settings, **env), cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


def test_distributed_mode_refuses_sqlite(settings, tmp_path):
    result = _refused(settings, DATABASE_URL="", DATABASE_OWNER_URL="",
                      OVERTURE_INSTANCE_PATH=str(tmp_path))
    assert result.returncode == 1
    assert "overture up --distributed needs PostgreSQL: set DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_distributed_mode_refuses_without_redis(settings):
    result = _refused(settings, REDIS_URL="")
    assert result.returncode == 1
    assert "needs Redis for the queue between web and workers: set REDIS_URL" in result.stderr


def test_when_one_process_dies_the_others_are_stopped_and_the_exit_names_it(settings):
    import socket

    with socket.socket() as taken:  # web cannot bind its port: gunicorn exits at start
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = subprocess.Popen(
            [sys.executable, "-m", "overture.cli", "up", "--distributed", "--no-demo",
             "--web-workers", "1", "--worker-processes", "1"],
            env=settings_env(settings, HOST="127.0.0.1", PORT=str(port),
                             OVERTURE_WORKER_METRICS_PORT=str(free_port()),
                             OVERTURE_SCHEDULER_METRICS_PORT=str(free_port())),
            cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            out, err = up.communicate(timeout=180)
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    assert up.returncode == 1
    assert re.search(r"web exited with code \d+; stopped the others", err), err
    started = dict(re.findall(r"^  (web|worker|scheduler) +pid (\d+):", out, re.MULTILINE))
    assert set(started) == {"web", "worker", "scheduler"}
    assert not [name for name, pid in started.items() if running(int(pid))]
