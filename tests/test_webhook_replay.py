"""Signed webhooks cannot be replayed: the signature covers a timestamp with the body
(Standard Webhooks, or `X-Overture-Signature: t=...,v1=...`), a call signed more than
five minutes away from now is refused, and a delivery starts one run however often,
under whichever header, and however concurrently it arrives (`-k webhook`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlparse

import standardwebhooks
from sqlalchemy import func, select

from overture.orchestration.models import Run
from overture.platform import webhook_signing
from overture.platform.db import db, scoped_to
from tests.engine_api_support import at_once, ok, publish_via_api
from tests.support import as_key

ECHO = {"steps": [{"id": "echo", "type": "transform", "output": {"n": "{{ input.n }}"}}]}
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-secret-0123456").decode()
PLAIN_SECRET = "a plain signing secret of old"  # the kind callers of sha256= were given
JSON = {"Content-Type": "application/json"}


def signed_workflow(app, world, secret: str) -> str:
    """A published workflow whose webhook requires a signature; its webhook path."""
    admin = as_key(app, world, "a_admin")
    workflow = publish_via_api(admin, ECHO)
    credential = ok(admin.post("/credentials", json={
        "name": f"signing {uuid.uuid4().hex[:6]}", "kind": "custom",
        "fields": {"secret": secret}, "secret_fields": ["secret"]}), 201)
    ok(admin.patch(f"/workflows/{workflow['id']}",
                   json={"webhook_credential_id": credential["id"]}))
    return urlparse(workflow["webhook_url"]).path


def run_count(world) -> int:
    with scoped_to(world.tenants["a"].id):
        count = db.session.scalar(select(func.count()).select_from(Run)
                                  .where(Run.trigger == "webhook"))
        db.session.rollback()
    return count


def standard(body: bytes, at: float | None = None, msg_id: str | None = None,
             secret: str = STANDARD_SECRET) -> dict[str, str]:
    """Headers signed by the Standard Webhooks reference library (not by our code)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = datetime.fromtimestamp(int(time.time() if at is None else at), tz=UTC)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, when, body.decode())
    return {**JSON, "webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature}


def overture_mac(secret: str, stamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


def overture(body: bytes, at: float | None = None, secret: str = PLAIN_SECRET) -> dict[str, str]:
    stamp = int(time.time() if at is None else at)
    return {**JSON, "X-Overture-Signature": f"t={stamp},v1={overture_mac(secret, stamp, body)}"}


def refused(response, reason: str) -> str:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["reason"] == reason, problem
    return problem["detail"]


def test_webhook_replaying_a_signed_call_starts_no_second_run(app, world):
    for secret, sign in ((STANDARD_SECRET, standard), (PLAIN_SECRET, overture)):
        path, caller = signed_workflow(app, world, secret), app.test_client()
        body = json.dumps({"n": 1}).encode()
        headers = sign(body)
        first = caller.post(path, data=body, headers=headers)
        assert first.status_code == 202, first.get_data(as_text=True)
        assert first.get_json()["status"] == "queued"
        replays = [caller.post(path, data=body, headers=headers),
                   # an unsigned event id added to a capture does not make it new
                   caller.post(path, data=body, headers={**headers, "X-Event-Id": "fresh-1"}),
                   caller.post(path, data=body, headers={**headers, "X-GitHub-Delivery":
                                                         str(uuid.uuid4())})]
        for replay in replays:
            assert replay.status_code == 202, replay.get_data(as_text=True)
            assert replay.get_json() == {"run_id": first.get_json()["run_id"],
                                         "status": "existing"}
    assert run_count(world) == 2


def test_webhook_timestamp_more_than_five_minutes_away_is_refused(app, world):
    for started, (secret, sign) in enumerate(((STANDARD_SECRET, standard),
                                              (PLAIN_SECRET, overture))):
        path, caller = signed_workflow(app, world, secret), app.test_client()
        body = json.dumps({"n": 2}).encode()
        stale = caller.post(path, data=body, headers=sign(body, at=time.time() - 6 * 60))
        assert "seconds old" in refused(stale, "expired")
        ahead = caller.post(path, data=body, headers=sign(body, at=time.time() + 6 * 60))
        assert "in the future" in refused(ahead, "from-the-future")
        assert run_count(world) == started
        recent = caller.post(path, data=body, headers=sign(body, at=time.time() - 4 * 60))
        assert recent.status_code == 202, recent.get_data(as_text=True)
    assert run_count(world) == 2


def test_webhook_tampered_call_is_refused(app, world):
    body, other = json.dumps({"n": 3}).encode(), json.dumps({"n": 4}).encode()
    path, caller = signed_workflow(app, world, STANDARD_SECRET), app.test_client()
    headers = standard(body)
    earlier = str(int(headers["webhook-timestamp"]) - 1)
    tampered = [(other, headers), (body, {**headers, "webhook-id": "msg_other"}),
                (body, {**headers, "webhook-timestamp": earlier}),
                (body, standard(body, secret="whsec_" + base64.b64encode(b"x" * 24).decode()))]
    for data, sent in tampered:
        refused(caller.post(path, data=data, headers=sent), "mismatch")
    assert caller.post(path, data=body, headers=headers).status_code == 202

    path = signed_workflow(app, world, PLAIN_SECRET)
    headers = overture(body)
    stamp = int(headers["X-Overture-Signature"][2:].split(",")[0]) - 1  # another time
    moved = f"t={stamp},v1={headers['X-Overture-Signature'].split('v1=')[1]}"
    for data, sent in ((other, headers), (body, {**headers, "X-Overture-Signature": moved}),
                       (body, overture(body, secret="not the secret"))):
        refused(caller.post(path, data=data, headers=sent), "mismatch")
    assert caller.post(path, data=body, headers=headers).status_code == 202
    assert run_count(world) == 2


def test_webhook_body_only_signature_is_refused_naming_the_new_scheme(app, world):
    path, caller = signed_workflow(app, world, PLAIN_SECRET), app.test_client()
    body = json.dumps({"n": 5}).encode()
    old = "sha256=" + hmac.new(PLAIN_SECRET.encode(), body, hashlib.sha256).hexdigest()
    detail = refused(caller.post(path, data=body, headers={**JSON, "X-Overture-Signature": old}),
                     "legacy-scheme")
    assert "no longer accepted" in detail
    assert "webhook-timestamp" in detail and "t=<Unix seconds>,v1=" in detail
    missing = refused(caller.post(path, data=body, headers=JSON), "missing")
    assert "webhook-signature" in missing and "X-Overture-Signature" in missing
    assert run_count(world) == 0


def test_webhook_several_signatures_let_a_sender_rotate_its_secret(app, world):
    body = json.dumps({"n": 6}).encode()
    old_secret = "whsec_" + base64.b64encode(b"the secret being retired").decode()
    path, caller = signed_workflow(app, world, STANDARD_SECRET), app.test_client()
    headers = standard(body, secret=old_secret)
    ours = standard(body, msg_id=headers["webhook-id"])["webhook-signature"]
    both = {**headers, "webhook-signature": f"v1a,c29tZSBlZDI1NTE5 v1,!!! "
                                            f"{headers['webhook-signature']} {ours}"}
    assert caller.post(path, data=body, headers=both).status_code == 202

    path = signed_workflow(app, world, PLAIN_SECRET)
    stamp = int(time.time())
    rotated = (f"t={stamp},v1={overture_mac('retired secret', stamp, body)},v1=zz,"
               f"v0=ignored,v1={overture_mac(PLAIN_SECRET, stamp, body)}")
    assert caller.post(path, data=body, headers={**JSON, "X-Overture-Signature": rotated}
                       ).status_code == 202
    assert run_count(world) == 2


def test_webhook_malformed_signature_headers_are_401_problems(app, world):
    body = json.dumps({"n": 7}).encode()
    path, caller = signed_workflow(app, world, PLAIN_SECRET), app.test_client()
    good = overture(body)["X-Overture-Signature"]
    for value in ("t=abc,v1=00", "v1=00", "t=1,t=2,v1=00", good + "é", "ü=ü", "t=1e9,v1=00"):
        r = caller.post(path, data=body, headers={**JSON, "X-Overture-Signature": value})
        assert r.status_code == 401, (value, r.status_code, r.get_data(as_text=True))
        assert r.mimetype == "application/problem+json" and r.get_json()["reason"], value
    sw = standard(body)
    for name, value in (("webhook-signature", "garbage"), ("webhook-signature", "v1,ü"),
                        ("webhook-timestamp", "soon"), ("webhook-timestamp", "-1"),
                        ("webhook-id", "")):
        r = caller.post(path, data=body, headers={**sw, name: value})
        assert r.status_code == 401, (name, value, r.status_code, r.get_data(as_text=True))
        assert r.mimetype == "application/problem+json", (name, value)
    assert run_count(world) == 0


def test_webhook_same_delivery_under_other_header_names_starts_one_run(app, world):
    workflow = publish_via_api(as_key(app, world, "a_admin"), ECHO)
    path, caller = urlparse(workflow["webhook_url"]).path, app.test_client()
    delivery = uuid.uuid4()
    spellings = [{"X-Event-Id": str(delivery)}, {"x-event-id": str(delivery).upper()},
                 {"webhook-id": str(delivery)}, {"WEBHOOK-ID": f"{{{delivery}}}"},
                 {"X-GitHub-Delivery": str(delivery).upper()},
                 {"X-Shopify-Webhook-Id": delivery.hex}]
    answers = [caller.post(path, json={"n": 8}, headers=h).get_json() for h in spellings]
    answers.append(caller.post(path, json={"n": 8, "event_id": str(delivery)}).get_json())
    assert len({a["run_id"] for a in answers}) == 1, answers
    assert [a["status"] for a in answers] == ["queued"] + ["existing"] * 6

    # Ids that are not UUIDs are case-sensitive (Stripe's are): two events, two runs.
    upper = caller.post(path, json={"n": 9}, headers={"X-Event-Id": "evt_1AbC"}).get_json()
    lower = caller.post(path, json={"n": 9}, headers={"webhook-id": "evt_1abc"}).get_json()
    same = caller.post(path, json={"n": 9}, headers={"X-Delivery-Id": "evt_1AbC"}).get_json()
    assert upper["run_id"] != lower["run_id"] and same == {**upper, "status": "existing"}
    assert run_count(world) == 3


def test_webhook_concurrent_duplicate_signed_deliveries_start_one_run(app, world):
    body = json.dumps({"n": 10}).encode()
    for secret, sign in ((STANDARD_SECRET, standard), (PLAIN_SECRET, overture)):
        path, headers = signed_workflow(app, world, secret), sign(body)
        answers = at_once(*[lambda p=path, h=headers: app.test_client().post(
            p, data=body, headers=h) for _ in range(6)])
        assert [r.status_code for r in answers] == [202] * 6, [r.get_data() for r in answers]
        assert len({r.get_json()["run_id"] for r in answers}) == 1
        assert sorted(r.get_json()["status"] for r in answers) == ["existing"] * 5 + ["queued"]
    assert run_count(world) == 2


def test_webhook_signing_interoperates_with_the_standard_webhooks_library():
    """Our signer and the reference library agree both ways, on a whsec_ secret whose
    base64 is unpadded as well."""
    body, msg_id, now = b'{"n": 11}', "msg_interop", int(time.time())
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode().rstrip("=")
    ours = webhook_signing.sign_standard(secret, msg_id, now, body)
    assert standardwebhooks.Webhook(secret).verify(body, ours) == {"n": 11}
    theirs = standard(body, at=now, msg_id=msg_id, secret=secret)
    assert ours["webhook-signature"] == theirs["webhook-signature"]
    delivery = webhook_signing.verify(secret, theirs, body)
    assert (delivery.scheme, delivery.message_id) == ("standard-webhooks", msg_id)
