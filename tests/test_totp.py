"""TOTP, recovery codes and the enrolment QR code: pure functions, no database."""

from __future__ import annotations

import base64
import math
import re
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overture.tenants import recovery_codes, totp
from overture.tenants.qr import qr_svg

# RFC 6238 Appendix B: the SHA1 seed is the ASCII string below; codes have 8 digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode().rstrip("=")
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("when", "expected"), RFC_VECTORS)
def test_rfc6238_sha1_vectors(when: int, expected: str) -> None:
    assert totp.code_at(RFC_SECRET, when, digits=8) == expected
    # Six digits are the last six of the same truncated value.
    assert totp.code_at(RFC_SECRET, when) == expected[-6:]
    assert totp.verify(RFC_SECRET, expected, when=when, digits=8) == when // 30


def test_new_secret_is_160_bit_unpadded_base32() -> None:
    secret = totp.new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert len(base64.b32decode(secret)) == 20
    assert secret != totp.new_secret()


def test_window_accepts_adjacent_steps_and_refuses_beyond() -> None:
    secret, now = totp.new_secret(), 1_700_000_000
    step = now // 30
    for offset in (-1, 0, 1):
        code = totp.code_at(secret, now + offset * 30)
        assert totp.verify(secret, code, when=now) == step + offset
    for offset in (-2, 2):
        assert totp.verify(secret, totp.code_at(secret, now + offset * 30), when=now) is None
    assert totp.verify(secret, totp.code_at(secret, now - 30), when=now, window=0) is None
    assert totp.verify(secret, totp.code_at(secret, now - 60), when=now, window=2) == step - 2


def test_replay_of_used_step_is_refused() -> None:
    secret, now = totp.new_secret(), 1_700_000_000
    code = totp.code_at(secret, now)
    used = totp.verify(secret, code, when=now)
    assert used is not None
    assert totp.verify(secret, code, when=now, last_used_step=used) is None
    assert totp.verify(secret, code, when=now + 30, last_used_step=used) is None
    # An earlier step than the last used is refused too; the next one is fine.
    earlier = totp.code_at(secret, now - 30)
    assert totp.verify(secret, earlier, when=now, last_used_step=used) is None
    later = totp.code_at(secret, now + 30)
    assert totp.verify(secret, later, when=now + 30, last_used_step=used) == used + 1


def test_spaces_tolerated_and_malformed_codes_refused() -> None:
    secret, now = totp.new_secret(), 1_700_000_000
    code = totp.code_at(secret, now)
    assert totp.verify(secret, f" {code[:3]} {code[3:]} ", when=now) == now // 30
    wrong = str((int(code) + 1) % 1_000_000).zfill(6)
    for bad in ("", code[:5], code + "0", "abcdef", "١٢٣٤٥٦", wrong):
        assert totp.verify(secret, bad, when=now) is None


def test_verify_defaults_to_current_time() -> None:
    secret = totp.new_secret()
    assert totp.verify(secret, totp.code_at(secret, time.time())) is not None


def test_lowercase_and_spaced_secret_accepted() -> None:
    secret = totp.new_secret()
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)).lower()
    assert totp.code_at(spaced, 1_700_000_000) == totp.code_at(secret, 1_700_000_000)


@settings(max_examples=200)
@given(when=st.integers(min_value=0, max_value=2**40), seed=st.binary(min_size=20, max_size=20))
def test_property_own_code_verifies(when: int, seed: bytes) -> None:
    secret = base64.b32encode(seed).decode().rstrip("=")
    assert totp.verify(secret, totp.code_at(secret, when), when=when) == when // 30


def test_provisioning_uri_parses() -> None:
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "ada@example.com", "Overture & Co: EU")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    issuer, account = parts.path.lstrip("/").split(":")
    assert unquote(issuer) == "Overture & Co: EU"
    assert unquote(account) == "ada@example.com"
    query = parse_qs(parts.query)
    assert query == {
        "secret": [secret],
        "issuer": ["Overture & Co: EU"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }
    assert " " not in uri


def test_recovery_codes_format_and_entropy() -> None:
    codes = recovery_codes.generate()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", code)
        assert not set(code) & set("01ilo")
    bits = 12 * math.log2(len(recovery_codes.ALPHABET))
    assert bits >= 50


def test_recovery_code_matches_once_and_normalises() -> None:
    codes = recovery_codes.generate(3)
    hashes: list[str | None] = [recovery_codes.hash_code(c) for c in codes]
    assert all(h and codes[0] not in h for h in hashes)
    typed = "  " + codes[1].upper().replace("-", " ") + " "
    index = recovery_codes.matches(typed, hashes)
    assert index == 1
    assert recovery_codes.matches(codes[1].replace("-", ""), hashes) == 1
    hashes[index] = None  # the caller strikes it out: single use
    assert recovery_codes.matches(codes[1], hashes) is None
    assert recovery_codes.matches(codes[2], hashes) == 2
    assert recovery_codes.matches("2222-2222-2222", hashes) is None
    assert recovery_codes.matches("", hashes) is None
    assert recovery_codes.matches(codes[0], []) is None


def test_qr_svg_is_local_svg() -> None:
    svg = qr_svg(totp.provisioning_uri(totp.new_secret(), "ada@example.com", "Overture"))
    assert svg.lstrip().startswith(("<svg", "<?xml"))
    assert "<svg" in svg and "<path" in svg
    assert "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
