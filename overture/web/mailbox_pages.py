"""The local mailbox: the platform admin reads the mail the platform sent.

With no SMTP relay configured (the embedded `make up`) nothing leaves the machine:
delivery marks the message sent and logs its text, and these pages show it, so
invitations, reset and sign-in links work on a fresh clone. With a relay they show
what was sent and what failed, with the last error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, abort, request
from flask_login import current_user, login_required

from overture.platform import mailbox
from overture.platform.ids import parse_id
from overture.web.console.context import register_nav, render

bp = Blueprint("mailbox", __name__, url_prefix="/admin/mailbox")
# Only platform admins hold user.manage: the item shows for them alone.
register_nav("Mailbox", "mailbox.inbox", "user.manage", "admin")


F = TypeVar("F", bound=Callable[..., Any])


def platform_admins_only(view: F) -> F:
    """Signed in (else to the sign-in page) as a platform admin (else a 403 page)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_platform_admin:
            return render("mailbox_forbidden.html", 403, title="Not allowed")
        return view(*args, **kwargs)

    return login_required(wrapped)  # type: ignore[return-value]


@bp.get("")
@platform_admins_only
def inbox() -> tuple[str, int]:
    page = request.args.get("page", "1")
    found = mailbox.recent(int(page) if page.isdigit() and len(page) < 7 else 1)
    return render("mailbox.html", title="Mailbox", found=found)


@bp.get("/<message_id>")
@platform_admins_only
def show(message_id: str) -> tuple[str, int]:
    ident = parse_id(message_id)
    message = mailbox.message(ident) if ident else None
    if message is None:
        abort(404)
    return render("mailbox_message.html", title=message.subject, message=message,
                  links=mailbox.links(message.text_body))
