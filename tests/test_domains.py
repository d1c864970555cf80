"""Custom domains through the API, verified against a real DNS server (dnslib on a
random loopback port, tests/dns_server.py): the record to create, verification when it
is there, plain answers when it is missing or wrong, one tenant per domain (409, races
included), and serving that starts on verification and stops on removal or a failed
re-check.

Whether a host is served as a tenant's is read where a person sees it: on a verified
domain `/` leads to that tenant's portal; anywhere else it is the platform's own page.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from overture.platform.config import load_settings
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.errors import ConfigError
from overture.tenants.domain_models import CustomDomain
from tests.dns_server import Zone
from tests.domain_support import OnHost, add_verified
from tests.engine_api_support import audit_events
from tests.support import as_key

HOST = "portal.acme.example"


def served_as(app: Any, host: str) -> str | None:
    """The portal `/` leads to on `host`, or None where the host is not a tenant's."""
    response = OnHost(app, host).get("/")
    location = response.headers.get("Location", "")
    if response.status_code == 302 and location.startswith("/portal/"):
        return location
    return None


def add(app: Any, world: Any, handle: str, tenant: str, hostname: str = HOST) -> Any:
    return as_key(app, world, handle, tenant).post("/domains", json={"hostname": hostname})


# --------------------------------------------------------------------------- the happy path


def test_domain_is_served_only_once_its_record_is_found(app, world, dns_zone: Zone):
    api = as_key(app, world, "a_admin", "a")
    response = api.post("/domains", json={"hostname": " Portal.ACME.example. "})
    assert response.status_code == 201, response.get_json()
    domain = response.get_json()
    assert domain["hostname"] == HOST and domain["status"] == "pending"
    record = domain["record"]
    assert record["type"] == "TXT" and record["name"] == f"_verify.{HOST}"
    assert record["value"].startswith("verify=") and len(record["value"]) > 30
    assert "overture" not in (record["name"] + record["value"]).lower()
    assert served_as(app, HOST) is None  # added is not verified

    dns_zone.txt(record["name"], "v=spf1 -all", record["value"])
    checked = api.post(f"/domains/{domain['id']}/verify")
    assert checked.status_code == 200, checked.get_json()
    body = checked.get_json()
    assert body["status"] == "verified" and body["check"]["ok"] is True
    assert body["verified_at"] and body["last_check_error"] is None
    assert (f"_verify.{HOST}.", "TXT") in dns_zone.queries

    assert served_as(app, HOST) == "/portal/ws-a/"
    assert served_as(app, "PORTAL.acme.example:8443") == "/portal/ws-a/"  # as browsers vary
    assert [e["details"]["hostname"] for e in audit_events(world.tenants["a"].id,
                                                           "domain.added")] == [HOST]
    assert len(audit_events(world.tenants["a"].id, "domain.verified")) == 1


def test_quoted_values_and_unicode_names_are_understood(app, world, dns_zone: Zone):
    api = as_key(app, world, "a_admin", "a")
    domain = add(app, world, "a_admin", "a", "Bücher.example").get_json()
    assert domain["hostname"] == "xn--bcher-kva.example"
    assert domain["display_name"] == "bücher.example"
    # Some DNS consoles keep the quotes a person typed around the value.
    dns_zone.txt(domain["record"]["name"], f'"{domain["record"]["value"]}"')
    assert api.post(f"/domains/{domain['id']}/verify").get_json()["check"]["ok"] is True
    assert served_as(app, "xn--bcher-kva.example") == "/portal/ws-a/"


# --------------------------------------------------------------------------- when it is not there


