"""Schemas of test runs, replay diffs and A/B comparisons (testing.py)."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, Boolean, Dict, Float, Integer, List, Nested, Raw, String
from apiflask.validators import Length, Range

from overture.web.api.schemas import Strict

MOCK = {"description": '{"output": ...} or {"error": {"code": ..., "message": ...}}'}


class TestRunIn(Strict):
    input = Raw(load_default=dict, metadata={"description": "any JSON value"})
    mocks = Dict(keys=String(validate=Length(1, 80)), values=Raw(), load_default=dict,
                 metadata={"description": "per step id, the step's answer: " + MOCK["description"]})
    action_mocks = Dict(keys=String(validate=Length(1, 200)), values=Raw(), load_default=dict,
                        metadata={"description": "per `<connector>.<action>`, its answer"})
    models = Dict(keys=String(validate=Length(1, 80)), values=List(Raw()), load_default=dict,
                  metadata={"description": "per agent step id, scripted model turns (see the "
                                           "`scripted` provider)"})
    source_run_id = UUID(load_default=None, metadata={
        "description": "a run of this workflow whose recorded outputs answer the "
                       "world-changing actions not mocked"})
    allow_live_models = Boolean(load_default=False, metadata={
        "description": "call agents' own network models (default: the offline `local` "
                       "provider answers for them)"})
    mock_reads = Boolean(load_default=False, metadata={
        "description": "mock read-only actions too (default: they are called, unbilled)"})


class StepDiffOut(Schema):
    step_id = String()
    path = String()
    type = String(allow_none=True)
    change = String(metadata={"description": "unchanged, changed, added or removed"})
    status_before = String(allow_none=True)
    status_after = String(allow_none=True)
    output_before = Raw(allow_none=True)
    output_after = Raw(allow_none=True)
    error_before = Raw(allow_none=True)
    error_after = Raw(allow_none=True)
    changes = List(Dict(), metadata={"description": "structural diff: {op: added | removed | "
                                                    "changed, path, before, after}"})
    changes_left_out = Integer()
    text_diffs = List(Dict(), metadata={"description": "unified line diffs of changed texts"})
    tokens_before = Integer(allow_none=True)
    tokens_after = Integer(allow_none=True)


class RunDiffOut(Schema):
    run_id = UUID()
    source_run_id = UUID()
    mode = String()
    status_before = String()
    status_after = String()
    finished = Boolean()
    output_before = Raw(allow_none=True)
    output_after = Raw(allow_none=True)
    output_changed = Boolean()
    summary = Dict(keys=String(), values=Integer())
    steps = List(Nested(StepDiffOut))


class CompareIn(Strict):
    version_a = Integer(required=True, validate=Range(1, 2**31 - 1))
    version_b = Integer(required=True, validate=Range(1, 2**31 - 1))
    run_ids = List(UUID(), load_default=None, validate=Length(1, 20),
                   metadata={"description": "recorded runs to replay under both versions"})
    last = Integer(load_default=None, validate=Range(1, 20), metadata={
        "description": "else: the last N finished runs of workflows using the agent"})


class ArmOut(Schema):
    run_id = UUID()
    status = String()
    output = Raw(allow_none=True)
    error = Raw(allow_none=True)
    tokens = Integer()
    cost = String(metadata={"description": "estimated, at the agent's model price"})
    latency_seconds = Float(allow_none=True)


class CompareRowOut(Schema):
    source_run_id = UUID()
    a = Nested(ArmOut, allow_none=True)
    b = Nested(ArmOut, allow_none=True)
    finished = Boolean()
    outputs_equal = Boolean(allow_none=True)
    steps_changed = Integer(allow_none=True)


class CompareOut(Schema):
    id = String()
    agent_id = UUID()
    agent = String()
    version_a = Integer(allow_none=True)
    version_b = Integer(allow_none=True)
    finished = Boolean()
    runs = List(Nested(CompareRowOut))
    totals = Dict()
