"""The Mail server page: send the mail about this agency or workspace through its own
SMTP server (the sign-in sealed in the vault), see how the last deliveries went, and
send a test message. The same service and checks as the API (tenants/mail_servers.py).
A viewer sees where mail leaves and how it went, never the form."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.platform import mail_transport
from overture.platform.db import db
from overture.platform.errors import NotFound
from overture.platform.mail import MailStatus, OutboxMessage
from overture.tenants import mail_servers
from overture.web.api.mail_server import tests_limited
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of

register_nav("Mail server", "console.mail_server", "tenant.read", "admin")

FIELDS = ("host", "port", "security", "from_address", "username")
POLL = "2s"  # how often a pending test message is looked at again
SECURITY_LABELS = {"starttls": "STARTTLS (usually port 587)",
                   "tls": "TLS from the start (usually port 465)",
                   "none": "None: unencrypted (port 25, trusted networks only)"}


def _test(message: OutboxMessage | None) -> dict[str, Any] | None:
    if message is None:
        return None
    return {"m": message, "pending": message.status == MailStatus.PENDING, "poll": POLL}


def _page(errors: FormErrors | None = None, values: dict[str, str] | None = None,
          test: OutboxMessage | None = None) -> Any:
    access = console_access()
    view = mail_servers.view(access)
    own = view["own"] or {}
    shown = {k: str(own.get(k) or "") for k in FIELDS} | (values or {})
    shown["security"] = shown["security"] or "starttls"
    errors = errors or FormErrors()
    return render("console/mail_server.html", status_of(errors), title="Mail server",
                  view=view, own=view["own"], shown=shown, errors=errors,
                  can_manage=access.can("tenant.manage"), test=_test(test),
                  me=access.principal.user, securities=SECURITY_LABELS,
                  default_ports=mail_transport.DEFAULT_PORTS)


@bp.get("/mail-server")
@page("tenant.read")
def mail_server() -> Any:
    test = None
    ref = request.args.get("test", "").strip()[:80]
    if ref:
        try:
            test = mail_servers.test_message(console_access(), ref)
        except NotFound:
            test = None  # an old or foreign id: the page without it
    return _page(test=test)


@bp.post("/mail-server")
@page("tenant.manage")
def save_mail_server() -> Any:
    values = {k: request.form.get(k, "") for k in FIELDS}
    with form_errors({*FIELDS, "password"}) as errors:
        mail_servers.save(console_access(), {**values, "password":
                                             request.form.get("password", "")})
        db.session.commit()
        flash("Mail server saved: mail leaves through it from now on. Send a test message "
              "to check it.", "ok")
        return redirect(url_for("console.mail_server"))
    return _page(errors, values)


@bp.post("/mail-server/remove")
@page("tenant.manage")
def remove_mail_server() -> Response:
    mail_servers.remove(console_access())
    db.session.commit()
    flash("Mail server removed.", "ok")
    return redirect(url_for("console.mail_server"))


@bp.post("/mail-server/test")
@tests_limited
@page("tenant.manage")
def test_mail_server() -> Any:
    message = mail_servers.send_test(console_access())
    db.session.commit()
    if request.headers.get("HX-Request"):
        return render("console/_mail_test.html", test=_test(message))
    return redirect(url_for("console.mail_server", test=message.id))


@bp.get("/mail-server/test/<message_id>")
@page("tenant.read")
def mail_test_status(message_id: str) -> Any:
    message = mail_servers.test_message(console_access(), message_id)
    return render("console/_mail_test.html", test=_test(message))
