"""Knowledge collections: upload, passages, retrieval, and tenant isolation (`-k agent`)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from overture.orchestration.agents import knowledge
from overture.orchestration.agents.models import KnowledgePassage
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from overture.platform.errors import NotFound, ValidationFailed
from tests.support import as_key, as_user

REFUNDS = """Refund policy

You can ask for a refund within 30 days of purchase. Refunds go back to the original
payment method and usually arrive within 5 to 10 business days.
Annual plans cancelled after 30 days are not refunded, but you keep access until the end
of the billing period. Refunds above 500 dollars are reviewed by our finance team before
they are paid out.
To request a refund, reply to your receipt email or open a ticket with your order number."""

PASSWORDS = """Resetting your password

If you forgot your password, click "Forgot password?" on the sign-in page and enter the
email address of your account. We send a reset link that is valid for one hour.
If the email does not arrive, check your spam folder, then ask your workspace admin to
confirm the address on your account. Accounts with single sign-on (SSO) must reset the
password with their identity provider instead.
For security, all your sessions are signed out after a password change."""

PRICING = """Plans and pricing

The Starter plan costs 29 dollars per month for up to 3 users. The Team plan costs 99
dollars per month and includes 20 users, audit logs and priority support.
Enterprise pricing is quoted per contract and adds SSO, a dedicated success manager and a
99.9 percent uptime commitment. Paying yearly saves two months.
You can upgrade or downgrade at any time; the difference is prorated on your next invoice."""

SHIPPING = """Shipping hardware

