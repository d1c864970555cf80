"""Google Sheets against a local fake of Sheets API v4 and Google's token endpoint
(`-k connector`): A1 ranges percent-encoded in the path, Google's error bodies, and
OAuth2 refreshes that fail for good (revoked) or for now (the endpoint is down)."""

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
    query_of,
    raw_uri,
    requests_to,
    tenant_a,
    throttled_then,
)

SHEET = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
ACCESS = "ya29.a0AfB_byC-sheets-access-token"
REFRESH = "1//0gLmn-sheets-refresh-token"
CLIENT_SECRET = "GOCSPX-sheets-client-secret"
APPENDED = {"spreadsheetId": SHEET, "tableRange": "'Q3 leads'!A1:C4",
            "updates": {"spreadsheetId": SHEET, "updatedRange": "'Q3 leads'!A5:C6",
                        "updatedRows": 2, "updatedColumns": 3, "updatedCells": 6}}
VALUES = {"range": "'Q3 leads'!A1:C3", "majorDimension": "ROWS",
          "values": [["Name", "Email", "Score"], ["Ada", "ada@example.com", "91"],
                     ["Bo", "bo@example.com"]]}
ROWS = [["Cy", "cy@example.com", 77], ["Di", "di@example.com", "=B2"]]


def google_error(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


def sheets_connection(app, world, httpserver, **credentials):
    return connect(app, world, "google_sheets", base_url=httpserver.url_for("/v4"),
                   credentials={"client_id": "1234-abc.apps.googleusercontent.com",
                                "client_secret": CLIENT_SECRET, "access_token": ACCESS,
                                **credentials},
                   settings={"token_url": httpserver.url_for("/token"),
                             "authorize_url": httpserver.url_for("/o/oauth2/v2/auth")},
                   secrets=(ACCESS, CLIENT_SECRET))


def test_connector_google_sheets_appends_and_reads_rows(app, world, httpserver):
    bearer = {"Authorization": f"Bearer {ACCESS}"}
    httpserver.expect_request(
        f"/v4/spreadsheets/{SHEET}/values/'Q3 leads'!A:C:append", method="POST",
        headers=bearer, query_string={"valueInputOption": "USER_ENTERED",
                                      "insertDataOption": "INSERT_ROWS",
                                      "includeValuesInResponse": "false"},
        json={"range": "'Q3 leads'!A:C", "majorDimension": "ROWS", "values": ROWS},
    ).respond_with_json(APPENDED)
    httpserver.expect_request(
        f"/v4/spreadsheets/{SHEET}/values/'Q3 leads'!A1:C3", method="GET", headers=bearer,
    ).respond_with_json(VALUES)
    # Google leaves `values` out when the range is empty
    httpserver.expect_request(f"/v4/spreadsheets/{SHEET}/values/Sheet1!A1:B2") \
        .respond_with_json({"range": "Sheet1!A1:B2", "majorDimension": "ROWS"})
    # the connection check: a good token gets 404 for a sheet that does not exist
    httpserver.expect_request("/v4/spreadsheets/overture-connection-check", headers=bearer) \
        .respond_with_json(google_error(404, "NOT_FOUND", "Requested entity was not found."),
                           status=404)
    admin, conn = sheets_connection(app, world, httpserver)
    assert admin.post(f"/connections/{conn}/test").get_json() == {
        "ok": True, "detail": "Google accepted the token"}

    r = admin.post(f"/connections/{conn}/actions/append_rows", json={"input": {
        "spreadsheet_id": SHEET, "range": "'Q3 leads'!A:C", "rows": ROWS}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {"spreadsheet_id": SHEET, "table_range": "'Q3 leads'!A1:C4",
                                      "updated_range": "'Q3 leads'!A5:C6", "updated_rows": 2,
                                      "updated_cells": 6}
    r = admin.post(f"/connections/{conn}/actions/read_rows", json={"input": {
        "spreadsheet_id": SHEET, "range": "'Q3 leads'!A1:C3"}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {"range": "'Q3 leads'!A1:C3", "values": VALUES["values"]}

    r = admin.post(f"/connections/{conn}/actions/read_rows", json={"input": {
        "spreadsheet_id": SHEET, "range": "Sheet1!A1:B2"}})
    assert r.get_json()["output"] == {"range": "Sheet1!A1:B2", "values": []}

    _, append, read, _ = requests_to(httpserver, "/v4/")
    # the A1 range travels percent-encoded, as Google's clients send it
    assert raw_uri(append).startswith(
        f"/v4/spreadsheets/{SHEET}/values/%27Q3%20leads%27%21A%3AC:append?")
    assert query_of(raw_uri(read)) == {"majorDimension": "ROWS",
                                       "valueRenderOption": "FORMATTED_VALUE"}


def test_connector_google_sheets_auth_failure_and_missing_sheet(app, world, httpserver):
    unauthenticated = google_error(
        401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected "
        "OAuth 2 access token, login cookie or other valid authentication credential.")
    httpserver.expect_request("/v4/spreadsheets/overture-connection-check") \
        .respond_with_json(unauthenticated, status=401)
    httpserver.expect_request(f"/v4/spreadsheets/{SHEET}/values/Sheet1!A1") \
        .respond_with_json(unauthenticated, status=401)
    httpserver.expect_request("/v4/spreadsheets/1NoSuchSheet0000000000/values/Sheet1!A1") \
        .respond_with_json(google_error(404, "NOT_FOUND", "Requested entity was not found."),
                           status=404)
    admin, conn = sheets_connection(app, world, httpserver)

    assert admin.post(f"/connections/{conn}/test").get_json() == {
        "ok": False, "reason": "auth_failed", "detail": "the app refused the credentials (401)"}
    r = admin.post(f"/connections/{conn}/actions/read_rows",
                   json={"input": {"spreadsheet_id": SHEET, "range": "Sheet1!A1"}})
    assert r.status_code == 502
    assert r.get_json()["reason"] == "auth_failed"
    assert r.get_json()["body"]["error"]["status"] == "UNAUTHENTICATED"
    r = admin.post(f"/connections/{conn}/actions/read_rows", json={"input": {
        "spreadsheet_id": "1NoSuchSheet0000000000", "range": "Sheet1!A1"}})
    assert (r.status_code, r.get_json()["reason"]) == (502, "not_found")


def test_connector_google_sheets_validation_error_names_the_field(app, world, httpserver):
    admin, conn = sheets_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/append_rows",
                   json={"input": {"spreadsheet_id": SHEET, "range": "Sheet1!A:C"}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "input.rows"
    r = admin.post(f"/connections/{conn}/actions/append_rows", json={"input": {
        "spreadsheet_id": SHEET, "range": "Sheet1!A:C", "rows": [["ok"], "not a row"]}})
    assert r.get_json()["errors"][0]["field"] == "input.rows.1"
    r = admin.post(f"/connections/{conn}/actions/read_rows",
                   json={"input": {"spreadsheet_id": "../../drive/v3", "range": "A1"}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "input.spreadsheet_id"
    assert requests_to(httpserver, "/v4/") == []


def test_connector_google_sheets_429_with_retry_after_then_success(app_ctx, world, httpserver):
    handler, calls = throttled_then(
        google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Write "
                     "requests' and limit 'Write requests per minute per user'"), APPENDED)
    httpserver.expect_request(f"/v4/spreadsheets/{SHEET}/values/Sheet1!A:C:append") \
        .respond_with_handler(handler)
    _, conn = sheets_connection(app_ctx, world, httpserver)
    with tenant_a(world):
        out = execute(conn, "append_rows", {"spreadsheet_id": SHEET, "range": "Sheet1!A:C",
                                            "rows": ROWS})
    assert out["updated_rows"] == 2
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.9, "waited as Retry-After asked"


def test_connector_google_sheets_timeout_is_reported(app_ctx, world, httpserver):
    stalled = Stalls(0.8, VALUES)
    httpserver.expect_request(f"/v4/spreadsheets/{SHEET}/values/Sheet1!A1") \
        .respond_with_handler(stalled)
    _, conn = sheets_connection(app_ctx, world, httpserver)
    with tenant_a(world), pytest.raises(ActionFailed) as failure:
        execute(conn, "read_rows", {"spreadsheet_id": SHEET, "range": "Sheet1!A1"},
                timeout=0.25)
    assert failure.value.reason == "timeout"
    stalled.wait()


# --------------------------------------------------------------------------- OAuth2


def test_connector_google_sheets_asks_for_offline_access(app, world, httpserver):
    admin, conn = sheets_connection(app, world, httpserver)
    url = admin.post(f"/connections/{conn}/authorize").get_json()["authorize_url"]
    asked = query_of(url)
    assert asked["scope"] == "https://www.googleapis.com/auth/spreadsheets"
    assert (asked["access_type"], asked["prompt"]) == ("offline", "consent"), \
        "Google issues a refresh token only for offline access"
    assert asked["state"] and asked["response_type"] == "code"


def test_connector_google_sheets_revoked_refresh_token_marks_the_connection_broken(
        app, world, httpserver):
    refreshes: list[dict[str, str]] = []

    def token_endpoint(request: Request) -> Response:
        refreshes.append(dict(request.form))
        return json_response({"error": "invalid_grant",
                              "error_description": "Token has been expired or revoked."}, 400)

    httpserver.expect_request("/token", method="POST").respond_with_handler(token_endpoint)
    admin, conn = sheets_connection(app, world, httpserver, refresh_token=REFRESH,
                                    expires_at="2020-01-01T00:00:00+00:00")
    read = {"input": {"spreadsheet_id": SHEET, "range": "Sheet1!A1"}}

    r = admin.post(f"/connections/{conn}/actions/read_rows", json=read)
    assert r.status_code == 409, r.get_json()
    problem = r.get_json()
    assert problem["type"].endswith("connection-broken")
    assert problem["reason"] == "refresh_failed" and "re-authorise" in problem["detail"]
    assert [f["grant_type"] for f in refreshes] == ["refresh_token"]
    assert refreshes[0]["refresh_token"] == REFRESH

    shown = admin.get(f"/connections/{conn}").get_json()
    assert shown["status"] == "broken" and "invalid_grant" in shown["broken_reason"]
    assert REFRESH not in admin.get(f"/connections/{conn}").get_data(as_text=True)
    [broken] = events(world, "connection.broken")
    assert broken.target_id is not None and str(broken.target_id) == conn
    assert broken.details["connector"] == "google_sheets"

    # Later calls fail fast: neither the token endpoint nor the API is asked again.
    for _ in range(2):
        r = admin.post(f"/connections/{conn}/actions/read_rows", json=read)
        assert r.status_code == 409 and "re-authorisation" in r.get_json()["detail"]
    assert admin.post(f"/connections/{conn}/test").status_code == 409
    assert len(refreshes) == 1 and len(requests_to(httpserver, "/token")) == 1
    assert requests_to(httpserver, "/v4/") == []


def test_connector_google_sheets_token_endpoint_outage_does_not_break_it(app, world,
                                                                         httpserver):
    httpserver.expect_oneshot_request("/token", method="POST").respond_with_json(
        google_error(503, "UNAVAILABLE", "The service is currently unavailable."), status=503)
    httpserver.expect_oneshot_request("/token", method="POST").respond_with_json(
        {"access_token": "ya29.fresh-access", "expires_in": 3599, "token_type": "Bearer",
         "scope": "https://www.googleapis.com/auth/spreadsheets"})
    httpserver.expect_request(f"/v4/spreadsheets/{SHEET}/values/Sheet1!A1",
                              headers={"Authorization": "Bearer ya29.fresh-access"}) \
        .respond_with_json(VALUES)
    admin, conn = sheets_connection(app, world, httpserver, refresh_token=REFRESH,
                                    expires_at="2020-01-01T00:00:00+00:00")
    read = {"input": {"spreadsheet_id": SHEET, "range": "Sheet1!A1"}}

    r = admin.post(f"/connections/{conn}/actions/read_rows", json=read)
    assert r.status_code == 502 and r.get_json()["reason"] == "http_5xx", r.get_json()
    assert admin.get(f"/connections/{conn}").get_json()["status"] == "active"
    assert events(world, "connection.broken") == []

    r = admin.post(f"/connections/{conn}/actions/read_rows", json=read)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"]["values"] == VALUES["values"]
    # Google sends no new refresh token on refresh: the stored one is kept
    with tenant_a(world):
        from overture.connectors.models import Connection
        from overture.platform.db import db
        from overture.tenants.vault import use_credential

        credential_id = db.session.get(Connection, conn).credential_id
        kept = use_credential(credential_id, "test")
    assert kept["refresh_token"] == REFRESH and kept["access_token"] == "ya29.fresh-access"
