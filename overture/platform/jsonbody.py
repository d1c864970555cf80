"""The one JSON parser for documents that arrive from outside: every API request body
(web/strict_input.py installs it for Flask and APIFlask) and every webhook payload.

It accepts I-JSON (RFC 7493), the subset of JSON every peer reads the same way, and
only what the platform can store and walk safely:

- UTF-8 only; `NaN`, `Infinity` and `-Infinity` are not JSON and are refused;
- numbers must be finite once read (`1e400` overflows a double) and at most
  `MAX_NUMBER_CHARS` characters long (a 5,000-digit integer is nobody's data, and
  Python refuses to read integers over 4,300 digits anyway);
- nesting at most `MAX_DEPTH` levels, so that every walk over a stored value (templates,
  schemas, the engine) stays far from the recursion limit;
- no duplicate keys in an object (RFC 7493 2.3): which one wins differs between
  parsers, so a signature checked by one and a value used by another could disagree;
- no `\\u0000` and no lone surrogate in any string or key: PostgreSQL's JSONB and text
  cannot hold them (platform/validation.py has the text rule for everything else).

Syntax, structure and duplicate keys answer 400 (`invalid-json`); a well-formed value
the platform cannot hold answers 422 naming where it is (`input.name`, or `body` for the
whole document). Both errors are also ValueErrors, as `json.loads`'s are.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate, repeat
from typing import Any

from overture.platform.errors import BadRequest, ValidationFailed

MAX_BODY_BYTES = 10 * 1024 * 1024  # Flask's MAX_CONTENT_LENGTH: larger bodies get 413
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 100


class InvalidJSON(BadRequest, ValueError):
    code = "invalid-json"
    title = "Invalid JSON"


class JSONValueRefused(ValidationFailed, ValueError):
    """Well-formed JSON holding a value the platform cannot store."""


def loads(data: bytes | str) -> Any:
    """The value of a JSON document, or InvalidJSON / JSONValueRefused saying why not."""
    text = _text(data)
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_float,
                           parse_int=_int, object_pairs_hook=_object)
    except RecursionError as exc:  # json's C scanner stops near depth 1,000
        raise InvalidJSON(_too_deep()) from exc
    except json.JSONDecodeError as exc:
        raise InvalidJSON(f"body: not valid JSON: {exc.msg} (line {exc.lineno}, "
                          f"column {exc.colno})") from exc
    if _depth(text) > MAX_DEPTH:
        raise InvalidJSON(_too_deep())
    if _ESCAPE_TO_CHECK.search(text):
        _refuse_unstorable_strings(value)
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """For modules that expect `loads` and `dumps` side by side (werkzeug's Request)."""
    return json.dumps(value, allow_nan=False, **kwargs)


def _text(data: bytes | str) -> str:
    if isinstance(data, str):
        # Text handed over directly may hold what UTF-8 bytes never can: a lone surrogate.
        if _SURROGATE.search(data):
            raise InvalidJSON("body: not valid UTF-8 text (a lone surrogate)")
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJSON(f"body: not valid UTF-8 (byte {exc.start})") from exc


def _too_deep() -> str:
    return f"body: nested deeper than {MAX_DEPTH} levels"


def _refuse_constant(name: str) -> Any:
    raise InvalidJSON(f"body: numbers must be finite; {name} is not JSON")


def _float(literal: str) -> float:
    _check_length(literal)
    number = float(literal)
    if not math.isfinite(number):
        raise JSONValueRefused.field(
            "body", f"numbers must be finite; {literal} is out of range")
    return number


def _int(literal: str) -> int:
    _check_length(literal)
    return int(literal)


def _check_length(literal: str) -> None:
    if len(literal) > MAX_NUMBER_CHARS:
        raise JSONValueRefused.field(
            "body", f"numbers have at most {MAX_NUMBER_CHARS} characters; one has "
                    f"{len(literal)} ({literal[:12]}...)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise InvalidJSON(f"body: duplicate key {_first_duplicate(pairs)!r} in an object")
    return obj


def _first_duplicate(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


# --------------------------------------------------------------------------- depth

# A JSON string, or a run of characters that are neither brackets nor quotes. Used only
# on text json.loads accepted: every string there is well formed, so this is linear.
_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+', re.DOTALL)
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}


def _depth(text: str) -> int:
    """How deeply the document's arrays and objects nest, counted without recursing."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0  # too few brackets to nest too deep: skip the scan
    brackets = _NOT_BRACKETS.sub("", text)
    return max(accumulate(map(_NESTING.get, brackets, repeat(0))), default=0)


# --------------------------------------------------------------------------- strings

# `\u0000` or a surrogate escape preceded by an even run of backslashes (an escape, not
# an escaped backslash followed by "u0000"). Only then are the strings walked: a valid
# surrogate pair (an emoji escaped) is fine, so the walk decides.
_ESCAPE_TO_CHECK = re.compile(r"(?<!\\)(?:\\\\)*\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _refuse_unstorable_strings(value: Any) -> None:
    """JSONValueRefused naming the first string (or key) PostgreSQL could not store."""
    todo: list[tuple[str, Any]] = [("", value)]
    while todo:
        path, node = todo.pop()
        if isinstance(node, str):
            _check_string(path, node, "text")
        elif isinstance(node, dict):
            for key, child in node.items():
                _check_string(path, key, "a key")
                todo.append((f"{path}.{key}" if path else key, child))
        elif isinstance(node, list):
            todo += [(f"{path}.{i}" if path else str(i), child) for i, child in enumerate(node)]


def _check_string(path: str, text: str, what: str) -> None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return
    if found.group() == "\x00":
        problem = f"{what} holds a NUL character (\\u0000), which cannot be stored"
    else:
        problem = (f"{what} holds a lone surrogate (\\u{ord(found.group()):04x}): "
                   "not valid Unicode")
    raise JSONValueRefused.field(path or "body", problem)