Card readers ship from our warehouse within two business days. Delivery inside the EU
takes three to five days. Tracking numbers are emailed as soon as the parcel leaves."""

FAQ = {"Refund policy": REFUNDS, "Password reset": PASSWORDS, "Pricing": PRICING,
       "Shipping": SHIPPING}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True))
    return response.get_json()


def seeded(tenant_id: Any, name: str = "support-faq") -> Any:
    with scoped_to(tenant_id):
        collection = knowledge.create_collection(name, "Customer support answers")
        for title, text in FAQ.items():
            knowledge.add_document(collection, title, text)
        db.session.commit()
        return collection


# --------------------------------------------------------------------------- splitting


def test_agent_knowledge_passages_overlap_and_keep_every_sentence():
    text = " ".join(f"Sentence number {i} is here." for i in range(1, 8))
    passages = knowledge.split_passages(text)
    assert len(passages) >= 3
    for i in range(1, 8):
        assert any(f"number {i} " in p for p in passages), i
    # Neighbours share a sentence, so an answer never falls between two passages.
    numbers = [set(re.findall(r"number (\d)", p)) for p in passages]
    for first, second in itertools.pairwise(numbers):
        assert first & second
    # Line breaks end sentences too (headings, list items).
    assert knowledge.split_passages("Heading\nBody one. Body two.") == [
        "Heading Body one. Body two."]
    assert knowledge.split_passages("   ") == []


# --------------------------------------------------------------------------- search


@pytest.mark.parametrize(("question", "title"), [
    ("I was charged twice, how do I get my money back?", "Refund policy"),
    ("Can I request a refund for my order?", "Refund policy"),
    ("I forgot my password and cannot sign in", "Password reset"),
    ("The reset link never arrived in my inbox", "Password reset"),
    ("How much does the Team plan cost per month?", "Pricing"),
    ("Do you offer a discount if we pay yearly?", "Pricing"),
    ("When will my card reader be delivered?", "Shipping"),
])
def test_agent_knowledge_search_returns_the_relevant_passage_first(world, question, title):
    seeded(world.tenants["a"].id)
    with scoped_to(world.tenants["a"].id):
        found = knowledge.search("support-faq", question, k=3)
    assert found[0].document_title == title, [(p.document_title, p.score) for p in found]
    assert len(found) == 3
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)


def test_agent_knowledge_search_finds_the_sentence_that_answers(world):
    seeded(world.tenants["a"].id)
    with scoped_to(world.tenants["a"].id):
        best = knowledge.search("support-faq", "Who reviews large refunds over 500 dollars?")[0]
        sso = knowledge.search("support-faq", "reset password with SSO", k=1)[0]
    assert "finance team" in best.text
    assert sso.document_title == "Password reset" and "identity provider" in sso.text


def test_agent_knowledge_search_checks_its_input_and_the_collection(world):
    seeded(world.tenants["a"].id)
    with scoped_to(world.tenants["a"].id):
        with pytest.raises(NotFound):
            knowledge.search("no-such-collection", "refund")
        with pytest.raises(ValidationFailed) as empty:
            knowledge.search("support-faq", "   ")
        assert empty.value.errors[0]["field"] == "query"
        with pytest.raises(ValidationFailed):
            knowledge.search("support-faq", "refund", k=0)
        empty_collection = knowledge.create_collection("empty")
        assert knowledge.search_collection(empty_collection, "refund") == []


def test_agent_knowledge_collections_are_per_tenant(world):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    seeded(a)
    with scoped_to(b):
        with pytest.raises(NotFound):
            knowledge.search("support-faq", "refund")
        # B may use the same name for its own collection; it sees only its own text.
        mine = knowledge.create_collection("support-faq")
        knowledge.add_document(mine, "B only", "Workspace B ships llamas by boat.")
        db.session.commit()
        found = knowledge.search("support-faq", "refund policy", k=5)
        assert {p.document_title for p in found} == {"B only"}
    with scoped_to(a):
        assert "B only" not in {p.document_title
                                for p in knowledge.search("support-faq", "llamas", k=10)}


def test_agent_knowledge_delete_document_removes_its_passages(world):
    a = world.tenants["a"].id
    collection = seeded(a)
    with scoped_to(a):
        refunds = next(d for d in knowledge.list_documents(collection, None, 50).items
                       if d.title == "Refund policy")
        knowledge.delete_document(collection, refunds)
        db.session.commit()
        left = db.session.scalar(select(func.count()).select_from(KnowledgePassage).where(
            KnowledgePassage.document_id == refunds.id))
        assert left == 0
        found = knowledge.search("support-faq", "how do I get a refund", k=10)
        assert "Refund policy" not in {p.document_title for p in found}
        actions = [e.action for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.startswith("knowledge."))
            .order_by(AuditEvent.seq))]
    assert actions == ["knowledge.created", *["knowledge.document_added"] * len(FAQ),
                       "knowledge.document_deleted"]


# --------------------------------------------------------------------------- API


def test_agent_knowledge_api_upload_list_search_delete(app, world):
    builder = as_user(app, world, "a_builder")
    created = ok(builder.post("/knowledge", json={"name": "faq", "description": "answers"}), 201)
    cid = created["id"]
    assert created["document_count"] == 0
    for title, text in FAQ.items():
        doc = ok(builder.post(f"/knowledge/{cid}/documents", json={"title": title,
                                                                   "text": text}), 201)
        assert doc["passage_count"] >= 1 and doc["title"] == title
    docs = ok(builder.get(f"/knowledge/{cid}/documents"))["items"]
    assert [d["title"] for d in docs] == list(FAQ)
    assert "text" not in docs[0]  # lists stay small; one document shows its text
    one = ok(builder.get(f"/knowledge/{cid}/documents/{docs[0]['id']}"))
    assert one["text"] == REFUNDS.strip()
    assert ok(builder.get(f"/knowledge/{cid}"))["document_count"] == len(FAQ)

    hits = ok(builder.get(f"/knowledge/{cid}/search", query_string={"q": "forgot my password",
                                                                    "k": 2}))["items"]
    assert len(hits) == 2 and hits[0]["document_title"] == "Password reset"
    assert set(hits[0]) == {"document_id", "document_title", "text", "score"}

    pricing = next(d["id"] for d in docs if d["title"] == "Pricing")
    assert builder.delete(f"/knowledge/{cid}/documents/{pricing}").status_code == 204
    assert builder.get(f"/knowledge/{cid}/documents/{pricing}").status_code == 404
    hits = ok(builder.get(f"/knowledge/{cid}/search", query_string={"q": "Team plan price",
                                                                    "k": 10}))["items"]
    assert "Pricing" not in {h["document_title"] for h in hits}

    renamed = ok(builder.patch(f"/knowledge/{cid}", json={"name": "support answers"}))
    assert renamed["name"] == "support answers"
    assert builder.delete(f"/knowledge/{cid}").status_code == 204
    assert builder.get(f"/knowledge/{cid}").status_code == 404


def test_agent_knowledge_api_validation_errors_name_fields(app, world):
    admin = as_key(app, world, "a_admin")
    cid = ok(admin.post("/knowledge", json={"name": "faq"}), 201)["id"]
    assert admin.post("/knowledge", json={"name": "faq"}).status_code == 409
    other = ok(admin.post("/knowledge", json={"name": "other"}), 201)["id"]
    assert admin.patch(f"/knowledge/{other}", json={"name": "faq"}).status_code == 409
    assert ok(admin.get(f"/knowledge/{other}"))["name"] == "other"

    def fields(response: Any) -> set[str]:
        assert response.status_code == 422, response.get_data(as_text=True)
        return {e["field"] for e in response.get_json()["errors"]}

    assert "name" in fields(admin.post("/knowledge", json={"name": ""}))
    assert "text" in fields(admin.post(f"/knowledge/{cid}/documents",
                                       json={"title": "Empty", "text": "   "}))
    assert "title" in fields(admin.post(f"/knowledge/{cid}/documents", json={"text": "x"}))
    too_long = "Words here. " * 20_000
    assert "text" in fields(admin.post(f"/knowledge/{cid}/documents",
                                       json={"title": "Huge", "text": too_long}))
    assert "q" in fields(admin.get(f"/knowledge/{cid}/search"))
    assert "k" in fields(admin.get(f"/knowledge/{cid}/search", query_string={"q": "x",
                                                                              "k": 999}))
    assert admin.get("/knowledge/not-an-id").status_code == 404


def test_agent_knowledge_api_isolation_and_roles(app, world):
    a_builder, b_admin = as_user(app, world, "a_builder"), as_key(app, world, "b_admin")
    viewer = as_user(app, world, "a_viewer")
    cid = ok(a_builder.post("/knowledge", json={"name": "faq"}), 201)["id"]
    did = ok(a_builder.post(f"/knowledge/{cid}/documents",
                            json={"title": "Refunds", "text": REFUNDS}), 201)["id"]

    # Another tenant: nothing to see, search, change or delete.
    assert b_admin.get(f"/knowledge/{cid}").status_code == 404
    assert b_admin.get(f"/knowledge/{cid}/documents").status_code == 404
    assert b_admin.get(f"/knowledge/{cid}/search", query_string={"q": "refund"}).status_code \
        == 404
    assert b_admin.post(f"/knowledge/{cid}/documents",
                        json={"title": "x", "text": "y"}).status_code == 404
    assert b_admin.delete(f"/knowledge/{cid}/documents/{did}").status_code == 404
    assert b_admin.patch(f"/knowledge/{cid}", json={"name": "mine"}).status_code == 404
    assert b_admin.delete(f"/knowledge/{cid}").status_code == 404
    assert ok(b_admin.get("/knowledge"))["items"] == []

    # A viewer reads and searches, but changes nothing.
    assert [c["id"] for c in ok(viewer.get("/knowledge"))["items"]] == [cid]
    assert ok(viewer.get(f"/knowledge/{cid}/search", query_string={"q": "refund"}))["items"]
    assert viewer.post("/knowledge", json={"name": "v"}).status_code == 403
    assert viewer.post(f"/knowledge/{cid}/documents",
                       json={"title": "x", "text": "y"}).status_code == 403
    assert viewer.delete(f"/knowledge/{cid}/documents/{did}").status_code == 403
    assert viewer.delete(f"/knowledge/{cid}").status_code == 403
    assert ok(a_builder.get(f"/knowledge/{cid}/documents"))["items"][0]["id"] == did
