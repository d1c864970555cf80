"""Hosted forms: `/portal/<slug>/forms/<token>`, a form trigger's public page
(orchestration/form_triggers.py), open to anyone who has the address, in the
workspace's brand and on its domain (the portal's own frame: context.py finds the
workspace and refuses another tenant's host; errors.py answers in its layout).

GET draws the fields of the published version's input schema with `run_form`, the
portal's one schema-to-form renderer; POST reads them back with it, checks them against
the schema, and either shows the messages beside the fields (what was typed kept) or
starts one run and sends the visitor to the confirmation page. The page carries the
session's CSRF token (Flask-WTF, checked for every POST before this code runs), a
submission token (the same page sent twice starts one run), and, when the form has it
on, a honeypot field people never see. Submissions are limited per form and per client
address (a 429 page past either).
"""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from overture.orchestration import form_triggers
from overture.orchestration.models import Workflow
from overture.orchestration.portal import customer as service
from overture.orchestration.trigger_models import FormTrigger
from overture.platform import audit
from overture.platform.db import db, scoped_to
from overture.platform.errors import BadRequest, Conflict, PaymentRequired, ValidationFailed
from overture.web.extensions import client_address, limiter
from overture.web.portal import bp, run_form
from overture.web.portal.context import render, workspace

SUBMISSIONS_PER_FORM = "60 per minute"
SUBMISSIONS_PER_ADDRESS = "10 per minute"
HONEYPOT = "website"  # a name bots fill in; no schema field is named so (they are `f_...`)
NO_STORE = {"Cache-Control": "no-store"}

per_form = limiter.limit(SUBMISSIONS_PER_FORM, key_func=lambda: "form:" + str(
    (request.view_args or {}).get("token", "")), methods=["POST"])
per_address = limiter.shared_limit(SUBMISSIONS_PER_ADDRESS, scope="form-address",
                                   key_func=client_address, methods=["POST"])

UNAVAILABLE = {
    "unknown": (404, "This form does not exist",
                "Check the address, or ask whoever sent it to you for the right one."),
    "closed": (410, "This form is closed",
               "It no longer takes submissions. If you expected it to be open, ask whoever "
               "sent you its address."),
    "unpublished": (404, "This form is not open yet",
                    "It cannot take submissions at the moment. Please try again later."),
    "paused": (402, "This form is not accepting submissions right now",
               "Nothing was sent. Please try again later."),
}


def _unavailable(reason: str) -> Any:
    status, headline, advice = UNAVAILABLE[reason]
    body, status = render("portal/error.html", status, error_status=status, headline=headline,
                          advice=advice, detail=None, public=True, title=headline)
    return body, status, NO_STORE


def _open(token: str) -> tuple[FormTrigger, Workflow] | str:
    """The form and its workflow, or why it cannot be used."""
    trigger = form_triggers.by_token(token)
    if trigger is None:
        return "unknown"
    if not trigger.enabled:
        return "closed"
    workflow = form_triggers.live_workflow(trigger)
    if workflow is None:
        return "unpublished"
    return trigger, workflow


@bp.route("/forms/<token>", methods=["GET", "POST"])
@per_form
@per_address
def hosted_form(token: str) -> Any:
    tenant = workspace()
    if not tenant.usable:  # a suspended workspace's forms rest, as its webhooks do
        return _unavailable("unknown")
    audit.set_actor(form_triggers.VISITOR)
    with scoped_to(tenant.id):
        found = _open(token)
        if isinstance(found, str):
            return _unavailable(found)
        trigger, workflow = found
        if request.method == "POST":
            return _submitted(trigger, workflow)
        return _form(trigger, workflow, form_triggers.new_submission())


def _form(trigger: FormTrigger, workflow: Workflow, submission: str,
          values: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> Any:
    fields = run_form.fields_of(service.input_schema(workflow))
    body, status = render("portal/hosted_form.html", 422 if errors else 200,
                          title=trigger.title, form=trigger, fields=fields,
                          values=values or {}, errors=errors or {}, submission=submission,
                          honeypot=HONEYPOT)
    return body, status, NO_STORE


def _submitted(trigger: FormTrigger, workflow: Workflow) -> Any:
    submission = request.form.get("submission", "")
    if not form_triggers.SUBMISSION.fullmatch(submission):
        raise BadRequest("this form page is not valid: reload it and send it again")
    sent = _sent_url(trigger)
    if trigger.honeypot and request.form.get(HONEYPOT, "").strip():
        form_triggers.caught(trigger, [k for k in request.form if k.startswith(run_form.PREFIX)])
        db.session.commit()
        return redirect(sent, 303)  # looks accepted; nothing started
    schema = service.input_schema(workflow)
    names = {f.name for f in run_form.fields_of(schema)}
    values = run_form.shown(schema, request.form)
    data, errors = run_form.read(schema, request.form)
    if errors:  # and what else is wrong, to say it all at once
        errors = {**run_form.field_messages(service.input_problems(workflow, data), names),
                  **errors}
        return _form(trigger, workflow, submission, values, errors)
    trigger_id = trigger.id
    try:
        form_triggers.submit(trigger, workflow, data, submission)
        db.session.commit()
    except ValidationFailed as invalid:
        db.session.rollback()
        return _form(trigger, workflow, submission, values,
                     run_form.field_messages(invalid.errors, names))
    except PaymentRequired as refusal:
        db.session.rollback()
        form_triggers.refused(form_triggers.get(trigger_id), refusal)
        db.session.commit()
        return _unavailable("paused")
    except Conflict:  # unpublished meanwhile
        db.session.rollback()
        return _unavailable("unpublished")
    return redirect(sent, 303)


def _sent_url(trigger: FormTrigger) -> str:
    return url_for("portal.hosted_form_sent", token=trigger.token)


@bp.get("/forms/<token>/sent")
def hosted_form_sent(token: str) -> Any:
    """The confirmation: the form's success message."""
    tenant = workspace()
    if not tenant.usable:
        return _unavailable("unknown")
    with scoped_to(tenant.id):
        trigger = form_triggers.by_token(token)
        if trigger is None:
            return _unavailable("unknown")
        body, status = render("portal/hosted_form_sent.html", title=trigger.title,
                              form=trigger)
        return body, status, NO_STORE
