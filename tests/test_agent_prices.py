"""The per-model price table for platform admins (`-k agent`): read and edit it through
API v1 (`/model-prices`) and `overture prices`; tenant users of any role are refused;
every change is audited in the platform tenant's chain; and a change applies to later
calls only: a chat with the fake OpenAI server before and after it pays different costs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from overture.billing.usage import UsageEvent
from overture.cli import main
from overture.orchestration.llm.prices import DEFAULT_PRICES, ModelPrice, price_for
from overture.platform.audit import AuditEvent, verify_chain
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from overture.tenants.access import PORTAL_ONLY
from tests.agent_fakes import FakeOpenAI, answer, create_agent
from tests.support import as_key, as_user


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    """The fake model servers listen on loopback, which the outbound guard refuses."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


MTOK = Decimal(1_000_000)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True))
    return response.get_json()


def put(api: Any, path: str, **kw: Any) -> Any:
    return api.call("PUT", path, **kw)


def rows() -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    found = {(r.provider, r.model): (r.input_per_mtok, r.output_per_mtok)
             for r in db.session.scalars(select(ModelPrice))}
    db.session.rollback()
    return found


def price_events(tenant_id: Any = PLATFORM_TENANT_ID) -> list[Any]:
    with scoped_to(tenant_id):
        events = db.session.execute(select(
            AuditEvent.action, AuditEvent.actor_type, AuditEvent.actor_id,
            AuditEvent.target_type, AuditEvent.target_id, AuditEvent.details).where(
            AuditEvent.action.startswith("model_price.")).order_by(AuditEvent.seq)).all()
        db.session.rollback()
    return list(events)


def listed(api: Any, **query: str) -> dict[tuple[str, str], dict[str, Any]]:
    body = ok(api.get("/model-prices", query_string=query))
    return {(i["provider"], i["model"]): i for i in body["items"]}


# --------------------------------------------------------------------------- API


def test_agent_prices_platform_admin_lists_sets_and_deletes(app, world):
    root = as_user(app, world, "platform")
    body = ok(root.get("/model-prices"))
    prices = {(i["provider"], i["model"]): i for i in body["items"]}
    assert set(prices) == set(DEFAULT_PRICES)  # nothing edited yet: the built-in defaults
    assert prices[("openai", "gpt-4o")] | {"updated_at": None} == {
        "provider": "openai", "model": "gpt-4o", "input_per_mtok": "2.5",
        "output_per_mtok": "10", "source": "default", "via": None, "updated_at": None}
    assert "record their tokens" in body["note"] and "but no cost" in body["note"]
    assert body["fallbacks"] == {"azure_openai": "openai"}
    assert "openai_compatible" in body["providers"] and "scripted" not in body["providers"]

    # A self-hosted model has no price until one is set (slashes in its name are fine).
    llama = "/model-prices/openai_compatible/meta-llama/Llama-3.1-8B-Instruct"
    assert root.get(llama).status_code == 404
    created = ok(put(root, llama, json={"input_per_mtok": "0.05", "output_per_mtok": 0.1}),
                 201)
    assert (created["model"], created["input_per_mtok"], created["output_per_mtok"],
            created["source"]) == ("meta-llama/Llama-3.1-8B-Instruct", "0.05", "0.1", "table")
    assert ok(root.get(llama))["input_per_mtok"] == "0.05"
    updated = ok(put(root, llama, json={"input_per_mtok": 0, "output_per_mtok": "0.2"}))
    assert (updated["input_per_mtok"], updated["output_per_mtok"]) == ("0", "0.2")

    # Editing a default; Azure deployments of the same model follow it.
    ok(put(root, "/model-prices/openai/gpt-4o",
                json={"input_per_mtok": "1.25", "output_per_mtok": "5"}), 201)
    openai_only = listed(root, provider="openai")
    assert {p for p, _ in openai_only} == {"openai"}
    assert (openai_only[("openai", "gpt-4o")]["source"],
            openai_only[("openai", "gpt-4o")]["input_per_mtok"]) == ("table", "1.25")
    assert openai_only[("openai", "gpt-4o")]["updated_at"] is not None
    azure = ok(root.get("/model-prices/azure_openai/gpt-4o"))
    assert (azure["source"], azure["via"], azure["output_per_mtok"]) == (
        "fallback", "openai", "5")
    assert rows() == {("openai_compatible", "meta-llama/Llama-3.1-8B-Instruct"):
                      (Decimal(0), Decimal("0.2")), ("openai", "gpt-4o"):
                      (Decimal("1.25"), Decimal(5))}

    # Deleting an edited default reverts to the default; deleting it again finds nothing.
    gone = ok(root.delete("/model-prices/openai/gpt-4o"))
    assert gone["deleted"]["input_per_mtok"] == "1.25"
    assert (gone["effective"]["source"], gone["effective"]["input_per_mtok"]) == (
        "default", "2.5")
    again = root.delete("/model-prices/openai/gpt-4o")
    assert again.status_code == 404
    assert again.get_json()["type"] == "urn:overture:problem:not-found"
    assert "default price applies" in again.get_json()["detail"]
    # Deleting the only price of a model leaves it unpriced: tokens, no cost.
    assert ok(root.delete(llama))["effective"] is None
    assert root.get(llama).status_code == 404
    assert rows() == {}
    assert price_for("openai_compatible", "meta-llama/Llama-3.1-8B-Instruct") is None
    assert root.delete("/model-prices/anthropic/claude-nothing").status_code == 404


