"""What a workflow definition may hold: each step type's JSON Schema, and a check of one
CEL expression or templated value, as publishing would check it. The visual builder
generates its forms from the first and validates expression fields with the second."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, Dict, List, Nested, Raw, String
from apiflask.validators import Length

from overture.orchestration import expressions
from overture.orchestration.definition import describe_step_types
from overture.web.api import api
from overture.web.api.schemas import Multiline, Strict
from overture.web.auth import require

TAGS = ["Workflows"]


class StepTypeOut(Schema):
    type = String()
    schema = Dict(metadata={"description": "JSON Schema (2020-12) of a step of this type"})
    expressions = List(String(), metadata={"description": "fields holding one CEL expression"})
    templates = List(String(), metadata={"description": "fields whose strings may hold "
                                                        "{{ expression }} templates"})
    blocks = List(String(), metadata={"description": "fields holding a block (or blocks) "
                                                     "of steps"})
    targets = List(String(), metadata={"description": "fields naming the step to go to"})


class StepTypeList(Schema):
    items = List(Nested(StepTypeOut))


class ExpressionCheckIn(Strict):
    expression = Multiline(load_default=None,
                           validate=Length(1, 2 * expressions.MAX_EXPRESSION_CHARS),
                           metadata={"description": "one CEL expression (a condition's `if`)"})
    value = Raw(load_default=None, metadata={"description": "or a JSON value whose strings "
                                                            "may hold {{ templates }}"})


class ExpressionCheckOut(Schema):
    valid = Boolean()
    problems = List(String())


@api.get("/step-types")
@require("workflow.read")
@api.output(StepTypeList)
@api.doc(tags=TAGS, summary="Every step type and the JSON Schema of its fields")
def list_step_types() -> dict[str, Any]:
    return {"items": [{"type": name, **described}
                      for name, described in describe_step_types().items()]}


@api.post("/expressions/check")
@require("workflow.read")
@api.input(ExpressionCheckIn, arg_name="body")
@api.output(ExpressionCheckOut)
@api.doc(tags=TAGS, summary="Check a CEL expression or templated value as publishing would")
def check_expression(body: dict[str, Any]) -> dict[str, Any]:
    problems: list[str] = []
    if body["expression"] is not None:
        problem = expressions.check_expression(body["expression"])
        problems += [problem] if problem else []
    if body["value"] is not None:
        problems += expressions.check(body["value"])
    return {"valid": not problems, "problems": problems}
