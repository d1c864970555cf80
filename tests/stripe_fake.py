"""A fake Stripe on a real local HTTP server (pytest-httpserver), reached by the SDK
through its base address: Billing Meters, customers, meter events (deduplicated by
idempotency key and by identifier, as Stripe does) and meter event summaries computed
from the events it kept. It can fail for a while (500s, or answers slower than the
client's timeout) and keeps every request it saw."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

from overture.platform.config import Settings

SECRET = "sk_test_platform_fake"
WEBHOOK_SECRET = "whsec_test_fake"


@dataclass
class Seen:
    method: str
    path: str
    form: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeStripe:
    server: Any
    requests: list[Seen] = field(default_factory=list)
    meters: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> meter
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # identifier -> event
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the form sent
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscription_schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    period: tuple[int, int] = (0, 0)  # the subscriptions' current period (start, end)
    replies: dict[Any, tuple[int, str]] = field(default_factory=dict)  # by idempotency key
    fail_next: int = 0  # answer this many requests with a 500
    down: bool = False  # answer everything with a 500
    fail_when: Any = None  # a test of a request (Seen): answer it with a 500 when true
    slow_next: int = 0  # answer this many requests after `slow_seconds`
    slow_seconds: float = 0.0
    hang_after: int | None = None  # keep the n-th meter event, then never answer it
    hung: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    @property
    def base(self) -> str:
        return self.server.url_for("").rstrip("/")

    # ----------------------------------------------------------------- assertions

    def seen(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def event_posts(self) -> list[Seen]:
        return self.seen("POST", "/v1/billing/meter_events")

    # ----------------------------------------------------------------- serving

    def handle(self, request: Request) -> Response:
        seen = Seen(request.method, request.path, dict(request.form.items()),
                    dict(request.args.items()), dict(request.headers.items()))
        with self.lock:
            self.requests.append(seen)
            if self.down or self.fail_next > 0 or (self.fail_when and self.fail_when(seen)):
                self.fail_next = max(self.fail_next - 1, 0)
                return _json({"error": {"type": "api_error", "message": "boom"}}, 500)
            slow = self.slow_next > 0
            self.slow_next = max(self.slow_next - 1, 0)
        if slow:
            time.sleep(self.slow_seconds)
        # Stripe keeps idempotency keys per account (and key)
        key = seen.headers.get("Idempotency-Key")
        key = key and (seen.headers.get("Stripe-Account"), seen.headers.get("Authorization"), key)
        with self.lock:
            if request.method == "POST" and key in self.replies:
                status, body = self.replies[key]
                return Response(body, status, content_type="application/json")
            status, body = self.route(seen)
            text = json.dumps(body)
            if request.method == "POST" and key:
                self.replies[key] = (status, text)
            hang = (request.path == "/v1/billing/meter_events" and self.hang_after is not None
                    and len(self.events) == self.hang_after)
        if hang:  # Stripe kept it; the answer never arrives
            self.hung.set()
            self.release.wait(60)
        return Response(text, status, content_type="application/json")

    def route(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        path, form = seen.path, seen.form
        if path == "/v1/billing/meters" and seen.method == "GET":
            mine = [m for m in self.meters.values() if m["scope"] == _scope(seen)]
            return 200, _list(mine, "/v1/billing/meters")
        if path == "/v1/billing/meters":
            meter = {"id": f"mtr_{next(self.ids)}", "object": "billing.meter",
                     "event_name": form["event_name"], "display_name": form["display_name"],
                     "status": "active", "scope": _scope(seen),
                     "default_aggregation": {"formula": form["default_aggregation[formula]"]}}
            self.meters[meter["id"]] = meter
            return 200, meter
        if path == "/v1/customers":
            customer = {"id": f"cus_{next(self.ids)}", "object": "customer",
                        "name": form.get("name"),
                        "metadata": {"overture_tenant_id": form.get(
                            "metadata[overture_tenant_id]")},
                        "account": seen.headers.get("Stripe-Account")}
            self.customers[customer["id"]] = customer
            return 200, customer
        if path == "/v1/billing/meter_events":
            return self.meter_event(seen)
        found = re.fullmatch(r"/v1/(products|prices|subscriptions|subscription_schedules)"
                             r"(?:/([^/]+))?", path)
        if found:
            return self.billing_object(seen, found.group(1), found.group(2))
        found = re.fullmatch(r"/v1/billing/meters/([^/]+)/event_summaries", path)
        if found:
            return 200, self.summaries(found.group(1), seen.query)
        return 404, {"error": {"type": "invalid_request_error", "message": f"no {path}"}}

    def meter_event(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        form = seen.form
        ident = form["identifier"]
        if ident in self.events:
            return 400, {"error": {"type": "invalid_request_error",
                                   "message": f"An event with identifier {ident} already "
                                              "exists."}}
        if not any(m["event_name"] == form["event_name"] and m["scope"] == _scope(seen)
                   for m in self.meters.values()):
            return 400, {"error": {"type": "invalid_request_error",
                                   "message": "no meter for this event_name"}}
        event = {"object": "billing.meter_event", "event_name": form["event_name"],
                 "identifier": ident, "timestamp": int(form["timestamp"]),
                 "payload": {"stripe_customer_id": form["payload[stripe_customer_id]"],
                             "value": form["payload[value]"]},
                 "account": seen.headers.get("Stripe-Account")}
        self.events[ident] = event
        return 200, event

    def billing_object(self, seen: Seen, kind: str, object_id: str | None
                       ) -> tuple[int, dict[str, Any]]:
        """Products, prices, subscriptions and schedules: each kept as the forms sent."""
        store = getattr(self, kind)
        if object_id is None:
            prefix = {"products": "prod", "prices": "price", "subscriptions": "sub",
                      "subscription_schedules": "sub_sched"}[kind]
            object_id = f"{prefix}_{next(self.ids)}"
            store[object_id] = {"id": object_id, "form": dict(seen.form), "updates": [],
                                "account": seen.headers.get("Stripe-Account")}
            if kind == "subscription_schedules":
                store[object_id]["subscription"] = seen.form["from_subscription"]
        elif object_id not in store:
            return 404, {"error": {"type": "invalid_request_error", "message": "no such"}}
        elif seen.method == "POST":
            store[object_id]["updates"].append(dict(seen.form))
        return 200, self.render(kind, store[object_id])

    def render(self, kind: str, kept: dict[str, Any]) -> dict[str, Any]:
        body = {"id": kept["id"], "object": kind.rstrip("s")}
        if kind == "subscription_schedules":
            sub = self.subscriptions[kept["subscription"]]
            start, end = self.period
            body |= {"object": "subscription_schedule", "status": "active",
                     "subscription": sub["id"],
                     "phases": [{"start_date": start, "end_date": end,
                                 "items": [{"price": p, "quantity": 1}
                                           for p in self.items_of(sub)]}]}
        return body

    @staticmethod
    def items_of(sub: dict[str, Any]) -> list[str]:
        form = sub["form"]
        return [form[f"items[{i}][price]"] for i in range(len(form))
                if f"items[{i}][price]" in form]

    def posts(self, path: str) -> list[Seen]:
        """The POSTs to a path that Stripe answered (not those failed on purpose), by
        their idempotency keys, first seen first."""
        return list({r.headers.get("Idempotency-Key"): r for r in self.seen("POST", path)
                     }.values())

    def summaries(self, meter_id: str, query: dict[str, str]) -> dict[str, Any]:
        meter = self.meters[meter_id]
        start, end = int(query["start_time"]), int(query["end_time"])
        sums: dict[int, Decimal] = defaultdict(Decimal)
        for event in self.events.values():
            if event["event_name"] == meter["event_name"] and \
                    event["payload"]["stripe_customer_id"] == query["customer"] and \
                    start <= event["timestamp"] < end:
                hour = event["timestamp"] - event["timestamp"] % 3600
                sums[hour] += Decimal(event["payload"]["value"])
        items = [{"id": f"mtrusg_{meter_id}_{h}", "object": "billing.meter_event_summary",
                  "aggregated_value": float(v), "start_time": h, "end_time": h + 3600,
                  "meter": meter_id, "livemode": False} for h, v in sorted(sums.items())]
        return _list(items, f"/v1/billing/meters/{meter_id}/event_summaries")


def _scope(seen: Seen) -> tuple[str | None, str | None]:
    """Which account a request acts in: its key, and a Connect account's header."""
    return seen.headers.get("Stripe-Account"), seen.headers.get("Authorization")


