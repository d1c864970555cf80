"""Knowledge collections: their documents, and retrieval."""

from __future__ import annotations

from typing import Any

from overture.orchestration.agents import knowledge
from overture.orchestration.agents.models import KnowledgeCollection, KnowledgeDocument
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.agent_schemas import (
    CollectionCreate,
    CollectionOut,
    CollectionPage,
    CollectionUpdate,
    DocumentCreate,
    DocumentDetail,
    DocumentOut,
    DocumentPage,
    PassageList,
    SearchQuery,
)
from overture.web.api.schemas import PageQuery
from overture.web.auth import current_access, require

TAGS = ["Knowledge"]


def collection_views(collections: list[KnowledgeCollection]) -> list[dict[str, Any]]:
    counts = knowledge.document_counts([c.id for c in collections])
    return [{"id": c.id, "name": c.name, "description": c.description,
             "document_count": counts.get(c.id, 0), "created_at": c.created_at}
            for c in collections]


def collection_view(collection: KnowledgeCollection) -> dict[str, Any]:
    return collection_views([collection])[0]


@api.get("/knowledge")
@require("workflow.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(CollectionPage)
@api.doc(tags=TAGS, summary="List knowledge collections")
def list_collections(query: dict[str, Any]) -> dict[str, Any]:
    page = knowledge.list_collections(query["cursor"], query["limit"])
    return page.body(collection_views(page.items))


@api.post("/knowledge")
@require("workflow.edit")
@api.input(CollectionCreate, arg_name="body")
@api.output(CollectionOut, status_code=201)
@api.doc(tags=TAGS, summary="Create a knowledge collection")
def create_collection(body: dict[str, Any]) -> dict[str, Any]:
    collection = knowledge.create_collection(body["name"], body["description"],
                                             current_access().principal.user.id)
    db.session.commit()
    return collection_view(collection)


@api.get("/knowledge/<collection_id>")
@require("workflow.read")
@api.output(CollectionOut)
@api.doc(tags=TAGS, summary="One knowledge collection")
def get_collection(collection_id: str) -> dict[str, Any]:
    return collection_view(knowledge.get_collection(collection_id))


@api.patch("/knowledge/<collection_id>")
@require("workflow.edit")
@api.input(CollectionUpdate, arg_name="body")
@api.output(CollectionOut)
@api.doc(tags=TAGS, summary="Rename or describe a collection (agents refer to it by name)")
def update_collection(collection_id: str, body: dict[str, Any]) -> dict[str, Any]:
    collection = knowledge.update_collection(knowledge.get_collection(collection_id),
                                             name=body.get("name"),
                                             description=body.get("description"))
    db.session.commit()
    return collection_view(collection)


@api.delete("/knowledge/<collection_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a collection with its documents")
def delete_collection(collection_id: str) -> tuple[str, int]:
    knowledge.delete_collection(knowledge.get_collection(collection_id))
    db.session.commit()
    return "", 204


@api.get("/knowledge/<collection_id>/documents")
@require("workflow.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(DocumentPage)
@api.doc(tags=TAGS, summary="List a collection's documents")
def list_documents(collection_id: str, query: dict[str, Any]) -> dict[str, Any]:
    collection = knowledge.get_collection(collection_id)
    return knowledge.list_documents(collection, query["cursor"], query["limit"]).body()


@api.post("/knowledge/<collection_id>/documents")
@require("workflow.edit")
@api.input(DocumentCreate, arg_name="body")
@api.output(DocumentOut, status_code=201)
@api.doc(tags=TAGS, summary="Upload a text document (split into passages and embedded)")
def add_document(collection_id: str, body: dict[str, Any]) -> KnowledgeDocument:
    document = knowledge.add_document(knowledge.get_collection(collection_id), body["title"],
                                      body["text"], current_access().principal.user.id)
    db.session.commit()
    return document


@api.get("/knowledge/<collection_id>/documents/<document_id>")
@require("workflow.read")
@api.output(DocumentDetail)
@api.doc(tags=TAGS, summary="One document with its text")
def get_document(collection_id: str, document_id: str) -> KnowledgeDocument:
    return knowledge.get_document(knowledge.get_collection(collection_id), document_id)


@api.delete("/knowledge/<collection_id>/documents/<document_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a document and its passages")
def delete_document(collection_id: str, document_id: str) -> tuple[str, int]:
    collection = knowledge.get_collection(collection_id)
    knowledge.delete_document(collection, knowledge.get_document(collection, document_id))
    db.session.commit()
    return "", 204


@api.get("/knowledge/<collection_id>/search")
@require("workflow.read")
@api.input(SearchQuery, location="query", arg_name="query")
@api.output(PassageList)
@api.doc(tags=TAGS, summary="The passages that best answer `q`, best first")
def search(collection_id: str, query: dict[str, Any]) -> dict[str, Any]:
    collection = knowledge.get_collection(collection_id)
    found = knowledge.search_collection(collection, query["q"], query["k"])
    db.session.commit()  # the query's embedding, metered
    return {"items": found}
