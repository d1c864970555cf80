"""Knowledge collections: a tenant's text documents, split into overlapping passages and
embedded at upload, and retrieval of the best passages for a query.

A passage's score blends the cosine similarity of the embeddings with the share of the
query's words it contains, so that an exact term (a product name, "SSO") counts even
where the small embedding model knows it poorly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from overture.billing import usage
from overture.billing.meters import EMBEDDINGS, KNOWLEDGE_BYTES
from overture.orchestration.agents import embeddings
from overture.orchestration.agents.models import (
    KnowledgeCollection,
    KnowledgeDocument,
    KnowledgePassage,
)
from overture.platform import audit
from overture.platform.db import db, get_or_404, save_named
from overture.platform.errors import NotFound, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.platform.validation import clean_name

if TYPE_CHECKING:
    import numpy as np

MAX_TITLE = 200
MAX_TEXT = 200_000  # characters per document
MAX_K = 20
MAX_QUERY = 2_000
SENTENCES_PER_PASSAGE = 3
OVERLAP = 1  # sentences shared by neighbouring passages, so no answer is cut in two
MAX_PASSAGE_CHARS = 1_200
KEYWORD_WEIGHT = 0.3

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from",
    "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or",
    "our", "so", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to",
    "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "you",
    "your"})


@dataclass(frozen=True)
class Passage:
    document_id: uuid.UUID
    document_title: str
    text: str
    score: float


# --------------------------------------------------------------------------- collections


def create_collection(name: str, description: str = "",
                      created_by: uuid.UUID | None = None) -> KnowledgeCollection:
    collection = KnowledgeCollection(description=description or "", created_by_id=created_by)
    save_named(collection, clean_name(name), "a knowledge collection", add=True)
    audit.record("knowledge.created", target_type="knowledge_collection",
                 target_id=collection.id, details={"name": collection.name})
    return collection


def update_collection(collection: KnowledgeCollection, *, name: str | None = None,
                      description: str | None = None) -> KnowledgeCollection:
    changed = []
    if description is not None:
        collection.description = description
        changed.append("description")
    if name is not None:
        save_named(collection, clean_name(name), "a knowledge collection")
        changed.append("name")
    audit.record("knowledge.updated", target_type="knowledge_collection",
                 target_id=collection.id, details={"changed": changed})
    return collection


def delete_collection(collection: KnowledgeCollection) -> None:
    """The collection, its documents and passages. Agents that name it fail to retrieve."""
    for document_id, size in _document_bytes(KnowledgeDocument.collection_id == collection.id):
        _meter_storage(document_id, "deleted", -size)
    audit.record("knowledge.deleted", target_type="knowledge_collection",
                 target_id=collection.id, details={"name": collection.name})
    db.session.delete(collection)
    db.session.flush()


def list_collections(cursor: str | None, limit: int | None) -> Page[KnowledgeCollection]:
    return paginate(select(KnowledgeCollection), KnowledgeCollection.id, cursor, limit)


def get_collection(collection_id: Any) -> KnowledgeCollection:
    return get_or_404(KnowledgeCollection, collection_id, "knowledge collection")


def collection_named(name: str) -> KnowledgeCollection:
    found = db.session.scalars(select(KnowledgeCollection).where(
        KnowledgeCollection.name == name)).one_or_none()
    if found is None:
        raise NotFound(f"no knowledge collection named {name!r}")
    return found


def document_counts(collection_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Documents per collection, in one query for a whole page of collections."""
    rows = db.session.execute(
        select(KnowledgeDocument.collection_id, func.count()).where(
            KnowledgeDocument.collection_id.in_(collection_ids))
        .group_by(KnowledgeDocument.collection_id)).all()
    return {collection_id: count for collection_id, count in rows}


# --------------------------------------------------------------------------- documents


def add_document(collection: KnowledgeCollection, title: str, text: str,
                 created_by: uuid.UUID | None = None) -> KnowledgeDocument:
    """Store a text document, split into passages and embedded now, so a search only
    embeds its query."""
    title = clean_name(title, "title")[:MAX_TITLE]
    text = (text or "").strip()
    if not text:
        raise ValidationFailed.field("text", "must not be empty")
    if len(text) > MAX_TEXT:
        raise ValidationFailed.field("text", f"at most {MAX_TEXT} characters")
    chunks = split_passages(text)
    document = KnowledgeDocument(collection_id=collection.id, title=title, text=text,
                                 passage_count=len(chunks), created_by_id=created_by)
    db.session.add(document)
    db.session.flush()
    vectors = embeddings.embed([f"{title}. {chunk}" for chunk in chunks])
    db.session.add_all(
        KnowledgePassage(document_id=document.id, collection_id=collection.id, ordinal=i,
                         text=chunk, embedding=embeddings.to_bytes(vectors[i]))
        for i, chunk in enumerate(chunks))
    db.session.flush()
    _meter_storage(document.id, "added", stored_bytes(text, vectors.nbytes), len(chunks))
    audit.record("knowledge.document_added", target_type="knowledge_document",
                 target_id=document.id, details={"collection": collection.name,
                                                 "title": title, "passages": len(chunks)})
    return document


def list_documents(collection: KnowledgeCollection, cursor: str | None,
                   limit: int | None) -> Page[KnowledgeDocument]:
    stmt = select(KnowledgeDocument).where(KnowledgeDocument.collection_id == collection.id)
    return paginate(stmt, KnowledgeDocument.id, cursor, limit)