def _list(items: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": items, "has_more": False, "url": url}


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


# --------------------------------------------------------------------------- webhooks

T = int(datetime(2026, 12, 1, 9, tzinfo=UTC).timestamp())


def event(event_id, kind, obj, account=None, created=T):
    body = {"id": event_id, "object": "event", "type": kind, "created": created,
            "api_version": "2025-01-01", "data": {"object": obj}}
    if account:
        body["account"] = account
    return json.dumps(body).encode()


def invoice(invoice_id="in_1", customer="cus_nw", status="open", **extra):
    return {"id": invoice_id, "object": "invoice", "customer": customer, "status": status,
            "number": "NW-0001", "currency": "eur", "total": 12345,
            "period_start": T - 30 * 86400, "period_end": T,
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_x/test_1", **extra}


def post(app, payload, secret=WEBHOOK_SECRET, timestamp=None, header=None):
    signature = header if header is not None else sign(payload, secret, timestamp)
    return app.test_client().post("/webhooks/stripe", data=payload, headers={
        "Stripe-Signature": signature, "Content-Type": "application/json"})


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header made with Stripe's scheme: HMAC-SHA256 over
    `<timestamp>.<payload>` with the endpoint secret."""
    at = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


# --------------------------------------------------------------------------- fixtures


@contextmanager
def fake_stripe() -> Iterator[FakeStripe]:
    """A threaded server: a request left hanging does not hold up the others."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield FakeStripe(server)
    finally:
        server.clear()
        server.stop()


def use_stripe(app: Any, monkeypatch: Any, fake: FakeStripe, **changes: Any) -> Settings:
    """Point the app at the fake: the platform's key, its base address, fast retries."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.02)
    values = {"stripe_api_key": SECRET, "stripe_api_base": fake.base,
              "stripe_timeout_seconds": 2.0, "stripe_max_retries": 2,
              "stripe_settle_minutes": 10, "stripe_webhook_secrets": (WEBHOOK_SECRET,)}
    settings = dataclasses.replace(app.extensions["overture.settings"], **(values | changes))
    monkeypatch.setitem(app.extensions, "overture.settings", settings)
    return settings
