"""The password policy (NIST SP 800-63B, ASVS 5.0 V6.2): long enough, not common, not
built from words about the account or the product. No composition rules: any
character is welcome, and nothing is truncated or case-folded before hashing.

The common-password list ships in the package (`common-passwords.txt.gz`, provenance in
`common-passwords.NOTICE.md`). It is read on first use and kept as one string
(~640 kB), searched for a whole line, instead of a set of 44,000 small strings (~5 MB).
"""

from __future__ import annotations

import functools
import gzip
import re
from importlib import resources

from overture.platform.errors import ValidationFailed

MIN_LENGTH = 12
# Far above anything a person or a password manager uses; keeps hashing input bounded.
MAX_LENGTH = 1024
PRODUCT_WORDS = ("overture",)
_SEPARATORS = re.compile(r"[^0-9a-z]+")
_TRAILING_DIGITS_AND_SYMBOLS = re.compile(r"[^a-z]+$")


@functools.cache
def _common_passwords() -> str:
    blob = resources.files("overture.tenants").joinpath("common-passwords.txt.gz").read_bytes()
    return "\n" + gzip.decompress(blob).decode("utf-8")


def is_common(password: str) -> bool:
    """Whether the password, in any letter case, is on the bundled list."""
    candidate = password.strip().lower()
    return "\n" not in candidate and f"\n{candidate}\n" in _common_passwords()


def _stem(text: str) -> str:
    """Lowercase letters and digits only, without what people tack on at the end
    (`Maria.Lopez-2024!` -> `marialopez`)."""
    joined = _SEPARATORS.sub("", text.lower())
    return _TRAILING_DIGITS_AND_SYMBOLS.sub("", joined)


def context_words(email: str = "", name: str = "") -> set[str]:
    """The documented context-specific words (ASVS V6.2.11): the product's name, the
    account's email address, the email's local part, and the person's name."""
    local = email.split("@", 1)[0]
    words = {*PRODUCT_WORDS, _stem(email), _stem(local), _stem(name)}
    return {w for w in words if len(w) >= 4}


def problems(password: str, email: str = "", name: str = "") -> list[str]:
    """Why `password` is refused, in words a person can act on; empty when it is fine."""
    if len(password) < MIN_LENGTH:
        return [f"must be at least {MIN_LENGTH} characters (a few unrelated words make a "
                "long password that is easy to remember)"]
    if len(password) > MAX_LENGTH:
        return [f"must be at most {MAX_LENGTH} characters"]
    if is_common(password):
        return ["is one of the most common passwords, which attackers try first; "
                "choose another"]
    if _stem(password) in context_words(email, name):
        return ["is too easy to guess from your email address, your name or the "
                "product's name; choose another"]
    return []


def check(password: str, email: str = "", name: str = "", field: str = "password") -> None:
    """Raise a 422 naming `field` when the policy refuses `password`."""
    found = problems(password, email, name)
    if found:
        raise ValidationFailed.field(field, found[0])
