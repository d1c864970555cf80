"""Agents: versioned configurations per tenant through API v1, and the lookups the runtime
uses (`-k agent`)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from overture.orchestration.agents import service
from overture.orchestration.agents.models import AgentVersion
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from overture.platform.errors import NotFound, ValidationFailed
from tests.support import unique

LOCAL = {"provider": "local", "model": "wordllama"}


def config(**extra: Any) -> dict[str, Any]:
    return {"role": "Support triage", "instructions": "Sort tickets.", "model": LOCAL, **extra}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True))
    return response.get_json()


def problem_fields(response: Any, status: int = 422) -> set[str]:
    assert response.status_code == status, response.get_data(as_text=True)
    return {e["field"] for e in response.get_json()["errors"]}


def create(api: Any, name: str | None = None, **cfg: Any) -> Any:
    return ok(api.post("/agents", json={"name": name or f"agent-{unique()}",
                                        "config": config(**cfg)}), 201)


def audit_actions(tenant_id: Any, prefix: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    with scoped_to(tenant_id):
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                                  .order_by(AuditEvent.seq)).all()
        return [(r.action, r.target_id, r.details) for r in rows]


# --------------------------------------------------------------------------- runtime interface


def test_agent_current_versions_and_load_version_follow_updates(world):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    with scoped_to(a):
        triage = service.create_agent("triage", config())
        service.create_agent("writer", config(model={"provider": "scripted", "model": "s"}))
        db.session.commit()
        pins = service.current_versions(["triage", "writer", "triage"])
        assert set(pins) == {"triage", "writer"}
        v1 = service.load_version(pins["triage"])
        assert (v1.agent_id, v1.number, v1.name) == (triage.id, 1, "triage")
        assert v1.spec.model.provider == "local" and v1.spec.instructions == "Sort tickets."

        service.update_agent(triage, config=config(instructions="Sort tickets, kindly."))
        db.session.commit()
        v2 = service.load_current("triage")
        assert (v2.number, v2.spec.instructions) == (2, "Sort tickets, kindly.")
        assert service.current_versions(["triage"]) == {"triage": str(v2.version_id)}
        # The pinned version is frozen: loading it again gives what was pinned.
        assert service.load_version(v1.version_id).spec.instructions == "Sort tickets."

        with pytest.raises(ValidationFailed) as unknown:
            service.current_versions(["triage", "ghost", "phantom"])
        assert "ghost" in unknown.value.detail and "phantom" in unknown.value.detail
        with pytest.raises(NotFound):
            service.load_current("ghost")
        with pytest.raises(NotFound):
            service.load_version("not-an-id")

    # Another tenant sees none of it: not by name, not by version id.
    with scoped_to(b):
        with pytest.raises(ValidationFailed):
            service.current_versions(["triage"])
        with pytest.raises(NotFound):
            service.load_version(v1.version_id)
        with pytest.raises(NotFound):
            service.load_current("triage")


def test_agent_archived_keeps_pinned_versions_loadable_but_not_current(world):
    with scoped_to(world.tenants["a"].id):
        agent = service.create_agent("drafter", config())
        pinned = service.current_versions(["drafter"])["drafter"]
        service.archive_agent(agent)
        db.session.commit()
        assert service.load_version(pinned).name == "drafter"
        with pytest.raises(ValidationFailed):
            service.current_versions(["drafter"])
        with pytest.raises(NotFound):
            service.load_current("drafter")
        # The name is free again.
        assert service.create_agent("drafter", config()).name == "drafter"


def test_agent_versions_are_immutable(world):
    with scoped_to(world.tenants["a"].id):
        service.create_agent("frozen", config())
        version = db.session.scalars(select(AgentVersion)).one()
        version.config = {**version.config, "instructions": "changed"}
        with pytest.raises(RuntimeError, match="immutable"):
            db.session.flush()
        db.session.rollback()
