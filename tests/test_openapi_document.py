"""The OpenAPI document describes what the API really answers: every error as a problem
document, numbers as numbers, each schema once."""

from __future__ import annotations

import json
import warnings
from typing import Any

from overture.web.app import create_app

METHODS = ("get", "put", "post", "patch", "delete")
NUMERIC_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                    "multipleOf", "minLength", "maxLength", "minItems", "maxItems",
                    "minProperties", "maxProperties")
PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _spec(app: Any) -> dict[str, Any]:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def _operations(spec: dict[str, Any]):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_numeric_keywords_are_numbers(app):
    spec = _spec(app)
    for schema in _walk(spec):
        for keyword in NUMERIC_KEYWORDS:
            if keyword in schema and not isinstance(schema[keyword], dict):
                assert isinstance(schema[keyword], int | float), (keyword, schema)
    price = spec["components"]["schemas"]["ModelPriceSet"]["properties"]["input_per_mtok"]
    assert price["minimum"] == 0 and price["maximum"] == 10000


def test_every_operation_documents_its_problem_answers(app):
    spec = _spec(app)
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    for method, path, operation in _operations(spec):
        responses = operation["responses"]
        expected = {"400", "401", "403", "404", "422", "429"}
        if method != "get":
            expected.add("409")
        if "requestBody" in operation:
            expected |= {"413", "415"}
        assert expected <= set(responses), (method, path, expected - set(responses))
        for status, response in responses.items():
            if status[0] in "45":
                assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}
        assert "Retry-After" in responses["429"]["headers"]
    assert "HTTPError" not in spec["components"]["schemas"]
    assert "ValidationError" not in spec["components"]["schemas"]


def test_every_success_status_documents_its_body(app):
    spec = _spec(app)
    for method, path, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status == "204":
                assert "content" not in response, (method, path)
            elif status.startswith("2") and "content" in response:
                schemas = [media.get("schema") for media in response["content"].values()]
                if "application/json" in response["content"]:
                    assert all(schemas), (method, path, status)
    start = spec["paths"]["/api/v1/workflows/{workflow_id}/runs"]["post"]["responses"]
    assert start["200"]["content"] == start["202"]["content"]  # an Idempotency-Key replay
    price = spec["paths"]["/api/v1/model-prices/{provider}/{model}"]["put"]["responses"]
    assert price["201"]["content"] == price["200"]["content"]


def test_each_schema_is_in_the_document_once(settings):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = create_app(settings)
        with app.app_context():
            spec = app._get_spec(force_update=True)
    duplicates = [str(w.message) for w in caught if "already been added" in str(w.message)]
    assert duplicates == []
    names = spec["components"]["schemas"]
    assert not [name for name in names if name[-1].isdigit()], sorted(names)
    text = json.dumps(spec)
    for name in names:
        assert f'"#/components/schemas/{name}"' in text, name
