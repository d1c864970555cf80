"""Bad input answers a 4xx problem and leaves stored data as it was (issue 12, item 11).

Each attack of the black-box run, through the real HTTP API: NaN, Infinity and 1e400,
a 5,000-digit integer, JSON nested 1,000 deep, a NUL in a name, a version above 2^31,
a 1,000-step workflow, and bodies over the size limit; then the classes behind them:
every JSON body endpoint parses strictly, every input field is bounded in the OpenAPI
document.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import request

from overture.platform import jsonbody
from tests.engine_api_support import create_workflow, ok, settle, start_via_api, wait_run
from tests.engine_support import running_workers
from tests.support import Api, as_key, as_user, login

JSON = {"Content-Type": "application/json"}
INT32_MAX = 2**31 - 1
HELLO = {"steps": [{"id": "hello", "type": "transform", "output": "hi {{ input.name }}"}]}


def send(api: Api, method: str, path: str, body: str | bytes, **headers: str) -> Any:
    """A raw body, exactly as given, to an API path."""
    return api.client.open("/api/v1" + path, method=method, data=body,
                           headers={**api.headers(None), **JSON, **headers})


def problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    if code is not None:
        assert body["type"] == f"urn:overture:problem:{code}", body
    return body


def fields_of(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


@pytest.fixture
def admin(app, world) -> Api:
    return as_key(app, world, "a_admin")


@pytest.fixture
def published(admin) -> dict[str, Any]:
    workflow = create_workflow(admin, HELLO, name="greeter")
    ok(admin.post(f"/workflows/{workflow['id']}/publish"), 201)
    return ok(admin.get(f"/workflows/{workflow['id']}"))


def hook_path(workflow: dict[str, Any]) -> str:
    return "/hooks/" + workflow["webhook_url"].split("/hooks/", 1)[1]


def run_count(api: Api) -> int:
    return len(ok(api.get("/runs", query_string={"limit": 200}))["items"])


# --------------------------------------------------------------------------- numbers


NON_FINITE = [("NaN", 400, "invalid-json"), ("Infinity", 400, "invalid-json"),
              ("-Infinity", 400, "invalid-json"), ("1e400", 422, "validation-error"),
              ("-1e400", 422, "validation-error"), ("9" * 5000, 422, "validation-error")]


@pytest.mark.parametrize(("number", "status", "code"), NON_FINITE)
def test_numbers_json_cannot_hold_are_refused_in_input_definition_and_webhook(
        app, admin, published, number, status, code):
    wid, before = published["id"], published["definition"]

    refused = problem(send(admin, "POST", f"/workflows/{wid}/runs",
                           f'{{"input": {{"amount": {number}}}}}'), status, code)
    assert "finite" in refused["detail"] or "at most 100 characters" in refused["detail"]
    problem(send(admin, "PATCH", f"/workflows/{wid}", '{"definition": {"steps": [{"id": "x", '
                 f'"type": "transform", "output": {number}}}]}}}}'), status, code)
    problem(app.test_client().post(hook_path(published), data=f'{{"n": {number}}}',
                                   headers=JSON), status, code)

    assert ok(admin.get(f"/workflows/{wid}"))["definition"] == before
    assert run_count(admin) == 0


def test_a_refused_number_names_the_problem(admin, published):
    body = problem(send(admin, "POST", f"/workflows/{published['id']}/runs",
                        '{"input": [1, NaN]}'), 400, "invalid-json")
    assert body["detail"] == "body: numbers must be finite; NaN is not JSON"
    body = problem(send(admin, "POST", f"/workflows/{published['id']}/runs",
                        '{"input": 1e400}'), 422, "validation-error")
    assert body["errors"] == [{"field": "body",
                               "message": "numbers must be finite; 1e400 is out of range"}]


# --------------------------------------------------------------------------- nesting


def test_json_nested_1000_deep_is_refused_everywhere(app, admin, published):
    deep = "[" * 1000 + "]" * 1000
    wid = published["id"]
    for method, path, body in [
            ("POST", f"/workflows/{wid}/runs", f'{{"input": {deep}}}'),
            ("PATCH", f"/workflows/{wid}", f'{{"definition": {{"steps": {deep}}}}}'),
            ("POST", "/workflows", f'{{"name": "deep", "definition": {{"x": {deep}}}}}'),
            ("POST", "/credentials", f'{{"name": "deep", "kind": "custom", "fields": {deep}}}')]:
        body = problem(send(admin, method, path, body), 400, "invalid-json")
        assert body["detail"] == "body: nested deeper than 64 levels"
    body = problem(app.test_client().post(hook_path(published), data=deep, headers=JSON),
                   400, "invalid-json")
    assert body["detail"] == "body: nested deeper than 64 levels"
    # Even a million levels: refused, not a stack overflow.
    problem(send(admin, "POST", f"/workflows/{wid}/runs", "[" * 1_000_000), 400,
            "invalid-json")
    assert ok(admin.get(f"/workflows/{wid}"))["definition"] == published["definition"]
    assert [w["name"] for w in ok(admin.get("/workflows"))["items"]] == ["greeter"]
    assert run_count(admin) == 0


def test_nesting_up_to_64_levels_is_accepted(admin, published):
    # {"input": ...} is the first level: 63 more fit.
    value: Any = "bottom"
    for _ in range(63):
        value = [value]
    r = send(admin, "POST", f"/workflows/{published['id']}/runs",
             json.dumps({"input": value}))
    assert r.status_code == 202, r.get_data(as_text=True)[:300]
    problem(send(admin, "POST", f"/workflows/{published['id']}/runs",
                 json.dumps({"input": [value]})), 400, "invalid-json")


def test_request_get_json_reads_with_the_same_parser(app):
    with app.test_request_context("/", method="POST", data='{"a": NaN}', headers=JSON):
        with pytest.raises(jsonbody.InvalidJSON):
            request.get_json()
        assert request.get_json(silent=True) is None
    with app.test_request_context("/", method="POST", data='{"a": [1.5]}', headers=JSON):
        assert request.get_json() == {"a": [1.5]}


def test_duplicate_keys_are_refused(admin, published):
    body = problem(send(admin, "POST", f"/workflows/{published['id']}/runs",
                        '{"input": {"to": "alice", "to": "mallory"}}'), 400, "invalid-json")
    assert body["detail"] == "body: duplicate key 'to' in an object"


# --------------------------------------------------------------------------- text


def test_nul_in_the_name_of_anything_is_a_422_naming_the_field(admin):
    agent_config = {"role": "Payroll", "instructions": "Pay.",
                    "model": {"provider": "local", "model": "wordllama"}}
    creates = [("/credentials", {"kind": "api_key", "fields": {"api_key": "k"}}),
               ("/workflows", {}), ("/agents", {"config": agent_config}),
               ("/knowledge", {})]
    for path, rest in creates:
        for bad in ("pay\u0000roll", "pay\x1b[31mroll", "pay\nroll", "pay\ud800roll"):
            body = problem(send(admin, "POST", path, json.dumps({"name": bad, **rest})), 422,
                           "validation-error")
            assert fields_of(body) == {"name"}, (path, body)
        good = ok(send(admin, "POST", path, json.dumps({"name": "payroll", **rest})), 201)
        renamed = send(admin, "PATCH", f"{path}/{good['id']}",
                       json.dumps({"name": "pay\u0000roll"}))
        assert fields_of(problem(renamed, 422, "validation-error")) == {"name"}
        assert ok(admin.get(f"{path}/{good['id']}"))["name"] == "payroll"


def test_a_nul_inside_stored_json_is_refused_where_it_is(admin, published):
    body = problem(send(admin, "POST", f"/workflows/{published['id']}/runs",
                        json.dumps({"input": {"customer": {"name": "Ann\u0000"}}})),
                   422, "validation-error")
    assert fields_of(body) == {"input.customer.name"}
    body = problem(send(admin, "PATCH", f"/workflows/{published['id']}",
                        json.dumps({"definition": {"steps": [{"id": "x", "type": "transform",
                                                              "output": "\u0000"}]}})),
                   422, "validation-error")
    assert fields_of(body) == {"definition.steps.0.output"}
    assert run_count(admin) == 0


def test_multiline_text_keeps_its_newlines_but_no_other_control_character(admin):
    created = ok(send(admin, "POST", "/workflows", json.dumps(
        {"name": "notes", "description": "line one\r\n\tline two"})), 201)
    assert created["description"] == "line one\r\n\tline two"
    body = problem(send(admin, "PATCH", f"/workflows/{created['id']}",
                        json.dumps({"description": "bell\x07"})), 422, "validation-error")
    assert fields_of(body) == {"description"}
    assert "U+0007" in body["detail"]


def test_control_characters_in_query_path_and_headers_are_refused(app, admin, published):
    body = problem(admin.get("/workflows", query_string={"cursor": "\x00"}), 422)
    assert fields_of(body) == {"query.cursor"}
    body = problem(app.test_client().post(hook_path(published) + "%00", json={}), 404,
                   "not-found")
    assert "U+0000" in body["detail"]
    body = problem(send(admin, "POST", f"/workflows/{published['id']}/runs", "{}",
                        **{"Idempotency-Key": "key\x00"}), 422)
    assert fields_of(body) == {"headers.Idempotency-Key"}
    assert run_count(admin) == 0


def test_control_characters_in_form_fields_are_refused(app, world):
    client = app.test_client()
    r = client.post("/login", data={"email": "root\x00@platform.example.com",
                                    "password": "x", "csrf_token": "x"})
    assert fields_of(problem(r, 422)) == {"form.email"}
    login(client, world.users["platform"].email)  # the form itself still works


def test_webhook_text_payload_with_nul_is_refused(app, admin, published):
    r = app.test_client().post(hook_path(published), data=b"binary\x00data",
                               headers={"Content-Type": "application/octet-stream"})
    assert fields_of(problem(r, 422)) == {"body"}
    assert run_count(admin) == 0


# --------------------------------------------------------------------------- integers


def test_a_version_above_int32_is_a_422_and_the_current_version_stays(app, admin, published):
    wid = published["id"]
    for version in (2**31, 2**63, 10**30):
        body = problem(send(admin, "POST", f"/workflows/{wid}/rollback",
                            json.dumps({"version": version})), 422, "validation-error")
        assert fields_of(body) == {"version"}
    assert ok(admin.get(f"/workflows/{wid}"))["current_version"] == 1
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    version = spec["components"]["schemas"]["RollbackIn"]["properties"]["version"]
    assert (version["minimum"], version["maximum"]) == (1, INT32_MAX)


def request_schemas(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(operation, field, schema) of every request parameter and body property."""
    components = spec["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return components[ref.rsplit("/", 1)[1]] if ref else schema

    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            name = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                if param["in"] == "query":
                    found.append((name, param["name"], param["schema"]))
            content = op.get("requestBody", {}).get("content", {})
            for media in content.values():
                todo = [("", resolve(media["schema"]))]
                while todo:
                    prefix, schema = todo.pop()
                    for field, prop in resolve(schema).get("properties", {}).items():
                        prop = resolve(prop)
                        found.append((name, prefix + field, prop))
                        if "properties" in prop:
                            todo.append((f"{prefix}{field}.", prop))
                        if isinstance(prop.get("items"), dict):
                            found.append((name, f"{prefix}{field}[]", resolve(prop["items"])))
    return found


def test_every_request_integer_and_string_is_bounded_in_the_openapi_document(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    fields = request_schemas(spec)
    unbounded = []
    for op, field, schema in fields:
        types = schema.get("type")
        types = types if isinstance(types, list) else [types]
        if "integer" in types and not (
                -(2**31) <= schema.get("minimum", -(2**63)) <= schema.get("maximum", 2**63)
                <= INT32_MAX):
            unbounded.append((op, field, "integer", schema))
        if "string" in types and "format" not in schema and "pattern" not in schema:
            unbounded.append((op, field, "string", schema))
    assert len(fields) > 100
    assert unbounded == []


# --------------------------------------------------------------------------- every endpoint


def json_body_endpoints(app) -> list[tuple[str, str]]:
    """(method, path) of every API route whose view reads a JSON body through @input."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        spec = getattr(view, "_spec", {})
        reads_json = "application/json" in spec.get("content_type", ())
        if rule.rule.startswith("/api/v1/") and spec.get("body") is not None and reads_json:
            path = rule.rule.removeprefix("/api/v1")
            for arg in rule.arguments:
                path = path.replace(f"<{arg}>", "0190c3c0-0000-7000-8000-000000000000")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                found.append((method, path))
    return sorted(found)


def test_every_json_body_endpoint_reads_bodies_with_the_strict_parser(app, world):
    """The class of defect: a new endpoint cannot read JSON another way. Each one answers
    a NaN with the parser's 400, to the agency admin or to the workspace admin (a caller
    it does not allow gets 403 before reading the body)."""
    callers = [as_key(app, world, "a_admin"), as_key(app, world, "nw_admin"),
               as_user(app, world, "platform")]
    endpoints = json_body_endpoints(app)
    assert len(endpoints) > 25
    answers = {}
    for method, path in endpoints:
        statuses = set()
        for caller in callers:
            r = send(caller, method, path, '{"x": NaN}')
            statuses.add(r.status_code)
            assert r.mimetype == "application/problem+json", (method, path)
            if r.status_code == 400:
                assert r.get_json()["type"] == "urn:overture:problem:invalid-json"
        answers[(method, path)] = statuses
    assert [e for e, statuses in answers.items() if 400 not in statuses] == []


def test_references_chained_deep_in_an_openapi_document_import_without_a_500(admin):
    """Each schema is shallow (the body parser allows 64 levels) but 31 chained $refs
    inline to 1,500 levels: the importer cut nothing and recursed past Python's limit."""
    def nested(levels: int, leaf: dict[str, Any]) -> dict[str, Any]:
        for _ in range(levels):
            leaf = {"type": "object", "properties": {"p": leaf}}
        return leaf

    schemas = {f"S{i}": nested(25, {"$ref": f"#/components/schemas/S{i + 1}"})
               for i in range(31)} | {"S31": {"type": "string"}}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}}
    document = {"openapi": "3.0.0", "info": {"title": "Deep", "version": "1"},
                "servers": [{"url": "https://api.example.com"}],
                "paths": {"/x": {"post": {"operationId": "send", "requestBody": body,
                                          "responses": {"200": {"description": "ok"}}}}},
                "components": {"schemas": schemas}}
    imported = ok(admin.post("/openapi-connectors", json={"key": "deep", "document": document}),
                  201)
    assert imported["actions"] == 1


