"""Templates, their immutable versions, the workspaces made from them, and roll-outs.

Every row here belongs to the agency (its tenant), never to a client workspace: the
agency's people read them, and RLS keeps one agency's templates from another's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db


class Template(TenantOwned, db.Model):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))


class TemplateVersion(TenantOwned, db.Model):
    """A frozen snapshot (see templates/snapshot.py). Nothing ever changes one."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "template_id", "number"),)

    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_workspace_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL"))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))


@event.listens_for(TemplateVersion, "before_update")
def _versions_are_frozen(mapper: Any, connection: Any, target: TemplateVersion) -> None:
    # Workspaces were provisioned from it and roll-outs name it: it must not move.
    raise RuntimeError("template versions are immutable: snapshot a new version instead")


class TemplateWorkspace(TenantOwned, db.Model):
    """A client workspace provisioned from a template, and the version it is on."""

    __tablename__ = "template_workspaces"
    __table_args__ = (UniqueConstraint("tenant_id", "workspace_id"),)

    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)


class RolloutStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # every chosen workspace took the version
    STOPPED = "stopped"  # a failure stopped it (a canary's, or any with stop_on_failure)
    FAILED = "failed"  # it went through every workspace; some failed
    ROLLED_BACK = "rolled_back"


class StepStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class Rollout(TenantOwned, db.Model):
    __tablename__ = "rollouts"

    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=RolloutStatus.RUNNING)
    stop_on_failure: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    finished_at: Mapped[datetime | None]
    rolled_back_at: Mapped[datetime | None]


class RolloutWorkspace(TenantOwned, db.Model):
    """One workspace's progress in a roll-out, and what it needs to be put back."""

    __tablename__ = "rollout_workspaces"
    __table_args__ = (UniqueConstraint("tenant_id", "rollout_id", "workspace_id"),)

    rollout_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    canary: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    from_version: Mapped[int | None] = mapped_column(Integer)
    # What applying changed, to undo it (see templates/install.py: Changes).
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    applied_at: Mapped[datetime | None]

    @property
    def notes(self) -> list[str]:
        """What the workspace's own edits made applying or undoing leave alone."""
        return list((self.changes or {}).get("notes", []))
