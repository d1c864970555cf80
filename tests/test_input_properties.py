"""Properties of the JSON body parser, the text rule and definition validation
(hypothesis): whatever arrives, the answer is a value within the caps or our own
validation error, never anything else. Example counts are bounded: seconds, not minutes."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from apiflask.fields import List, String
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from overture.orchestration import steps  # noqa: F401  (registers the step types)
from overture.orchestration.agents import patterns  # noqa: F401  (the agent steps)
from overture.orchestration.agents.contract import InvalidAnswer, parse_answer
from overture.orchestration.definition import step_types, validate
from overture.orchestration.llm.local_provider import plain
from overture.orchestration.llm.types import ToolCall
from overture.platform import jsonbody
from overture.platform.errors import ValidationFailed
from overture.platform.validation import check_text, text_problem
from overture.web.api.schemas import Multiline, Strict

# No example database: nothing is written into the checkout; a failure prints its example.
BOUNDED = settings(max_examples=300, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- the parser


def depth(value: Any) -> int:
    deepest, todo = 0, [(value, 0)]
    while todo:
        node, level = todo.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level + 1)
            todo += [(child, level + 1)
                     for child in (node.values() if isinstance(node, dict) else node)]
    return deepest


def strings_and_numbers(value: Any) -> list[Any]:
    found, todo = [], [value]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            found += list(node)
            todo += list(node.values())
        elif isinstance(node, list):
            todo += node
        else:
            found.append(node)
    return found


def within_caps(value: Any) -> None:
    """What loads returns: plain JSON that round-trips, within every cap."""
    text = json.dumps(value, allow_nan=False)
    assert json.loads(text) == value
    assert depth(value) <= jsonbody.MAX_DEPTH
    for leaf in strings_and_numbers(value):
        if isinstance(leaf, str):
            assert "\x00" not in leaf and not re.search(r"[\ud800-\udfff]", leaf)
        elif isinstance(leaf, float):
            assert math.isfinite(leaf)
        elif isinstance(leaf, int) and not isinstance(leaf, bool):
            assert len(str(abs(leaf))) <= jsonbody.MAX_NUMBER_CHARS


def parse_or_refuse(data: bytes | str) -> None:
    try:
        value = jsonbody.loads(data)
    except (jsonbody.InvalidJSON, jsonbody.JSONValueRefused) as exc:
        assert exc.status in (400, 422)
        assert exc.detail
        return
    within_caps(value)


# JSON-ish text: fragments of JSON and of what the attack sent, glued at random.
TOKENS = st.sampled_from([
    "{", "}", "[", "]", ",", ":", '"', '"a"', '"b"', "1", "-0", "1.5e3", "1e400", "-1e400",
    "NaN", "Infinity", "-Infinity", "true", "null", "9" * 120, "  ", "\n", '"\\u0000"',
    '"\\ud800"', '"\\udc00"', '"\\ud83d\\ude00"', '"\\\\u0000"', '"\\"', '"x\\n"',
    '{"a": 1, "a": 2}', '"\u00e9"', "[" * 70, "]" * 70, "{\"k\": ", "\x00", "\ufeff",
])
JSONISH = st.lists(TOKENS, max_size=40).map("".join)


@BOUNDED
@given(st.binary(max_size=200))
@example(b"[" * 5000)
@example(b"\xff\xfe{}")
@example(b'{"a": NaN}')
def test_any_bytes_give_a_value_within_the_caps_or_our_error(data):
    parse_or_refuse(data)


@BOUNDED
@given(JSONISH)
@example("[" * 64 + "]" * 64)
@example("[" * 65 + "]" * 65)
@example("9" * 5000)
@example('["\\ud800"]')
def test_any_json_ish_text_gives_a_value_within_the_caps_or_our_error(text):
    parse_or_refuse(text)
    parse_or_refuse(text.encode("utf-8", "surrogatepass"))


STORABLE_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                        max_size=20)
NUMBERS = st.one_of(st.integers(-(10**30), 10**30),
                    st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, STORABLE_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(STORABLE_TEXT, inner, max_size=4)),
    max_leaves=30)


@BOUNDED
@given(VALUES)
def test_every_json_value_within_the_caps_is_read_back_exactly(value):
    assert jsonbody.loads(json.dumps(value)) == value
    assert jsonbody.loads(json.dumps(value, ensure_ascii=False).encode()) == value


@BOUNDED
@given(JSONISH)
@example("[" * 900 + "]" * 900)
@example("[" * 5000 + "]" * 5000)
def test_json_in_messages_and_model_output_never_breaks_the_agent_runtime(text):
    """A message or a model's answer that is JSON-ish text: the local model's reading of
    it, the output contract and tool-call arguments answer, whatever its depth."""
    assert isinstance(plain(text), str)
    call = ToolCall.from_raw("c1", "tool", text)
    assert call.arguments is None or isinstance(call.arguments, dict)
    for schema in (None, {"type": "object"}):
        try:
            parse_answer(text, schema)
        except InvalidAnswer as refused:
            assert str(refused)


@pytest.mark.parametrize("levels", [1, 63, 64])
def test_nesting_up_to_the_cap_is_read(levels):
    assert depth(jsonbody.loads("[" * levels + "]" * levels)) == levels


# --------------------------------------------------------------------------- the text rule


def forbidden(char: str, multiline: bool) -> bool:
    if "\ud800" <= char <= "\udfff":
        return True
    return ord(char) < 0x20 and not (multiline and char in "\t\n\r")


ANY_TEXT = st.text(st.characters(exclude_categories=[]), max_size=30)  # surrogates too


@BOUNDED
@given(ANY_TEXT, st.booleans())
@example("a\x00b", False)
@example("line\nline", True)
@example("line\nline", False)
@example("\ud83d", True)
def test_the_text_rule_accepts_exactly_text_without_forbidden_characters(text, multiline):
    acceptable = not any(forbidden(c, multiline) for c in text)
    assert (text_problem(text, multiline) is None) == acceptable
    if acceptable:
        assert check_text(text, "f", multiline) == text
    else:
        with pytest.raises(ValidationFailed) as refused:
            check_text(text, "f", multiline)
        assert refused.value.errors[0]["field"] == "f"


class Example(Strict):
    name = String()
    note = Multiline()
    tags = List(String())


@BOUNDED
@given(ANY_TEXT)
def test_every_string_field_of_a_request_schema_follows_the_rule(text):
    """Strict binds the rule to every string field, inside lists too."""
    for field, value, multiline in (("name", text, False), ("note", text, True),
                                    ("tags", [text], False)):
        acceptable = not any(forbidden(c, multiline) for c in text)
        try:
            Example().load({field: value})
        except ValidationError as exc:
            assert not acceptable and field in exc.messages
        else:
            assert acceptable


# --------------------------------------------------------------------------- definitions

IDS = st.sampled_from(["a", "b", "c", "x1"])
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4), IDS)
ANY = st.recursive(SCALAR, lambda c: st.one_of(st.lists(c, max_size=3),
                                               st.dictionaries(st.text(max_size=3), c,
                                                               max_size=3)), max_leaves=8)
STEP = st.deferred(lambda: st.fixed_dictionaries(
    {"id": st.one_of(IDS, ANY), "type": st.one_of(st.sampled_from(step_types()), ANY)},
    optional={"next": st.one_of(IDS, ANY), "then": IDS, "else": st.one_of(IDS, ANY),
              "if": st.sampled_from(["input.x", "1 +", "true"]), "output": ANY,
              "branches": st.one_of(ANY, st.lists(BLOCK, max_size=2)),
              "body": st.one_of(ANY, BLOCK), "routes": ANY, "on_error": st.one_of(IDS, ANY),
              "for_each": ANY, "max_iterations": ANY, "seconds": ANY, "join": ANY}))
BLOCK = st.fixed_dictionaries({"steps": st.lists(st.one_of(STEP, ANY), max_size=3)},
                              optional={"start": st.one_of(IDS, ANY)})


# Derandomized: one random run (2026-12-06, in CI) spun for over ten minutes inside
# hypothesis's own engine (py-spy: execute_once under generate_mutations_from, no frame
# of this test's body); until that stall is understood, CI runs the same 300 examples.
@settings(BOUNDED, derandomize=True)
@given(st.one_of(ANY, BLOCK))
# Found by random runs (the derandomized 300 do not reach them): a nested block whose
# steps are not objects, or not a list, was read before its shape was checked.
@example({"steps": [{"id": "a", "type": "parallel", "branches": [{"steps": [None]}]}]})
@example({"steps": [{"id": "a", "type": "parallel", "branches": [{"steps": 5}]}]})
@example({"steps": [{"id": "a", "type": "loop", "for_each": "input.x", "body": {"steps": "xy"}}]})
def test_any_definition_validates_or_is_refused_naming_fields(definition):
    try:
        graph = validate(definition)
    except ValidationFailed as exc:
        assert exc.errors and all(e["field"] and e["message"] for e in exc.errors)
    else:
        assert graph.start in graph.steps
