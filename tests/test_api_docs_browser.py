"""The API documentation page, in a real browser: Debian's Chromium driven by
Playwright, against the real app on a real server.

The page must show every operation of the OpenAPI 3.1 document, load nothing from
another origin, and run under the Content-Security-Policy without violating it.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser

from tests.console_support import RECORD_VIOLATIONS, WAIT_MS
from tests.live_server import serve


def _operations(app: Any) -> list[tuple[str, str]]:
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    return [(method, path) for path, item in spec["paths"].items()
            for method in item if method in ("get", "put", "post", "patch", "delete")]


def _tags(app: Any) -> list[str]:
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    return sorted({item[method]["tags"][0] for item in spec["paths"].values()
                   for method in item if method in ("get", "put", "post", "patch", "delete")})


def test_api_docs_page_shows_every_operation_under_the_csp(app: Any, browser: Browser) -> None:
    operations = _operations(app)
    console: list[str] = []
    requests: list[str] = []
    with serve(app) as base:
        page = browser.new_page()
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        page.on("request", lambda request: requests.append(request.url))
        response = page.goto(f"{base}/api/v1/docs")
        assert response is not None and response.ok

        # The vendored Swagger UI draws only the first tag when all ~130 operations are
        # shown at once (a rendering bug of its own, not of the document), so the page
        # offers its filter and each tag is checked through it, as a reader would.
        page.locator(".operation-filter-input").fill("Workflows")
        run = page.locator('.opblock-post .opblock-summary-path'
                           '[data-path="/api/v1/workflows/{workflow_id}/runs"]')
        run.wait_for(timeout=WAIT_MS)
        assert run.inner_text().replace("\u200b", "") == "/api/v1/workflows/{workflow_id}/runs"
        shown = 0
        for tag in _tags(app):
            page.locator(".operation-filter-input").fill(tag)
            section = page.locator(f'.opblock-tag-section:has(> h3[data-tag="{tag}"])')
            section.locator(".opblock").first.wait_for(timeout=WAIT_MS)
            shown += section.locator(".opblock").count()
        violations = page.evaluate("window.__cspViolations")
        page.close()

    assert "script-src 'self'" in response.headers.get("content-security-policy", "")
    assert shown == len(operations), (shown, len(operations))
    assert violations == []
    assert not [line for line in console if "Content Security Policy" in line], console
    assert not [line for line in console if line.startswith("pageerror")], console
    assert all(url.startswith(base + "/") for url in requests), requests