# --------------------------------------------------------------------------- size


def test_a_body_over_10_mib_is_a_413_problem_on_the_api_and_a_webhook(app, admin, published):
    big = b'{"input": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    body = problem(send(admin, "POST", f"/workflows/{published['id']}/runs", big), 413,
                   "payload-too-large")
    assert "10,485,760 bytes" in body["detail"]
    problem(app.test_client().post(hook_path(published), data=big, headers=JSON), 413,
            "payload-too-large")
    # Chunked: no Content-Length; the server terminates the stream (gunicorn sets this).
    chunked = app.test_client().post(
        hook_path(published), input_stream=io.BytesIO(big), headers=JSON,
        environ_overrides={"wsgi.input_terminated": True})
    problem(chunked, 413, "payload-too-large")
    assert run_count(admin) == 0


# --------------------------------------------------------------------------- 1,000 steps


def linear(count: int) -> dict[str, Any]:
    return {"steps": [{"id": f"s{i}", "type": "transform", "output": i,
                       **({"next": f"s{i + 1}"} if i + 1 < count else {})}
                      for i in range(count)]}


def test_a_delay_beyond_any_run_is_refused_at_publish(admin):
    workflow = create_workflow(admin, {"steps": [{"id": "wait", "type": "delay",
                                                  "seconds": 1e300}]})
    body = problem(admin.post(f"/workflows/{workflow['id']}/publish"), 422)
    assert fields_of(body) == {"steps.wait.seconds"}


def test_a_1001_step_workflow_is_a_clear_422(admin):
    workflow = create_workflow(admin, linear(1001))
    body = problem(admin.post(f"/workflows/{workflow['id']}/publish"), 422,
                   "validation-error")
    assert body["errors"] == [{"field": "steps", "message": "a workflow holds at most 1,000 "
                               "steps (branches and loop bodies included); this one has 1,001"}]
    assert ok(admin.get(f"/workflows/{workflow['id']}/versions"))["items"] == []


def test_a_1000_step_linear_workflow_validates_publishes_and_runs(app, world, settings):
    admin = as_key(app, world, "a_admin")
    workflow = create_workflow(admin, linear(1000))
    version = ok(admin.post(f"/workflows/{workflow['id']}/publish"), 201)
    assert version["number"] == 1 and len(version["definition"]["steps"]) == 1000
    with running_workers(settings, processes=1, threads=2):
        try:
            run = wait_run(admin, start_via_api(admin, workflow["id"])["id"],
                           timeout=180)
        finally:
            settle([world.tenants["a"].id])
    assert run["status"] == "succeeded", run["error"]
    assert run["output"] == 999
    assert run["steps_executed"] == 1000
