"""Public entry points that carry their own authority: workflow webhooks (a secret
URL, optionally signed with a timestamp: platform/webhook_signing.py; each takes the
calls a minute its workflow sets: web/webhook_limits.py) and single-use approval links."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, g, render_template, request

from overture.orchestration import approvals, runs, triggers, workflows
from overture.platform import jsonbody, webhook_signing
from overture.platform.db import db, scoped_to
from overture.platform.errors import NotFound, ValidationFailed, WebhookDisabled
from overture.platform.ids import parse_id
from overture.tenants.access import find_tenant
from overture.tenants.vault import use_credential
from overture.web import webhook_limits
from overture.web.extensions import client_address, csrf, limiter

bp = Blueprint("hooks", __name__)
csrf.exempt(bp)
MAX_WAIT_SECONDS = 30.0


@bp.post("/hooks/<tenant_id>/<token>")
@limiter.limit(webhook_limits.limit, key_func=webhook_limits.key)
def webhook(tenant_id: str, token: str) -> tuple[dict[str, Any], int]:
    """Start a run with the request body as input: 202 with the run id, or with
    `?wait=N` up to N seconds for the run to finish and its output."""
    ident = parse_id(tenant_id)
    if ident is None:
        raise NotFound("no such webhook")
    # The URL's tenant, its workflow and the version to run: one statement in its scope
    # (`target` holds the version in the session for start_run and start_once).
    with scoped_to(ident):
        target = workflows.webhook_target(token)
        if target is None or not target.tenant.usable:  # a suspended tenant's rest
            raise NotFound("no such webhook")
        workflow = target.workflow
        if not workflow.webhook_enabled:
            # Before the signature is checked: a refused call uses no secret.
            raise WebhookDisabled("this webhook is turned off: nothing was started. A "
                                  "builder of the workspace can turn it on again (Triggers)")
        body = request.get_data(cache=True)
        signed = (_verified(workflow.webhook_credential_id, body)
                  if workflow.webhook_credential_id is not None else None)
        # Read every parameter before the run starts: a 422 must not leave a run behind
        # (the caller would retry and start another).
        wait, key, payload = _wait_seconds(), _idempotency_key(), _payload(body)
        # A call that names its event (X-Event-Id, ...), or is signed, starts one run per
        # event: a sender's retry and a replayed capture alike find the first run.
        events = triggers.webhook_event_keys(request.headers, payload, signed)
        if not events:
            run, created = runs.start_run(workflow, payload, "webhook", idempotency_key=key,
                                          version=target.version)
        else:
            run, created = triggers.start_once(workflow, f"webhook:{workflow.id}", events,
                                               payload, "webhook", idempotency_key=key)
        run_id = run.id  # before the commit, which would expire it: no reload after
        db.session.commit()
        if wait:
            return _await(run_id, wait)
    return {"run_id": str(run_id), "status": "queued" if created else "existing"}, 202


def _payload(body: bytes) -> Any:
    if not body:
        return {}
    if request.mimetype == "application/json" or body[:1] in (b"{", b"["):
        return jsonbody.loads(body)  # the API's strict parser: 400/422 naming the fault
    text = body.decode("utf-8", "replace")
    if "\x00" in text:  # the one character JSONB cannot hold
        raise ValidationFailed.field("body", "holds a NUL character, which cannot be stored")
    return {"body": text, "content_type": request.mimetype or None}


def _verified(credential_id: Any, body: bytes) -> webhook_signing.SignedDelivery:
    """The delivery the call's signature vouches for (Standard Webhooks, or
    `X-Overture-Signature: t=...,v1=...`), or a 401 that says what is wrong."""
    # use_credential commits its credential.used record: a refused attempt keeps it too
    secret = str(use_credential(credential_id, "webhook.verify").get("secret") or "")
    return webhook_signing.verify(secret, request.headers, body)


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:  # the column holds 200
        raise ValidationFailed.field("Idempotency-Key", "must be 1 to 200 characters")
    return key


def _wait_seconds() -> float:
    raw = request.args.get("wait")
    if raw is None:
        return 0.0
    try:
        return max(0.0, min(float(raw), MAX_WAIT_SECONDS))
    except ValueError as exc:
        raise ValidationFailed.field("wait", "seconds, a number up to 30") from exc


def _await(run_id: Any, seconds: float) -> tuple[dict[str, Any], int]:
    deadline = time.monotonic() + seconds
    while True:
        run = runs.get_run(run_id)
        db.session.refresh(run)
        if run.finished or time.monotonic() >= deadline:
            break
        db.session.rollback()
        time.sleep(0.05)
    body = {"run_id": str(run.id), "status": run.status}
    if run.finished:
        body["output"] = run.output
        body["error"] = run.error
        return body, 200
    return body, 202


# --------------------------------------------------------------------------- approval links


@bp.route("/approve/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute", key_func=client_address)
def approval_page(token: str) -> str | Response | tuple[str, int]:
    """GET shows the request (mail scanners prefetch links: GET never decides);
    POST decides, once."""
    approval_id, tenant_id, nonce = approvals.read_link(token, current_app.config["SECRET_KEY"])
    tenant = find_tenant(str(tenant_id))
    if tenant is None or not tenant.usable:  # as webhooks: a suspended tenant's links rest
        raise NotFound("this approval link is not valid")
    g.brand_tenant_id = tenant.id  # the person deciding sees the workspace's brand
    with scoped_to(tenant_id):
        approval = approvals.approval_by_link(approval_id, nonce)
        if request.method == "POST":
            decision = request.form.get("decision", "")
            approvals.decide(approval, decision, user_id=approval.assignee_user_id, role=None,
                             note=request.form.get("note") or None, via="link")
            db.session.commit()
        return render_template("approval.html", approval=approval, token=token)
