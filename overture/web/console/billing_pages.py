"""The Stripe page (an agency connects its own Stripe account to bill its clients:
a restricted key, write-only, or a Connect account id; test; disconnect) and the
Invoices page (the invoices Stripe sent this tenant). The same services and checks as
the API (billing/stripe_accounts.py)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.billing import stripe_accounts, stripe_status
from overture.platform.db import db
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of

register_nav("Stripe", "console.stripe_account", "billing.read", "billing")
register_nav("Invoices", "console.invoices", "billing.read", "billing")


def _stripe_page(errors: FormErrors | None = None, values: dict[str, str] | None = None) -> Any:
    access = console_access()
    errors = errors or FormErrors()
    if not access.tenant.is_agency:
        return render("console/stripe.html", title="Stripe", agency=False, errors=errors)
    view = stripe_accounts.view(access)
    own = view["account"]
    shown = {"mode": (own or {}).get("mode") or "key",
             "account_id": (own or {}).get("account_id") or ""} | (values or {})
    hook = url_for("stripe_hooks.agency_stripe_webhook", agency_id=access.tenant.id,
                   _external=True)
    return render("console/stripe.html", status_of(errors), title="Stripe", agency=True,
                  view=view, own=own, shown=shown, errors=errors, hook=hook,
                  sync=stripe_status.overview(access) if own else None,
                  can_manage=access.can("billing.manage"))


@bp.get("/stripe")
@page("billing.read")
def stripe_account() -> Any:
    return _stripe_page()


@bp.post("/stripe")
@page("billing.manage")
def save_stripe_account() -> Any:
    values = {"mode": request.form.get("mode", ""), "account_id": request.form.get(
        "account_id", "")}
    with form_errors({"mode", "secret_key", "account_id", "webhook_secret"}) as errors:
        stripe_accounts.connect(console_access(), values["mode"],
                                request.form.get("secret_key", ""), values["account_id"],
                                request.form.get("webhook_secret", ""))
        db.session.commit()
        flash("Stripe account connected. Test it to check that Stripe answers.", "ok")
        return redirect(url_for("console.stripe_account"))
    return _stripe_page(errors, values)


@bp.post("/stripe/test")
@page("billing.manage")
def test_stripe_account() -> Response:
    with form_errors() as errors:
        row = stripe_accounts.test(console_access())
        if row.last_test_error:
            flash(f"Stripe did not accept the connection: {row.last_test_error}", "error")
        else:
            flash("Stripe answered: the connection works.", "ok")
    if errors:
        flash(next(iter(errors.values()), "Connect an account first."), "error")
    return redirect(url_for("console.stripe_account"))


@bp.post("/stripe/disconnect")
@page("billing.manage")
def disconnect_stripe_account() -> Response:
    stripe_accounts.disconnect(console_access())
    db.session.commit()
    flash("Stripe account disconnected; its key was deleted.", "ok")
    return redirect(url_for("console.stripe_account"))


@bp.get("/invoices")
@page("billing.read")
def invoices() -> Any:
    found = stripe_accounts.invoices(console_access(), request.args.get("cursor"), 50)
    return render("console/invoices.html", title="Invoices", invoices=found.items,
                  next_cursor=found.next_cursor, total_text=stripe_accounts.total_text)
