"""Twilio against a local fake: basic auth with Account SID and Auth Token (or an API
key), form bodies under /2010-04-01/Accounts/{sid}/, Twilio's error bodies."""

from __future__ import annotations

import time
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from overture.connectors.errors import ActionFailed
from tests.connector_library_support import (
    Stall,
    ThrottledOnce,
    basic,
    call,
    connect,
    form_of,
    json_response,
    settle,
)

SID, TOKEN = "AC" + "a1" * 16, "twilio-auth-token-0123456789abcdef"
API_KEY, API_SECRET = "SK" + "b2" * 16, "api-key-secret-value"
SERVICE = "MG" + "c3" * 16
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"


@pytest.fixture(autouse=True)
def _local_fake(monkeypatch, httpserver):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    settle(httpserver)


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}"}


def message_created(request: Request) -> Response:
    if request.headers.get("Authorization") not in (basic(SID, TOKEN),
                                                    basic(API_KEY, API_SECRET)):
        return json_response(twilio_error(401, 20003, "Authenticate"), 401)
    form = request.form
    return json_response({
        "sid": "SM" + "d4" * 16, "account_sid": SID, "status": "queued",
        "to": form["To"], "from": form.get("From"), "body": form["Body"],
        "messaging_service_sid": form.get("MessagingServiceSid"), "num_segments": "1",
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "error_code": None,
        "uri": f"/2010-04-01/Accounts/{SID}/Messages/SM{'d4' * 16}.json"}, 201)


def twilio_connection(app, world, httpserver, username: str = SID, password: str = TOKEN,
                      settings: dict[str, Any] | None = None):
    return connect(app, world, "twilio", httpserver.url_for("/2010-04-01"),
                   {"username": username, "password": password}, settings=settings)


def test_connector_twilio_send_sms_happy_path(app, world, httpserver):
    httpserver.expect_request(MESSAGES, method="POST").respond_with_handler(message_created)
    admin, conn = twilio_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/send_sms", json={"input": {
        "to": "+14155550100", "from": "+15017122661",
        "body": "Your order #1001 has shipped & is on its way."}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {"sid": "SM" + "d4" * 16, "status": "queued",
                                      "to": "+14155550100", "from": "+15017122661",
                                      "date_created": "Thu, 24 Aug 2023 05:01:45 +0000"}
    [(request, _)] = httpserver.log
    assert (request.method, request.path) == ("POST", MESSAGES)
    assert request.headers["Authorization"] == basic(SID, TOKEN)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form_of(request) == [("To", "+14155550100"), ("From", "+15017122661"),
                                ("Body", "Your order #1001 has shipped & is on its way.")]


def test_connector_twilio_api_key_and_messaging_service(app_ctx, world, httpserver):
    httpserver.expect_request(MESSAGES, method="POST").respond_with_handler(message_created)
    _, conn = twilio_connection(app_ctx, world, httpserver, API_KEY, API_SECRET,
                                settings={"account_sid": SID})
    out = call(world, conn, "send_sms", {
        "to": "whatsapp:+14155550100", "messaging_service_sid": SERVICE, "body": "Hi",
        "media_urls": ["https://cdn.example.com/a.png", "https://cdn.example.com/b.png"]})
    assert out["status"] == "queued" and out["from"] is None
    [(request, _)] = httpserver.log
    assert request.path == MESSAGES, "the account's SID, not the API key's, names the account"
    assert request.headers["Authorization"] == basic(API_KEY, API_SECRET)
    assert form_of(request) == [("To", "whatsapp:+14155550100"),
                                ("MessagingServiceSid", SERVICE), ("Body", "Hi"),
                                ("MediaUrl", "https://cdn.example.com/a.png"),
                                ("MediaUrl", "https://cdn.example.com/b.png")]


def test_connector_twilio_auth_failure(app, world, httpserver):
    httpserver.expect_request(MESSAGES, method="POST").respond_with_handler(message_created)
    httpserver.expect_request(f"/2010-04-01/Accounts/{SID}.json").respond_with_json(
        twilio_error(401, 20003, "Authenticate"), status=401)
    admin, conn = twilio_connection(app, world, httpserver, password="wrong-token")
    r = admin.post(f"/connections/{conn}/actions/send_sms", json={"input": {
        "to": "+14155550100", "from": "+15017122661", "body": "x"}})
    assert r.status_code == 502
    problem = r.get_json()
    assert problem["reason"] == "auth_failed"
    assert problem["body"]["code"] == 20003
    assert "wrong-token" not in r.get_data(as_text=True)
    assert admin.post(f"/connections/{conn}/test").get_json()["reason"] == "auth_failed"


def test_connector_twilio_validation_error_names_the_field(app, world, httpserver):
    admin, conn = twilio_connection(app, world, httpserver)
    for input, field in [
        ({"to": "4155550100", "from": "+15017122661", "body": "x"}, "input.to"),
        ({"to": "+14155550100", "from": "+15017122661"}, "input.body"),
        ({"to": "+14155550100", "from": "+15017122661", "body": "x" * 1601}, "input.body"),
        ({"to": "+14155550100", "body": "x"}, "input.from"),
        ({"to": "+14155550100", "messaging_service_sid": "MG1", "body": "x"},
         "input.messaging_service_sid"),
    ]:
        r = admin.post(f"/connections/{conn}/actions/send_sms", json={"input": input})
        assert r.status_code == 422, (input, r.get_json())
        assert r.get_json()["errors"][0]["field"] == field
    assert len(httpserver.log) == 0


def test_connector_twilio_429_with_retry_after_then_success(app_ctx, world, httpserver):
    throttle = ThrottledOnce(twilio_error(429, 20429, "Too Many Requests"), message_created)
    httpserver.expect_request(MESSAGES, method="POST").respond_with_handler(throttle)
    _, conn = twilio_connection(app_ctx, world, httpserver)
    out = call(world, conn, "send_sms", {"to": "+14155550100", "from": "+15017122661",
                                         "body": "retry"})
    assert out["status"] == "queued"
    assert len(throttle.seen) == 2 and throttle.waited >= 0.9, "waited as Retry-After asked"


def test_connector_twilio_timeout(app_ctx, world, httpserver):
    stall = Stall()
    httpserver.expect_request(MESSAGES).respond_with_handler(stall)
    _, conn = twilio_connection(app_ctx, world, httpserver)
    started = time.monotonic()
    with pytest.raises(ActionFailed) as failure:
        call(world, conn, "send_sms", {"to": "+14155550100", "from": "+15017122661",
                                       "body": "x"}, timeout=0.3)
    assert failure.value.reason == "timeout"
    assert time.monotonic() - started < 2
    stall.finish(httpserver)
