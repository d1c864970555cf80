"""Signed webhooks: the signature covers a timestamp with the body, so a captured call
is refused once TOLERANCE_SECONDS have passed, and the delivery it names (its id, or
the signed content itself) lets the receiver start it once inside that window.

Two layouts are accepted, both HMAC-SHA256:

* Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`,
  `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC of
  "{id}.{timestamp}.{body}">`, several space-separated when the sender rotates its
  secret (other versions, such as `v1a` for asymmetric keys, are skipped).
* `X-Overture-Signature: t=<Unix seconds>,v1=<hex HMAC of "{t}.{body}">` (Stripe's
  layout), for callers of the former body-only `sha256=<hex>` form, which is refused:
  it could be replayed forever. Several `v1=` are allowed, as above.

The HMAC key is the secret's UTF-8 bytes, except for a Standard Webhooks secret
`whsec_<base64>`, whose key is the bytes the base64 decodes to (as the spec says).

Not the `standardwebhooks` package: its `verify` raises ValueError and binascii.Error
on a malformed header (our callers would get a 500), cannot read a body that is not
UTF-8, and knows only one of the two layouts; the tests sign with it to prove we
interoperate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from overture.platform.errors import Unauthenticated

TOLERANCE_SECONDS = 300
STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
OVERTURE_HEADER = "x-overture-signature"
SCHEMES = ('Standard Webhooks (headers webhook-id, webhook-timestamp and webhook-signature: '
           'v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">) or X-Overture-Signature: '
           't=<Unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">')
_SECONDS = re.compile(r"[0-9]{1,12}")  # Unix seconds, no sign, no fraction, no exponent


@dataclass(frozen=True)
class SignedDelivery:
    """What a valid signature vouches for."""

    scheme: str  # "standard-webhooks" or "overture"
    message_id: str | None  # the signed webhook-id (Standard Webhooks only)
    digest: str  # hex SHA-256 of the signed content: this exact delivery, at this time


def refused(reason: str, detail: str) -> Unauthenticated:
    """A 401 problem whose `reason` a client can switch on and whose detail says why."""
    return Unauthenticated(detail, reason=reason)


def signing_key(secret: str) -> bytes:
    if secret.startswith(STANDARD_SECRET_PREFIX):
        encoded = secret[len(STANDARD_SECRET_PREFIX):]
        try:  # unpadded base64 is common: pad it, extra padding is ignored
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise refused("bad-secret", "the workflow's signing secret starts with whsec_ "
                                        "but the rest is not base64: fix the credential") from None
    else:
        key = secret.encode()
    if not key:
        raise refused("bad-secret", "the workflow's signing secret is empty: fix the credential")
    return key


def _mac(key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, hashlib.sha256).digest()


# --------------------------------------------------------------------------- signing


def sign_standard(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery."""
    mac = _mac(signing_key(secret), f"{message_id}.{timestamp}.".encode() + body)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


def sign_overture(secret: str, timestamp: int, body: bytes) -> str:
    """The value of an `X-Overture-Signature` header."""
    return f"t={timestamp},v1={_mac(signing_key(secret), f'{timestamp}.'.encode() + body).hex()}"


# --------------------------------------------------------------------------- verifying


def verify(secret: str, headers: Mapping[str, str], body: bytes,
           now: float | None = None) -> SignedDelivery:
    """The delivery a request's signature vouches for, or a 401 that says what is wrong."""
    lower = {name.lower(): value for name, value in headers.items()}
    if lower.get("webhook-signature"):
        timestamp, content, signatures, message_id = _standard(lower, body)
    elif lower.get(OVERTURE_HEADER):
        timestamp, content, signatures = _overture(lower[OVERTURE_HEADER], body)
        message_id = None
    else:
        raise refused("missing", f"this webhook is signed: sign each call with {SCHEMES}")
    expected = _mac(signing_key(secret), content)
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise refused("mismatch", "wrong webhook signature: it must be the HMAC-SHA256, with "
                                  "the workflow's signing secret, of " +
                                  ('"{id}.{timestamp}.{body}"' if message_id is not None
                                   else '"{t}.{body}"'))
    _check_fresh(int(timestamp), time.time() if now is None else now)
    return SignedDelivery("standard-webhooks" if message_id is not None else "overture",
                          message_id, hashlib.sha256(content).hexdigest())


def _standard(headers: Mapping[str, str], body: bytes) -> tuple[str, bytes, list[bytes], str]:
    message_id = headers.get("webhook-id", "").strip()
    timestamp = headers.get("webhook-timestamp", "").strip()
    if not message_id:
        raise refused("malformed", "a Standard Webhooks call needs a webhook-id header")
    if not _SECONDS.fullmatch(timestamp):
        raise refused("malformed", "webhook-timestamp must be whole seconds since 1970 "
                                   "(Unix time)")
    signatures = []
    for entry in headers["webhook-signature"].split():
        version, _, encoded = entry.partition(",")
        if version == "v1":
            signatures += _decoded(encoded, _b64)
    if not signatures:
        raise refused("malformed", "webhook-signature must hold one or more space-separated "
                                   "v1,<base64 signature>")
    return timestamp, f"{message_id}.{timestamp}.".encode() + body, signatures, message_id


def _overture(header: str, body: bytes) -> tuple[str, bytes, list[bytes]]:
    value = header.strip()
    if value.lower().startswith("sha256="):
        raise refused("legacy-scheme", "X-Overture-Signature: sha256=<HMAC of the body> is no "
                                       "longer accepted: it signs no time, so a captured call "
                                       f"could be replayed. Sign a timestamp with the body: "
                                       f"{SCHEMES}")
    timestamps, signatures = [], []
    for part in value.split(","):
        name, _, given = part.strip().partition("=")
        if name == "t":
            timestamps.append(given.strip())
        elif name == "v1":
            signatures += _decoded(given.strip(), bytes.fromhex)
    if len(timestamps) != 1 or not _SECONDS.fullmatch(timestamps[0]) or not signatures:
        raise refused("malformed", "X-Overture-Signature must be t=<Unix seconds>,v1=<hex "
                                   'HMAC-SHA256 of "{t}.{body}"> (more v1= may follow)')
    return timestamps[0], f"{timestamps[0]}.".encode() + body, signatures


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _decoded(text: str, decode: Callable[[str], bytes]) -> list[bytes]:
    """One signature's bytes, or none when it is not valid base64 / hex: a malformed
    entry beside a good one must not fail the call."""
    try:
        return [decode(text)]
    except (binascii.Error, ValueError):
        return []


def _check_fresh(timestamp: int, now: float) -> None:
    age = int(now - timestamp)
    if age > TOLERANCE_SECONDS:
        raise refused("expired", f"the signature's timestamp is {age} seconds old; a signed "
                                 f"call is accepted for {TOLERANCE_SECONDS} seconds after it "
                                 "is signed (so a captured call cannot be replayed): sign "
                                 "each delivery as it is sent, and check the sender's clock")
    if -age > TOLERANCE_SECONDS:
        raise refused("from-the-future", f"the signature's timestamp is {-age} seconds in the "
                                         f"future (more than {TOLERANCE_SECONDS} are refused): "
                                         "check the sender's clock")
