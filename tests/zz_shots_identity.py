from tests.live_server import serve
from tests.test_api_docs_browser import browser  # noqa: F401
from tests.support import as_user, PASSWORD

OUT = "build/shots"


def _login(page, base, email):
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_shots(app, world, browser):  # noqa: F811
    api = as_user(app, world, "a_admin")
    r = api.post("/members", json={"email": "newperson@example.com", "role": "builder"})
    assert r.status_code == 202, r.get_json()
    from overture.platform.mail import OutboxMessage
    from overture.platform.db import db
    import re
    with app.app_context():
        msg = db.session.query(OutboxMessage).order_by(OutboxMessage.created_at.desc()).first()
        link = re.search(r"https?://\S+/invite/\S+", msg.text_body).group(0)
    path = "/invite/" + link.split("/invite/")[1]
    with serve(app) as base:
        for width in (1400, 390):
            page = browser.new_page(viewport={"width": width, "height": 900})
            for name, url in [("login", "/login"), ("forgot", "/password/forgot"),
                              ("link", "/login/link"), ("sso", "/sso"), ("invite", path),
                              ("reset_bad", "/password/reset/nope")]:
                page.goto(base + url)
                page.screenshot(path=f"{OUT}/{name}-{width}.png", full_page=True)
            _login(page, base, world.users["platform"].email)
            for name, url in [("home", "/"), ("mailbox", "/admin/mailbox"), ("mfa", "/account/mfa")]:
                page.goto(base + url)
                page.screenshot(path=f"{OUT}/{name}-{width}.png", full_page=True)
            page.close()
