"""A tenant's billing standing: past due after a failed payment, restricted once the
grace period is over, lifted by a payment; each change audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from overture.billing import standing
from overture.platform.audit import AuditEvent
from overture.platform.db import db, in_tenant

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def actions(tenant_id):
    with in_tenant(tenant_id):
        return [e.action for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("billing.%"))
            .order_by(AuditEvent.seq))]


def test_failed_payment_restricts_after_grace_and_payment_lifts_it(world):
    tenant = world.tenants["a"]
    assert not standing.restricted(tenant.id, T0)
    standing.payment_failed(tenant.id, T0, "in_1")
    standing.payment_failed(tenant.id, T0 + timedelta(days=3), "in_1")  # no restart
    db.session.commit()
    assert not standing.restricted(tenant.id, T0 + timedelta(days=6, hours=23))
    assert standing.restricted(tenant.id, T0 + timedelta(days=7))
    shown = standing.standing(tenant.id, T0 + timedelta(days=8))
    assert shown.status == "past_due" and shown.restricted_from == T0 + timedelta(days=7)

    standing.payment_succeeded(tenant.id, T0 + timedelta(days=8), "in_1")
    standing.payment_failed(tenant.id, T0 + timedelta(days=2), "in_1")  # late, stale
    db.session.commit()
    assert not standing.restricted(tenant.id, T0 + timedelta(days=9))
    assert actions(tenant.id) == ["billing.past_due", "billing.good_standing"]


def test_grace_is_the_installations_setting(app, world):
    tenant = world.tenants["a"]
    settings = app.extensions["overture.settings"]
    app.extensions["overture.settings"] = replace(settings, payment_grace_days=0)
    try:
        standing.payment_failed(tenant.id, T0)
        db.session.commit()
        assert standing.restricted(tenant.id, T0)
    finally:
        app.extensions["overture.settings"] = settings