@pytest.mark.parametrize("handle", ["a_owner", "a_admin", "a_builder", "a_auditor",
                                    "a_member", "nw_owner"])
def test_agent_prices_tenant_users_of_any_role_are_refused(app, world, handle):
    person = as_user(app, world, handle)
    path = "/model-prices/openai/gpt-4o"
    assert person.get("/model-prices").status_code == 403
    assert person.get(path).status_code == 403
    r = put(person, path, json={"input_per_mtok": "0", "output_per_mtok": "0"})
    assert r.status_code == 403
    assert r.get_json()["detail"] == (PORTAL_ONLY if handle == "a_member" else
                                      "this action needs the 'prices.manage' permission")
    assert person.delete(path).status_code == 403
    assert rows() == {} and price_events() == []


def test_agent_prices_api_keys_are_refused(app, world):
    for handle in ("a_admin", "nw_admin"):
        key = as_key(app, world, handle)
        assert key.get("/model-prices").status_code == 403
        assert put(key, "/model-prices/openai/gpt-4o", json={
            "input_per_mtok": "0", "output_per_mtok": "0"}).status_code == 403
    assert rows() == {}


@pytest.mark.parametrize(("path", "body", "fields"), [
    ("openai/gpt-4o", {"input_per_mtok": "-1", "output_per_mtok": "2"}, {"input_per_mtok"}),
    ("openai/gpt-4o", {"input_per_mtok": -0.5, "output_per_mtok": -2},
     {"input_per_mtok", "output_per_mtok"}),
    ("openai/gpt-4o", {"input_per_mtok": "cheap", "output_per_mtok": "2"}, {"input_per_mtok"}),
    ("openai/gpt-4o", {"input_per_mtok": True, "output_per_mtok": "2"}, {"input_per_mtok"}),
    ("openai/gpt-4o", {"input_per_mtok": "NaN", "output_per_mtok": "2"}, {"input_per_mtok"}),
    ("openai/gpt-4o", {"input_per_mtok": "1", "output_per_mtok": "100000"},
     {"output_per_mtok"}),
    ("openai/gpt-4o", {"input_per_mtok": "0.0000001", "output_per_mtok": "1"},
     {"input_per_mtok"}),
    ("openai/gpt-4o", {"input_per_mtok": "1"}, {"output_per_mtok"}),
    ("openai/gpt-4o", {"input_per_mtok": "1", "output_per_mtok": "1", "currency": "EUR"},
     {"currency"}),
    ("scripted/anything", {"input_per_mtok": "1", "output_per_mtok": "1"}, {"provider"}),
    ("opneai/gpt-4o", {"input_per_mtok": "1", "output_per_mtok": "1"}, {"provider"}),
    ("openai/" + "m" * 121, {"input_per_mtok": "1", "output_per_mtok": "1"}, {"model"}),
])
def test_agent_prices_bad_input_is_a_422_naming_the_field(app, world, path, body, fields):
    root = as_user(app, world, "platform")
    r = put(root, f"/model-prices/{path}", json=body)
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.get_json()["type"] == "urn:overture:problem:validation-error"
    assert {e["field"] for e in r.get_json()["errors"]} == fields
    assert rows() == {} and price_events() == []


def test_agent_prices_list_rejects_an_unknown_provider(app, world):
    r = as_user(app, world, "platform").get("/model-prices", query_string={"provider": "x"})
    assert r.status_code == 422
    assert {e["field"] for e in r.get_json()["errors"]} == {"provider"}


