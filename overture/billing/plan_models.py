"""Plans and billing accounts: who is billed, at which plan, by whom.

A plan belongs to the tenant that defines it (`tenant_id`): the platform tenant's plans
are wholesale plans for agencies, an agency's are retail plans for its clients. It is
read and edited in its owner's scope only.

A billing account belongs to the billed tenant (`tenant_id`, one each): an agency's
names a platform plan and `billed_by` the platform; a workspace's names one of its
agency's plans and `billed_by` the agency. So a tenant reads its own account in its
own scope, and an agency its clients' accounts in each client's scope (one round trip:
`platform.tenant_reads`); the plan an account names is then read in the scope of
`billed_by`, its owner. The foreign key keeps a plan in use from being deleted (the
database checks it whatever the scopes).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db, utcnow


class Plan(TenantOwned, db.Model):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    base_fee: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    price_book: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)  # +1 at each edit (audited)
    # The most calls a minute a webhook of a tenant billed at the plan may take (None:
    # the installation's ceiling only). Not priced: changing it makes no new version.
    webhook_rate_ceiling: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BillingAccount(TenantOwned, db.Model):
    __tablename__ = "billing_accounts"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("plans.id", ondelete="RESTRICT"), index=True)
    billed_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    since: Mapped[datetime] = mapped_column(default=utcnow)
