"""Vendors' own webhook signatures, each checked the way its vendor documents it.

Every check compares with hmac.compare_digest and raises a 401 problem (`reason`:
missing, malformed, mismatch, expired, from-the-future) that says what is wrong
without echoing the secret. Where the vendor signs a timestamp (Slack, HubSpot,
Zendesk) a call signed more than TOLERANCE_SECONDS away from now is refused; Jira and
Typeform sign the body only, so a replay there is stopped by the event's id alone
(the receiver records every id it has seen).

* Slack: `X-Slack-Signature: v0=<hex HMAC of "v0:{X-Slack-Request-Timestamp}:{body}">`.
* HubSpot v3: `X-HubSpot-Signature-v3: <base64 HMAC of method + URI + body +
  X-HubSpot-Request-Timestamp>` (the timestamp in milliseconds).
* Zendesk: `X-Zendesk-Webhook-Signature: <base64 HMAC of timestamp + body>` with
  `X-Zendesk-Webhook-Signature-Timestamp` (ISO 8601).
* Jira Cloud: `X-Hub-Signature: sha256=<hex HMAC of the body>`.
* Typeform: `Typeform-Signature: sha256=<base64 HMAC of the body>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime

from overture.platform.webhook_signing import TOLERANCE_SECONDS, refused

_DIGITS = re.compile(r"[0-9]{1,15}")


def _mac(secret: str, content: bytes) -> bytes:
    if not secret:
        raise refused("bad-secret", "the trigger's signing secret is empty: set it again")
    return hmac.new(secret.encode(), content, hashlib.sha256).digest()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise refused("missing", f"the {name} header is missing: this endpoint takes only "
                                 "calls signed by the vendor")
    return value.strip()


def _same(expected: bytes, given: bytes | None, how: str) -> None:
    if given is None or not hmac.compare_digest(expected, given):
        raise refused("mismatch", f"wrong signature: it must be {how}, keyed with the "
                                  "signing secret saved on this trigger")


def _fresh(timestamp: float, now: float | None) -> None:
    age = int((time.time() if now is None else now) - timestamp)
    if age > TOLERANCE_SECONDS:
        raise refused("expired", f"the signed timestamp is {age} seconds old; calls are "
                                 f"accepted for {TOLERANCE_SECONDS} seconds after signing")
    if -age > TOLERANCE_SECONDS:
        raise refused("from-the-future", f"the signed timestamp is {-age} seconds in the "
                                         "future: check the sender's clock")


def _decode(text: str, hexadecimal: bool) -> bytes | None:
    try:
        return bytes.fromhex(text) if hexadecimal else base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _seconds(text: str, name: str, divisor: int = 1) -> float:
    if not _DIGITS.fullmatch(text):
        raise refused("malformed", f"{name} must be a Unix time in "
                                   f"{'milliseconds' if divisor > 1 else 'seconds'}")
    return int(text) / divisor


def verify_slack(secret: str, headers: Mapping[str, str], body: bytes,
                 now: float | None = None) -> None:
    stamp = _header(headers, "X-Slack-Request-Timestamp")
    when = _seconds(stamp, "X-Slack-Request-Timestamp")
    version, _, given = _header(headers, "X-Slack-Signature").partition("=")
    expected = _mac(secret, f"v0:{stamp}:".encode() + body)
    _same(expected, _decode(given, True) if version == "v0" else None,
          'v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">')
    _fresh(when, now)


def verify_hubspot(secret: str, method: str, uris: Sequence[str], headers: Mapping[str, str],
                   body: bytes, now: float | None = None) -> None:
    """`uris`: the URLs this call may have been posted to (the public one HubSpot was
    given, and the one the request arrived at): HubSpot signs the one it used."""
    stamp = _header(headers, "X-HubSpot-Request-Timestamp")
    when = _seconds(stamp, "X-HubSpot-Request-Timestamp", 1000)
    given = _decode(_header(headers, "X-HubSpot-Signature-v3"), False)
    matched = False
    for uri in dict.fromkeys(uris):
        expected = _mac(secret, method.upper().encode() + uri.encode() + body + stamp.encode())
        matched |= given is not None and hmac.compare_digest(expected, given)
    if not matched:
        _same(b"", None, "the base64 HMAC-SHA256 of method + URI + body + timestamp")
    _fresh(when, now)


def verify_zendesk(secret: str, headers: Mapping[str, str], body: bytes,
                   now: float | None = None) -> None:
    stamp = _header(headers, "X-Zendesk-Webhook-Signature-Timestamp")
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise refused("malformed", "X-Zendesk-Webhook-Signature-Timestamp must be an ISO "
                                   "8601 time") from None
    given = _decode(_header(headers, "X-Zendesk-Webhook-Signature"), False)
    _same(_mac(secret, stamp.encode() + body), given,
          "the base64 HMAC-SHA256 of timestamp + body")
    _fresh(when, now)


def verify_jira(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    scheme, _, given = _header(headers, "X-Hub-Signature").partition("=")
    _same(_mac(secret, body), _decode(given, True) if scheme == "sha256" else None,
          "sha256=<hex HMAC-SHA256 of the body>")


def verify_typeform(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    scheme, _, given = _header(headers, "Typeform-Signature").partition("=")
    _same(_mac(secret, body), _decode(given, False) if scheme == "sha256" else None,
          "sha256=<base64 HMAC-SHA256 of the body>")
