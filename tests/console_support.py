"""Helpers for the console's tests: a signed-in browser-like client and reading pages;
and for the tests in a real browser (Debian's Chromium driven by Playwright, against the
real app on a real server): the browser, signing in, and `Visit`, which watches a page
and checks each one a journey reaches (axe, CSP, no other host) and photographs it.

`tests/conftest.py` registers this module as a plugin, so every test gets the `browser`
fixture without importing it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import Page, sync_playwright

from tests.support import PASSWORD, World, login

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "screenshots"  # a folder per test file below it
BUILT_UI = ROOT / "overture" / "web" / "static" / "builder" / "builder.js"
CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright downloads no browser
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
WAIT_MS = 60_000  # how long to wait on a busy machine, not a speed check
WIDTHS = (1400, 390)  # a desktop and a phone
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
# Violations are also reported as events; the page's own scripts cannot hide them.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => v.id + ": " + v.help + " @ " + v.nodes.map((n) => n.target.join(" ")).join(", "));
}"""


class Browser:
    """A person in the console: a Flask client that asks for pages and posts forms
    with the CSRF token the pages carry."""

    def __init__(self, client: FlaskClient, csrf: str) -> None:
        self.client, self.csrf = client, csrf

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=HTML, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})},
                                headers=HTML, **kwargs)

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


def browse(app: Any, w: World, handle: str) -> Browser:
    client = app.test_client()
    return Browser(client, login(client, w.users[handle].email))


def build_ui() -> None:
    """`make test` builds the builder's island first; a lone run of a test file that needs
    it builds it if it is missing."""
    if not BUILT_UI.exists():
        subprocess.run(["make", "ui"], cwd=ROOT, check=True)


@contextmanager
def chromium(*mapped_hosts: str) -> Iterator[Chromium]:
    """Chromium, which reaches each of `mapped_hosts` (a custom domain, say) at
    127.0.0.1, where the live server listens."""
    args = list(CHROMIUM_ARGS)
    if mapped_hosts:
        rules = ", ".join(f"MAP {host} 127.0.0.1" for host in mapped_hosts)
        args.append(f"--host-resolver-rules={rules}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser() -> Iterator[Chromium]:
    with chromium() as launched:
        yield launched


def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the sign-in page, as a person does, and wait until it lets them in."""
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: not url.startswith(base + "/login"), timeout=WAIT_MS)


class Visit:
    """A page of the live server, watched: every request to another host, every script
    error and (through `check`) every CSP violation and serious axe finding. `check`
    photographs the page at each of WIDTHS into build/screenshots/<shots>/; confirmation
    dialogs are accepted."""

    def __init__(self, page: Page, base: str, shots: str) -> None:
        self.page, self.base, self.shots = page, base, SHOTS / shots
        self.foreign: list[str] = []
        self.problems: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(base + "/")
                else self.foreign.append(r.url))
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        page.on("dialog", lambda dialog: dialog.accept())
        page.add_init_script(RECORD_VIOLATIONS)

    @classmethod
    def open(cls, browser: Chromium, base: str, shots: str, email: str | None = None,
             **options: Any) -> Visit:
        """A new page of the first of WIDTHS, watched; signed in as `email` if given."""
        page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900}, **options)
        visit = cls(page, base, shots)
        if email:
            sign_in(page, base, email)
        return visit

    def axe(self) -> list[str]:
        """The serious and critical accessibility findings on the page as it stands."""
        if not self.page.evaluate("typeof axe !== 'undefined'"):
            self.page.evaluate(AXE)  # through the debugger: the page's CSP does not apply
        return self.page.evaluate(RUN_AXE)

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations || []")

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("networkidle", timeout=WAIT_MS)
        serious = self.axe()
        assert serious == [], (name, serious)
        violations = self.csp_violations()
        assert violations == [], (name, violations)
        self.photograph(name)

    def photograph(self, name: str) -> None:
        page = self.page
        self.shots.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")  # a sticky sidebar is drawn where it stands
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(self.shots / f"{name}-{width}.png"), full_page=True)
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})

    def go(self, path: str, name: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status < 500, (path, response and response.status)
        self.check(name)


def page_text(response: Any) -> str:
    """The page as words, tags removed: what a person reads."""
    return page_text_of(response.get_data(as_text=True))


def region(response: Any, element_id: str) -> str:
    """The words inside the element with this id (up to the page's end if unclosed
    elements confuse it): one part of a page, not its navigation."""
    html = response.get_data(as_text=True)
    start = html.index(f'id="{element_id}"')
    return page_text_of(html[start:])


def page_text_of(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def seed_activity(tenant_id: Any, name: str, succeeded: int, failed: int,
                  waiting: bool = False, cost: str = "0") -> None:
    """Runs, an approval and model usage in one workspace, written as the engine would
    leave them (without running it): what the homes summarise."""
    from datetime import timedelta
    from decimal import Decimal

    from overture.billing.usage import record_usage
    from overture.orchestration import workflows
    from overture.orchestration.models import Approval, Run, StepRun
    from overture.platform.db import db, scoped_to, utcnow

    now = utcnow()
    with scoped_to(tenant_id):
        workflow = workflows.create_workflow(name, draft={"steps": [
            {"id": "approve", "type": "approval", "prompt": "Refund?"},
            {"id": "triage", "type": "transform", "output": "ok"}]})
        version = workflows.publish(workflow, None)
        for i in range(succeeded + failed):
            ok = i < succeeded
            db.session.add(Run(
                workflow_id=workflow.id, version_id=version.id, trigger="webhook",
                status="succeeded" if ok else "failed", input={},
                started_at=now - timedelta(hours=i + 1), finished_at=now - timedelta(hours=i),
                error=None if ok else {"code": "http_5xx", "message": "CRM answered 503"},
                tokens=1200, cost=Decimal("0.0042")))
        if waiting:
            run = Run(workflow_id=workflow.id, version_id=version.id, trigger="api",
                      status="running", input={}, started_at=now)
            db.session.add(run)
            db.session.flush()
            row = StepRun(run_id=run.id, step_id="approve", step_type="approval",
                          status="waiting")
            db.session.add(row)
            db.session.flush()
            db.session.add(Approval(run_id=run.id, step_run_id=row.id, link_nonce="n",
                                    prompt="Refund 120 EUR to order 4411?",
                                    data={"amount": 120, "order": "4411"},
                                    editable_fields=["amount"],
                                    deadline_at=now + timedelta(hours=4)))
        record_usage("llm_cost", Decimal(cost), workflow_id=workflow.id)
        record_usage("llm_input_tokens", 9000, workflow_id=workflow.id)
        record_usage("llm_output_tokens", 3000, workflow_id=workflow.id)
        db.session.commit()
