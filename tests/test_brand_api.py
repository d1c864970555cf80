"""The brand API (`-k brand`): a tenant's own fields, the effective brand built field by
field (workspace over agency over platform), checked uploads and colours, permissions
and the audit trail."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from sqlalchemy import select

from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from tests.brand_support import SVG, bomb_png, jpeg_with_exif, noisy_png, png, upload
from tests.support import as_key, as_user

AGENCY_BRAND = {"product_name": "Northwind Cloud", "primary": "#1d4ed8", "accent": "#f59e0b",
                "font": "fira-sans", "support_email": "Help@Northwind.example",
                "support_url": "https://help.northwind.example", "sender_name": "Northwind",
                "legal_footer": "Northwind Ltd.\nRegistered in England, 01234567."}


def problem_fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


def test_brand_an_agencys_brand_reaches_its_clients_and_no_one_else(app, world):
    agency = as_user(app, world, "nw_admin", "northwind")
    response = agency.patch("/brand", json=AGENCY_BRAND)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["own"]["support_email"] == "help@northwind.example"
    assert body["effective"]["product_name"] == "Northwind Cloud"
    assert body["effective"]["font_family"].startswith('"Fira Sans"')
    assert body["effective"]["on_primary"] == "#ffffff"

    client_view = as_user(app, world, "a_viewer", "a").get("/brand").get_json()
    assert client_view["own"]["product_name"] is None  # inherited, not copied
    effective = client_view["effective"]
    assert (effective["product_name"], effective["primary"], effective["legal_footer"]) == (
        "Northwind Cloud", "#1d4ed8", AGENCY_BRAND["legal_footer"])

    other = as_key(app, world, "c_owner").get("/brand").get_json()["effective"]
    assert other["product_name"] == "Overture" and other["primary"] == "#3451d1"


def test_brand_a_workspace_overrides_field_by_field_and_null_inherits_again(app, world):
    as_user(app, world, "nw_admin", "northwind").patch("/brand", json=AGENCY_BRAND)
    client = as_key(app, world, "a_admin")
    response = client.patch("/brand", json={"primary": "#0F766E", "accent": "#a855f7"})
    assert response.status_code == 200, response.get_data(as_text=True)
    effective = response.get_json()["effective"]
    assert (effective["primary"], effective["accent"]) == ("#0f766e", "#a855f7")
    assert effective["product_name"] == "Northwind Cloud"  # the rest is the agency's

    sibling = as_key(app, world, "b_admin").get("/brand").get_json()["effective"]
    assert sibling["primary"] == "#1d4ed8", "one workspace's override stays its own"

    cleared = client.patch("/brand", json={"primary": None, "accent": ""}).get_json()
    assert cleared["own"]["primary"] is None and cleared["own"]["accent"] is None
    assert cleared["effective"]["primary"] == "#1d4ed8"


def test_brand_an_agency_sets_a_client_workspaces_brand_through_the_tenant_header(app, world):
    agency = as_key(app, world, "nw_admin")
    response = agency.patch("/brand", tenant=world.tid("a"), json={"product_name": "Acme Portal"})
    assert response.status_code == 200
    assert response.get_json()["tenant_id"] == world.tid("a")
    assert as_key(app, world, "a_admin").get("/brand").get_json()["effective"][
        "product_name"] == "Acme Portal"
    assert agency.get("/brand").get_json()["effective"]["product_name"] == "Overture"
    # Another agency's workspace is not reachable.
    assert agency.patch("/brand", tenant=world.tid("c"), json={"product_name": "x"}
                        ).status_code == 404


def test_brand_an_agency_that_forbids_overrides_wins_and_says_why(app, world):
    client = as_key(app, world, "a_admin")
    client.patch("/brand", json={"primary": "#0f766e"})
    agency = as_key(app, world, "nw_admin")
    agency.patch("/brand", json={**AGENCY_BRAND, "clients_may_override": False})

    view = client.get("/brand").get_json()
    assert view["own"]["primary"] == "#0f766e"  # kept, but not shown
    assert view["effective"]["primary"] == "#1d4ed8"
    assert view["editable"] is False and "Northwind" in view["not_editable_because"]
    refused = client.patch("/brand", json={"primary": "#0f766e"})
    assert refused.status_code == 403 and "does not let" in refused.get_json()["detail"]

    other_agencys_client = as_key(app, world, "c_owner")
    fields = problem_fields(other_agencys_client.patch("/brand", json={"white_label": True}))
    assert "set by the agency" in fields["white_label"]


def test_brand_white_label_never_falls_back_to_the_platform_name(app, world):
    agency = as_key(app, world, "nw_admin")
    agency.patch("/brand", json={"white_label": True})
    effective = as_key(app, world, "a_admin").get("/brand").get_json()["effective"]
    assert effective["white_label"] is True
    assert effective["product_name"] == "Northwind" and effective["sender_name"] == "Northwind"


def test_brand_bad_input_is_refused_with_422_and_the_brand_stays_as_it_was(app, world):
    """Acceptance 3: an SVG, a 5 MB PNG, a text file named .png and a low-contrast
    colour pair are refused, and nothing stored changes."""
    client = as_user(app, world, "a_admin", "a")
    assert client.patch("/brand", json={"product_name": "Acme", "primary": "#1d4ed8"}
                        ).status_code == 200
    logo = upload(client, "logo", png())
    assert logo.status_code == 200, logo.get_data(as_text=True)
    before = client.get("/brand").get_json()
    logo_url = before["own"]["logo_url"]
    stored = client.client.get(logo_url).data

    refusals = {
        "svg": upload(client, "logo", SVG, "logo.svg", "image/svg+xml"),
        "svg named png": upload(client, "logo", SVG, "logo.png"),
        "5 MB png": upload(client, "logo", noisy_png(5 * 1024 * 1024)),
        "text named png": upload(client, "logo", b"just some text, honestly\n" * 20),
        "truncated png": upload(client, "logo", png()[:60]),
        "decompression bomb": upload(client, "logo", bomb_png()),
        "too many pixels": upload(client, "logo", bomb_png(4000, 3000)),
        "non-square favicon": upload(client, "favicon", png(64, 32)),
    }
    messages = {name: problem_fields(r)["file"] for name, r in refusals.items()}
    assert "SVG" in messages["svg"] and "SVG" in messages["svg named png"]
    assert "larger than 1 MB" in messages["5 MB png"]
    assert "not a readable PNG, JPEG or WebP" in messages["text named png"]
    assert "not a readable" in messages["truncated png"]
    assert "far beyond the limit" in messages["decompression bomb"]
    assert "4000x3000 pixels" in messages["too many pixels"]
    assert "64x32 pixels" in messages["non-square favicon"] and "square" in messages[
        "non-square favicon"]

    low = client.patch("/brand", json={"product_name": "Changed", "primary": "#ffd60a"})
    message = problem_fields(low)["primary"]
    assert "primary-coloured links on white (#ffd60a on #ffffff)" in message
    assert "1.41:1" in message and "4.5:1" in message  # (0.693 + .05) vs 1.05
    dark_accent = problem_fields(client.patch("/brand", json={"accent": "#1e293b"}))["accent"]
    assert "navigation" in dark_accent and "3:1" in dark_accent
    bad = problem_fields(client.patch("/brand", json={
        "primary": "blue", "font": "Comic Sans", "support_url": "javascript:alert(1)",
        "support_email": "not-an-address", "sender_name": "Evil <x@y>"}))
    assert set(bad) == {"primary", "font", "support_url", "support_email", "sender_name"}

    after = client.get("/brand").get_json()
    assert after == before
    assert client.client.get(logo_url).data == stored


def test_brand_uploads_are_reencoded_without_metadata_and_served_for_caching(app, world):
    client = as_key(app, world, "a_admin")
    body = upload(client, "logo", png(text={"Comment": "secret plans", "Author": "mallory"}))
    assert body.status_code == 200
    logo_url = body.get_json()["own"]["logo_url"]
    assert logo_url.startswith(f"/brand-assets/{world.tid('a')}/logo-")
    assert logo_url.endswith(".png")
    served = app.test_client().get(logo_url)  # anyone may fetch a logo: sign-in pages show it
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert b"secret plans" not in served.data and b"mallory" not in served.data
    assert Image.open(io.BytesIO(served.data)).size == (200, 60)

    photo = upload(client, "logo_dark", jpeg_with_exif(), "dark.jpg", "image/jpeg")
    dark_url = photo.get_json()["own"]["logo_dark_url"]
    served = app.test_client().get(dark_url)
    assert served.mimetype == "image/jpeg"
    assert b"SpyCam" not in served.data and b"secret-firmware" not in served.data
    assert not Image.open(io.BytesIO(served.data)).getexif()

    # Replacing an image retires the old URL; removing one brings back the inherited one.
    replaced = upload(client, "logo", png(300, 100)).get_json()["own"]["logo_url"]
    assert replaced != logo_url and app.test_client().get(logo_url).status_code == 404
    removed = client.delete("/brand/assets/logo").get_json()
    assert removed["own"]["logo_url"] is None and removed["effective"]["logo_url"] is None
    assert app.test_client().get(replaced).status_code == 404
    assert client.delete("/brand/assets/banner").status_code == 404


def test_brand_assets_are_found_only_under_their_own_tenant(app, world):
    logo_url = upload(as_key(app, world, "a_admin"), "logo", png()).get_json()["own"]["logo_url"]
    name = logo_url.rsplit("/", 1)[1]
    anonymous = app.test_client()
    assert anonymous.get(f"/brand-assets/{world.tid('b')}/{name}").status_code == 404
    assert anonymous.get(f"/brand-assets/{world.tid('a')}/logo-0000.png").status_code == 404
    assert anonymous.get("/brand-assets/not-a-uuid/x.png").status_code == 404


def test_brand_reading_needs_tenant_read_and_changing_needs_tenant_manage(app, world):
    viewer = as_user(app, world, "a_viewer", "a")
    assert viewer.get("/brand").status_code == 200
    assert viewer.patch("/brand", json={"product_name": "Mine"}).status_code == 403
    assert upload(viewer, "logo", png()).status_code == 403
    assert viewer.delete("/brand/assets/logo").status_code == 403
    portal_member = as_user(app, world, "a_member", "a")
    assert portal_member.get("/brand").status_code == 403
    readonly_key = as_key(app, world, "a_readonly")
    assert readonly_key.get("/brand").status_code == 200
    assert readonly_key.patch("/brand", json={"product_name": "x"}).status_code == 403
    fields = problem_fields(as_key(app, world, "a_admin").patch("/brand", json={"colour": "x"}))
    assert "colour" in fields


def test_brand_changes_are_audited_in_the_tenants_log(app, world):
    client = as_key(app, world, "a_admin")
    client.patch("/brand", json={"product_name": "Acme", "primary": "#0f766e"})
    client.patch("/brand", json={"product_name": "Acme"})  # no change, no event
    upload(client, "favicon", png(32, 32))
    client.delete("/brand/assets/favicon")
    with scoped_to(world.tenants["a"].id):
        events = list(db.session.scalars(select(AuditEvent).where(
            AuditEvent.action.like("brand.%")).order_by(AuditEvent.seq)))
    assert [e.action for e in events] == ["brand.updated", "brand.asset_uploaded",
                                          "brand.asset_removed"]
    assert events[0].details == {"changed": {"product_name": "Acme", "primary": "#0f766e"}}
    assert events[0].actor_label.startswith(world.keys["a_admin"][0].prefix)
    assert events[1].details["kind"] == "favicon" and events[1].details["width"] == 32


def test_brand_endpoints_are_in_the_openapi_document(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    assert {"get", "patch"} <= set(spec["paths"]["/api/v1/brand"])
    put = spec["paths"]["/api/v1/brand/assets/{kind}"]["put"]
    assert "multipart/form-data" in put["requestBody"]["content"]
    assert "422" in put["responses"] and put["tags"] == ["Brand"]
    update = spec["components"]["schemas"]["BrandUpdate"]["properties"]
    assert update["primary"]["pattern"] == "^#[0-9a-fA-F]{6}$"
