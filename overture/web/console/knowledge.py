"""Knowledge: collections (create, delete), a collection's documents (upload a text file,
see its chunks, delete) and search with the scores the agents' retrieval uses. The
service is the API's (agents.knowledge), and so are the permissions."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.orchestration.agents import knowledge as service
from overture.orchestration.agents.models import KnowledgeCollection
from overture.platform.db import db
from overture.platform.errors import ValidationFailed
from overture.platform.validation import text_problem
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, form_errors, status_of

READ, EDIT = "workflow.read", "workflow.edit"
SEARCH_K = 5


def _collections_page(errors: FormErrors | None = None,
                      form: dict[str, str] | None = None) -> Any:
    collections = service.list_collections(None, 200).items
    counts = service.document_counts([c.id for c in collections])
    collections.sort(key=lambda c: c.name.lower())
    return render("console/knowledge.html", status_of(errors or FormErrors()),
                  title="Knowledge", collections=collections, counts=counts,
                  errors=errors or FormErrors(), form=form or {"name": "", "description": ""},
                  can_edit=console_access().can(EDIT))


@bp.get("/knowledge")
@page(READ)
def knowledge() -> Any:
    return _collections_page()


@bp.post("/knowledge")
@page(EDIT)
def create_collection() -> Any:
    form = {"name": request.form.get("name", ""),
            "description": request.form.get("description", "")}
    with form_errors({"name", "description"}) as errors:
        collection = service.create_collection(form["name"], form["description"],
                                               console_access().principal.user.id)
        db.session.commit()
        flash(f"Collection {collection.name} created. Upload its first document.", "ok")
        return redirect(url_for("console.collection", collection_id=collection.id))
    return _collections_page(errors, form)


@bp.post("/knowledge/<collection_id>/delete")
@page(EDIT)
def delete_collection(collection_id: str) -> Response:
    collection = service.get_collection(collection_id)
    name = collection.name
    service.delete_collection(collection)
    db.session.commit()
    flash(f"Collection {name} deleted with its documents.", "ok")
    return redirect(url_for("console.knowledge"))


# --------------------------------------------------------------------------- a collection


def _collection_page(collection: KnowledgeCollection, errors: FormErrors | None = None,
                     title: str = "") -> Any:
    documents = service.list_documents(collection, None, 200).items
    documents.sort(key=lambda d: d.created_at, reverse=True)
    return render("console/knowledge_collection.html", status_of(errors or FormErrors()),
                  title=collection.name, collection=collection, documents=documents,
                  errors=errors or FormErrors(), doc_title=title,
                  can_edit=console_access().can(EDIT), max_k=SEARCH_K, query="", results=[],
                  error=None)


@bp.get("/knowledge/<collection_id>")
@page(READ)
def collection(collection_id: str) -> Any:
    return _collection_page(service.get_collection(collection_id))


@bp.post("/knowledge/<collection_id>/documents")
@page(EDIT)
def upload_document(collection_id: str) -> Any:
    """A text file (multipart), stored through the API's service: split into passages
    and embedded now."""
    collection = service.get_collection(collection_id)
    title = request.form.get("title", "").strip()
    with form_errors({"file", "title"}) as errors:
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise ValidationFailed.field("file", "choose a text file to upload")
        text = _text_of(upload.read())
        title = title or PurePath(upload.filename).stem or "Untitled"
        document = service.add_document(collection, title, text,
                                        console_access().principal.user.id)
        db.session.commit()
        chunks = document.passage_count
        flash(f"{document.title} added: {chunks} chunk{'s' if chunks != 1 else ''}, ready to "
              "search.", "ok")
        return redirect(url_for("console.collection", collection_id=collection.id))
    if "text" in errors:  # the service names the content `text`; the form calls it a file
        errors["file"] = errors.pop("text")
    return _collection_page(collection, errors, title)


def _text_of(data: bytes) -> str:
    if len(data) > service.MAX_TEXT * 4:
        raise ValidationFailed.field("file", f"at most {service.MAX_TEXT:,} characters")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationFailed.field("file", "must be UTF-8 text (.txt, .md, .csv)") from error
    problem = text_problem(text, multiline=True)
    if problem:
        raise ValidationFailed.field("file", problem)
    return text


@bp.get("/knowledge/<collection_id>/documents/<document_id>")
@page(READ)
def knowledge_document(collection_id: str, document_id: str) -> Any:
    collection = service.get_collection(collection_id)
    doc = service.get_document(collection, document_id)
    return render("console/knowledge_document.html", title=doc.title, collection=collection,
                  document=doc, passages=service.passages(doc),
                  can_edit=console_access().can(EDIT))[0]


@bp.post("/knowledge/<collection_id>/documents/<document_id>/delete")
@page(EDIT)
def delete_document(collection_id: str, document_id: str) -> Response:
    collection = service.get_collection(collection_id)
    doc = service.get_document(collection, document_id)
    title = doc.title
    service.delete_document(collection, doc)
    db.session.commit()
    flash(f"{title} deleted from {collection.name}.", "ok")
    return redirect(url_for("console.collection", collection_id=collection.id))


@bp.get("/knowledge/<collection_id>/search")
@page(READ)
def search_collection(collection_id: str) -> Any:
    """Ranked chunks with their scores: the fragment htmx puts under the search box, or
    the collection page with it when asked without script."""
    collection = service.get_collection(collection_id)
    query = request.args.get("q", "").strip()
    results, error = [], None
    if query:
        try:
            results = service.search_collection(collection, query, SEARCH_K)
            db.session.commit()  # the query's embedding, metered
        except ValidationFailed as failure:
            error = failure.errors[0]["message"] if failure.errors else failure.detail
    context = {"collection": collection, "query": query, "results": results, "error": error}
    if request.headers.get("HX-Request"):
        return render("console/knowledge_results.html", **context)[0]
    documents = service.list_documents(collection, None, 200).items
    return render("console/knowledge_collection.html", title=collection.name,
                  documents=documents, errors=FormErrors(), doc_title="",
                  can_edit=console_access().can(EDIT), max_k=SEARCH_K, searched=True,
                  **context)
