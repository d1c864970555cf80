"""What a workspace shows in its portal: one row per published workflow or agent."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db, utcnow


class Publication(TenantOwned, db.Model):
    """A workflow or an agent as the portal shows it. Unpublishing keeps the row (its
    label and visible steps): customers' past runs are still shown with them."""

    __tablename__ = "portal_publications"
    __table_args__ = (
        UniqueConstraint("tenant_id", "workflow_id"),
        UniqueConstraint("tenant_id", "agent_id"),
        CheckConstraint("(workflow_id IS NULL) <> (agent_id IS NULL)", name="one_target"),
    )

    workflow_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"))
    published: Mapped[bool] = mapped_column(default=False)
    label: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    # Step ids whose outputs a customer sees on their run (workflows only).
    visible_steps: Mapped[list[str]] = mapped_column(JSON, default=list)
    show_output: Mapped[bool] = mapped_column(default=False)  # the run's final output
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def kind(self) -> str:
        return "workflow" if self.workflow_id is not None else "agent"

    @property
    def target_id(self) -> uuid.UUID:
        target = self.workflow_id or self.agent_id
        assert target is not None  # the check constraint holds one
        return target
