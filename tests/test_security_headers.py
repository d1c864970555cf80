"""Security headers on every answer, pages that run under the Content-Security-Policy,
and `Allow` on 405 answers."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from tests.support import as_user, csrf_token

TEMPLATES = Path(__file__).resolve().parents[1] / "overture" / "web" / "templates"
DENIED = ("camera", "microphone", "geolocation", "payment", "usb")


def assert_secured(response) -> None:
    csp = dict(part.strip().split(" ", 1)
               for part in response.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no inline code
    # ...and no inline style but the brand's custom properties, each allowed by its hash
    # (the page holds exactly that text: test_brand_pages checks it).
    styles = csp["style-src"].split()
    assert styles[0] == "'self'" and all(s.startswith("'sha256-") for s in styles[1:]), styles
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'self'" and csp["form-action"] == "'self'"
    policy = response.headers["Permissions-Policy"]
    for feature in DENIED:
        assert f"{feature}=()" in policy, feature
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_every_kind_of_answer_carries_the_security_headers(app, world):
    anonymous = app.test_client()
    answers = {
        "login page": anonymous.get("/login"),
        "failed login page": anonymous.post("/login", data={
            "email": "nobody@example.com", "password": "wrong",
            "csrf_token": csrf_token(anonymous)}),
        "documentation page": anonymous.get("/api/v1/docs"),
        "approval page, unknown link": anonymous.get("/approve/not-a-token",
                                                     headers={"Accept": "text/html"}),
        "HTML error page": anonymous.get("/no-such-page", headers={"Accept": "text/html"}),
        "portal sign-in page": anonymous.get("/portal/ws-a/login"),
        "portal error page": anonymous.get("/portal/no-such-workspace/",
                                           headers={"Accept": "text/html"}),
        "API problem": anonymous.get("/api/v1/members"),
        "OpenAPI document": anonymous.get("/api/v1/openapi.json"),
        "static file": anonymous.get("/static/app.css"),
        "health probe": anonymous.get("/healthz"),
    }
    unstyled = {"documentation page", "API problem", "OpenAPI document", "static file",
                "health probe"}
    home = as_user(app, world, "a_admin").client.get("/")
    answers["signed-in home page"] = home
    for name, response in answers.items():
        assert "Content-Security-Policy" in response.headers, name
        assert_secured(response)
        # The brand's properties are the one inline style a page holds, and the policy
        # allows exactly that text: on the console's pages and the portal's alike.
        styles = re.findall(r"<style>(.*?)</style>", response.get_data(as_text=True), re.S)
        assert len(styles) == (0 if name in unstyled else 1), (name, styles)
        for css in styles:
            digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in response.headers["Content-Security-Policy"], name
    assert home.status_code == 200 and home.mimetype == "text/html"


def test_templates_have_no_inline_script_or_style():
    """The policy refuses inline code; a template that had some would break in the browser."""
    for template in TEMPLATES.rglob("*.html"):
        html = template.read_text()
        scripts = re.findall(r"<script\b[^>]*>", html, re.IGNORECASE)
        assert all(re.search(r"\bsrc=", tag) for tag in scripts), (template.name, scripts)
        styles = re.findall(r"<style\b[^>]*>(.*?)</style>", html, re.IGNORECASE | re.S)
        # The one inline style: the brand's properties, alone, allowed by their hash.
        assert styles in ([], ["{{ brand_css }}"]), (template.name, styles)
        assert not re.search(r"\sstyle\s*=", html, re.IGNORECASE), template.name
        assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), template.name
        assert "javascript:" not in html.lower(), template.name


def test_method_not_allowed_says_which_methods_are(app, world):
    client = app.test_client()
    key = {"Authorization": f"Bearer {world.keys['a_admin'][1]}"}
    cases = [(client.delete("/api/v1/me", headers=key), {"GET"}),
             (client.put("/api/v1/members", headers=key), {"GET", "POST"}),
             (client.post("/healthz"), {"GET"}),
             (client.put("/login"), {"GET", "POST"})]
    for response, methods in cases:
        assert response.status_code == 405
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == 405
        allowed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert methods <= allowed and response.request.method not in allowed, allowed
