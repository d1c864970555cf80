"""Email by IMAP: a polling trigger that starts a run for each new email (imaplib).

The cursor is the folder's UIDVALIDITY and the highest UID seen. The first poll only
notes where the folder stands (mail that is already there is not "new"); later polls
fetch what arrived since, without marking it read (BODY.PEEK). The dedupe key is the
Message-ID (or folder, UIDVALIDITY and UID for mail without one), so a message is
never started twice, even when two polls race or a cursor is lost. If the server
renumbers the folder (a new UIDVALIDITY), the next poll takes a new starting point.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from overture.connectors.context import ActionContext, PollContext
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Auth, Connector, Field, Trigger, obj
from overture.connectors.tcp import destination, failure, security_of
from overture.platform.outbound import PinnedIMAP, PinnedIMAPSSL

DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
BATCH = 25  # messages per poll; the rest come in the next
MAX_FETCH = 2_000_000  # bytes of a message fetched (bodies beyond are cut)
MAX_TEXT = 100_000  # characters of text and HTML put into the event
NUMBER = re.compile(rb"\d+")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _open(ctx: ActionContext) -> tuple[imaplib.IMAP4, str]:
    security = security_of(ctx, "ssl")
    target = destination(ctx, DEFAULT_PORTS[security])
    what = f"the mail server {target.host}:{target.port}"
    tls = ssl.create_default_context()
    server: imaplib.IMAP4 | None = None
    try:
        if security == "ssl":
            server = PinnedIMAPSSL(target, ctx.timeout, tls)
        else:
            server = PinnedIMAP(target, ctx.timeout)
        if security == "starttls":
            if "STARTTLS" not in server.capabilities:
                _logout(server)
                raise ActionFailed("misconfigured", f"{what} does not offer STARTTLS (check "
                                                    "the connection's security setting)")
            server.starttls(tls)
    except imaplib.IMAP4.abort as exc:
        _logout(server)
        raise failure(exc, what, ctx.timeout) from exc
    except imaplib.IMAP4.error as exc:
        _logout(server)
        raise ActionFailed("misconfigured", f"{what} refused: {_text(exc)} (check the "
                                            "connection's security setting)") from exc
    except OSError as exc:
        _logout(server)
        raise failure(exc, what, ctx.timeout) from exc
    try:
        server.login(_quote(str(ctx.require("username"))), str(ctx.value("password") or ""))
    except imaplib.IMAP4.abort as exc:
        _logout(server)
        raise failure(exc, what, ctx.timeout) from exc
    except imaplib.IMAP4.error as exc:
        _logout(server)
        raise ActionFailed("auth_failed", f"the mail server refused the credentials: "
                                          f"{_text(exc)}") from exc
    except OSError as exc:
        _logout(server)
        raise failure(exc, what, ctx.timeout) from exc
    return server, what


def _logout(server: imaplib.IMAP4 | None) -> None:
    if server is None:
        return
    try:
        server.logout()
    except (imaplib.IMAP4.error, OSError):
        with contextlib.suppress(OSError):
            server.shutdown()


def _text(exc: BaseException) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def _ok(typ: str, data: Any, what: str) -> Any:
    if typ != "OK":
        message = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise ActionFailed("misconfigured", f"{what} failed: {message or typ}")
    return data


def _code(server: imaplib.IMAP4, name: str) -> int | None:
    values = server.untagged_responses.get(name) or []
    for value in values:
        found = NUMBER.search(value if isinstance(value, bytes) else str(value).encode())
        if found:
            return int(found.group())
    return None


def poll_new_email(ctx: PollContext) -> list[dict[str, Any]]:
    folder = str(ctx.value("folder") or "INBOX")
    server, what = _open(ctx)
    try:
        return _poll(server, ctx, folder)
    except imaplib.IMAP4.abort as exc:
        raise failure(exc, what, ctx.timeout) from exc
    except imaplib.IMAP4.error as exc:
        raise ActionFailed("misconfigured", f"{what} refused: {_text(exc)}") from exc
    except OSError as exc:
        raise failure(exc, what, ctx.timeout) from exc
    finally:
        _logout(server)


def _poll(server: imaplib.IMAP4, ctx: PollContext, folder: str) -> list[dict[str, Any]]:
    _ok(*server.select(_quote(folder), readonly=True), f"opening folder {folder!r}")
    uidvalidity = _code(server, "UIDVALIDITY")
    if uidvalidity is None:
        raise ActionFailed("misconfigured", "the mail server gave no UIDVALIDITY")
    if ctx.state.get("uidvalidity") != uidvalidity or "last_uid" not in ctx.state:
        # The first poll, or the folder was renumbered: start from what is there now.
        uidnext = _code(server, "UIDNEXT")
        last = uidnext - 1 if uidnext else max(_search(server, "1:*"), default=0)
        ctx.state.clear()
        ctx.state.update({"uidvalidity": uidvalidity, "last_uid": last})
        return []
    last_uid = int(ctx.state["last_uid"])
    # "n:*" always includes the highest UID, even one below n: keep only the new ones.
    uids = sorted(uid for uid in _search(server, f"{last_uid + 1}:*") if uid > last_uid)
    events = []
    for uid in uids[:BATCH]:
        raw = _fetch(server, uid)
        if raw is not None:
            events.append(_event(raw, uid, uidvalidity, folder))
        ctx.state["last_uid"] = uid
    return events


def _search(server: imaplib.IMAP4, uids: str) -> list[int]:
    data = _ok(*server.uid("SEARCH", "UID", uids), "searching the folder")
    return [int(n) for n in b" ".join(d for d in data if d).split()]


def _fetch(server: imaplib.IMAP4, uid: int) -> bytes | None:
    data = _ok(*server.uid("FETCH", str(uid), f"(BODY.PEEK[]<0.{MAX_FETCH}>)"),
               f"fetching message {uid}")
    for part in data:
        if isinstance(part, tuple) and len(part) == 2:
            return bytes(part[1])
    return None  # expunged in the meantime


def _event(raw: bytes, uid: int, uidvalidity: int, folder: str) -> dict[str, Any]:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return {
        "message_id": _header(msg, "Message-ID") or None, "uid": uid,
        "uidvalidity": uidvalidity, "folder": folder,
        "from": (_addresses(msg, "From") or [None])[0],
        "to": _addresses(msg, "To"), "cc": _addresses(msg, "Cc"),
        "reply_to": (_addresses(msg, "Reply-To") or [None])[0],
        "subject": _header(msg, "Subject"), "date": _date(msg),
        "in_reply_to": _header(msg, "In-Reply-To") or None,
        "text": _body(msg, "plain"), "html": _body(msg, "html") or None,
        "attachments": _attachments(msg),
    }


def _header(msg: EmailMessage, name: str) -> str:
    try:
        return str(msg.get(name) or "").strip()
    except (ValueError, TypeError, IndexError, AttributeError):  # a malformed header
        return ""


def _addresses(msg: EmailMessage, name: str) -> list[dict[str, str]]:
    raw = [_header(msg, name)] if _header(msg, name) else []
    return [{"name": n, "email": e} for n, e in getaddresses(raw) if e]


def _date(msg: EmailMessage) -> str | None:
    try:
        return parsedate_to_datetime(_header(msg, "Date")).isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def _body(msg: EmailMessage, kind: str) -> str:
    try:
        part = msg.get_body((kind,))
        return str(part.get_content())[:MAX_TEXT] if part is not None else ""
    except (LookupError, ValueError, TypeError, AttributeError):
        return ""


def _attachments(msg: EmailMessage) -> list[dict[str, Any]]:
    found = []
    try:
        for part in msg.iter_attachments():
            payload = part.get_payload(decode=True) or b""
            found.append({"filename": part.get_filename(),
                          "content_type": part.get_content_type(), "size": len(payload)})
    except (LookupError, ValueError, TypeError, AttributeError):
        pass
    return found


def event_key(event: dict[str, Any]) -> str:
    if event.get("message_id"):
        return str(event["message_id"])
    return f"{event.get('folder')}:{event.get('uidvalidity')}:{event.get('uid')}"


def check(ctx: ActionContext) -> str:
    folder = str(ctx.value("folder") or "INBOX")
    server, _ = _open(ctx)
    try:
        typ, data = server.select(_quote(folder), readonly=True)
        _ok(typ, data, f"opening folder {folder!r}")
    except imaplib.IMAP4.error as exc:
        raise ActionFailed("misconfigured", _text(exc)) from exc
    finally:
        _logout(server)
    count = data[0].decode() if data and isinstance(data[0], bytes) else "?"
    return f"signed in; folder {folder!r} holds {count} messages"


ADDRESS = obj({"name": {"type": "string"}, "email": {"type": "string"}})

CONNECTOR = Connector(
    key="imap",
    name="Email (IMAP)",
    description="Start a workflow for each new email in a mailbox folder.",
    icon="inbox",
    auth=Auth(kind="custom", fields=(
        Field("host", description="the IMAP server, e.g. imap.example.com"),
        Field("port", required=False, description="993 (ssl) or 143"),
        Field("security", required=False, description="ssl (default), starttls or none"),
        Field("username"),
        Field("password", secret=True),
        Field("folder", required=False, description="the folder to watch (default INBOX)"),
    )),
    base_url=None,
    docs_url="https://www.rfc-editor.org/rfc/rfc3501",
    tags=("email",),
    test=check,
    triggers=(Trigger(
        key="new_email", name="New email",
        description="A new email arrived in the folder (it is not marked as read).",
        kind="polling",
        output_schema=obj({
            "message_id": {"type": ["string", "null"]}, "uid": {"type": "integer"},
            "uidvalidity": {"type": "integer"}, "folder": {"type": "string"},
            "from": {"anyOf": [ADDRESS, {"type": "null"}]},
            "to": {"type": "array", "items": ADDRESS}, "cc": {"type": "array", "items": ADDRESS},
            "reply_to": {"anyOf": [ADDRESS, {"type": "null"}]},
            "subject": {"type": "string"}, "date": {"type": ["string", "null"]},
            "in_reply_to": {"type": ["string", "null"]},
            "text": {"type": "string"}, "html": {"type": ["string", "null"]},
            "attachments": {"type": "array", "items": obj({
                "filename": {"type": ["string", "null"]}, "content_type": {"type": "string"},
                "size": {"type": "integer"}})},
        }),
        dedupe_key=event_key, poll=poll_new_email),),
)
