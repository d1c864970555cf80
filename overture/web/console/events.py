"""Events: the workspace's outbound event subscriptions. Subscribe a URL (its signing
secret is shown once), change or pause it, read its delivery log, redeliver, send a
test ping, rotate the secret (the new one shown once). Pages that show a secret are
not kept by the browser."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.tenants.events import deliveries, outbox, subscriptions
from overture.tenants.events.models import EventSubscription
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, form_errors, status_of

FIELDS = {"url", "event_types", "description", "include_clients"}
NO_STORE = {"Cache-Control": "no-store"}


def _form() -> dict[str, Any]:
    return {"url": request.form.get("url", ""),
            "event_types": request.form.getlist("event_types"),
            "description": request.form.get("description", ""),
            "include_clients": bool(request.form.get("include_clients")),
            "enabled": bool(request.form.get("enabled"))}


def _list_page(errors: FormErrors | None = None, form: dict[str, Any] | None = None,
               made: subscriptions.WithSecret | None = None) -> Any:
    access = console_access()
    body, status = render(
        "console/events.html", status_of(errors or FormErrors()), title="Events",
        subscriptions=subscriptions.list_subscriptions(access), made=made,
        errors=errors or FormErrors(), types=outbox.EVENT_TYPES,
        form=form or {"url": "", "event_types": [], "description": "",
                      "include_clients": False, "enabled": True},
        is_agency=access.require_tenant().is_agency)
    return body, status, NO_STORE


def _detail_page(subscription: EventSubscription, errors: FormErrors | None = None,
                 form: dict[str, Any] | None = None, secret: str | None = None) -> Any:
    access = console_access()
    found = deliveries.list_deliveries(access, subscription, 50)
    body, status = render(
        "console/event_subscription.html", status_of(errors or FormErrors()),
        title="Event subscription", subscription=subscription, deliveries=found,
        logs=deliveries.attempts_of(found), errors=errors or FormErrors(),
        types=outbox.EVENT_TYPES, secret=secret,
        form=form or {"url": subscription.url, "event_types": subscription.event_types,
                      "description": subscription.description,
                      "include_clients": subscription.include_clients,
                      "enabled": subscription.enabled},
        is_agency=access.require_tenant().is_agency)
    return body, status, NO_STORE


@bp.get("/events")
@page(subscriptions.PERMISSION)
def events() -> Any:
    return _list_page()


@bp.post("/events")
@page(subscriptions.PERMISSION)
def create_event_subscription() -> Any:
    form = _form()
    with form_errors(FIELDS) as errors:
        made = subscriptions.create(console_access(), url=form["url"],
                                    event_types=form["event_types"],
                                    description=form["description"],
                                    include_clients=form["include_clients"])
        db.session.commit()
        return _list_page(made=made)
    return _list_page(errors, form)


@bp.get("/events/<subscription_id>")
@page(subscriptions.PERMISSION)
def event_subscription(subscription_id: str) -> Any:
    return _detail_page(subscriptions.get_subscription(console_access(), subscription_id))


@bp.post("/events/<subscription_id>")
@page(subscriptions.PERMISSION)
def update_event_subscription(subscription_id: str) -> Any:
    access = console_access()
    subscription = subscriptions.get_subscription(access, subscription_id)
    form = _form()
    with form_errors(FIELDS) as errors:
        subscriptions.update(access, subscription, url=form["url"],
                             event_types=form["event_types"],
                             description=form["description"], enabled=form["enabled"],
                             include_clients=form["include_clients"])
        db.session.commit()
        flash("Saved.", "ok")
        return redirect(url_for("console.event_subscription", subscription_id=subscription_id))
    return _detail_page(subscriptions.get_subscription(access, subscription_id), errors, form)


@bp.post("/events/<subscription_id>/rotate")
@page(subscriptions.PERMISSION)
def rotate_event_secret(subscription_id: str) -> Any:
    access = console_access()
    made = subscriptions.rotate_secret(
        access, subscriptions.get_subscription(access, subscription_id),
        subscriptions.DEFAULT_OVERLAP)
    db.session.commit()
    return _detail_page(made.subscription, secret=made.secret)


@bp.post("/events/<subscription_id>/test")
@page(subscriptions.PERMISSION)
def test_event_subscription(subscription_id: str) -> Response:
    access = console_access()
    _, attempt = deliveries.ping(access, subscriptions.get_subscription(access,
                                                                        subscription_id))
    _flash_attempt("The test ping", attempt)
    return redirect(url_for("console.event_subscription", subscription_id=subscription_id))


@bp.post("/events/<subscription_id>/delete")
@page(subscriptions.PERMISSION)
def delete_event_subscription(subscription_id: str) -> Response:
    access = console_access()
    subscriptions.delete(access, subscriptions.get_subscription(access, subscription_id))
    db.session.commit()
    flash("The subscription is deleted; nothing more is sent to it.", "ok")
    return redirect(url_for("console.events"))


@bp.post("/events/deliveries/<delivery_id>/redeliver")
@page(subscriptions.PERMISSION)
def redeliver_event(delivery_id: str) -> Response:
    access = console_access()
    delivery = deliveries.get_delivery(access, delivery_id)
    subscription_id = delivery.subscription_id
    _flash_attempt("The redelivery", deliveries.redeliver(access, delivery))
    return redirect(url_for("console.event_subscription", subscription_id=subscription_id))


def _flash_attempt(what: str, attempt: Any) -> None:
    if attempt is None:
        flash(f"{what} could not start; try again.", "error")
    elif attempt.error is None:
        flash(f"{what} was received (HTTP {attempt.status_code}, "
              f"{attempt.latency_ms} ms).", "ok")
    else:
        flash(f"{what} failed: {attempt.error}", "error")


