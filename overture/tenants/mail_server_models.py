"""A tenant's own SMTP server (tenant-owned, under row-level security).

The password is not here: `credential_id` names a vault credential (kind `basic`: its
username in the clear, its password sealed) that delivery opens for each message.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db, utcnow


class MailServer(TenantOwned, db.Model):
    __tablename__ = "mail_servers"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(16))  # starttls | tls | none
    from_address: Mapped[str] = mapped_column(String(254))
    credential_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # How deliveries through it went, as its settings page shows them.
    last_sent_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