def test_missing_record_is_said_plainly_and_nothing_is_served(app, world, dns_zone: Zone):
    api = as_key(app, world, "a_admin", "a")
    domain = add(app, world, "a_admin", "a").get_json()
    body = api.post(f"/domains/{domain['id']}/verify").get_json()
    assert body["status"] == "pending" and body["check"]["ok"] is False
    message = body["check"]["message"]
    assert f"No record exists at _verify.{HOST}" in message
    assert domain["record"]["value"] in message  # what to create instead
    assert body["last_check_error"] == message  # kept, for the console's next visit

    dns_zone.exists(f"_verify.{HOST}")  # the name now exists, with no TXT record
    message = api.post(f"/domains/{domain['id']}/verify").get_json()["check"]["message"]
    assert f"_verify.{HOST} exists but holds no TXT record" in message
    assert served_as(app, HOST) is None
    assert audit_events(world.tenants["a"].id, "domain.verified") == []


def test_wrong_token_shows_what_was_found(app, world, dns_zone: Zone):
    api = as_key(app, world, "a_admin", "a")
    domain = add(app, world, "a_admin", "a").get_json()
    dns_zone.txt(domain["record"]["name"], "verify=someone-elses-token",
                 "google-site-verification=x")
    body = api.post(f"/domains/{domain['id']}/verify").get_json()
    assert body["status"] == "pending"
    message = body["check"]["message"]
    assert "Found 2 TXT records" in message
    assert "'verify=someone-elses-token'" in message and "'google-site-verification=x'" in message
    assert domain["record"]["value"] in message
    assert served_as(app, HOST) is None


def test_a_record_made_on_the_domain_itself_is_pointed_out(app, world, dns_zone: Zone):
    api = as_key(app, world, "a_admin", "a")
    domain = add(app, world, "a_admin", "a").get_json()
    dns_zone.txt(HOST, domain["record"]["value"])
    message = api.post(f"/domains/{domain['id']}/verify").get_json()["check"]["message"]
    assert f"The record is on {HOST} itself; it must be on _verify.{HOST}" in message
    assert served_as(app, HOST) is None


def test_a_failing_resolver_changes_nothing(app, world, dns_zone: Zone):
    domain = add_verified(world, "a_admin", "a", HOST, dns_zone)
    dns_zone.servfail = True
    body = as_key(app, world, "a_admin", "a").post(f"/domains/{domain.id}/verify").get_json()
    assert body["check"]["ok"] is False and "could not be made" in body["check"]["message"]
    assert body["status"] == "verified"  # no answer says nothing about the record
    assert served_as(app, HOST) == "/portal/ws-a/"


# --------------------------------------------------------------------------- one tenant each


def test_a_domain_verified_by_another_tenant_is_refused(app, world, dns_zone: Zone):
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    refused = add(app, world, "b_admin", "b")
    assert refused.status_code == 409
    assert refused.get_json()["type"] == "urn:overture:problem:conflict"
    assert f"another workspace holds {HOST} verified" in refused.get_json()["detail"]
    again = add(app, world, "a_admin", "a")
    assert again.status_code == 409 and "this workspace already has" in again.get_json()["detail"]
    assert served_as(app, HOST) == "/portal/ws-a/"  # still A's


def test_a_pending_claim_cannot_take_a_domain_verified_since(app, world, dns_zone: Zone):
    """Claims may wait side by side (nobody can block a name by claiming it first), but
    once one is verified the other cannot be, even with its own record in place."""
    b_claim = add(app, world, "b_admin", "b").get_json()
    dns_zone.txt(b_claim["record"]["name"], b_claim["record"]["value"])
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    refused = as_key(app, world, "b_admin", "b").post(f"/domains/{b_claim['id']}/verify")
    assert refused.status_code == 409, refused.get_json()
    assert served_as(app, HOST) == "/portal/ws-a/"