def test_agent_prices_changes_are_audited_in_the_platform_chain(app, world):
    root = as_user(app, world, "platform")
    ok(put(root, "/model-prices/openai/gpt-4o-mini",
                json={"input_per_mtok": "0.2", "output_per_mtok": "0.8"}), 201)
    ok(put(root, "/model-prices/openai/gpt-4o-mini",
                json={"input_per_mtok": "0.3", "output_per_mtok": "0.9"}))
    ok(put(root, "/model-prices/openai_compatible/llama3.1:8b",
                json={"input_per_mtok": "0.01", "output_per_mtok": "0.02"}), 201)
    ok(root.delete("/model-prices/openai/gpt-4o-mini"))
    ok(root.delete("/model-prices/openai_compatible/llama3.1:8b"))

    events = price_events()
    assert [(e.action, e.details["provider"], e.details["model"]) for e in events] == [
        ("model_price.set", "openai", "gpt-4o-mini"),
        ("model_price.set", "openai", "gpt-4o-mini"),
        ("model_price.set", "openai_compatible", "llama3.1:8b"),
        ("model_price.deleted", "openai", "gpt-4o-mini"),
        ("model_price.deleted", "openai_compatible", "llama3.1:8b")]
    assert [(e.details["old"], e.details["new"]) for e in events] == [
        ({"input_per_mtok": "0.15", "output_per_mtok": "0.6", "source": "default"},
         {"input_per_mtok": "0.2", "output_per_mtok": "0.8", "source": "table"}),
        ({"input_per_mtok": "0.2", "output_per_mtok": "0.8", "source": "table"},
         {"input_per_mtok": "0.3", "output_per_mtok": "0.9", "source": "table"}),
        (None, {"input_per_mtok": "0.01", "output_per_mtok": "0.02", "source": "table"}),
        ({"input_per_mtok": "0.3", "output_per_mtok": "0.9", "source": "table"},
         {"input_per_mtok": "0.15", "output_per_mtok": "0.6", "source": "default"}),
        ({"input_per_mtok": "0.01", "output_per_mtok": "0.02", "source": "table"}, None)]
    root_id = str(world.users["platform"].id)
    assert {(e.actor_type, e.actor_id, e.target_type) for e in events} == {
        ("user", root_id, "model_price")}
    assert events[0].target_id == events[1].target_id == events[3].target_id
    with scoped_to(PLATFORM_TENANT_ID):
        assert verify_chain().ok
        db.session.rollback()
    for tenant in ("a", "northwind"):  # the platform's act, in no tenant's log
        assert price_events(world.tenants[tenant].id) == []
    # Platform admins read it in the platform's log through the API, too.
    logged = ok(root.get("/audit", query_string={"action": "model_price."}))["items"]
    assert len(logged) == 5


def test_agent_prices_are_in_the_openapi_document(app):
    paths = app.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    assert "get" in paths["/api/v1/model-prices"]
    assert set(paths["/api/v1/model-prices/{provider}/{model}"]) >= {"get", "put", "delete"}


# --------------------------------------------------------------------------- later calls


def chat_on(app: Any, world: Any, httpserver: Any, name: str,
            model: str) -> tuple[FakeOpenAI, Any, Any, str]:
    """An agent on a fake OpenAI server running `model`; tenant a's operator (who chats),
    the platform admin (who sets prices), and the agent's conversations path."""
    fake = FakeOpenAI(httpserver)
    aid = str(create_agent(world, {
        "name": name, "credential_id": str(fake.credential(world).id),
        "model": {"provider": "openai", "model": model}}))
    operator, root = as_user(app, world, "a_operator"), as_user(app, world, "platform")
    return fake, operator, root, f"/agents/{aid}/conversations"


def test_agent_prices_a_change_applies_to_later_calls_only(app, world, httpserver):
    """The same chat, the same tokens per turn, before and after the platform admin
    changes gpt-4o-mini's price: each turn pays the price in force when it ran."""
    a = world.tenants["a"].id
    fake, operator, root, base = chat_on(app, world, httpserver, "support", "gpt-4o-mini")
    cid = ok(operator.post(base, json={"title": "Ada"}), 201)["id"]
    tokens = (1000, 200)
    for _ in range(2):
        fake.say(answer("noted"), tokens=tokens)

    before = ok(operator.post(f"{base}/{cid}/messages", json={"content": "one"}))["usage"]
    ok(put(root, "/model-prices/openai/gpt-4o-mini",
                json={"input_per_mtok": "3", "output_per_mtok": "12"}), 201)
    after = ok(operator.post(f"{base}/{cid}/messages", json={"content": "two"}))["usage"]

    old_in, old_out = (Decimal(p) for p in DEFAULT_PRICES[("openai", "gpt-4o-mini")])
    old_cost = (tokens[0] * old_in + tokens[1] * old_out) / MTOK
    new_cost = (tokens[0] * Decimal(3) + tokens[1] * Decimal(12)) / MTOK
    assert (before["input_tokens"], after["input_tokens"]) == (1000, 1000)
    assert (Decimal(before["cost"]), Decimal(after["cost"])) == (old_cost, new_cost)
    assert old_cost != new_cost
    # The usage events say the same: the first call's cost was not recomputed.
    with scoped_to(a):
        costs = db.session.scalars(select(UsageEvent.quantity).where(
            UsageEvent.metric == "llm_cost").order_by(UsageEvent.created_at)).all()
        db.session.rollback()
    assert costs == [old_cost, new_cost]


