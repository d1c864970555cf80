"""Single-use recovery codes for when the authenticator is lost.

Codes are twelve characters from a 31-symbol alphabet without 0/o, 1/i/l look-alikes
(about 59 bits each), shown as xxxx-xxxx-xxxx so they can be read aloud and typed.
Hashed with argon2id, like passwords: 59 bits is beyond online guessing but not beyond an
offline attack on a stolen table with a fast hash such as SHA-256, so the slow hash is
worth the cost of checking ten hashes on a rare recovery sign-in.
"""

from __future__ import annotations

import secrets

from overture.tenants.passwords import hash_password, verify_password

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
GROUPS = 3
GROUP_LENGTH = 4


def generate(n: int = 10) -> list[str]:
    return [
        "-".join(
            "".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS)
        )
        for _ in range(n)
    ]


def normalise(code: str) -> str:
    """Case, dashes and spaces are presentation only; what users type varies in all three."""
    return "".join(ch for ch in code.lower() if ch not in "- \t\r\n")


def hash_code(code: str) -> str:
    return hash_password(normalise(code))


def matches(code: str, hashes: list[str | None]) -> int | None:
    """Index of the hash `code` matches, so the caller can strike that code out (single use).

    Used (None) entries are skipped; input of the wrong shape is refused before any hashing.
    """
    candidate = normalise(code)
    if len(candidate) != GROUPS * GROUP_LENGTH or any(ch not in ALPHABET for ch in candidate):
        return None
    for index, stored in enumerate(hashes):
        if stored and verify_password(stored, candidate):
            return index
    return None
