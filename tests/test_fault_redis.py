"""Redis goes away under load (real processes): a private `redis-server`, stopped while
`overture web`, `overture worker` and `overture scheduler` run on it and the API takes
reads, writes, run starts and sign-ins. Every answer is the normal one; runs started
during the outage finish once Redis is back, with no process restarted; the outage is
logged once and shown by a metric."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpx2 as httpx  # the HTTP client the package installs (httpx 0.x is not a dependency)
import pytest
import redis
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from overture.platform import ratelimit_storage
from overture.platform.metrics import REGISTRY
from tests.conftest import pg_settings
from tests.engine_support import ROOT, PrivateRedis, WorkerProcess, free_port, settings_env
from tests.support import CSRF_RE, PASSWORD

FINISHED = ("succeeded", "failed", "cancelled", "timed_out")
DEFINITION = {"steps": [
    {"id": "first", "type": "transform", "output": "{{ input.n }}", "next": "second"},
    {"id": "second", "type": "transform", "output": "{{ steps.first }}"},
]}
RECOVERED = {"ratelimit.storage.recovered", "broker.recovered"}
EXPECTED = {"read": 200, "write": 201, "start": 202, "sign-in": 302, "me": 200}


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.stop()


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def outage_events(records: list[logging.LogRecord]) -> list[str]:
    return [r.msg["event"] for r in records
            if isinstance(r.msg, dict) and r.msg.get("event", "").startswith("ratelimit.storage")]


def test_rate_limit_counters_fall_back_to_memory_and_return_to_redis(
        app, private_redis, monkeypatch, caplog):
    monkeypatch.setattr(ratelimit_storage, "RETRY_EVERY", 0.0)  # try Redis on every call
    # What a request's increments remember, for this test only (count_for_this_request)
    monkeypatch.setattr(ratelimit_storage, "_counted", ContextVar("counted", default=None))
    strategy = FixedWindowRateLimiter(storage_from_string(
        ratelimit_storage.storage_uri(private_redis.url)))
    three = parse("3 per minute")
    errors = sample("overture_ratelimit_storage_errors_total")
    assert strategy.hit(three, "before")
    assert redis.Redis.from_url(private_redis.url).keys("LIMITS:*before*")
    private_redis.stop()
    caplog.set_level(logging.WARNING)
    outcomes = [strategy.hit(three, "during") for _ in range(4)]
    assert outcomes == [True, True, True, False]  # still limited, per process
    assert sample("overture_ratelimit_fallback_active") == 1
    assert sample("overture_ratelimit_storage_errors_total") == errors + 4
    # A request's increment tells its count and window end, from memory as from Redis.
    ratelimit_storage.count_for_this_request()
    assert not strategy.hit(three, "during")
    count, ends = ratelimit_storage.counted(three.key_for("during"))
    assert count == 5 and 0 < ends - time.time() <= 60
    private_redis.start()
    assert strategy.hit(three, "after")
    count, ends = ratelimit_storage.counted(three.key_for("after"))
    assert count == 1 and 0 < ends - time.time() <= 60
    assert redis.Redis.from_url(private_redis.url).keys("LIMITS:*after*")
    assert sample("overture_ratelimit_fallback_active") == 0
    assert outage_events(caplog.records) == ["ratelimit.storage.unreachable",
                                             "ratelimit.storage.recovered"]


# --------------------------------------------------------------------------- real processes


@contextmanager
def overture(command: list[str], env: dict[str, str], log: Path):
    """`overture <command>` as a process group of its own, ended with the test."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "overture.cli", *command], env=env,
                                cwd=ROOT, start_new_session=True, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def wait_until_serving(http: httpx.Client, web: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert web.poll() is None, "overture web exited"
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "overture web did not start"
        time.sleep(0.1)


def logged(log: Path) -> list[str]:
    events = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line).get("event", ""))
        except ValueError:
            continue  # gunicorn's own lines
    return events


