"""HubSpot CRM v3 against a local fake (`-k connector`): private app token, contact
create/update/search (following `paging.next.after`), deals with associations, and
HubSpot's error bodies."""

from __future__ import annotations

import pytest
from werkzeug.wrappers import Request, Response

from overture.connectors.errors import ActionFailed
from overture.connectors.execute import execute
from tests.oauth_app_support import (
    Stalls,
    connect,
    events,
    json_response,
    requests_to,
    tenant_a,
    throttled_then,
)

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


def contact(ident: str, email: str, **props: str) -> dict:
    return {"id": ident, "properties": {"email": email, "createdate": "2024-05-01T10:00:00Z",
                                        "hs_object_id": ident, **props},
            "createdAt": "2024-05-01T10:00:00Z", "updatedAt": "2024-05-02T11:00:00Z",
            "archived": False}


def hubspot_connection(app, world, httpserver, token=TOKEN):
    return connect(app, world, "hubspot", base_url=httpserver.url_for("/"),
                   credentials={"api_key": token}, secrets=(token,))


def test_connector_hubspot_creates_and_updates_contacts_and_creates_a_deal(app, world,
                                                                           httpserver):
    httpserver.expect_request(
        "/crm/v3/objects/contacts", method="POST", headers=BEARER,
        json={"properties": {"email": "ada@example.com", "firstname": "Ada",
                             "lastname": "Lovelace", "hs_lead_status": "NEW"}},
    ).respond_with_json(contact("501", "ada@example.com", firstname="Ada"), status=201)
    httpserver.expect_request(
        "/crm/v3/objects/contacts/501", method="PATCH", headers=BEARER,
        json={"properties": {"lifecyclestage": "customer", "phone": "+44 20 7946 0000"}},
    ).respond_with_json(contact("501", "ada@example.com", lifecyclestage="customer"))
    httpserver.expect_request(
        "/crm/v3/objects/contacts/ada@example.com", method="PATCH", headers=BEARER,
        query_string={"idProperty": "email"}, json={"properties": {"jobtitle": "CTO"}},
    ).respond_with_json(contact("501", "ada@example.com", jobtitle="CTO"))
    httpserver.expect_request(
        "/crm/v3/objects/deals", method="POST", headers=BEARER,
        json={"properties": {"dealname": "Acme renewal", "amount": 12000,
                             "dealstage": "appointmentscheduled", "pipeline": "default"},
              "associations": [{"to": {"id": "501"}, "types": [
                  {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]},
    ).respond_with_json({"id": "9001", "properties": {"dealname": "Acme renewal",
                                                      "amount": "12000"},
                         "createdAt": "2024-05-03T09:00:00Z",
                         "updatedAt": "2024-05-03T09:00:00Z", "archived": False}, status=201)
    admin, conn = hubspot_connection(app, world, httpserver)

    r = admin.post(f"/connections/{conn}/actions/create_contact", json={"input": {
        "email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace",
        "properties": {"hs_lead_status": "NEW"}}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"]["id"] == "501"
    assert r.get_json()["output"]["properties"]["firstname"] == "Ada"
    r = admin.post(f"/connections/{conn}/actions/update_contact", json={"input": {
        "contact_id": "501", "lifecyclestage": "customer", "phone": "+44 20 7946 0000"}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"]["properties"]["lifecyclestage"] == "customer"
    r = admin.post(f"/connections/{conn}/actions/update_contact", json={"input": {
        "contact_id": "ada@example.com", "id_property": "email", "jobtitle": "CTO"}})
    assert r.status_code == 200, r.get_json()
    r = admin.post(f"/connections/{conn}/actions/create_deal", json={"input": {
        "dealname": "Acme renewal", "amount": 12000, "dealstage": "appointmentscheduled",
        "contact_ids": ["501"]}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {"id": "9001", "properties": {
        "dealname": "Acme renewal", "amount": "12000"}, "created_at": "2024-05-03T09:00:00Z",
        "updated_at": "2024-05-03T09:00:00Z"}
    assert len(requests_to(httpserver, "/crm/")) == 4


def test_connector_hubspot_search_follows_paging_up_to_the_limit(app_ctx, world, httpserver):
    pages = {None: ([contact("1", "a@acme.com"), contact("2", "b@acme.com")], "2"),
             "2": ([contact("3", "c@acme.com"), contact("4", "d@acme.com")], "4")}
    bodies: list[dict] = []

    def search(request: Request) -> Response:
        body = request.get_json()
        bodies.append(body)
        results, after = pages[body.get("after")]
        return json_response({"total": 5, "results": results,
                              "paging": {"next": {"after": after, "link": "?after=" + after}}})

    httpserver.expect_request("/crm/v3/objects/contacts/search", method="POST",
                              headers=BEARER).respond_with_handler(search)
    _, conn = hubspot_connection(app_ctx, world, httpserver)
    with tenant_a(world):
        out = execute(conn, "search_contacts", {
            "filters": [{"property": "email", "operator": "CONTAINS_TOKEN",
                         "value": "*@acme.com"}],
            "filter_groups": [[{"property": "company", "value": "Acme"}]],
            "properties": ["email", "firstname"],
            "sort": {"property": "createdate", "direction": "DESCENDING"}, "limit": 3})
    assert [c["id"] for c in out["results"]] == ["1", "2", "3"]
    assert out["total"] == 5 and out["next_after"] == "4"
    assert bodies[0] == {
        "filterGroups": [
            {"filters": [{"propertyName": "email", "operator": "CONTAINS_TOKEN",
                          "value": "*@acme.com"}]},
            {"filters": [{"propertyName": "company", "operator": "EQ", "value": "Acme"}]}],
        "properties": ["email", "firstname"],
        "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}], "limit": 3}
    assert bodies[1]["after"] == "2" and bodies[1]["limit"] == 1
    assert len(bodies) == 2, "stops at the limit"


def test_connector_hubspot_search_stops_on_the_last_page(app_ctx, world, httpserver):
    httpserver.expect_request("/crm/v3/objects/contacts/search").respond_with_json(
        {"total": 1, "results": [contact("7", "x@example.com")]})
    _, conn = hubspot_connection(app_ctx, world, httpserver)
    with tenant_a(world):
        out = execute(conn, "search_contacts", {"query": "x@example.com"})
    assert [c["id"] for c in out["results"]] == ["7"] and out["next_after"] is None
    [searched] = requests_to(httpserver, "/crm/")
    assert searched.get_json()["query"] == "x@example.com"
    assert searched.get_json()["limit"] == 100


def test_connector_hubspot_auth_failure_conflict_and_missing_contact(app, world, httpserver):
    httpserver.expect_request("/crm/v3/objects/contacts", method="GET").respond_with_json(
        {"status": "error", "message": "Authentication credentials not found. This API "
         "supports OAuth 2.0 authentication and you can find more details at "
         "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
         "correlationId": "c0a8b2f4-5a51-4b6e-9b7e-0b2b0e2f1a11",
         "category": "INVALID_AUTHENTICATION"}, status=401)
    httpserver.expect_request("/crm/v3/objects/contacts", method="POST").respond_with_json(
        {"status": "error", "message": "Contact already exists. Existing ID: 12345",
         "correlationId": "5c5c8c2e-0a0b-4e0a-9c21-111111111111", "category": "CONFLICT"},
        status=409)
    httpserver.expect_request("/crm/v3/objects/contacts/404404", method="PATCH") \
        .respond_with_json({"status": "error", "message": "resource not found",
                            "correlationId": "x", "category": "OBJECT_NOT_FOUND"}, status=404)
    admin, conn = hubspot_connection(app, world, httpserver, token="pat-na1-revoked")

    assert admin.post(f"/connections/{conn}/test").get_json() == {
        "ok": False, "reason": "auth_failed", "detail": "the app refused the credentials (401)"}
    r = admin.post(f"/connections/{conn}/actions/create_contact",
                   json={"input": {"email": "ada@example.com"}})
    assert r.status_code == 502
    assert (r.get_json()["reason"], r.get_json()["existing_id"]) == ("conflict", "12345")
    r = admin.post(f"/connections/{conn}/actions/update_contact",
                   json={"input": {"contact_id": "404404", "firstname": "Bo"}})
    assert (r.status_code, r.get_json()["reason"]) == (502, "not_found")


def test_connector_hubspot_validation_error_names_the_field(app, world, httpserver):
    admin, conn = hubspot_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/create_contact",
                   json={"input": {"firstname": "Ada"}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "input.email"
    r = admin.post(f"/connections/{conn}/actions/update_contact",
                   json={"input": {"contact_id": "..", "firstname": "x"}})
    assert r.get_json()["errors"][0]["field"] == "input.contact_id"
    r = admin.post(f"/connections/{conn}/actions/update_contact",
                   json={"input": {"contact_id": "501"}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "input.properties"
    r = admin.post(f"/connections/{conn}/actions/search_contacts", json={"input": {
        "filters": [{"property": "email", "operator": "LIKE", "value": "x"}]}})
    assert r.get_json()["errors"][0]["field"] == "input.filters.0.operator"
    r = admin.post(f"/connections/{conn}/actions/create_deal",
                   json={"input": {"dealname": "X", "contact_ids": ["abc"]}})
    assert r.get_json()["errors"][0]["field"] == "input.contact_ids.0"
    assert requests_to(httpserver, "/crm/") == []


def test_connector_hubspot_429_with_retry_after_then_success(app_ctx, world, httpserver):
    handler, calls = throttled_then(
        {"status": "error", "message": "You have reached your secondly limit.",
         "errorType": "RATE_LIMIT", "correlationId": "r", "policyName": "SECONDLY"},
        contact("501", "ada@example.com"), status=201)
    httpserver.expect_request("/crm/v3/objects/contacts", method="POST") \
        .respond_with_handler(handler)
    _, conn = hubspot_connection(app_ctx, world, httpserver)
    with tenant_a(world):
        out = execute(conn, "create_contact", {"email": "ada@example.com"})
    assert out["id"] == "501"
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.9, "waited as Retry-After asked"


def test_connector_hubspot_timeout_is_reported(app_ctx, world, httpserver):
    stalled = Stalls(0.8, {"id": "1"})
    httpserver.expect_request("/crm/v3/objects/deals").respond_with_handler(stalled)
    _, conn = hubspot_connection(app_ctx, world, httpserver)
    with tenant_a(world), pytest.raises(ActionFailed) as failure:
        execute(conn, "create_deal", {"dealname": "Slow"}, timeout=0.25)
    assert failure.value.reason == "timeout"
    stalled.wait()
    [called] = events(world, "connector.action_called")
    assert called.details["outcome"] == "timeout"
