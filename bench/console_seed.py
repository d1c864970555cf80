"""The data of the console pages benchmark (bench/console_pages.py): an agency of
WORKSPACES client workspaces; the first holds RUNS runs of WORKFLOWS workflows with
their step runs, agent calls (usage events), approvals, dead letters and audit events,
beside agents, connections, schedules and polling triggers; the others hold
OTHER_RUNS runs each. The agency has a few templates.

What a person would make through the console (tenants, the user, agents,
connections, schedules, subscriptions, templates) is made through the services, in
their scope. The bulk rows (workflows and versions, runs, step runs, usage, approvals,
audit events) are written by the superuser in a few statements, as the engine would
have left them; the audit events continue each chain with valid hashes.
"""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, insert, select, update

from bench.engine import Bench

RUNS = int(os.environ.get("BENCH_CONSOLE_RUNS", "10000"))
WORKFLOWS = 100
WORKSPACES = int(os.environ.get("BENCH_CONSOLE_WORKSPACES", "100"))
OTHER_RUNS = 100  # in each of the agency's other workspaces
VERSIONS = 3  # published versions per workflow; runs are spread over them
AGENTS = 10
APPROVALS = 60  # pending, on running runs
AUDIT_EVENTS = 10_000
CONNECTIONS = 20
SCHEDULES = 30
SUBSCRIPTIONS = 10
TEMPLATES = 5
PASSWORD = "a long bench password 1"
EMAIL = "owner@bench.example.com"
# Failed runs' reasons; "interrupted" is the platform's own (a dead letter).
CODES = ["http_5xx", "timeout", "agent_failed", "interrupted"]


def id_at(moment: datetime, rand: random.Random) -> uuid.UUID:
    """A UUIDv7 of `moment`, as `platform.ids.new_id` would have made it then: lists
    page by id, so ids must follow time as they do in a real database."""
    ms = int(moment.timestamp() * 1000) & 0xFFFFFFFFFFFF
    return uuid.UUID(int=ms << 80 | 0x7 << 76 | rand.getrandbits(12) << 64 | 0b10 << 62
                     | rand.getrandbits(62))


def agent_config(name: str) -> dict[str, Any]:
    return {"name": name, "instructions": f"You are {name}.",
            "model": {"provider": "local", "model": "local-echo"}}


