"""Usage and budget alerts: a branded mail to a tenant's owners and admins when it has
used a share of a limit (80%, 100%, ...), at most once per tenant, meter, threshold
and calendar month (UTC).

The caller (where usage is checked against a plan's quota or a budget) calls
`send_usage_alert` or `send_budget_alert` in the transaction of the fact it reports:
the dedup row and the outbox rows are written there, so a rolled-back fact sends
nothing, and the mail leaves once it commits. Two checks racing for the same alert
meet at the unique key: one writes it, the other learns it was sent (False).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Integer, Numeric, String, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform import mail, page_links
from overture.platform.db import TenantOwned, db, in_tenant, utcnow
from overture.platform.errors import ValidationFailed
from overture.tenants import domains, members
from overture.tenants.events import outbox
from overture.tenants.models import Tenant
from overture.tenants.roles import Role

BUDGET = "budget"  # the meter name a budget's alerts are kept under
RECIPIENT_ROLES = (Role.OWNER, Role.ADMIN)


class UsageAlert(TenantOwned, db.Model):
    """An alert sent: the key that keeps it from being sent twice."""

    __tablename__ = "usage_alerts"
    __table_args__ = (UniqueConstraint("tenant_id", "meter", "threshold_percent", "month"),)

    meter: Mapped[str] = mapped_column(String(60))
    threshold_percent: Mapped[int] = mapped_column(Integer)
    month: Mapped[str] = mapped_column(String(7))  # "2026-12"
    used: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    limit_value: Mapped[Decimal] = mapped_column(Numeric(20, 6))


def send_usage_alert(tenant_id: uuid.UUID, meter: str, threshold_percent: int,
                     used: Decimal | int | float, limit: Decimal | int | float, *,
                     meter_label: str | None = None, now: datetime | None = None) -> bool:
    """Queue the alert "the tenant has used `threshold_percent`% of its `meter`" to its
    owners and admins, unless it went out this month already; True when this call
    queued it. The caller commits."""
    return _alert("usage_alert", tenant_id, meter, threshold_percent, used, limit, now, {
        "meter": meter_label or meter.replace("_", " "),
        "used": _number(used), "limit": _number(limit)})


def send_budget_alert(tenant_id: uuid.UUID, threshold_percent: int,
                      spent: Decimal | int | float, budget: Decimal | int | float,
                      currency: str = "USD", *, now: datetime | None = None) -> bool:
    """As `send_usage_alert`, for a spending budget (kept under the meter `budget`); a
    threshold crossed is also the outbound event `budget.threshold`."""
    queued = _alert("budget_alert", tenant_id, BUDGET, threshold_percent, spent, budget, now,
                    {"used": _money(spent, currency), "limit": _money(budget, currency)})
    if queued:
        outbox.emit("budget.threshold", {
            "threshold_percent": threshold_percent, "spent": str(spent),
            "budget": str(budget), "currency": currency,
            "month": (now or utcnow()).strftime("%Y-%m")}, tenant_id=tenant_id, now=now)
    return queued


def _alert(template: str, tenant_id: uuid.UUID, meter: str, threshold: int,
           used: Decimal | int | float, limit: Decimal | int | float,
           now: datetime | None, shown: dict[str, str]) -> bool:
    _check(meter, threshold)
    moment = now or utcnow()
    month = moment.strftime("%Y-%m")
    try:
        with in_tenant(tenant_id), db.session.begin_nested():
            db.session.add(UsageAlert(tenant_id=tenant_id, meter=meter,
                                      threshold_percent=threshold, month=month,
                                      used=Decimal(str(used)), limit_value=Decimal(str(limit))))
            db.session.flush()
    except IntegrityError:
        return False  # sent this month already (or a moment ago, by another check)
    tenant = db.session.get(Tenant, tenant_id)
    link = domains.public_base_url(tenant_id) + page_links.path("usage")
    for user in members.people_holding(tenant_id, RECIPIENT_ROLES):
        mail.queue_mail(user.email, template, {
            **shown, "name": user.name, "workspace": tenant.name if tenant else "",
            "threshold": threshold, "month": moment.strftime("%B %Y"), "link": link,
        }, tenant_id=tenant_id)
    return True


def _check(meter: str, threshold: int) -> None:
    if not meter or len(meter) > 60:
        raise ValidationFailed.field("meter", "name the meter (at most 60 characters)")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or \
            not 1 <= threshold <= 1000:
        raise ValidationFailed.field("threshold_percent", "a whole percentage, 1 to 1000")


def _number(value: Decimal | int | float) -> str:
    amount = Decimal(str(value))
    if amount == amount.to_integral_value():
        return f"{int(amount):,}"
    return f"{amount.normalize():,f}"


def _money(value: Decimal | int | float, currency: str) -> str:
    return f"{Decimal(str(value)).quantize(Decimal('0.01')):,} {currency}"