class Traffic:
    """An API client's reads, writes and run starts, every answer kept."""

    def __init__(self, http: httpx.Client, workflow_id: str) -> None:
        self.http, self.workflow_id = http, workflow_id
        self.answers: list[tuple[str, str, httpx.Response]] = []
        self.runs: dict[str, tuple[str, int]] = {}

    def keep(self, phase: str, what: str, response: httpx.Response) -> httpx.Response:
        self.answers.append((phase, what, response))
        return response

    def round(self, phase: str) -> None:
        n = len(self.runs)
        self.keep(phase, "read", self.http.get("/api/v1/runs", params={"limit": 5}))
        self.keep(phase, "write", self.http.post("/api/v1/workflows", json={
            "name": f"written {phase} {n}", "definition": DEFINITION}))
        started = self.keep(phase, "start", self.http.post(
            f"/api/v1/workflows/{self.workflow_id}/runs", json={"input": {"n": n}}))
        if started.status_code == 202:
            self.runs[started.json()["id"]] = (phase, n)

    def sign_in(self, phase: str, base_url: str, email: str) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as browser:
            token = CSRF_RE.search(browser.get("/login").text)
            assert token
            self.keep(phase, "sign-in", browser.post("/login", data={
                "email": email, "password": PASSWORD, "csrf_token": token.group(1)}))
            self.keep(phase, "me", browser.get("/api/v1/me"))

    def unexpected(self) -> list[tuple[str, str, int, str]]:
        return [(phase, what, r.status_code, r.text[:300]) for phase, what, r in self.answers
                if r.status_code != EXPECTED[what]]

    def finished(self, timeout: float) -> dict[str, dict[str, Any]]:
        deadline, runs = time.monotonic() + timeout, {}
        for run_id in self.runs:
            while True:
                run = self.http.get(f"/api/v1/runs/{run_id}").json()
                if run["status"] in FINISHED:
                    runs[run_id] = run
                    break
                assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
                time.sleep(0.1)
        return runs


def test_the_api_and_runs_ride_out_a_redis_outage(world, database, private_redis, tmp_path):
    port = free_port()
    own = pg_settings(database, REDIS_URL=private_redis.url)
    env = settings_env(own, HOST="127.0.0.1", PORT=str(port),
                       OVERTURE_API_RATE_LIMIT="100000 per minute",
                       OVERTURE_LOGIN_RATE_LIMIT="100000 per minute")
    web_log = tmp_path / "web.log"
    base_url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base_url, timeout=30,
                        headers={"Authorization": f"Bearer {world.keys['a_admin'][1]}"})
    worker = WorkerProcess(own, processes=1, threads=4).start()
    try:
        with overture(["web", "--workers", "1"], env, web_log) as web, \
                overture(["scheduler", "--interval", "0.5"], settings_env(own),
                         tmp_path / "scheduler.log"):
            wait_until_serving(http, web)
            workflow = http.post("/api/v1/workflows", json={"name": "through the outage",
                                                            "definition": DEFINITION}).json()
            assert http.post(f"/api/v1/workflows/{workflow['id']}/publish").status_code == 201
            traffic = Traffic(http, workflow["id"])
            for _ in range(3):
                traffic.round("before")
            private_redis.stop()
            for _ in range(4):
                traffic.round("during")
            traffic.sign_in("during", base_url, world.users["a_viewer"].email)
            private_redis.start()
            deadline = time.monotonic() + 30
            traffic.round("after")
            while not RECOVERED.issubset(logged(web_log)) and time.monotonic() < deadline:
                traffic.round("after")  # the web process finds Redis back by itself
            runs = traffic.finished(timeout=60)
    finally:
        worker.kill()
        http.close()
    assert traffic.unexpected() == []
    during = [run_id for run_id, (phase, _) in traffic.runs.items() if phase == "during"]
    assert len(during) == 4
    assert {run_id: (run["status"], run["output"]) for run_id, run in runs.items()} == {
        run_id: ("succeeded", n) for run_id, (_, n) in traffic.runs.items()}
    events = logged(web_log)
    for event in ("ratelimit.storage.unreachable", "ratelimit.storage.recovered",
                  "broker.unreachable", "broker.recovered"):
        assert events.count(event) == 1, (event, events)  # once per outage, not per request
