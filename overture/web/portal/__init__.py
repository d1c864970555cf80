"""The end customer's portal at /portal/<tenant-slug>/: server-rendered pages with htmx
(vendored in static/vendor/), its own calm layout, for the workspace's portal users
(the member role, `portal.use`). They start the published workflows from forms made
from their input schemas, follow their own runs, chat with the published agents (the
answer streamed as server-sent events), answer the approvals assigned to them and
download their data. Staff use the console; the portal is not theirs.

One blueprint, `portal`; `context` finds the workspace and the person, `signin` lets
them in and out, `pages` and `chat` are what they do there.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("portal", __name__, url_prefix="/portal/<slug>")
# Pages, not API: and APIFlask reads this of every blueprint with its own before_request
# hooks when it makes the OpenAPI document (a plain Blueprint has no such attribute).
bp.enable_openapi = False  # type: ignore[attr-defined]

# The areas register their routes on `bp` when imported (after `bp` exists).
from overture.web.portal import chat, context, errors, forms, pages, signin  # noqa: E402

__all__ = ["bp", "chat", "context", "errors", "forms", "pages", "signin"]
