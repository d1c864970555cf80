"""The OpenAPI importer: a tenant's document becomes its own connector, called against
a local fake of the API (pytest-httpserver) (`-k connector`)."""

from __future__ import annotations

import copy
import json
import time

import pytest
from werkzeug.wrappers import Response

from overture.connectors.errors import ActionFailed
from overture.connectors.execute import execute
from overture.orchestration import actions
from overture.platform.db import scoped_to
from tests.connector_support import (
    allow_loopback,  # noqa: F401  (fixture)
    connect,
)
from tests.engine_api_support import ok
from tests.support import as_user

pytestmark = pytest.mark.usefixtures("allow_loopback")
TOKEN = "pets-api-token-123"

PETSTORE = {
    "openapi": "3.0.3",
    "info": {"title": "Pet store", "version": "1.0.0", "description": "Pets for sale."},
    "servers": [{"url": "https://{region}.pets.example.com/v1",
                 "variables": {"region": {"default": "eu"}}}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "parameters": {"PetId": {"name": "petId", "in": "path", "required": True,
                                 "schema": {"type": "integer", "minimum": 1}}},
        "schemas": {
            "NewPet": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "minLength": 1},
                "tag": {"type": "string", "nullable": True},
                "owner": {"$ref": "#/components/schemas/Owner"}}},
            "Owner": {"type": "object", "properties": {
                "name": {"type": "string"},
                "pets": {"type": "array", "items": {"$ref": "#/components/schemas/NewPet"}}}},
            "Pet": {"allOf": [{"$ref": "#/components/schemas/NewPet"},
                              {"type": "object", "properties": {"id": {"type": "integer"}}}]},
        },
    },
    "paths": {
        "/pets": {
            "get": {"operationId": "listPets", "summary": "List pets",
                    "parameters": [{"name": "limit", "in": "query",
                                    "schema": {"type": "integer", "maximum": 100}},
                                   {"name": "tags", "in": "query",
                                    "schema": {"type": "array", "items": {"type": "string"}}}],
                    "responses": {"200": {"description": "pets", "content": {
                        "application/json": {"schema": {
                            "type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}}}}},
            "post": {"operationId": "createPet", "summary": "Add a pet",
                     "parameters": [{"name": "X-Store", "in": "header", "required": True,
                                     "schema": {"type": "string"}}],
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/NewPet"}}}},
                     "responses": {"201": {"description": "made"}}},
        },
        "/pets/{petId}": {
            "parameters": [{"$ref": "#/components/parameters/PetId"}],
            "get": {"operationId": "getPet", "responses": {"200": {"description": "a pet"}}},
            "delete": {"operationId": "deletePet",
                       "responses": {"204": {"description": "gone"}}},
        },
    },
}


def import_doc(api, key="petstore", document=None):
    return api.post("/openapi-connectors", json={"key": key,
                                                 "document": document or PETSTORE})


def petstore_connection(app, world, server, handle="a_admin", key="petstore"):
    return connect(app, world, f"openapi.{key}", {"api_key": TOKEN},
                   base_url=server.url_for("/v1"), handle=handle)


def call(world, conn, action, input, tenant="a", **kwargs):
    with scoped_to(world.tenants[tenant].id):
        return execute(conn, action, input, **kwargs)


def test_connector_openapi_import_and_call(app, world, httpserver):
    admin = as_user(app, world, "a_admin")
    made = ok(import_doc(admin), 201)
    assert made["connector_key"] == "openapi.petstore" and made["actions"] == 4
    connector = ok(admin.get("/connectors/openapi.petstore"))
    assert connector["base_url"] == "https://eu.pets.example.com/v1"
    assert connector["auth"]["kind"] == "api_key"
    by_key = {a["key"]: a for a in connector["actions"]}
    assert sorted(by_key) == ["createPet", "deletePet", "getPet", "listPets"]
    create = by_key["createPet"]["input_schema"]
    assert create["required"] == ["X-Store", "body"]
    assert create["properties"]["body"]["properties"]["tag"]["type"] == ["string", "null"]
    assert by_key["getPet"]["input_schema"]["required"] == ["petId"]
    assert by_key["createPet"]["side_effects"] and not by_key["getPet"]["side_effects"]
    assert "openapi.petstore" in [c["key"] for c in ok(admin.get("/connectors"))["items"]]

    auth = {"Authorization": f"Bearer {TOKEN}"}
    httpserver.expect_request("/v1/pets/7", method="GET", headers=auth).respond_with_json(
        {"id": 7, "name": "Rex"})
    httpserver.expect_request(
        "/v1/pets", method="POST", headers={**auth, "X-Store": "north"},
        json={"name": "Tom", "owner": {"name": "Ada"}}).respond_with_json(
        {"id": 8, "name": "Tom"}, status=201)
    httpserver.expect_request("/v1/pets", method="GET", headers=auth,
                              query_string="limit=2&tags=a&tags=b").respond_with_json(
        [{"id": 7, "name": "Rex"}])
    _, conn = petstore_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/getPet", json={"input": {"petId": 7}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {"status": 200, "body": {"id": 7, "name": "Rex"}}
    created = call(world, conn, "createPet", {"X-Store": "north", "body": {
        "name": "Tom", "owner": {"name": "Ada"}}}, idempotency_key="step-1")
    assert created == {"status": 201, "body": {"id": 8, "name": "Tom"}}
    assert httpserver.log[-1][0].headers["Idempotency-Key"] == "step-1"
    assert call(world, conn, "listPets", {"limit": 2, "tags": ["a", "b"]})["body"] == [
        {"id": 7, "name": "Rex"}]
    # The engine's action steps reach it as `openapi.<key>.<operationId>`.
    with scoped_to(world.tenants["a"].id):
        step = actions.get("openapi.petstore.getPet")
        out = step(actions.ActionCall(input={"petId": 7}, idempotency_key="k", timeout=5,
                                      tenant_id=world.tid("a"), connection=conn))
    assert out["body"]["name"] == "Rex"


def test_connector_openapi_validation_auth_429_and_timeout(app, world, httpserver):
    admin = as_user(app, world, "a_admin")
    ok(import_doc(admin), 201)
    _, conn = petstore_connection(app, world, httpserver)

    r = admin.post(f"/connections/{conn}/actions/getPet", json={"input": {}})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.petId"
    r = admin.post(f"/connections/{conn}/actions/createPet",
                   json={"input": {"X-Store": "n", "body": {"name": ""}}})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.body.name"
    assert len(httpserver.log) == 0

    httpserver.expect_request("/v1/pets/1").respond_with_json({"message": "bad token"},
                                                              status=401)
    r = admin.post(f"/connections/{conn}/actions/getPet", json={"input": {"petId": 1}})
    assert r.status_code == 502 and r.get_json()["reason"] == "auth_failed"

    calls = []

    def throttled(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response(json.dumps({"message": "slow down"}), status=429,
                            headers={"Retry-After": "1"}, content_type="application/json")
        return Response("", status=204)

    httpserver.expect_request("/v1/pets/2", method="DELETE").respond_with_handler(throttled)
    assert call(world, conn, "deletePet", {"petId": 2}) == {"status": 204, "body": None}
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.9

    httpserver.expect_request("/v1/pets/3").respond_with_handler(
        lambda request: (time.sleep(2), Response("{}", content_type="application/json"))[1])
    with pytest.raises(ActionFailed) as slow:
        call(world, conn, "getPet", {"petId": 3}, timeout=0.5)
    assert slow.value.reason == "timeout"


def test_connector_openapi_documents_are_checked(app, world):
    admin = as_user(app, world, "a_admin")
    bad_ref = copy.deepcopy(PETSTORE)
    bad_ref["paths"]["/pets"]["post"]["requestBody"]["content"]["application/json"][
        "schema"] = {"$ref": "#/components/schemas/Missing"}
    cases = [({"openapi": "2.0", "paths": {}}, "document.openapi"),
             ({"openapi": "3.1.0", "paths": {}}, "document.paths"),
             (bad_ref, "document.paths./pets.post")]
    for document, field in cases:
        r = import_doc(admin, document=document)
        assert r.status_code == 422, r.get_json()
        assert r.get_json()["errors"][0]["field"] == field
    r = admin.post("/openapi-connectors", json={"key": "Bad Key!", "document": PETSTORE})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "key"
    ok(import_doc(admin), 201)
    assert import_doc(admin).status_code == 409
    viewer = as_user(app, world, "a_viewer")
    assert import_doc(viewer, key="other").status_code == 403


def test_connector_openapi_connector_is_the_tenants_own(app, world, httpserver):
    a_admin = as_user(app, world, "a_admin")
    ok(import_doc(a_admin), 201)
    _, a_conn = petstore_connection(app, world, httpserver)
    b_admin = as_user(app, world, "b_admin")

    assert ok(b_admin.get("/openapi-connectors"))["items"] == []
    assert b_admin.get("/openapi-connectors/petstore").status_code == 404
    assert b_admin.get("/connectors/openapi.petstore").status_code == 404
    assert "openapi.petstore" not in [c["key"] for c in ok(b_admin.get("/connectors"))["items"]]
    r = b_admin.post("/connections", json={"connector_key": "openapi.petstore", "name": "x",
                                           "credentials": {"api_key": "stolen-use"}})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "connector_key"
    with scoped_to(world.tenants["b"].id), pytest.raises(Exception) as hidden:
        execute(a_conn, "getPet", {"petId": 1})
    assert getattr(hidden.value, "status", None) == 404
    assert b_admin.delete("/openapi-connectors/petstore").status_code == 404

    # B may import its own document under the same key: each tenant sees only its own.
    tiny = {"openapi": "3.1.0", "info": {"title": "B's API", "version": "1"},
            "paths": {"/ping": {"get": {"operationId": "ping",
                                        "responses": {"200": {"description": "pong"}}}}}}
    ok(import_doc(b_admin, document=tiny), 201)
    b_view = ok(b_admin.get("/connectors/openapi.petstore"))
    assert [a["key"] for a in b_view["actions"]] == ["ping"] and b_view["name"] == "B's API"
    a_view = ok(a_admin.get("/connectors/openapi.petstore"))
    assert len(a_view["actions"]) == 4
    # B's attempts never reached A's API (an earlier test's slow request may still land)
    assert not [req for req, _ in httpserver.log if req.path.endswith("/pets/1")]

    # Deleting is refused while a connection uses it.
    assert a_admin.delete("/openapi-connectors/petstore").status_code == 409
    assert a_admin.delete(f"/connections/{a_conn}").status_code == 204
    assert a_admin.delete("/openapi-connectors/petstore").status_code == 204
    assert a_admin.get("/connectors/openapi.petstore").status_code == 404
    assert ok(b_admin.get("/connectors/openapi.petstore"))["name"] == "B's API"
