"""Budget holds in the embedded mode (SQLite, `-k billing`): a call holds on the
month's counter, what it cost shows as used once its usage is recorded with the hold
settled, a retried call takes its own hold again rather than a second one, and at the
budget the next call and the next run are refused."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from overture.billing import budgets, enforce, usage
from overture.billing.meters import MODEL_COST
from overture.billing.policy_cache import forget
from overture.platform.db import db, scoped_to
from overture.platform.errors import BudgetExceeded, QuotaExceeded


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory) -> Iterator[Any]:
    from overture.platform import migrate
    from overture.platform.config import load_settings
    from overture.tenants.lifecycle import create_tenant
    from overture.tenants.models import TenantKind
    from overture.web.app import create_app

    folder = tmp_path_factory.mktemp("sqlite-budgets")
    settings = load_settings({"OVERTURE_INSTANCE_PATH": str(folder), "OVERTURE_ENV": "test"})
    migrate.upgrade(settings)
    app = create_app(settings)
    with app.app_context():
        tenant = create_tenant("Solo", TenantKind.WORKSPACE, None, slug="solo")
        db.session.commit()
        app.config["tenant_id"] = tenant.id
        yield app
        db.session.remove()


def call(tenant_id: Any, key: str, cost: str) -> None:
    """One model call under the budget: hold, call, record its usage with the hold."""
    assert enforce.hold(tenant_id, MODEL_COST, Decimal("1.50"), key, wait=0)
    enforce.complete(tenant_id, key, Decimal(cost))
    with scoped_to(tenant_id):
        usage.record([usage.Entry(MODEL_COST, Decimal(cost), "openai:gpt-4o")])
        enforce.settle([key])
        db.session.commit()


def test_billing_budget_holds_on_sqlite(sqlite_app):
    tenant_id = sqlite_app.config["tenant_id"]
    with scoped_to(tenant_id):
        budgets.replace(budgets.Settings(budget=Decimal("2.00")))
        db.session.commit()
    forget(tenant_id)

    call(tenant_id, "step-1:model:0", "1.00")
    assert enforce.hold(tenant_id, MODEL_COST, Decimal("1.50"), "step-2:model:0", wait=0)
    # the step is retried before it recorded anything: the same hold, not a second one
    assert enforce.hold(tenant_id, MODEL_COST, Decimal("1.50"), "step-2:model:0", wait=0)
    enforce.complete(tenant_id, "step-2:model:0", Decimal("1.00"))
    with scoped_to(tenant_id):
        usage.record([usage.Entry(MODEL_COST, Decimal("1.00"), "openai:gpt-4o")])
        enforce.settle(["step-2:model:0"])
        db.session.commit()

    with pytest.raises(BudgetExceeded) as refused:
        enforce.hold(tenant_id, MODEL_COST, Decimal("1.50"), "step-3:model:0", wait=0)
    assert (refused.value.extra["used"], refused.value.extra["limit"]) == ("2.00", "2.00")
    with scoped_to(tenant_id), pytest.raises(BudgetExceeded):
        enforce.admit_run(tenant_id)  # any workflow: the workspace's budget is spent


def test_billing_a_cap_on_runs_is_taken_under_the_counters_lock_on_sqlite(sqlite_app):
    from overture.billing.meters import RUNS_STARTED

    tenant_id = sqlite_app.config["tenant_id"]
    with scoped_to(tenant_id):
        budgets.replace(budgets.Settings(caps=(budgets.Limit(RUNS_STARTED, Decimal(2)),)))
        db.session.commit()
    forget(tenant_id)
    for _ in range(2):
        with scoped_to(tenant_id):
            enforce.admit_run(tenant_id)
            usage.record([usage.Entry(RUNS_STARTED, Decimal(1))])
            db.session.commit()
    with scoped_to(tenant_id), pytest.raises(QuotaExceeded):
        enforce.admit_run(tenant_id)
    db.session.rollback()


def test_billing_a_cap_on_steps_lets_exactly_its_limit_start_on_sqlite(sqlite_app):
    from overture.billing import step_caps
    from overture.billing.meters import STEPS

    tenant_id = sqlite_app.config["tenant_id"]
    with scoped_to(tenant_id):
        budgets.replace(budgets.Settings(caps=(budgets.Limit(STEPS, Decimal(3)),)))
        db.session.commit()
    caps = step_caps.capped(tenant_id, None)
    for _ in range(3):
        step_caps.admit(tenant_id, caps)
    with pytest.raises(QuotaExceeded) as refused:
        step_caps.admit(tenant_id, caps)
    assert (refused.value.extra["meter"], refused.value.extra["used"]) == ("steps", "3")