def get_document(collection: KnowledgeCollection, document_id: Any) -> KnowledgeDocument:
    document = get_or_404(KnowledgeDocument, document_id, "document")
    if document.collection_id != collection.id:
        raise NotFound("document not found")
    return document


def passages(document: KnowledgeDocument) -> list[KnowledgePassage]:
    """The document's passages (its chunks), in order."""
    return list(db.session.scalars(select(KnowledgePassage).where(
        KnowledgePassage.document_id == document.id).order_by(KnowledgePassage.ordinal)))


def delete_document(collection: KnowledgeCollection, document: KnowledgeDocument) -> None:
    for document_id, size in _document_bytes(KnowledgeDocument.id == document.id):
        _meter_storage(document_id, "deleted", -size)
    audit.record("knowledge.document_deleted", target_type="knowledge_document",
                 target_id=document.id, details={"collection": collection.name,
                                                 "title": document.title})
    db.session.delete(document)
    db.session.flush()


# --------------------------------------------------------------------------- metering


def stored_bytes(text: str, embedding_bytes: int) -> int:
    """What a document keeps: its text (UTF-8) and its passages' embeddings."""
    return len(text.encode()) + embedding_bytes


def _document_bytes(where: Any) -> list[tuple[uuid.UUID, int]]:
    """(document, bytes it keeps) of the matching documents, as `stored_bytes` counted
    them when they were added."""
    embedded = dict(db.session.execute(
        select(KnowledgePassage.document_id, func.sum(func.length(KnowledgePassage.embedding)))
        .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgePassage.document_id)
        .where(where).group_by(KnowledgePassage.document_id)).all())
    return [(document_id, stored_bytes(text, int(embedded.get(document_id) or 0)))
            for document_id, text in db.session.execute(
                select(KnowledgeDocument.id, KnowledgeDocument.text).where(where))]


def _meter_storage(document_id: uuid.UUID, what: str, size: int, embedded: int = 0) -> None:
    """Storage changes (and texts embedded) in the transaction that adds or deletes
    the document; keyed by it, so neither is ever counted twice."""
    entries = [usage.Entry(KNOWLEDGE_BYTES, Decimal(size))]
    if embedded:
        entries.append(usage.Entry(EMBEDDINGS, Decimal(embedded)))
    usage.record(entries, key=f"knowledge:{document_id}:{what}")


# --------------------------------------------------------------------------- splitting


def sentences(text: str) -> Iterator[str]:
    """Sentences, with every line break also ending one (FAQ headings, list items)."""
    for line in text.splitlines():
        for sentence in _SENTENCE_END.split(" ".join(line.split())):
            if sentence:
                yield sentence


def split_passages(text: str) -> list[str]:
    """Windows of a few sentences, neighbours sharing `OVERLAP` of them."""
    parts = [s[:MAX_PASSAGE_CHARS] for s in sentences(text)]
    step = SENTENCES_PER_PASSAGE - OVERLAP
    last_start = max(len(parts) - SENTENCES_PER_PASSAGE, 0)
    starts = [*range(0, last_start, step), last_start]
    return [" ".join(parts[i:i + SENTENCES_PER_PASSAGE])[:MAX_PASSAGE_CHARS * 2]
            for i in starts] if parts else []


# --------------------------------------------------------------------------- search


def search(collection_name: str, query: str, k: int = 3) -> list[Passage]:
    """The `k` passages of the named collection that best answer `query`, best first.
    For an agent: its step's ledger meters the query's embedding, not the session."""
    return search_collection(collection_named(collection_name), query, k, metered=False)


def search_collection(collection: KnowledgeCollection, query: str, k: int = 3, *,
                      metered: bool = True) -> list[Passage]:
    """Passages as `search`; `metered`: the query's embedding is counted in the
    session's transaction (the caller commits)."""
    query = " ".join((query or "").split())
    if not query or len(query) > MAX_QUERY:
        raise ValidationFailed.field("query", f"must be 1 to {MAX_QUERY} characters")
    if not 1 <= k <= MAX_K:
        raise ValidationFailed.field("k", f"must be between 1 and {MAX_K}")
    rows = db.session.execute(
        select(KnowledgePassage.document_id, KnowledgeDocument.title, KnowledgePassage.text,
               KnowledgePassage.embedding)
        .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgePassage.document_id)
        .where(KnowledgePassage.collection_id == collection.id)
        .order_by(KnowledgePassage.document_id, KnowledgePassage.ordinal)).all()
    if not rows:
        return []
    scores = _scores(query, rows)
    if metered:
        usage.record([usage.Entry(EMBEDDINGS, Decimal(1))])
    return [Passage(rows[i].document_id, rows[i].title, rows[i].text, round(score, 4))
            for i, score in embeddings.top(scores, k)]


def _scores(query: str, rows: list[Any]) -> np.ndarray:
    import numpy as np  # at the first search: a process that never searches holds none

    matrix = np.stack([embeddings.from_bytes(r.embedding) for r in rows])
    cosine = matrix @ embeddings.embed([query])[0]
    terms = _terms(query)
    if not terms:
        return cosine
    overlap = np.array([len(terms & _terms(f"{r.title} {r.text}")) / len(terms) for r in rows],
                       dtype=np.float32)
    return (1 - KEYWORD_WEIGHT) * cosine + KEYWORD_WEIGHT * overlap


def _terms(text: str) -> set[str]:
    # A crude stem (a trailing "s") lets "refunds" match "refund".
    return {w.rstrip("s") if len(w) > 3 else w for w in _WORD.findall(text.lower())
            if w not in _STOPWORDS}
