"""Helpers for the console's tests: a signed-in browser-like client, and reading pages."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from tests.support import World, login

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A person in the console: a Flask client that asks for pages and posts forms
    with the CSRF token the pages carry."""

    def __init__(self, client: FlaskClient, csrf: str) -> None:
        self.client, self.csrf = client, csrf

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=HTML, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})},
                                headers=HTML, **kwargs)

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


def browse(app: Any, w: World, handle: str) -> Browser:
    client = app.test_client()
    return Browser(client, login(client, w.users[handle].email))


def page_text(response: Any) -> str:
    """The page as words, tags removed: what a person reads."""
    return page_text_of(response.get_data(as_text=True))


def region(response: Any, element_id: str) -> str:
    """The words inside the element with this id (up to the page's end if unclosed
    elements confuse it): one part of a page, not its navigation."""
    html = response.get_data(as_text=True)
    start = html.index(f'id="{element_id}"')
    return page_text_of(html[start:])


def page_text_of(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
