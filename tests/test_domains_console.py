"""The console's Domains page: add a domain, read the record to create (with copy
buttons), verify (the answer says what DNS holds when it is not right, in place with
htmx or as a message without script), remove with confirmation. A viewer sees the
domains and their records but no controls, and a forged post is refused."""

from __future__ import annotations

import re
from html import unescape

from tests.console_support import browse, page_text, region
from tests.dns_server import Zone
from tests.domain_support import add_verified

HOST = "portal.acme.example"


def domain_id(html: str) -> str:
    match = re.search(r'id="domain-([0-9a-f-]{36})"', html)
    assert match, "a domain panel"
    return match.group(1)


def htmx(browser, path: str):
    return browser.client.post(path, data={"csrf_token": browser.csrf},
                               headers={"HX-Request": "true", "Accept": "text/html"})


def test_an_admin_adds_verifies_and_removes_a_domain(app, world, dns_zone: Zone):
    admin = browse(app, world, "a_admin")
    empty = admin.get("/domains")
    assert empty.status_code == 200 and "No domains yet" in page_text(empty)

    added = admin.post("/domains", {"hostname": "Portal.Acme.Example"})
    assert added.status_code == 302 and added.headers["Location"].startswith("/domains#domain-")
    page = admin.get("/domains")
    html = page.get_data(as_text=True)
    ident = domain_id(html)
    words = page_text(page)
    assert f"{HOST} is added. Create its TXT record below, then verify it." in words
    assert "Not verified" in words
    name = re.search(rf'id="record-name-{ident}" class="mono" value="([^"]+)"', html).group(1)
    value = re.search(rf'id="record-value-{ident}" class="mono" value="([^"]+)"', html).group(1)
    assert name == f"_verify.{HOST}" and value.startswith("verify=")
    assert f'data-copy="#record-name-{ident}"' in html
    assert f'data-copy="#record-value-{ident}"' in html
    assert "data-confirm=\"Remove portal.acme.example?" in html

    # Without script: the answer comes back as a message on the page.
    missing = admin.post(f"/domains/{ident}/verify")
    assert missing.status_code == 302
    words = page_text(admin.get("/domains"))
    assert f"No record exists at _verify.{HOST} yet." in words
    assert f"Create a TXT record named _verify.{HOST} with the value {value}" in words

    # With htmx: the panel is answered in place, saying what was found.
    dns_zone.txt(name, "verify=typo")
    wrong = htmx(admin, f"/domains/{ident}/verify")
    assert wrong.status_code == 200
    text = unescape(page_text(wrong))
    assert "Found 1 TXT record" in text and "'verify=typo'" in text
    assert "<html" not in wrong.get_data(as_text=True)  # the panel alone

    dns_zone.txt(name, value)
    right = htmx(admin, f"/domains/{ident}/verify")
    text = page_text(right)
    assert "is verified: its pages are served there from now on." in text
    assert "Verified" in text and "Check again" in text

    removed = admin.post(f"/domains/{ident}/remove")
    assert removed.status_code == 302
    words = unescape(page_text(admin.get("/domains")))
    assert f"{HOST} is removed: it is no longer served as this workspace's." in words
    assert "No domains yet" in words


def test_bad_names_and_taken_domains_are_form_messages(app, world, dns_zone: Zone):
    admin = browse(app, world, "b_admin")
    bad = admin.post("/domains", {"hostname": "https://portal.acme.example/x"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'aria-invalid="true"' in html and 'value="https://portal.acme.example/x"' in html
    assert "Enter the host name only" in region(bad, "hostname-error")

    add_verified(world, "a_admin", "a", HOST, dns_zone)
    taken = admin.post("/domains", {"hostname": HOST})
    assert taken.status_code == 422
    assert f"Another workspace holds {HOST} verified" in unescape(page_text(taken))


def test_a_viewer_sees_domains_but_no_controls(app, world, dns_zone: Zone):
    domain = add_verified(world, "a_admin", "a", HOST, dns_zone)
    viewer = browse(app, world, "a_viewer")
    page = viewer.get("/domains")
    assert page.status_code == 200
    words, html = page_text(page), page.get_data(as_text=True)
    assert HOST in words and "Verified" in words and f"_verify.{HOST}" in html
    assert "Add a domain" not in words
    assert "/verify" not in html and "/remove" not in html
    for path in ("/domains", f"/domains/{domain.id}/verify", f"/domains/{domain.id}/remove"):
        assert viewer.post(path, {"hostname": "x.example"}).status_code == 403, path
    admin = browse(app, world, "a_admin")
    assert HOST in page_text(admin.get("/domains"))  # still there, still verified