def test_two_tenants_verifying_at_once_one_wins(app, world, dns_zone: Zone):
    claims = {h: add(app, world, f"{h}_admin", h).get_json() for h in ("a", "b")}
    for claim in claims.values():
        dns_zone.txt(claim["record"]["name"], claim["record"]["value"])
    # The DNS server holds each answer until both checks have asked: both then find
    # their record, and both try to take the name at the same moment.
    both_asked = threading.Barrier(2, timeout=60)
    dns_zone.before_answer = lambda name: both_asked.wait() if name.startswith("_verify") else None
    statuses: dict[str, int] = {}

    def verify(handle: str) -> None:
        api = as_key(app, world, f"{handle}_admin", handle)
        statuses[handle] = api.post(f"/domains/{claims[handle]['id']}/verify").status_code

    threads = [threading.Thread(target=verify, args=(h,)) for h in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not both_asked.broken
    assert sorted(statuses.values()) == [200, 409], statuses
    winner = next(h for h, status in statuses.items() if status == 200)
    assert served_as(app, HOST) == f"/portal/{world.tenants[winner].slug}/"


def test_the_database_refuses_a_second_verified_holder(app, world, dns_zone: Zone):
    """However the checks interleave, the partial unique index has the last word."""
    b_claim = add(app, world, "b_admin", "b").get_json()
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    with scoped_to(world.tenants["b"].id):
        row = db.session.get(CustomDomain, uuid.UUID(b_claim["id"]))
        row.verified_at = utcnow()
        with pytest.raises(IntegrityError, match="uq_custom_domains_verified_hostname"):
            db.session.flush()
        db.session.rollback()


# --------------------------------------------------------------------------- removal and re-checks


def test_a_removed_domain_stops_being_served_at_once(app, world, dns_zone: Zone):
    domain = add_verified(world, "a_admin", "a", HOST, dns_zone)
    assert served_as(app, HOST) == "/portal/ws-a/"
    api = as_key(app, world, "a_admin", "a")
    assert api.delete(f"/domains/{domain.id}").status_code == 204
    assert served_as(app, HOST) is None  # the very next request
    assert api.get(f"/domains/{domain.id}").status_code == 404
    (removed,) = audit_events(world.tenants["a"].id, "domain.removed")
    assert removed["details"] == {"hostname": HOST, "was_verified": True}
    # Now free: another tenant may take it, with its own record.
    b_claim = add(app, world, "b_admin", "b")
    assert b_claim.status_code == 201


def test_a_recheck_that_finds_the_record_gone_stops_serving(app, world, dns_zone: Zone):
    domain = add_verified(world, "a_admin", "a", HOST, dns_zone)
    domain_id, token = domain.id, domain.token
    api = as_key(app, world, "a_admin", "a")
    still = api.post(f"/domains/{domain_id}/verify").get_json()
    assert still["check"]["ok"] and still["status"] == "verified"

    dns_zone.clear(f"_verify.{HOST}")
    lost = api.post(f"/domains/{domain_id}/verify").get_json()
    assert lost["status"] == "pending" and "is no longer served" in lost["check"]["message"]
    assert served_as(app, HOST) is None
    assert len(audit_events(world.tenants["a"].id, "domain.unverified")) == 1

    dns_zone.txt(f"_verify.{HOST}", f"verify={token}")  # put back: verified again
    again = api.post(f"/domains/{domain_id}/verify").get_json()
    assert again["status"] == "verified"
    assert served_as(app, HOST) == "/portal/ws-a/"


def test_a_suspended_tenants_domain_is_not_served(app, world, dns_zone: Zone):
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    nw = as_key(app, world, "nw_admin", "northwind")
    assert nw.post(f"/tenants/{world.tid('a')}/suspend").status_code == 200
    assert served_as(app, HOST) is None


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(("raw", "says"), [
    ("https://portal.acme.example/", "host name only"),
    ("portal.acme.example:8443", "host name only"),
    ("portal acme.example", "host name only"),
    ("1.2.3.4", "IP address"),
    ("::1", "host name only"),
    ("127.1", "IP address"),
    ("1.0x7f", "IP address"),
    ("*.acme.example", "wildcards"),
    ("intranet", "with a dot"),
    ("portal.localhost", "localhost"),
    ("-portal.acme.example", "not a valid domain name"),
    ("a..example", "not a valid domain name"),
    ("x" * 64 + ".example", "not a valid domain name"),
    ("under_score.example", "not a valid domain name"),
    ("   ", "enter a domain"),
])
def test_names_that_cannot_be_a_tenants_domain_are_422(app, world, raw, says):
    response = add(app, world, "a_admin", "a", raw)
    assert response.status_code == 422, (raw, response.get_json())
    problem = response.get_json()
    assert problem["errors"][0]["field"] == "hostname"
    assert says in problem["errors"][0]["message"], problem


def test_the_platforms_own_host_is_refused(app, world):
    settings = app.extensions["overture.settings"]
    app.extensions["overture.settings"] = replace(settings,
                                                  public_url="https://app.overture.example")
    try:
        for name in ("app.overture.example", "eu.app.overture.example"):
            response = add(app, world, "a_admin", "a", name)
            assert response.status_code == 422, name
            assert "platform's own address" in response.get_json()["detail"]
        assert add(app, world, "a_admin", "a", "overture.example").status_code == 201
    finally:
        app.extensions["overture.settings"] = settings


# --------------------------------------------------------------------------- who may


def test_reading_needs_tenant_read_and_changing_tenant_manage(app, world, dns_zone: Zone):
    domain = add_verified(world, "a_admin", "a", HOST, dns_zone)
    readonly = as_key(app, world, "a_readonly", "a")  # tenant.read and member.read only
    listed = readonly.get("/domains")
    assert listed.status_code == 200
    assert [d["hostname"] for d in listed.get_json()["items"]] == [HOST]
    assert readonly.post("/domains", json={"hostname": "x.acme.example"}).status_code == 403
    assert readonly.post(f"/domains/{domain.id}/verify").status_code == 403
    assert readonly.delete(f"/domains/{domain.id}").status_code == 403
    assert served_as(app, HOST) == "/portal/ws-a/"


def test_another_tenant_neither_sees_nor_touches_a_domain(app, world, dns_zone: Zone):
    domain = add_verified(world, "a_admin", "a", HOST, dns_zone)
    b = as_key(app, world, "b_admin", "b")
    assert b.get("/domains").get_json()["items"] == []
    assert b.get(f"/domains/{domain.id}").status_code == 404
    assert b.post(f"/domains/{domain.id}/verify").status_code == 404
    assert b.delete(f"/domains/{domain.id}").status_code == 404
    with scoped_to(world.tenants["a"].id):
        assert db.session.scalars(select(CustomDomain)).one().verified
        db.session.rollback()
    assert served_as(app, HOST) == "/portal/ws-a/"


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(("name", "value", "says"), [
    ("OVERTURE_DNS_NAMESERVERS", "1.1.1.1, resolver.example", "expected IP addresses"),
    ("OVERTURE_DNS_PORT", "70000", "port number"),
    ("OVERTURE_DNS_TIMEOUT_SECONDS", "0", "positive number"),
    ("OVERTURE_DOMAIN_TXT_LABEL", "_acme-challenge", "not _acme-challenge"),
    ("OVERTURE_DOMAIN_TXT_LABEL", "two.labels", "one DNS label"),
])
def test_bad_dns_settings_stop_the_start(tmp_path, name, value, says):
    env = {"OVERTURE_ENV": "test", "OVERTURE_INSTANCE_PATH": str(tmp_path), name: value}
    with pytest.raises(ConfigError, match=says):
        load_settings(env)


def test_dns_settings_are_read(tmp_path):
    settings = load_settings({"OVERTURE_ENV": "test", "OVERTURE_INSTANCE_PATH": str(tmp_path),
                              "OVERTURE_DNS_NAMESERVERS": "9.9.9.9, 2620:fe::fe",
                              "OVERTURE_DNS_PORT": "5353",
                              "OVERTURE_DOMAIN_TXT_LABEL": "_Acme-Cloud-Verify"})
    assert settings.dns_nameservers == ("9.9.9.9", "2620:fe::fe")
    assert settings.dns_port == 5353 and settings.domain_txt_label == "_acme-cloud-verify"
