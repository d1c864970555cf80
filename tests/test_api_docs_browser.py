"""The API documentation page, in a real browser: Debian's Chromium driven by
Playwright, against the real app on a real server.

The page must list every tag of the OpenAPI 3.1 document and open each on its
operations without anything typed into its filter, load nothing from
another origin, and run under the Content-Security-Policy without violating it.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser

from tests.console_support import RECORD_VIOLATIONS, WAIT_MS
from tests.live_server import serve


def _operations_by_tag(app: Any) -> dict[str, set[tuple[str, str]]]:
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    by_tag: dict[str, set[tuple[str, str]]] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                by_tag.setdefault(operation["tags"][0], set()).add((method, path))
    return by_tag


def _shown_operations(section: Any) -> set[tuple[str, str]]:
    rows = section.locator(".opblock").evaluate_all(
        "blocks => blocks.map(b => [b.querySelector('.opblock-summary-method').textContent,"
        " b.querySelector('.opblock-summary-path').dataset.path])")
    return {(method.lower(), path) for method, path in rows}


def test_api_docs_page_lists_every_tag_and_operation_under_the_csp(
        app: Any, browser: Browser) -> None:
    by_tag = _operations_by_tag(app)
    console: list[str] = []
    requests: list[str] = []
    shown: dict[str, set[tuple[str, str]]] = {}
    with serve(app) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        page.on("request", lambda request: requests.append(request.url))
        response = page.goto(f"{base}/api/v1/docs")
        assert response is not None and response.ok

        # The page opens as the list of every tag, nothing typed: a heading Swagger UI
        # had left unmounted (its virtualized list draws only what is on screen) fails.
        headings = page.locator("h3.opblock-tag[data-tag]")
        headings.first.wait_for(timeout=WAIT_MS)
        assert sorted(headings.evaluate_all("hs => hs.map(h => h.dataset.tag)")) == sorted(by_tag)
        for tag in by_tag:
            assert page.locator(f'h3[data-tag="{tag}"]').is_visible(), tag

        # Each tag opens in place on its operations, as a reader would open it.
        for tag in sorted(by_tag):
            heading = page.locator(f'h3[data-tag="{tag}"]')
            section = page.locator(f'.opblock-tag-section:has(> h3[data-tag="{tag}"])')
            heading.click()
            section.locator(".opblock").first.wait_for(timeout=WAIT_MS)
            shown[tag] = _shown_operations(section)
            if tag == "Runs":
                run = section.locator('.opblock-post .opblock-summary-path'
                                      '[data-path="/api/v1/workflows/{workflow_id}/runs"]')
                assert run.inner_text().replace("\u200b", "") == \
                    "/api/v1/workflows/{workflow_id}/runs"
            heading.click()
            section.locator(".opblock").first.wait_for(state="detached", timeout=WAIT_MS)
        violations = page.evaluate("window.__cspViolations")
        page.close()

    assert "script-src 'self'" in response.headers.get("content-security-policy", "")
    assert shown == by_tag
    assert violations == []
    assert not [line for line in console if "Content Security Policy" in line], console
    assert not [line for line in console if line.startswith(("pageerror", "error"))], console
    assert all(url.startswith(base + "/") for url in requests), requests
