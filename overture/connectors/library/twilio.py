"""Twilio: send SMS (and WhatsApp) messages (REST API 2010-04-01, form-encoded).

Basic auth: the Account SID as username and the Auth Token as password, or an API
key SID and secret with the account's SID in `account_sid`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from overture.connectors.context import ActionContext
from overture.connectors.spec import Action, Auth, Connector, Field, obj
from overture.platform.errors import ValidationFailed

PHONE = {"type": "string", "pattern": r"^(whatsapp:)?\+[1-9][0-9]{1,14}$",
         "description": "E.164, like +14155550100 (or whatsapp:+14155550100)"}


def _account(ctx: ActionContext) -> str:
    return quote(str(ctx.value("account_sid") or ctx.require("username")), safe="")


def send_sms(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    if not data.get("from") and not data.get("messaging_service_sid"):
        raise ValidationFailed.field("input.from",
                                     "give a sender number (or a messaging_service_sid)")
    form: list[tuple[str, str]] = [("To", data["to"])]
    if data.get("from"):
        form.append(("From", data["from"]))
    if data.get("messaging_service_sid"):
        form.append(("MessagingServiceSid", data["messaging_service_sid"]))
    form.append(("Body", data["body"]))
    form.extend(("MediaUrl", url) for url in data.get("media_urls") or [])
    if data.get("status_callback"):
        form.append(("StatusCallback", data["status_callback"]))
    message = ctx.client.request("POST", f"Accounts/{_account(ctx)}/Messages.json",
                                 data=form).json()
    return {"sid": message["sid"], "status": message.get("status"), "to": message.get("to"),
            "from": message.get("from"), "date_created": message.get("date_created")}


def check(ctx: ActionContext) -> str:
    account = ctx.client.request("GET", f"Accounts/{_account(ctx)}.json").json()
    return f"Twilio account {account.get('friendly_name')!r} is {account.get('status')}"


CONNECTOR = Connector(
    key="twilio",
    name="Twilio",
    description="Send SMS and WhatsApp messages with Twilio. Username: the Account SID; "
                "password: the Auth Token (or an API key's SID and secret).",
    icon="twilio",
    auth=Auth(kind="basic", fields=(
        Field("account_sid", required=False,
              description="the account (AC...), when the username is an API key SID (SK...)"),
    )),
    base_url="https://api.twilio.com/2010-04-01",
    docs_url="https://www.twilio.com/docs/messaging/api/message-resource",
    test=check,
    actions=(
        Action(key="send_sms", name="Send an SMS",
               description="Send a text message from a number (or a messaging service).",
               input_schema=obj({
                   "to": PHONE,
                   "from": {"type": "string", "minLength": 1,
                            "description": "a Twilio number in E.164, or a sender id"},
                   "messaging_service_sid": {"type": "string", "pattern": r"^MG[0-9a-fA-F]{32}$"},
                   "body": {"type": "string", "minLength": 1, "maxLength": 1600},
                   "media_urls": {"type": "array", "maxItems": 10,
                                  "items": {"type": "string", "pattern": "^https?://"}},
                   "status_callback": {"type": "string", "pattern": "^https?://"},
               }, ["to", "body"]),
               output_schema=obj({"sid": {"type": "string"}, "status": {"type": "string"},
                                  "to": {"type": ["string", "null"]},
                                  "from": {"type": ["string", "null"]},
                                  "date_created": {"type": ["string", "null"]}}),
               run=send_sms, side_effects=True),
    ),
)