def seed(bench: Bench) -> dict[str, Any]:
    """Everything; returns the ids the pages need."""
    from overture.platform.db import db, scoped_to
    from overture.tenants.access import Principal, access_to
    from overture.tenants.apikeys import create_key
    from overture.tenants.lifecycle import create_tenant
    from overture.tenants.models import Membership, TenantKind
    from overture.tenants.roles import Role
    from overture.tenants.users import create_user

    with bench.app.app_context():
        agency = create_tenant("Bench agency", TenantKind.AGENCY, None, slug="bench-agency")
        spaces = [create_tenant(f"Client {i}", TenantKind.WORKSPACE, None, parent=agency,
                                slug=f"client-{i}") for i in range(WORKSPACES)]
        owner = create_user(EMAIL, PASSWORD, name="Bench Owner")
        with scoped_to(agency.id):
            db.session.add(Membership(user_id=owner.id, role=Role.OWNER))
            db.session.flush()
        db.session.commit()
        with scoped_to(agency.id, user_id=owner.id):
            _key, token = create_key(access_to(Principal(owner), agency), "bench", None)
            db.session.commit()
        ids: dict[str, Any] = {"agency": agency.id, "workspace": spaces[0].id, "token": token,
                               "others": [s.id for s in spaces[1:]], "owner": owner.id}
        for space in spaces[:2]:  # the big one, and the one templates are made from
            with scoped_to(space.id, user_id=owner.id):
                found = _made_by_hand(access_to(Principal(owner), space))
                db.session.commit()
            ids.setdefault("agent_id", found["agent_id"])
    engine = create_engine(bench.admin_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        ids.update(_rows(conn, ids["workspace"], RUNS, WORKFLOWS, ids["owner"]))
        for other in ids["others"]:
            _rows(conn, other, OTHER_RUNS, 2, ids["owner"], audit_events=20)
    engine.dispose()
    with bench.app.app_context():
        _after_rows(ids)
    return ids


def _made_by_hand(access: Any) -> dict[str, Any]:
    """Agents and connections, through the services."""
    from overture.connectors import connections
    from overture.orchestration.agents import service

    agents = [service.create_agent(f"agent {i}" if i else "triage", agent_config(
        f"agent {i}" if i else "triage")) for i in range(AGENTS)]
    for i in range(CONNECTIONS // 2):
        connections.create(access, connector_key="demo_crm", name=f"CRM {i}")
        connections.create_placeholder(access, connector_key="github", name=f"GitHub {i}")
    connections.create(access, connector_key="imap", name="Inbox", credential_fields={
        "host": "imap.example.com", "username": "ops", "password": "bench imap password"})
    return {"agent_id": agents[0].id}


def _after_rows(ids: dict[str, Any]) -> None:
    """Schedules and polling subscriptions over the workflows, and the agency's
    templates (snapshots of the second, small workspace)."""
    from overture.connectors.models import Connection
    from overture.orchestration import scheduler, triggers, workflows
    from overture.orchestration.templates import service as templates
    from overture.platform.db import db, scoped_to
    from overture.tenants.access import Principal, access_to
    from overture.tenants.models import Tenant, User

    owner = db.session.get(User, ids["owner"])
    with scoped_to(ids["workspace"], user_id=owner.id):
        flows = workflows.list_workflows(None, 200).items
        inbox = db.session.scalars(select(Connection).where(Connection.name == "Inbox")).one()
        for i in range(SCHEDULES):
            scheduler.create_schedule(flows[i], f"{i % 60} 9 * * 1-5", "Europe/Paris")
        for flow in flows[:SUBSCRIPTIONS]:
            triggers.create_subscription(flow, inbox.id, "new_email")
        db.session.commit()
    agency = db.session.get(Tenant, ids["agency"])
    with scoped_to(agency.id, user_id=owner.id):
        access = access_to(Principal(owner), agency)
        for i in range(TEMPLATES):
            templates.create_template(access, ids["others"][0], f"Template {i}")
        db.session.commit()


def _rows(conn: Any, tenant_id: uuid.UUID, runs: int, workflows: int, user_id: uuid.UUID,
          audit_events: int = AUDIT_EVENTS) -> dict[str, Any]:
    from overture.billing.usage import UsageEvent
    from overture.orchestration.agents.models import Agent
    from overture.orchestration.models import (
        Approval,
        Run,
        StepRun,
        Workflow,
        WorkflowVersion,
    )

    now = datetime.now(UTC)
    rand = random.Random(str(tenant_id))
    agent_id = conn.execute(select(Agent.id).where(Agent.tenant_id == tenant_id,
                                                   Agent.name == "triage")).scalar()
    if agent_id is None:
        agent_id = uuid.uuid4()
        conn.execute(insert(Agent.__table__), [{"id": agent_id, "tenant_id": tenant_id,
                                                "name": "triage", "description": ""}])
    flows = [{"id": uuid.uuid4(), "tenant_id": tenant_id, "name": f"workflow {i}",
              "description": "", "draft": {}, "webhook_token": uuid.uuid4().hex,
              "updated_at": now - timedelta(minutes=i)} for i in range(workflows)]
    conn.execute(insert(Workflow.__table__), flows)
    definition = {"steps": [{"id": "triage", "type": "agent", "agent": "triage", "next": "act"},
                            {"id": "act", "type": "transform", "output": 1}]}
    versions = [[{"id": uuid.uuid4(), "tenant_id": tenant_id, "workflow_id": f["id"],
                  "number": n, "definition": definition, "pins": {}}
                 for n in range(1, VERSIONS + 1)] for f in flows]
    conn.execute(insert(WorkflowVersion.__table__), [v for vs in versions for v in vs])
    for flow, vs in zip(flows, versions, strict=True):
        conn.execute(update(Workflow.__table__).where(Workflow.id == flow["id"])
                     .values(current_version_id=vs[-1]["id"]))
    run_rows, step_rows, usage_rows, approval_rows = [], [], [], []
    failed_run = None
    for i in range(runs):
        flow = i % workflows
        created = now - timedelta(seconds=rand.uniform(0, 30 * 86400))
        status = rand.choices(["succeeded", "failed", "running", "cancelled"],
                              [80, 10, 5, 5])[0]
        code = rand.choices(CODES, [30, 30, 30, 10])[0]
        error = {"code": code, "step": "act", "message": f"run {i} failed"} \
            if status == "failed" else None
        done = created + timedelta(seconds=rand.uniform(0.1, 5))
        run_id = id_at(created, rand)
        failed_run = failed_run or (run_id if status == "failed" else None)
        run_rows.append({"id": run_id, "tenant_id": tenant_id, "workflow_id": flows[flow]["id"],
                         "version_id": versions[flow][i % VERSIONS]["id"], "status": status,
                         "trigger": "api", "input": {"n": i}, "error": error,
                         "started_by_id": user_id if i % 10 == 0 else None,
                         "created_at": created, "started_at": created,
                         "finished_at": None if status == "running" else done,
                         "tokens": 120, "cost": Decimal("0.0012")})
        for n, (step_id, step_type) in enumerate((("triage", "agent"), ("act", "transform"))):
            step_run_id = id_at(created + timedelta(milliseconds=n), rand)
            step_status, step_error = "succeeded", None
            if status == "failed" and step_id == "act":
                step_status, step_error = "failed", {"code": code, "message": "failed"}
            elif status == "running" and step_id == "act":
                # Waiting on a person (the first APPROVALS), else queued and lost.
                step_status = "waiting" if len(approval_rows) < APPROVALS else "queued"
                if step_status == "waiting":
                    approval_rows.append(_approval(tenant_id, run_id, step_run_id, now, i))
            step_rows.append({"id": step_run_id, "tenant_id": tenant_id, "run_id": run_id,
                              "step_id": step_id, "step_type": step_type,
                              "created_at": created, "status": step_status,
                              "enqueued_at": created,
                              "started_at": None if step_status == "queued" else created,
                              "finished_at": done if step_status in ("succeeded", "failed")
                              else None, "error": step_error, "input": {"n": i},
                              "output": {"status": "ok", "confidence": rand.random()}})
        for metric, quantity in (("agent_invocations", 1), ("llm_input_tokens", 100),
                                 ("llm_output_tokens", 20), ("llm_cost", "0.0012")):
            usage_rows.append({"id": id_at(done, rand), "tenant_id": tenant_id,
                               "metric": metric, "quantity": Decimal(str(quantity)),
                               "run_id": run_id, "workflow_id": flows[flow]["id"],
                               "step_id": "triage", "agent_id": agent_id, "created_at": done})
    conn.execute(insert(Run.__table__), run_rows)
    conn.execute(insert(StepRun.__table__), step_rows)
    conn.execute(insert(UsageEvent.__table__), usage_rows)
    if approval_rows:
        conn.execute(insert(Approval.__table__), approval_rows)
    _audit(conn, tenant_id, user_id, audit_events, now, rand)
    return {"workflow_id": flows[0]["id"], "failed_run_id": failed_run}


def _approval(tenant_id: uuid.UUID, run_id: uuid.UUID, step_run_id: uuid.UUID,
              now: datetime, i: int) -> dict[str, Any]:
    return {"id": id_at(now, random.Random(i)), "tenant_id": tenant_id, "run_id": run_id,
            "step_run_id": step_run_id, "status": "pending", "link_nonce": uuid.uuid4().hex,
            "prompt": f"Refund {i} EUR?", "data": {"amount": i, "order": str(4000 + i)},
            "editable_fields": ["amount"], "assignee_role": "admin" if i % 2 else None,
            "timeout_action": "reject", "deadline_at": now + timedelta(hours=i % 48 + 1)}


def _audit(conn: Any, tenant_id: uuid.UUID, user_id: uuid.UUID, count: int, now: datetime,
           rand: random.Random) -> None:
    """`count` events continuing the tenant's chain (valid hashes), over 30 days."""
    from overture.platform.audit import GENESIS, AuditEvent, AuditHead, chain_hash

    head = conn.execute(select(AuditHead.last_seq, AuditHead.last_hash)
                        .where(AuditHead.tenant_id == tenant_id)).first()
    seq, prev = head if head is not None else (0, GENESIS)
    actions = ["run.started", "workflow.published", "agent.updated", "member.invited",
               "credential.created", "run.cancelled", "approval.decided"]
    start = now - timedelta(days=30)
    rows = []
    for i in range(count):
        seq += 1
        at = start + timedelta(seconds=i * 30 * 86400 / max(count, 1))
        event = AuditEvent(
            id=id_at(at, rand), tenant_id=tenant_id, seq=seq, occurred_at=at,
            actor_type="user", actor_id=str(user_id), actor_label=EMAIL,
            action=rand.choice(actions), target_type="run", target_id=str(uuid.uuid4()),
            request_id=uuid.uuid4().hex, ip="127.0.0.1", user_agent="bench",
            details={"n": i})
        event.prev_hash = prev
        event.hash = prev = chain_hash(prev, event)
        rows.append({c.key: getattr(event, c.key) for c in AuditEvent.__table__.columns
                     if c.key != "created_at"} | {"created_at": event.occurred_at})
    if rows:
        conn.execute(insert(AuditEvent.__table__), rows)
    if head is None:
        conn.execute(insert(AuditHead.__table__), [{"id": uuid.uuid4(), "tenant_id": tenant_id,
                                                    "last_seq": seq, "last_hash": prev}])
    else:
        conn.execute(update(AuditHead.__table__).where(AuditHead.tenant_id == tenant_id)
                     .values(last_seq=seq, last_hash=prev))
