"""OpenAPI connectors: upload an OpenAPI 3 document, get a connector of this tenant
(`openapi.<key>`) whose operations are actions."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import UUID, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length

from overture.connectors import openapi
from overture.connectors.openapi_models import OpenApiDocument
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.connector_schemas import ConnectorOut
from overture.web.api.connectors import connector_view
from overture.web.api.schemas import Multiline, Strict
from overture.web.auth import current_access, require

TAGS = ["Connectors"]


class OpenApiImport(Strict):
    key = String(required=True, validate=Length(1, 60),
                 metadata={"description": "the connector becomes `openapi.<key>`"})
    name = String(load_default=None, validate=Length(1, 120),
                  metadata={"description": "default: the document's info.title"})
    description = Multiline(load_default=None, validate=Length(0, 2000))
    document = Dict(required=True, metadata={"description": "the OpenAPI 3.0/3.1 document "
                                                            "(JSON)"})


class OpenApiSummary(Schema):
    id = UUID()
    key = String()
    connector_key = String()
    name = String()
    description = String()
    actions = Integer()
    created_at = DateTime()
    updated_at = DateTime()


class OpenApiDetail(OpenApiSummary):
    connector = Nested(ConnectorOut)
    document = Dict()


class OpenApiList(Schema):
    items = List(Nested(OpenApiSummary))


def summary(row: OpenApiDocument, detail: bool = False) -> dict[str, Any]:
    connector = openapi.connector_of(row)
    view = {"id": row.id, "key": row.key, "connector_key": connector.key, "name": row.name,
            "description": row.description, "actions": len(connector.actions),
            "created_at": row.created_at, "updated_at": row.updated_at}
    if detail:
        view.update(connector=connector_view(connector), document=row.document)
    return view


@api.get("/openapi-connectors")
@require("workflow.read")
@api.output(OpenApiList)
@api.doc(tags=TAGS, summary="This tenant's imported OpenAPI connectors")
def list_openapi_connectors() -> dict[str, Any]:
    return {"items": [summary(row) for row in openapi.list_documents()]}


@api.post("/openapi-connectors")
@require("workflow.edit")
@api.input(OpenApiImport, arg_name="body")
@api.output(OpenApiDetail, status_code=201)
@api.doc(tags=TAGS, summary="Import an OpenAPI 3 document as a connector of this tenant")
def import_openapi_connector(body: dict[str, Any]) -> dict[str, Any]:
    row = openapi.import_document(body["key"], body["document"], body["name"],
                                  body["description"], current_access().principal.user.id)
    db.session.commit()
    return summary(row, detail=True)


@api.get("/openapi-connectors/<key>")
@require("workflow.read")
@api.output(OpenApiDetail)
@api.doc(tags=TAGS, summary="One imported connector, its actions and its document")
def get_openapi_connector(key: str) -> dict[str, Any]:
    return summary(openapi.get_document(key), detail=True)


@api.delete("/openapi-connectors/<key>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete an imported connector (refused while connections use "
                            "it)")
def delete_openapi_connector(key: str) -> tuple[str, int]:
    openapi.delete_document(openapi.get_document(key))
    db.session.commit()
    return "", 204
