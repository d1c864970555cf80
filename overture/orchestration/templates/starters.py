"""What starts a template's workflows, installed in a workspace: webhooks (on or off,
signed or not), cron schedules and polling triggers.

`provision` creates them all. `upgrade` applies what changed between the template
version the workspace is on and the new one, and only that, so the client's own choices
stand unless the template changed that very thing: a schedule they paused, an interval
they tuned, a webhook they turned off, a trigger they deleted. What the new version
dropped is removed (a schedule the template no longer has must stop firing). `undo`
reverses, newest first, what `upgrade` recorded.

Nothing secret travels. Each workspace's webhook has its own URL (a workflow gets a
fresh token); a signed webhook gets a fresh signing secret that nobody has seen, so
calls are refused until the client rotates it and hands the new one to its sender (the
same protection as in the source, never a copy of its secret). A trigger whose
connection still waits for credentials stays off. A roll-out turns signatures on but
never off: the agency cannot see which senders a client has set up, and removing a
check nobody asked to remove would open the webhook to anyone holding its URL.

An item is known by what makes it that item: a webhook by its workflow, a trigger by
(workflow, connection, trigger), a schedule by (workflow, cron, zone, input). The
other fields (on/off, interval, signed) are updated in place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from overture.connectors import connections as connection_service
from overture.connectors.models import Connection, ConnectionStatus
from overture.orchestration import scheduler, triggers, workflows
from overture.orchestration.models import Workflow
from overture.orchestration.templates.snapshot import (
    every,
    schedule_item,
    trigger_item,
    webhook_item,
)
from overture.tenants import credentials
from overture.tenants.access import Access

Key = tuple[str, ...]
Op = dict[str, Any]  # {"kind", "key", "op": created|deleted|updated, "item" | "before"}

KINDS = ("webhooks", "triggers", "schedules")
FIELDS = {"webhooks": ("enabled", "signed"), "triggers": ("interval_seconds", "enabled"),
          "schedules": ("enabled",)}


def key_of(kind: str, item: dict[str, Any]) -> Key:
    if kind == "webhooks":
        return (item["workflow"],)
    if kind == "triggers":
        return item["workflow"], item["connection"], item["trigger_key"]
    return (item["workflow"], item["cron"], item["timezone"],
            json.dumps(item.get("input"), sort_keys=True))


@dataclass
class Place:
    """The workspace in scope, by name: its workflows and connections."""

    access: Access
    flows: dict[str, Workflow]
    conns: dict[str, Connection]

    @classmethod
    def here(cls, access: Access) -> Place:
        flows = every(lambda c, n: workflows.list_workflows(c, n))
        conns = every(lambda c, n: connection_service.list_connections(access, c, n))
        return cls(access, {w.name: w for w in flows}, {c.name: c for c in conns})

    def rows(self, kind: str) -> dict[Key, Any]:
        """The workspace's items of `kind`, by key."""
        if kind == "webhooks":
            return {(name,): flow for name, flow in self.flows.items()}
        names = {flow.id: name for name, flow in self.flows.items()}
        if kind == "triggers":
            conns = {conn.id: name for name, conn in self.conns.items()}
            return {key_of(kind, trigger_item(s, names[s.workflow_id],
                                              conns[s.connection_id])): s
                    for s in every(lambda c, n: triggers.list_subscriptions(c, n))
                    if s.workflow_id in names and s.connection_id in conns}
        return {key_of(kind, schedule_item(s, names[s.workflow_id])): s
                for s in every(lambda c, n: scheduler.list_schedules(c, n))
                if s.workflow_id in names}

    def item(self, kind: str, row: Any) -> dict[str, Any]:
        if kind == "webhooks":
            return webhook_item(row)
        names = {flow.id: name for name, flow in self.flows.items()}
        if kind == "triggers":
            conns = {conn.id: name for name, conn in self.conns.items()}
            return trigger_item(row, names[row.workflow_id], conns[row.connection_id])
        return schedule_item(row, names[row.workflow_id])

    def ready(self, connection: str) -> bool:
        return self.conns[connection].status != ConnectionStatus.PENDING


# --------------------------------------------------------------------------- provision


