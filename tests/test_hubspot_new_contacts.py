"""HubSpot's polling fallback (`-k hubspot`): a workflow subscribed to a HubSpot
connection's `new_contact` trigger runs once per contact created after it subscribed,
found through the CRM search API of a local fake; contacts made before start nothing,
and a contact seen again (the poll looks back over HubSpot's index delay) starts no
second run."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from overture.orchestration import triggers
from overture.platform.db import scoped_to
from tests.engine_api_support import ok, publish_via_api
from tests.oauth_app_support import connect
from tests.test_connector_imap import runs_of

TOKEN = "pat-na1-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ECHO = {"steps": [{"id": "echo", "type": "transform", "output": "{{ input.id }}"}]}


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


class FakeCrm:
    """HubSpot's contact search over a list of contacts: the createdate GTE filter and
    sorting by createdate, as HubSpot documents them."""

    def __init__(self) -> None:
        self.contacts: list[dict[str, Any]] = []
        self.bodies: list[dict[str, Any]] = []

    def add(self, ident: str, email: str, created: str) -> None:
        self.contacts.append({"id": ident, "createdAt": created, "updatedAt": created,
                              "properties": {"email": email, "createdate": created}})

    def search(self, request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        body = json.loads(request.data)
        self.bodies.append(body)
        found = list(self.contacts)
        for group in body.get("filterGroups", []):
            for f in group["filters"]:
                assert f["propertyName"] == "createdate" and f["operator"] == "GTE"
                found = [c for c in found if ms(c["createdAt"]) >= int(f["value"])]
        found.sort(key=lambda c: c["createdAt"],
                   reverse=body["sorts"][0]["direction"] == "DESCENDING")
        found = found[:body["limit"]]
        return Response(json.dumps({"total": len(found), "results": found}),
                        content_type="application/json")


def ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def test_hubspot_new_contact_polling_runs_once_per_new_contact(app, world, httpserver):
    crm = FakeCrm()
    crm.add("1", "old@example.com", "2026-12-01T09:00:00Z")
    httpserver.expect_request("/crm/v3/objects/contacts/search", method="POST") \
        .respond_with_handler(crm.search)
    admin, conn = connect(app, world, "hubspot", base_url=httpserver.url_for("/"),
                          credentials={"api_key": TOKEN}, secrets=(TOKEN,))
    workflow = publish_via_api(admin, ECHO)
    sub = ok(admin.post(f"/workflows/{workflow['id']}/triggers", json={
        "connection_id": conn, "trigger_key": "new_contact", "interval_seconds": 60}), 201)

    def poll() -> int:
        with scoped_to(world.tenants["a"].id):
            return triggers.poll_subscription(sub["id"])

    assert poll() == 0  # notes where HubSpot stands: the old contact is not new
    crm.add("2", "lead@example.com", "2026-12-01T09:00:01Z")
    crm.add("3", "deal@example.com", "2026-12-01T09:02:00Z")
    assert poll() == 2
    assert poll() == 0  # the look-back sees both again: nothing starts twice
    crm.add("4", "late@example.com", "2026-12-01T09:01:30Z")  # indexed late, inside the window
    assert poll() == 1
    started = runs_of(world, workflow["id"])
    assert [(t, i["properties"]["email"]) for t, i in started] == [
        ("polling", "lead@example.com"), ("polling", "deal@example.com"),
        ("polling", "late@example.com")]
    assert crm.bodies[0]["sorts"][0]["direction"] == "DESCENDING"
    assert all(b["sorts"][0]["direction"] == "ASCENDING" for b in crm.bodies[1:])
