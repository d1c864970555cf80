"""Small input checks shared by every domain's services, and the one text rule.

The text rule: text the platform stores never holds a C0 control character (U+0000 to
U+001F; multi-line text may hold tab, line feed and carriage return) nor a lone
surrogate (U+D800 to U+DFFF). PostgreSQL cannot store NUL in text or `\\u0000` in JSONB,
psycopg cannot encode a lone surrogate, and the other control characters in a name
only ever serve to hide or forge what a log line, a terminal or a page shows. API
schemas (web/api/schemas.py `Strict`), request paths, query strings, headers and forms
(web/strict_input.py) and the services below all apply this one rule.
"""

from __future__ import annotations

import re

from overture.platform.errors import ValidationFailed

MAX_NAME = 120
MULTILINE_CONTROLS = "\t\n\r"  # the control characters multi-line text may hold

# Allowed characters as a regular expression that Python and ECMA-262 read alike, for
# the OpenAPI document's `pattern`; surrogates are left out of it on purpose (an ECMA
# regex without the `u` flag would refuse every emoji), the check below adds them.
LINE_PATTERN = r"^[^\x00-\x1f]*$"
MULTILINE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"
_FORBIDDEN_IN_LINE = re.compile(r"[\x00-\x1f\ud800-\udfff]")
_FORBIDDEN_IN_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def text_problem(value: str, multiline: bool = False) -> str | None:
    """What is wrong with `value` under the text rule, or None when it is acceptable."""
    forbidden = _FORBIDDEN_IN_MULTILINE if multiline else _FORBIDDEN_IN_LINE
    found = forbidden.search(value)
    if found is None:
        return None
    char = found.group()
    where = f"U+{ord(char):04X} at position {found.start()}"
    if "\ud800" <= char <= "\udfff":
        return f"contains a lone surrogate ({where}): not valid Unicode text"
    allowed = "; only tab, line feed and carriage return are allowed" if multiline else ""
    return f"contains a control character ({where}){allowed}"


def check_text(value: str, field: str, multiline: bool = False) -> str:
    """`value` when it satisfies the text rule, else ValidationFailed naming `field`."""
    if (problem := text_problem(value, multiline)) is not None:
        raise ValidationFailed.field(field, problem)
    return value


def clean_name(name: str | None, field: str = "name") -> str:
    """A display name: trimmed, 1 to 120 characters of one line, or ValidationFailed
    naming the field."""
    name = (name or "").strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise ValidationFailed.field(field, f"must be 1 to {MAX_NAME} characters")
    return check_text(name, field)
