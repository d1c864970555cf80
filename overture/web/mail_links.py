"""The pages mails link to (`platform/page_links.py`), built from this app's routes, so a
renamed route changes the links with it. A mail may be written where no request is
(a worker), so paths are built from the URL map rather than `url_for`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from overture.platform import page_links

USAGE_PAGES = ("console.usage", "console.settings")  # the first that this app serves


def install(app: Flask) -> None:
    adapter = app.url_map.bind("localhost")

    def build(endpoint: str, **values: Any) -> str:
        return str(adapter.build(endpoint, values))

    def usage() -> str:
        endpoint = next(e for e in USAGE_PAGES if e in app.view_functions)
        return build(endpoint)

    page_links.register("approval", lambda token: build("hooks.approval_page", token=token))
    page_links.register("run", lambda run_id: build("console.run", run_id=str(run_id)))
    page_links.register("usage", usage)
    page_links.register("events", lambda: build("console.events"))
