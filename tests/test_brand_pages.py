"""The brand on pages and mail (`-k brand`): the console, its error pages, the approval
page and the mail a workspace sends carry the workspace's brand; with white-label on
nothing a client's person can reach says "Overture"; a change shows on the next page;
the Brand page edits it with the API's checks and messages."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import uuid
from typing import Any

from sqlalchemy import select

from overture.orchestration import approvals
from overture.orchestration.models import Approval
from overture.platform import mail, mail_delivery
from overture.platform.db import db, scoped_to
from overture.platform.mail import OutboxMessage
from overture.tenants import invitations
from overture.tenants.access import Principal, access_to
from overture.tenants.roles import Role
from overture.web.console import settings as settings_page
from tests.brand_support import SVG, png, upload
from tests.console_support import HTML, browse, page_text, seed_activity
from tests.portal_support import PORTAL
from tests.portal_support import sign_in as portal_sign_in
from tests.support import as_key

STYLE_RE = re.compile(r"<style>(.*?)</style>", re.S)
WHITE_LABEL = {"product_name": "Northwind Cloud", "primary": "#0f766e", "accent": "#f59e0b",
               "white_label": True, "support_email": "help@northwind.example",
               "legal_footer": "Northwind Ltd, 1 Harbour Street"}


def set_brand(app: Any, world: Any, handle: str, **fields: Any) -> None:
    response = as_key(app, world, handle).patch("/brand", json=fields)
    assert response.status_code == 200, response.get_data(as_text=True)


def assert_says_no_platform_name(response: Any, what: str) -> None:
    body = response.get_data(as_text=True)
    found = [m.start() for m in re.finditer("overture", body, re.I)]
    assert not found, (what, [body[max(0, i - 60):i + 40] for i in found])
    for name, value in response.headers.items():
        assert "overture" not in f"{name}: {value}".lower(), (what, name, value)


def test_brand_console_pages_show_the_workspaces_brand_allowed_by_the_csp(app, world):
    set_brand(app, world, "nw_admin", product_name="Northwind Cloud", primary="#1d4ed8")
    set_brand(app, world, "a_admin", primary="#0f766e", accent="#f59e0b", font="open-sans")
    person = browse(app, world, "a_admin")
    response = person.get("/runs")
    html = response.get_data(as_text=True)
    assert "<title>Runs · Workspace A · Northwind Cloud</title>" in html
    (css,) = STYLE_RE.findall(html)
    assert "--brand-primary:#0f766e;--brand-accent:#f59e0b" in css
    assert '--brand-font:"Open Sans"' in css
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    csp = response.headers["Content-Security-Policy"]
    assert f"style-src 'self' 'sha256-{digest}'" in csp
    assert "Powered by Overture" in page_text(response)  # white-label is off

    # A sibling workspace shows the agency's brand; another agency's the platform's.
    sibling = browse(app, world, "b_admin").get("/runs").get_data(as_text=True)
    assert "--brand-primary:#1d4ed8" in sibling and "Northwind Cloud</title>" in sibling
    other = browse(app, world, "c_owner").get("/runs").get_data(as_text=True)
    assert "--brand-primary:#3451d1" in other and other.count("Overture") >= 1


def test_brand_a_change_shows_on_the_next_page_without_a_restart(app, world):
    person = browse(app, world, "a_admin")
    assert "Workspace A · Overture</title>" in person.text("/settings")
    set_brand(app, world, "a_admin", product_name="Acme Portal")
    assert "Workspace A · Acme Portal</title>" in person.text("/settings")
    set_brand(app, world, "a_admin", product_name=None)
    assert "Workspace A · Overture</title>" in person.text("/settings")


def test_brand_white_label_no_page_header_or_error_page_says_overture(app, world, monkeypatch):
    seed_activity(world.tenants["a"].id, "Refunds", succeeded=2, failed=1, waiting=True)
    set_brand(app, world, "nw_admin", **WHITE_LABEL)
    set_brand(app, world, "a_admin", primary="#7c3aed")
    upload(as_key(app, world, "a_admin"), "logo", png())
    owner = browse(app, world, "a_owner")
    viewer = browse(app, world, "a_viewer")
    pages = {path: owner.get(path) for path in (
        "/", "/runs", "/workflows", "/approvals", "/agents", "/connections", "/knowledge",
        "/members", "/api-keys", "/audit", "/settings", "/brand", "/triggers", "/profile",
        "/account/mfa", "/no-such-page")}
    pages["forbidden page"] = viewer.get("/api-keys")
    # The portal, the workspace's customers' side: the same brand, the same way.
    customer = portal_sign_in(app, world)
    pages["portal home"] = customer.get("/")
    pages["portal not found"] = customer.get(f"/runs/{uuid.uuid4()}")
    pages["portal sign-in"] = app.test_client().get(PORTAL + "/login", headers=HTML)
    assert pages["portal home"].status_code == 200
    assert pages["portal not found"].status_code == 404
    pages["forbidden post"] = viewer.post("/brand", {"product_name": "Mine"})
    assert pages["/no-such-page"].status_code == 404
    assert pages["forbidden page"].status_code == 403
    assert pages["forbidden post"].status_code == 403

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the settings page broke")

    monkeypatch.setattr(settings_page, "_page", broken)
    pages["server error"] = owner.get("/settings")
    assert pages["server error"].status_code == 500

    for path, response in pages.items():
        assert response.status_code < 500 or path == "server error", path
        assert_says_no_platform_name(response, path)
        text = page_text(response)
        assert "Northwind Cloud" in text, path  # the logo's alt text or the name
        if response.status_code != 302:
            assert "--brand-primary:#7c3aed" in response.get_data(as_text=True), path
    assert "Northwind Ltd, 1 Harbour Street" in page_text(pages["/runs"])
    assert "Page not found · Northwind Cloud</title>" in pages["/no-such-page"].get_data(
        as_text=True)


def test_brand_the_approval_page_carries_the_workspaces_brand(app, world):
    seed_activity(world.tenants["a"].id, "Refunds", succeeded=0, failed=0, waiting=True)
    set_brand(app, world, "nw_admin", **WHITE_LABEL)
    with scoped_to(world.tenants["a"].id):
        approval = db.session.scalars(select(Approval)).one()
        token = approvals.link_token(approval, app.config["SECRET_KEY"])
        db.session.rollback()
    response = app.test_client().get(f"/approve/{token}", headers=HTML)
    assert response.status_code == 200
    assert "Approval · Northwind Cloud</title>" in response.get_data(as_text=True)
    assert "Refund 120 EUR to order 4411?" in page_text(response)
    assert_says_no_platform_name(response, "approval page")


def test_brand_mail_about_a_white_labelled_workspace_carries_its_brand(app_ctx, world):
    set_brand(app_ctx, world, "nw_admin", **{**WHITE_LABEL, "sender_name": "Northwind Team"})
    workspace = world.tenants["a"]
    with scoped_to(workspace.id, user_id=world.users["a_admin"].id):
        access = access_to(Principal(world.users["a_admin"]), workspace)
        invitation = invitations.invite(access, "new.client@example.com", Role.OPERATOR)
        db.session.commit()
    message = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.to_address == "new.client@example.com")
    ).one()
    assert invitation is not None
    assert message.subject.endswith("on Northwind Cloud")
    for body in (message.subject, message.text_body, message.html_body):
        assert "overture" not in body.lower()
    email = mail_delivery.build_email(message, app_ctx.extensions["overture.settings"])
    (sender,) = email["From"].addresses
    assert sender.display_name == "Northwind Team"
    assert mail.brand_for(None)["name"] == "Overture"  # the platform's own mail


def test_brand_page_saves_with_the_apis_checks_and_a_viewer_sees_it_read_only(app, world):
    owner = browse(app, world, "nw_owner")
    page = owner.text("/brand")
    assert "Client workspaces may set their own brand" in page and "White label" in page
    refused = owner.post("/brand", {"product_name": "Northwind Cloud", "primary": "#ffd60a",
                                    "accent": "", "font": "", "clients_may_override": "on"})
    assert refused.status_code == 422
    said = page_text(refused)
    assert "Nothing was saved" in said and "(#ffd60a on #ffffff) has a contrast ratio of 1.41:1" \
        in said
    assert 'value="Northwind Cloud"' in refused.get_data(as_text=True), "the form is kept"
    assert as_key(app, world, "nw_admin").get("/brand").get_json()["own"]["product_name"] is None

    saved = owner.post("/brand", {"product_name": "Northwind Cloud", "primary": "#1d4ed8",
                                  "font": "source-serif-4", "clients_may_override": "on"})
    assert saved.status_code == 302
    page = owner.get("/brand")
    assert "Brand saved." in page_text(page) and "Brand · Northwind · Northwind Cloud</title>" in \
        page.get_data(as_text=True)

    bad_image = owner.client.post("/brand/images/logo", data={
        "csrf_token": owner.csrf, "file": (io.BytesIO(SVG), "logo.svg")},
        headers=HTML, content_type="multipart/form-data")
    assert bad_image.status_code == 422
    assert "The file is an SVG image, which can carry script" in page_text(bad_image)
    good_image = owner.client.post("/brand/images/favicon", data={
        "csrf_token": owner.csrf, "file": (io.BytesIO(png(48, 48)), "icon.png")},
        headers=HTML, content_type="multipart/form-data")
    assert good_image.status_code == 302
    favicon = as_key(app, world, "nw_admin").get("/brand").get_json()["own"]["favicon_url"]
    assert f'<link rel="icon" href="{favicon}">' in owner.text("/brand")

    viewer = browse(app, world, "nw_viewer")
    read_only = viewer.get("/brand")
    assert read_only.status_code == 200
    html = read_only.get_data(as_text=True)
    assert "Save brand" not in html and 'type="file"' not in html
    assert "Only an owner or admin can change the brand." in page_text(read_only)
    assert viewer.post("/brand", {"product_name": "Mine"}).status_code == 403


def test_brand_an_authenticator_app_lists_the_account_under_the_persons_brand(app, world):
    set_brand(app, world, "nw_admin", **WHITE_LABEL)
    person = browse(app, world, "a_owner")  # just signed in: recent enough to enrol
    response = person.client.post("/api/v1/me/mfa/totp", headers={"X-CSRFToken": person.csrf})
    assert response.status_code == 201, response.get_data(as_text=True)
    uri = response.get_json()["uri"]
    assert "issuer=Northwind%20Cloud" in uri and "overture" not in uri.lower()
    unbranded = browse(app, world, "c_owner")
    elsewhere = unbranded.client.post("/api/v1/me/mfa/totp",
                                      headers={"X-CSRFToken": unbranded.csrf})
    assert "issuer=Overture" in elsewhere.get_json()["uri"]
