"""Helpers for the console's tests: a signed-in browser-like client, and reading pages."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from tests.support import World, login

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


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
