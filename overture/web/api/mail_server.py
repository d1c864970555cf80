"""The tenant's own SMTP server: mail about it (and, for an agency, about its client
workspaces without one of their own) leaves through it instead of the installation's
relay. Reading needs `tenant.read`, changing and sending a test `tenant.manage`."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Integer, Nested, String
from apiflask.validators import Length, OneOf, Range

from overture.platform import mail_transport
from overture.platform.db import db
from overture.platform.mail import OutboxMessage
from overture.tenants import mail_servers
from overture.web.api import api
from overture.web.api.schemas import Strict
from overture.web.auth import current_access, require
from overture.web.extensions import client_address, limiter

TAGS = ["Mail server"]
# Each test sends a real message: a loop must not make the server a spam cannon.
TESTS_PER_ADDRESS = "10 per hour"

tests_limited = limiter.shared_limit(TESTS_PER_ADDRESS, scope="mail-server-test",
                                     key_func=client_address, methods=["POST"])


class MailServerIn(Strict):
    host = String(required=True, validate=Length(1, 253))
    port = Integer(load_default=None, allow_none=True, validate=Range(1, 65535), metadata={
        "description": "default: 587 for starttls, 465 for tls, 25 for none"})
    security = String(load_default="starttls", validate=OneOf(mail_transport.SECURITY),
                      metadata={"description": "`starttls` (upgrade on the submission "
                                               "port), `tls` (TLS from the first byte) or "
                                               "`none`"})
    from_address = String(required=True, validate=Length(1, 254), metadata={
        "description": "the address mail comes from (the brand's sender name goes with it)"})
    username = String(load_default=None, allow_none=True, validate=Length(0, 254), metadata={
        "description": "to sign in with; empty: the server takes mail without signing in"})
    password = String(load_default=None, allow_none=True, validate=Length(0, 16_384),
                      load_only=True, metadata={
                          "description": "sealed in the vault, never shown again; empty "
                                         "keeps the stored one"})


class OwnServer(Schema):
    host = String()
    port = Integer()
    security = String()
    from_address = String()
    username = String(allow_none=True)
    password_set = Boolean(metadata={"description": "a password is stored (never shown)"})
    updated_at = DateTime()
    last_sent_at = DateTime(allow_none=True)
    last_error_at = DateTime(allow_none=True)
    last_error = String(allow_none=True, metadata={
        "description": "what went wrong the last time a delivery failed (never a password)"})


class Route(Schema):
    source = String(metadata={"description": "`own`, `agency` (the agency's server) or "
                                             "`platform` (the installation's relay)"})
    tenant_name = String(allow_none=True)
    from_address = String(allow_none=True)


class MailServerOut(Schema):
    own = Nested(OwnServer, allow_none=True)
    route = Nested(Route, metadata={"description": "where this tenant's mail leaves now"})


class TestMessageOut(Schema):
    id = UUID()
    to = String(attribute="to_address")
    status = String(metadata={"description": "`pending` (retried after a failure), `sent` "
                                             "or `failed` (gave up)"})
    attempts = Integer(metadata={"description": "failed attempts so far"})
    last_error = String(allow_none=True)
    sent_at = DateTime(allow_none=True)


@api.get("/mail-server")
@require("tenant.read")
@api.output(MailServerOut)
@api.doc(tags=TAGS, summary="The tenant's own SMTP server, and where its mail leaves now")
def get_mail_server() -> dict[str, Any]:
    return mail_servers.view(current_access())


@api.put("/mail-server")
@require("tenant.manage")
@api.input(MailServerIn, arg_name="body")
@api.output(MailServerOut)
@api.doc(tags=TAGS, summary="Send the tenant's mail through its own SMTP server",
         description="A host that resolves to a private address is refused (422).")
def put_mail_server(body: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    mail_servers.save(access, body)
    db.session.commit()
    return mail_servers.view(access)


@api.delete("/mail-server")
@require("tenant.manage")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Stop using an own server: the agency's, else the platform's "
                            "relay, sends the mail")
def delete_mail_server() -> tuple[str, int]:
    mail_servers.remove(current_access())
    db.session.commit()
    return "", 204


@api.post("/mail-server/test")
@tests_limited
@require("tenant.manage")
@api.output(TestMessageOut, status_code=202)
@api.doc(tags=TAGS, summary="Send a test message to yourself, the way the tenant's mail "
                            "goes now; follow it with GET /mail-server/test/<id>")
def send_test_message() -> OutboxMessage:
    message = mail_servers.send_test(current_access())
    db.session.commit()
    return message


@api.get("/mail-server/test/<message_id>")
@require("tenant.read")
@api.output(TestMessageOut)
@api.doc(tags=TAGS, summary="Whether a test message left, and the error if it did not")
def get_test_message(message_id: str) -> OutboxMessage:
    return mail_servers.test_message(current_access(), message_id)
