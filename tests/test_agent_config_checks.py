"""Agent configurations refused when saved rather than failing later (`-k agent`):
budgets that are not numbers, scripts the scripted provider would refuse, output
schemas that are not JSON Schemas; and `notes`, added later, changes no old version."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from overture.orchestration.agents import service
from overture.orchestration.agents.models import AgentVersion
from overture.orchestration.agents.spec import AgentSpec
from overture.platform.db import db, scoped_to
from overture.platform.errors import ValidationFailed
from tests.support import as_key

SCRIPTED = {"provider": "scripted", "model": "script"}


def fields_of(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.get_data(as_text=True)
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


@pytest.mark.parametrize("cost", ["lots", "1,5", "NaN", "-Infinity", "", "0x10"])
def test_agent_spec_max_cost_that_is_no_number_is_a_validation_error(cost):
    with pytest.raises(ValidationFailed) as refused:
        AgentSpec.from_json({"name": "x", "model": SCRIPTED, "limits": {"max_cost": cost}})
    assert [e["field"] for e in refused.value.errors] == ["limits.max_cost"]


def test_agent_spec_max_cost_accepts_numbers_and_decimal_strings():
    for given, kept in ((0.25, "0.25"), ("0.10", "0.10"), (3, "3"), (0, "0")):
        spec = AgentSpec.from_json({"name": "x", "model": SCRIPTED,
                                    "limits": {"max_cost": given}})
        assert spec.to_json()["limits"]["max_cost"] == kept


def test_agent_api_refuses_a_script_the_scripted_provider_would_refuse(app, world):
    admin = as_key(app, world, "a_admin")
    good = {"answer": {"status": "ok", "confidence": 1, "output": "hi"}}
    bad = [good, {"error": "on_fire"}, {"tool_calls": [{"arguments": {}}]}, {"colour": 1}]
    fields = fields_of(admin.post("/agents", json={"name": "bot", "config": {
        "model": SCRIPTED, "script": bad}}))
    assert set(fields) == {"config.script.1.error", "config.script.2.tool_calls.0",
                           "config.script.3"}
    assert "on_fire" in fields["config.script.1.error"]
    assert "name" in fields["config.script.2.tool_calls.0"]
    # A good script is saved; replacing it with a bad one is refused the same way.
    created = admin.post("/agents", json={"name": "bot", "config": {"model": SCRIPTED,
                                                                     "script": [good]}})
    assert created.status_code == 201, created.get_data(as_text=True)
    aid = created.get_json()["id"]
    fields = fields_of(admin.patch(f"/agents/{aid}", json={"config": {
        "model": SCRIPTED, "script": [good, {"input_tokens": -3}]}}))
    assert set(fields) == {"config.script.1.input_tokens"}
    assert admin.get(f"/agents/{aid}").get_json()["current_version"] == 1


def test_agent_api_refuses_an_output_schema_that_is_no_json_schema(app, world):
    admin = as_key(app, world, "a_admin")
    fields = fields_of(admin.post("/agents", json={"name": "bot", "config": {
        "model": SCRIPTED, "output": {"schema": {"type": "banana"}}}}))
    assert list(fields) == ["config.output.schema"]


def test_agent_api_notes_remember_name_is_reserved_when_notes_are_on(app, world):
    admin = as_key(app, world, "a_admin")
    assert admin.post("/knowledge", json={"name": "faq"}).status_code == 201
    tools = [{"kind": "knowledge", "ref": "faq", "name": "remember"}]
    fields = fields_of(admin.post("/agents", json={"name": "bot", "config": {
        "model": SCRIPTED, "notes": True, "tools": tools}}))
    assert list(fields) == ["config.tools.0.name"]
    # Without notes the name is free.
    assert admin.post("/agents", json={"name": "bot", "config": {
        "model": SCRIPTED, "tools": tools}}).status_code == 201
    assert admin.post("/agents", json={"name": "bot2", "config": {
        "model": SCRIPTED, "notes": "yes"}}).status_code == 422


def test_agent_version_saved_before_notes_existed_is_unchanged_by_same_config(world):
    """A stored config without `notes` equals today's spec of it: a rename keeps it as
    config, and the same config sent again adds no version."""
    with scoped_to(world.tenants["a"].id):
        agent = service.create_agent("old", {"model": SCRIPTED})
        version = db.session.get(AgentVersion, agent.current_version_id)
        legacy = {k: v for k, v in version.config.items() if k != "notes"}
        db.session.add(AgentVersion(agent_id=agent.id, number=2, config=legacy))
        db.session.flush()
        agent.current_version_id = db.session.scalars(select(AgentVersion.id).where(
            AgentVersion.number == 2)).one()
        db.session.commit()
        service.update_agent(agent, config={"model": SCRIPTED})
        assert service.current_version(agent).number == 2
        service.update_agent(agent, config={"model": SCRIPTED, "notes": True})
        assert service.current_version(agent).number == 3
        assert service.load_current("old").spec.notes is True
        db.session.rollback()