def provision(access: Access, snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Create every webhook setting, trigger and schedule of the snapshot; the signed
    webhooks, whose secret the client has to rotate and hand to the sender."""
    place = Place.here(access)
    for kind in KINDS:
        for item in snapshot.get(kind, []):
            if kind == "webhooks":
                _update(place, kind, place.rows(kind).get(key_of(kind, item)), item)
            else:
                _create(place, kind, item)
    return [{"workflow": name, "id": str(flow.id)} for name, flow in place.flows.items()
            if flow.webhook_credential_id is not None]


def _create(place: Place, kind: str, item: dict[str, Any]) -> bool:
    flow = place.flows.get(item["workflow"])
    if flow is None:
        return False  # its workflow is not in this workspace: nothing to start
    if kind == "triggers":
        if item["connection"] not in place.conns:
            return False
        triggers.create_subscription(
            flow, place.conns[item["connection"]].id, item["trigger_key"],
            item["interval_seconds"], enabled=bool(item.get("enabled", True))
            and place.ready(item["connection"]), created_by=place.access.principal.user.id)
        return True
    schedule = scheduler.create_schedule(flow, item["cron"], item["timezone"], item["input"])
    if not item.get("enabled", True):
        scheduler.update_schedule(schedule, enabled=False)
    return True


def _update(place: Place, kind: str, row: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """Set the given fields on an item; what they were before, for those it changed."""
    if row is None:
        return {}
    now = place.item(kind, row)
    before = {f: now[f] for f in FIELDS[kind] if f in fields and fields[f] != now[f]}
    if kind == "webhooks":
        if "enabled" in before:
            workflows.set_webhook_enabled(row, bool(fields["enabled"]))
        if before.get("signed") is False:
            workflows.new_webhook_secret(place.access, row)  # a secret nobody has seen
        elif before.get("signed") is True:
            before.pop("signed")  # never turned off by a roll-out (see above)
    elif kind == "triggers":
        on = fields.get("enabled")
        if on and not place.ready(place.item(kind, row)["connection"]):
            before.pop("enabled", None)  # stays off until its connection has credentials
            on = None
        if before:
            triggers.update_subscription(
                row, enabled=on if "enabled" in before else None,
                interval_seconds=fields["interval_seconds"]
                if "interval_seconds" in before else None)
    elif "enabled" in before:
        scheduler.update_schedule(row, enabled=bool(fields["enabled"]))
    return before


def _delete(kind: str, row: Any) -> None:
    if kind == "triggers":
        triggers.delete_subscription(row)
    else:
        scheduler.delete_schedule(row)


# --------------------------------------------------------------------------- upgrade


def upgrade(access: Access, old: dict[str, Any], new: dict[str, Any]) -> list[Op]:
    """Apply what changed from template snapshot `old` to `new`; the ops, to undo."""
    place = Place.here(access)
    ops: list[Op] = []
    for kind in KINDS:
        before = {key_of(kind, i): i for i in old.get(kind, [])}
        after = {key_of(kind, i): i for i in new.get(kind, [])}
        rows = place.rows(kind)
        for key in sorted(before.keys() - after.keys()):
            if kind != "webhooks" and key in rows:  # a workflow's webhook is never removed
                ops.append({"kind": kind, "key": list(key), "op": "deleted",
                            "item": place.item(kind, rows[key])})
                _delete(kind, rows[key])
        for key, item in after.items():
            row = rows.get(key)
            if key not in before:  # new in this version
                if row is None and kind != "webhooks":
                    if _create(place, kind, item):
                        ops.append({"kind": kind, "key": list(key), "op": "created"})
                    continue
                fields = {f: item[f] for f in FIELDS[kind] if f in item}
            elif row is None:
                continue  # the client removed it: their choice stands
            else:  # only what the template changed
                fields = {f: item[f] for f in FIELDS[kind]
                          if f in item and item[f] != before[key].get(f, item[f])}
            changed = _update(place, kind, row, fields)
            if changed:
                ops.append({"kind": kind, "key": list(key), "op": "updated",
                            "before": changed})
    return ops


# --------------------------------------------------------------------------- undo


def undo(access: Access, ops: list[Op]) -> None:
    """Reverse `upgrade`'s ops, newest first. An item the client has since removed or
    changed the identity of is left alone."""
    place = Place.here(access)
    for op in reversed(ops):
        kind, key = op["kind"], tuple(op["key"])
        row = place.rows(kind).get(key)
        if op["op"] == "created" and row is not None:
            _delete(kind, row)
        elif op["op"] == "deleted" and row is None:
            _create(place, kind, op["item"])
        elif op["op"] == "updated" and row is not None:
            before = dict(op["before"])
            if kind == "webhooks" and before.pop("signed", None) is False:
                _unsign(place.access, row)
            _update(place, kind, row, before)


def _unsign(access: Access, flow: Workflow) -> None:
    """Undo a roll-out that turned signatures on: back to unsigned, and the signing
    credential it made goes (a later "Require signatures" makes one of the same name)."""
    made = flow.webhook_credential_id
    if made is not None:
        workflows.set_webhook_credential(access, flow, None)
        credentials.delete(access, made)
