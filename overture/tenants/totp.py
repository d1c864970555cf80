"""RFC 6238 time-based one-time passwords (HMAC-SHA1, 6 digits, 30 s step).

Standard library only: the algorithm is twenty lines, and every authenticator app
speaks exactly this profile, so a dependency would buy nothing but supply-chain risk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

DIGITS = 6
PERIOD = 30


def new_secret() -> str:
    """160 random bits (RFC 4226 recommends the HMAC-SHA1 output size), base32 unpadded,
    the form authenticator apps expect in the provisioning URI and for manual entry."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    """Decode base32 leniently: users may type the secret in lower case or with spaces."""
    cleaned = "".join(secret.split()).upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def step_at(when: float) -> int:
    return int(when // PERIOD)


def _hotp(key: bytes, counter: int, digits: int) -> str:
    """RFC 4226 section 5.3: HMAC, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def code_at(secret: str, when: float, digits: int = DIGITS) -> str:
    """The code for Unix time `when`; `digits` lets tests check the RFC's 8-digit vectors."""
    return _hotp(_key(secret), step_at(when), digits)


def verify(
    secret: str,
    code: str,
    when: float | None = None,
    window: int = 1,
    last_used_step: int | None = None,
    digits: int = DIGITS,
) -> int | None:
    """The matched time step, or None.

    `window` steps either side absorb clock drift and typing time (RFC 6238 section 5.2).
    Steps at or before `last_used_step` are refused, so a code seen over a shoulder or
    replayed from a log cannot be used twice; the caller stores the returned step.
    Every candidate is compared with compare_digest and without early exit, so timing
    says nothing about which step (if any) was close.
    """
    candidate = "".join(str(code).split())
    if len(candidate) != digits or not candidate.isascii() or not candidate.isdigit():
        return None
    key = _key(secret)
    now = step_at(time.time() if when is None else when)
    matched = None
    for step in range(now - window, now + window + 1):
        if step < 0 or (last_used_step is not None and step <= last_used_step):
            continue
        if hmac.compare_digest(_hotp(key, step, digits), candidate) and matched is None:
            matched = step
    return matched


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI authenticator apps import (Google Authenticator key-uri format).

    The issuer appears both as the label prefix (older apps) and as a parameter (newer
    ones); every part is percent-encoded so a colon or '&' in a name cannot split fields.
    """
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    params = {
        "secret": secret,
        "issuer": issuer,
        "algorithm": "SHA1",
        "digits": DIGITS,
        "period": PERIOD,
    }
    return f"otpauth://totp/{label}?{urlencode(params, quote_via=quote)}"
