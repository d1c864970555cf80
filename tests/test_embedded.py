"""`make up` on a fresh clone: it installs itself, serves on $PORT, and the demo logins
work. Doubles as the smoke run of the embedded mode (SQLite, in-process broker)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 300  # creating the virtualenv and installing is most of it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_clone(target: Path) -> None:
    """The files a clone would have: tracked plus new untracked ones, nothing ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / rel)


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""

    def request(self, path: str, data: dict | None = None, json_body: object = None,
                headers: dict | None = None) -> tuple[int, str]:
        body, hdrs = None, dict(headers or {})
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
            hdrs["X-CSRFToken"] = self.csrf
        req = urllib.request.Request(self.base + path, data=body, headers=hdrs)
        try:
            with self.opener.open(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def login(self, email: str, password: str) -> int:
        _, page = self.request("/login")
        self.csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, page = self.request("/login", data={"email": email, "password": password,
                                                    "csrf_token": self.csrf})
        # Signing in issues a new CSRF token: the home page it lands on carries it.
        signed_in = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if status == 200 and signed_in:
            self.csrf = signed_in.group(1)
        return status


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    clone = tmp_path_factory.mktemp("clone")
    fresh_clone(clone)
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "SECRET_KEY",
                        "OVERTURE_ENV", "VIRTUAL_ENV", "OVERTURE_INSTANCE_PATH"}}
    env["PORT"] = str(port)
    log = open(clone / "up.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(["make", "up"], cwd=clone, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("make up exited:\n" + (clone / "up.log").read_text()[-3000:])
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("make up did not answer:\n" + (clone / "up.log").read_text()[-3000:])
        yield base, clone
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_embedded_make_up_serves_and_prints_demo_logins(embedded):
    base, clone = embedded
    assert urllib.request.urlopen(base + "/readyz", timeout=5).status == 200
    output = (clone / "up.log").read_text()
    assert base in output
    assert "owner@acme.example.com" in output
    assert (clone / "instance" / "overture.db").exists()  # SQLite, no DATABASE_URL


def test_embedded_demo_logins_work(embedded):
    base, _ = embedded
    from overture.demo import DEMO_PASSWORD, DEMO_USERS, PLATFORM_ADMIN_EMAIL

    for email in [PLATFORM_ADMIN_EMAIL, *(u[0] for u in DEMO_USERS)]:
        browser = Browser(base)
        if email == "customer@acme.example.com":  # a portal user: the console is not theirs
            assert browser.login(email, DEMO_PASSWORD) == 403
            status, body = browser.request("/portal/acme-support/")
            assert status == 200 and "Contact support" in body and "FAQ assistant" in body
            continue
        assert browser.login(email, DEMO_PASSWORD) == 200, email  # redirected home
        status, body = browser.request("/api/v1/me")
        assert status == 200 and json.loads(body)["user"]["email"] == email
    assert Browser(base).login("owner@acme.example.com", "wrong password") == 401


def test_embedded_sqlite_smoke_agency_manages_workspaces(embedded):
    base, _ = embedded
    from overture.demo import DEMO_PASSWORD

    agency = Browser(base)
    agency.login("owner@northwind.example.com", DEMO_PASSWORD)
    status, body = agency.request("/api/v1/tenants")
    assert status == 200
    names = {t["name"] for t in json.loads(body)["items"]}
    assert {"Acme Support", "Globex Sales"} <= names
    status, body = agency.request("/api/v1/tenants", json_body={"name": "Initech Helpdesk"})
    assert status == 201, body
    acme = Browser(base)
    acme.login("owner@acme.example.com", DEMO_PASSWORD)
    status, body = acme.request("/api/v1/members")
    assert status == 200
    emails = {m["user"]["email"] for m in json.loads(body)["items"]}
    assert "viewer@acme.example.com" in emails and "owner@globex.example.com" not in emails


def _wait(browser: Browser, path: str, done, timeout: float = 120.0):
    """GET `path` until `done(body)` holds; the body then."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = browser.request(path)
        assert status == 200, body
        found = json.loads(body)
        if done(found):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not get there in {timeout}s: {body[:2000]}")
        time.sleep(0.5)


def test_embedded_demo_support_triage_runs_offline_to_the_refund_approval(embedded):
    """The seeded support demo in embedded mode (SQLite, in-process worker): a refund
    above the limit runs offline to the admin's approval, then sends the reply to the
    demo outbox."""
    base, _ = embedded
    from overture.demo import DEMO_PASSWORD
    from overture.demo_support import REFUND_LIMIT, SAMPLE_TICKETS, WORKFLOW_NAME

    operator, admin = Browser(base), Browser(base)
    operator.login("operator@acme.example.com", DEMO_PASSWORD)
    admin.login("admin@acme.example.com", DEMO_PASSWORD)
    _, body = operator.request("/api/v1/workflows")
    (workflow,) = [w for w in json.loads(body)["items"] if w["name"] == WORKFLOW_NAME]
    status, body = operator.request(f"/api/v1/workflows/{workflow['id']}/runs",
                                    json_body={"input": SAMPLE_TICKETS["refund_above_limit"]})
    assert status == 202, body
    run_id = json.loads(body)["id"]

    pending = _wait(admin, "/api/v1/approvals?status=pending",
                    lambda page: any(a["run_id"] == run_id for a in page["items"]))
    (approval,) = [a for a in pending["items"] if a["run_id"] == run_id]
    assert (approval["data"]["refund_amount"], approval["data"]["refund_limit"]) == (
        348, REFUND_LIMIT)
    assert "We are refunding $348" in approval["data"]["reply"]
    _, body = operator.request(f"/api/v1/runs/{run_id}")
    run = json.loads(body)
    assert run["status"] == "running"
    steps = {s["step_id"]: s for s in run["steps"]}
    assert steps["approve_refund"]["status"] == "waiting"
    assert steps["triage"]["output"]["route"] == "billing"
    assert steps["triage"]["output"]["agent"]["provider"] == "local"
    assert steps["write"]["output"]["approved"] is True

    status, body = admin.request(f"/api/v1/approvals/{approval['id']}/decision",
                                 json_body={"decision": "approve"})
    assert status == 200, body
    run = _wait(operator, f"/api/v1/runs/{run_id}",
                lambda r: r["status"] not in ("queued", "running"))
    assert run["status"] == "succeeded", run["error"]
    assert (run["output"]["reply_status"], run["output"]["delivered"]) == ("sent_to_outbox",
                                                                           False)
    _, body = operator.request("/api/v1/connections?connector_key=demo_outbox")
    (outbox,) = json.loads(body)["items"]
    (email,) = outbox["settings"]["messages"]
    assert email["to"] == ["maria@brightlane.example"] and email["text"] == run["output"]["reply"]