def test_agent_prices_an_unpriced_model_costs_nothing_until_priced(app, world, httpserver):
    a = world.tenants["a"].id
    fake, operator, root, base = chat_on(app, world, httpserver, "local-llama", "llama3.1:8b")
    assert root.get("/model-prices/openai/llama3.1:8b").status_code == 404
    assert ("openai", "llama3.1:8b") not in listed(root)
    cid = ok(operator.post(base, json={}), 201)["id"]
    fake.say(answer("hi"), tokens=(500, 50))
    fake.say(answer("hi again"), tokens=(500, 50))

    unpriced = ok(operator.post(f"{base}/{cid}/messages", json={"content": "hello"}))["usage"]
    assert (unpriced["input_tokens"], unpriced["cost"]) == (500, None)
    ok(put(root, "/model-prices/openai/llama3.1:8b",
                json={"input_per_mtok": "0.1", "output_per_mtok": "0.4"}), 201)
    priced = ok(operator.post(f"{base}/{cid}/messages", json={"content": "again"}))["usage"]
    assert Decimal(priced["cost"]) == (500 * Decimal("0.1") + 50 * Decimal("0.4")) / MTOK
    with scoped_to(a):
        metrics = db.session.scalars(select(UsageEvent.metric)).all()
        db.session.rollback()
    assert sorted(metrics).count("llm_input_tokens") == 2
    assert sorted(metrics).count("llm_cost") == 1


# --------------------------------------------------------------------------- CLI


def cli(settings: Any, *args: str) -> Any:
    env = {"DATABASE_URL": settings.database_url, "DATABASE_OWNER_URL":
           settings.database_owner_url, "REDIS_URL": settings.redis_url or "",
           "SECRET_KEY": settings.secret_key, "OVERTURE_ENV": "test",
           "OVERTURE_INSTANCE_PATH": str(settings.instance_path),
           "OVERTURE_MASTER_KEY": settings.master_key or ""}
    return CliRunner().invoke(main, ["prices", *args], env=env)


def test_agent_prices_cli_lists_sets_and_deletes(app_ctx, settings):
    r = cli(settings, "list")
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("openai/gpt-4o "))
    assert line.split() == ["openai/gpt-4o", "2.5", "10", "default"]
    assert "no price: calls to it record tokens but no cost" in r.output

    r = cli(settings, "set", "openai", "gpt-4o", "1.5", "6")
    assert r.exit_code == 0, r.output
    assert "set openai/gpt-4o: input 1.5, output 6 USD per million tokens (table)" in r.output
    assert "was openai/gpt-4o: input 2.5, output 10 USD per million tokens (default)" \
        in r.output
    assert rows() == {("openai", "gpt-4o"): (Decimal("1.5"), Decimal(6))}
    r = cli(settings, "list", "--provider", "openai")
    assert "anthropic/" not in r.output
    assert next(x for x in r.output.splitlines()
                if x.startswith("openai/gpt-4o ")).split()[1:] == ["1.5", "6", "table"]

    r = cli(settings, "delete", "openai", "gpt-4o")
    assert r.exit_code == 0, r.output
    assert "calls now pay openai/gpt-4o: input 2.5, output 10" in r.output
    assert rows() == {}

    (set_event, deleted) = price_events()
    assert (set_event.action, set_event.actor_type, set_event.details["new"]["input_per_mtok"]
            ) == ("model_price.set", "cli", "1.5")
    assert (deleted.action, deleted.details["old"]["output_per_mtok"]) == (
        "model_price.deleted", "6")


@pytest.mark.parametrize(("args", "code", "says"), [
    (("set", "openai", "gpt-4o", "cheap", "2"), 2, "INPUT: must be a number"),
    (("set", "openai", "gpt-4o", "1", "--", "-2"), 2, "OUTPUT: must be a non-negative"),
    (("set", "openai", "gpt-4o", "1", "20000"), 2, "OUTPUT: must be at most 10000"),
    (("set", "ollama", "llama3", "1", "2"), 2, "PROVIDER: one of anthropic, azure_openai"),
    (("set", "openai", "gpt-4o", "1"), 2, "Missing argument 'OUTPUT'"),
    (("delete", "openai", "gpt-4o"), 1, "no price set for openai/gpt-4o; its default"),
    (("delete", "openai_compatible", "qwen"), 1, "no price set for openai_compatible/qwen"),
    (("list", "--provider", "nope"), 2, "one of anthropic"),
])
def test_agent_prices_cli_bad_input_exits_non_zero(app_ctx, settings, args, code, says):
    r = cli(settings, *args)
    assert r.exit_code == code, r.output
    assert says in r.output
    assert "Traceback" not in r.output
    assert rows() == {} and price_events() == []
