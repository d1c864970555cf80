"""Stripe against a local fake with Stripe's shape: Bearer secret keys, form bodies,
list objects with `has_more`, error envelopes, and `Idempotency-Key` replay."""

from __future__ import annotations

import time
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from overture.connectors.errors import ActionFailed
from tests.connector_library_support import (
    Stall,
    ThrottledOnce,
    call,
    connect,
    form_of,
    json_response,
    post,
    settle,
)
from tests.engine_support import publish, rows_of, running_workers, start, wait_for

KEY = "sk_test_51Hx0000000000000000000000"


@pytest.fixture(autouse=True)
def _local_fake(monkeypatch, httpserver):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    settle(httpserver)


def stripe_error(kind: str, message: str, **more: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **more}}


class FakeStripe:
    """Stripe's API as far as these actions go. Like Stripe, it keeps the first answer
    to each `Idempotency-Key` and replays it (with `Idempotent-Replayed: true`)."""

    def __init__(self, customers: list[dict[str, Any]] | None = None) -> None:
        self.refunds: list[dict[str, Any]] = []
        self.saved: dict[str, dict[str, Any]] = {}
        self.customers = customers or []

    @staticmethod
    def refused(request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return json_response(stripe_error(
                "invalid_request_error", "Invalid API Key provided: sk_test_****oops"), 401)
        return None

    def create_refund(self, request: Request) -> Response:
        if (denied := self.refused(request)) is not None:
            return denied
        key = request.headers.get("Idempotency-Key")
        if key in self.saved:
            return json_response(self.saved[key], 200, {"Idempotent-Replayed": "true",
                                                        "Idempotency-Key": key})
        form = request.form
        if not form.get("payment_intent") and not form.get("charge"):
            return json_response(stripe_error("invalid_request_error", "One of `charge` or "
                                              "`payment_intent` is required."), 400)
        refund = {"id": f"re_3N{len(self.refunds) + 1:020d}", "object": "refund",
                  "amount": int(form.get("amount", 5000)), "currency": "usd",
                  "charge": form.get("charge") or "ch_3N000000000000000000001",
                  "payment_intent": form.get("payment_intent"),
                  "reason": form.get("reason"), "status": "succeeded",
                  "metadata": {k[len("metadata["):-1]: v for k, v in form.items()
                               if k.startswith("metadata[")},
                  "created": 1700000000}
        self.refunds.append(refund)
        if key:
            self.saved[key] = refund
        return json_response(refund, 200, {"Idempotency-Key": key} if key else None)

    def list_customers(self, request: Request) -> Response:
        if (denied := self.refused(request)) is not None:
            return denied
        limit = int(request.args.get("limit", 10))
        if not 1 <= limit <= 100:
            return json_response(stripe_error("invalid_request_error",
                                              "Invalid integer: limit", param="limit"), 400)
        matches = [c for c in self.customers if c["email"] == request.args.get("email")]
        after = request.args.get("starting_after")
        if after:
            matches = matches[[c["id"] for c in matches].index(after) + 1:]
        return json_response({"object": "list", "url": "/v1/customers",
                              "has_more": len(matches) > limit, "data": matches[:limit]})

    def search_customers(self, request: Request) -> Response:
        if (denied := self.refused(request)) is not None:
            return denied
        pages = {None: (self.customers[:2], "page_2"), "page_2": (self.customers[2:3], None)}
        data, next_page = pages[request.args.get("page")]
        return json_response({"object": "search_result", "url": "/v1/customers/search",
                              "has_more": next_page is not None, "next_page": next_page,
                              "data": data})

    def serve(self, httpserver) -> FakeStripe:
        httpserver.expect_request("/v1/refunds", method="POST").respond_with_handler(
            self.create_refund)
        httpserver.expect_request("/v1/customers/search", method="GET").respond_with_handler(
            self.search_customers)
        httpserver.expect_request("/v1/customers", method="GET").respond_with_handler(
            self.list_customers)
        httpserver.expect_request("/v1/balance", method="GET").respond_with_handler(
            lambda r: self.refused(r) or json_response({"object": "balance", "livemode": False,
                                                        "available": []}))
        return self


def customer(n: int, email: str = "jane@example.com") -> dict[str, Any]:
    return {"id": f"cus_{n:014d}", "object": "customer", "email": email, "name": f"Jane {n}",
            "phone": None, "description": None, "created": 1700000000 - n, "metadata": {},
            "livemode": False, "balance": 0}


def stripe_connection(app, world, httpserver, key: str = KEY):
    return connect(app, world, "stripe", httpserver.url_for("/v1"), {"api_key": key})


def test_connector_stripe_create_refund_happy_path(app, world, httpserver):
    fake = FakeStripe().serve(httpserver)
    admin, conn = stripe_connection(app, world, httpserver)
    r = post(admin, f"/connections/{conn}/actions/create_refund",
             {"Idempotency-Key": "refund-order-1001"},
             json={"input": {"payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
                             "amount": 1500, "reason": "requested_by_customer",
                             "metadata": {"order": "1001"}}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {
        "id": "re_3N00000000000000000001", "status": "succeeded", "amount": 1500,
        "currency": "usd", "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "charge": "ch_3N000000000000000000001", "reason": "requested_by_customer",
        "replayed": False}
    [(request, _)] = httpserver.log
    assert (request.method, request.path) == ("POST", "/v1/refunds")
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Idempotency-Key"] == "refund-order-1001"
    assert form_of(request) == [("payment_intent", "pi_3MtwBwLkdIwHu7ix28a3tqPa"),
                                ("reason", "requested_by_customer"), ("amount", "1500"),
                                ("metadata[order]", "1001")]
    assert len(fake.refunds) == 1


def test_connector_stripe_find_customer_follows_has_more(app_ctx, world, httpserver):
    FakeStripe([customer(n) for n in range(130)] + [customer(999, "other@example.com")]
               ).serve(httpserver)
    _, conn = stripe_connection(app_ctx, world, httpserver)
    out = call(world, conn, "find_customer", {"email": "jane@example.com", "limit": 500})
    assert out["found"] is True and out["has_more"] is False
    assert [c["id"] for c in out["customers"]] == [f"cus_{n:014d}" for n in range(130)]
    assert out["customer"] == {"id": "cus_00000000000000", "email": "jane@example.com",
                               "name": "Jane 0", "phone": None, "description": None,
                               "created": 1700000000, "metadata": {}}
    first, second = (r for r, _ in httpserver.log)
    assert first.args.to_dict() == {"email": "jane@example.com", "limit": "100"}
    assert second.args.to_dict() == {"email": "jane@example.com", "limit": "100",
                                     "starting_after": "cus_00000000000099"}
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r, _ in httpserver.log)

    few = call(world, conn, "find_customer", {"email": "jane@example.com", "limit": 3})
    assert len(few["customers"]) == 3 and few["has_more"] is True
    none = call(world, conn, "find_customer", {"email": "nobody@example.com"})
    assert none == {"found": False, "customer": None, "customers": [], "has_more": False}


def test_connector_stripe_find_customer_by_search_query_pages(app_ctx, world, httpserver):
    FakeStripe([customer(n) for n in range(3)]).serve(httpserver)
    _, conn = stripe_connection(app_ctx, world, httpserver)
    out = call(world, conn, "find_customer", {"query": "name~'Jane'"})
    assert [c["id"] for c in out["customers"]] == [f"cus_{n:014d}" for n in range(3)]
    first, second = (r for r, _ in httpserver.log)
    assert first.path == "/v1/customers/search"
    assert first.args.to_dict() == {"query": "name~'Jane'", "limit": "10"}
    assert second.args.get("page") == "page_2"


def test_connector_stripe_auth_failure(app, world, httpserver):
    fake = FakeStripe().serve(httpserver)
    admin, conn = stripe_connection(app, world, httpserver, key="sk_test_wrong")
    r = admin.post(f"/connections/{conn}/actions/create_refund",
                   json={"input": {"charge": "ch_3MmlLrLkdIwHu7ix0snN0B15"}})
    assert r.status_code == 502
    problem = r.get_json()
    assert problem["reason"] == "auth_failed" and problem["http_status"] == 401
    assert problem["body"]["error"]["type"] == "invalid_request_error"
    assert "sk_test_wrong" not in r.get_data(as_text=True)
    assert fake.refunds == []
    assert admin.post(f"/connections/{conn}/test").get_json()["reason"] == "auth_failed"


def test_connector_stripe_validation_error_names_the_field(app, world, httpserver):
    FakeStripe().serve(httpserver)
    admin, conn = stripe_connection(app, world, httpserver)
    cases = [({"payment_intent": "pi_1", "amount": 0}, "input.amount"),
             ({"payment_intent": "pi_1", "reason": "changed_mind"}, "input.reason"),
             ({"payment_intent": "card_1"}, "input.payment_intent"),
             ({"amount": 100}, "input.payment_intent"),
             ({"payment_intent": "pi_1", "charge": "ch_1"}, "input.payment_intent")]
    for input, field in cases:
        r = admin.post(f"/connections/{conn}/actions/create_refund", json={"input": input})
        assert r.status_code == 422, (input, r.get_json())
        assert r.get_json()["errors"][0]["field"] == field
    r = admin.post(f"/connections/{conn}/actions/find_customer", json={"input": {}})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.email"
    assert len(httpserver.log) == 0


def test_connector_stripe_429_with_retry_after_then_success(app_ctx, world, httpserver):
    fake = FakeStripe()
    throttle = ThrottledOnce(stripe_error("invalid_request_error", "Too many requests made "
                                          "to the API too quickly", code="rate_limit"),
                             fake.create_refund)
    httpserver.expect_request("/v1/refunds", method="POST").respond_with_handler(throttle)
    _, conn = stripe_connection(app_ctx, world, httpserver)
    out = call(world, conn, "create_refund", {"charge": "ch_3MmlLrLkdIwHu7ix0snN0B15",
                                              "amount": 250})
    assert out["amount"] == 250 and out["status"] == "succeeded"
    assert len(throttle.seen) == 2 and throttle.waited >= 0.9, "waited as Retry-After asked"
    # Without a caller's key the action makes one, and its retry reuses it.
    keys = {r.headers.get("Idempotency-Key") for _, r in throttle.seen}
    assert len(keys) == 1 and keys.pop().startswith("ovt-")
    assert len(fake.refunds) == 1


def test_connector_stripe_timeout(app_ctx, world, httpserver):
    stall = Stall()
    httpserver.expect_request("/v1/customers").respond_with_handler(stall)
    _, conn = stripe_connection(app_ctx, world, httpserver)
    started = time.monotonic()
    with pytest.raises(ActionFailed) as failure:
        call(world, conn, "find_customer", {"email": "jane@example.com"}, timeout=0.3)
    assert failure.value.reason == "timeout"
    assert time.monotonic() - started < 2
    stall.finish(httpserver)


def test_connector_stripe_refund_twice_with_one_key_refunds_once(app_ctx, world, httpserver):
    fake = FakeStripe().serve(httpserver)
    _, conn = stripe_connection(app_ctx, world, httpserver)
    refund = {"payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "amount": 1500}
    first = call(world, conn, "create_refund", refund, idempotency_key="ovt-step-42")
    again = call(world, conn, "create_refund", refund, idempotency_key="ovt-step-42")
    assert len(fake.refunds) == 1, "one refund, however often it was asked for"
    assert again["id"] == first["id"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert [r.headers["Idempotency-Key"] for r, _ in httpserver.log] == ["ovt-step-42"] * 2
    # The fake does count: another key is another refund.
    call(world, conn, "create_refund", refund, idempotency_key="ovt-step-43")
    assert len(fake.refunds) == 2


def test_connector_stripe_refund_in_a_workflow_action_step(app, world, settings, httpserver):
    fake = FakeStripe().serve(httpserver)
    _, conn = stripe_connection(app, world, httpserver)
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [{
        "id": "refund", "type": "action", "action": "stripe.create_refund",
        "connection": conn,
        "input": {"payment_intent": "{{ input.payment_intent }}", "amount": 700,
                  "reason": "duplicate"}}]})
    with running_workers(settings, processes=1, threads=2):
        run = wait_for(a, start(a, wf, {"payment_intent": "pi_3OrderFromTheRun"}), timeout=30)
    assert run.status == "succeeded", run.error
    [row] = rows_of(a, run.id)
    assert row.status == "succeeded"
    assert row.output["payment_intent"] == "pi_3OrderFromTheRun"
    assert row.output["amount"] == 700 and row.output["id"] == fake.refunds[0]["id"]
    assert len(fake.refunds) == 1
    [(request, _)] = httpserver.log
    assert request.headers["Idempotency-Key"] == f"ovt-{row.id}"
    assert ("reason", "duplicate") in form_of(request)
