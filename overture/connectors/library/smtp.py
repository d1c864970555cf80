"""Email by SMTP: send a message through the tenant's own mail server (smtplib).

The server's host is checked like any tenant-supplied URL (`connectors.tcp`). A
temporary refusal (a 4xx reply: greylisting, "try again later") is retried with
backoff, as HTTP connectors retry a 429; a permanent one (5xx) fails at once.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

from overture.connectors.context import ActionContext
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Action, Auth, Connector, Field, obj
from overture.connectors.tcp import destination, failure, security_of
from overture.platform.outbound import PinnedSMTP, PinnedSMTPSSL

MAX_RETRIES = 3
BACKOFF = 0.5  # seconds before the first retry of a temporary refusal; doubles
DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
EMAIL = {"type": "string", "maxLength": 254,
         "pattern": r"^[^@\s<>,;\"()\[\]]+@[^@\s<>,;\"()\[\]]+$"}
ONE_LINE = r"^[^\r\n]*$"


def _open(ctx: ActionContext) -> smtplib.SMTP:
    """A connected, greeted and (if the connection has a username) logged-in session."""
    security = security_of(ctx, "starttls")
    target = destination(ctx, DEFAULT_PORTS[security])
    what = f"the mail server {target.host}:{target.port}"
    tls = ssl.create_default_context()
    server: smtplib.SMTP | None = None
    try:
        if security == "ssl":
            server = PinnedSMTPSSL(target, ctx.timeout, context=tls)
        else:
            server = PinnedSMTP(target, ctx.timeout)
        server.ehlo_or_helo_if_needed()
        if security == "starttls":
            server.starttls(context=tls)
            server.ehlo()
        username = ctx.value("username")
        if username:
            server.login(str(username), str(ctx.value("password") or ""))
        return server
    except smtplib.SMTPAuthenticationError as exc:
        _quit(server)
        raise ActionFailed("auth_failed", f"the mail server refused the credentials "
                                          f"({exc.smtp_code})", smtp_code=exc.smtp_code) from exc
    except smtplib.SMTPNotSupportedError as exc:
        _quit(server)
        raise ActionFailed("misconfigured", f"{what} does not support this: {exc} (check the "
                                            "connection's security setting)") from exc
    except smtplib.SMTPResponseException as exc:
        _quit(server)
        raise _refusal(exc.smtp_code, exc.smtp_error, what) from exc
    except (smtplib.SMTPException, OSError) as exc:
        _quit(server)
        raise failure(exc, what, ctx.timeout) from exc


def _quit(server: smtplib.SMTP | None) -> None:
    if server is None:
        return
    try:
        server.quit()
    except (smtplib.SMTPException, OSError):
        server.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Temporary(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _refusal(code: int, message: bytes | str, what: str) -> Exception:
    text = f"{code} {_text(message)}".strip()
    if 400 <= code < 500:
        return _Temporary(code, text)
    return ActionFailed("rejected", f"{what} refused the message: {text}", smtp_code=code)


def _message(ctx: ActionContext, data: dict[str, Any]) -> tuple[EmailMessage, str, list[str]]:
    sender = ctx.value("from_address") or ctx.value("username")
    if not sender or "@" not in str(sender):
        raise ActionFailed("misconfigured", "the connection needs a from_address (or a "
                                            "username that is an email address)")
    try:
        return _build(ctx, data, str(sender))
    except ValueError as exc:  # a header the email package refuses (a line break, say)
        raise ActionFailed("misconfigured", f"cannot build the message: {exc}") from exc


def _build(ctx: ActionContext, data: dict[str, Any],
           sender: str) -> tuple[EmailMessage, str, list[str]]:
    msg = EmailMessage()
    name = data.get("from_name") or ctx.value("from_name")
    msg["From"] = formataddr((str(name), sender)) if name else sender
    msg["To"] = ", ".join(data["to"])
    if data.get("cc"):
        msg["Cc"] = ", ".join(data["cc"])
    if data.get("reply_to"):
        msg["Reply-To"] = data["reply_to"]
    msg["Subject"] = data["subject"]
    msg["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[1]
    if ctx.idempotency_key:  # the same key gives the same Message-ID: receivers can dedupe
        digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:32]
        msg["Message-ID"] = f"<{digest}@{domain}>"
    else:
        msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(data["text"])
    if data.get("html"):
        msg.add_alternative(data["html"], subtype="html")
    recipients = [*data["to"], *data.get("cc", []), *data.get("bcc", [])]
    return msg, sender, recipients


def send_email(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    msg, sender, recipients = _message(ctx, data)
    for attempt in range(MAX_RETRIES + 1):
        try:
            refused = _send_once(ctx, msg, sender, recipients)
        except _Temporary as temporary:
            if attempt < MAX_RETRIES:
                ctx.client.sleep(min(BACKOFF * 2 ** attempt, 8.0))
                continue
            raise ActionFailed("temporary", f"the mail server asked to try again later: "
                                            f"{temporary.message}",
                               smtp_code=temporary.code) from temporary
        return {"message_id": msg["Message-ID"],
                "accepted": [r for r in recipients if r not in refused],
                "refused": {r: f"{code} {_text(text)}" for r, (code, text) in refused.items()}}
    raise AssertionError("unreachable")


def _send_once(ctx: ActionContext, msg: EmailMessage, sender: str,
               recipients: list[str]) -> dict[str, tuple[int, bytes]]:
    server = _open(ctx)
    what = "the mail server"
    try:
        return server.send_message(msg, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):
            raise _Temporary(codes[0], "; ".join(
                f"{r}: {c} {_text(t)}" for r, (c, t) in exc.recipients.items())) from exc
        raise ActionFailed("rejected", "the mail server refused every recipient: " + "; ".join(
            f"{r}: {c} {_text(t)}" for r, (c, t) in exc.recipients.items())) from exc
    except smtplib.SMTPResponseException as exc:
        raise _refusal(exc.smtp_code, exc.smtp_error, what) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise failure(exc, what, ctx.timeout) from exc
    finally:
        _quit(server)


def check(ctx: ActionContext) -> str:
    server = _open(ctx)
    try:
        server.noop()
    finally:
        _quit(server)
    return "the mail server accepted the connection" + (
        " and the credentials" if ctx.value("username") else "")


ADDRESSES = {"type": "array", "items": EMAIL, "maxItems": 100}

CONNECTOR = Connector(
    key="smtp",
    name="Email (SMTP)",
    description="Send email through your own mail server.",
    icon="mail",
    auth=Auth(kind="custom", fields=(
        Field("host", description="the SMTP server, e.g. smtp.example.com"),
        Field("port", required=False, description="465 (ssl), 587 (starttls) or 25"),
        Field("security", required=False, description="starttls (default), ssl or none"),
        Field("username", required=False, description="to log in; none: send without AUTH"),
        Field("password", secret=True, required=False),
        Field("from_address", required=False,
              description="the sender address (default: the username)"),
        Field("from_name", required=False, description="the sender's display name"),
    )),
    base_url=None,
    docs_url="https://www.rfc-editor.org/rfc/rfc5321",
    tags=("email",),
    test=check,
    actions=(Action(
        key="send_email", name="Send an email",
        description="Send a plain-text email (with an optional HTML alternative).",
        input_schema=obj({
            "to": {**ADDRESSES, "minItems": 1},
            "cc": ADDRESSES,
            "bcc": ADDRESSES,
            "subject": {"type": "string", "maxLength": 998, "pattern": ONE_LINE},
            "text": {"type": "string", "maxLength": 1_000_000},
            "html": {"type": "string", "maxLength": 2_000_000},
            "reply_to": EMAIL,
            "from_name": {"type": "string", "maxLength": 200, "pattern": ONE_LINE},
        }, ["to", "subject", "text"]),
        output_schema=obj({"message_id": {"type": "string"},
                           "accepted": {"type": "array", "items": {"type": "string"}},
                           "refused": {"type": "object",
                                       "additionalProperties": {"type": "string"}}}),
        run=send_email, side_effects=True),),
)
