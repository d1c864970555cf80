"""Which Stripe accounts bill a tenant, and the customers and Billing Meters Overture
keeps there, made lazily and idempotently.

- The platform's account (`STRIPE_API_KEY`) bills each agency for everything the
  agency and its client workspaces use (wholesale): one customer per agency.
- An agency's own account (its Stripe page) bills each of its client workspaces for
  what that workspace uses (retail): one customer per workspace.

So a workspace's usage is reported twice, once to each account, under each account's
customer; an agency's once. Each account has one Billing Meter per billed meter of the
catalogue (`overture_<meter>`, summed, customers mapped by `stripe_customer_id`).
Knowledge storage is a level, not a sum of events: it is not reported (a plan prices
it from the roll-ups).

A customer or meter is created with an idempotency key derived from what it stands
for, so a retry after a lost answer (within Stripe's 24 hours) creates nothing twice;
meters are looked up by event name before one is created.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from overture.billing import stripe_api
from overture.billing.meters import CATALOGUE, Meter
from overture.billing.stripe_api import Account
from overture.billing.stripe_models import StripeAccount, StripeCustomer, StripeLink, StripeMeter
from overture.platform.db import PLATFORM_TENANT_ID, db, in_tenant, utcnow
from overture.tenants import vault
from overture.tenants.models import Tenant, TenantKind

BILLED: tuple[Meter, ...] = tuple(m for m in CATALOGUE if m.kind != "gauge")
BILLED_NAMES = frozenset(m.name for m in BILLED)
KEY_PURPOSE = "reporting usage to the agency's Stripe account"


def event_name(meter: str) -> str:
    return f"overture_{meter}"


@dataclass(frozen=True)
class Target:
    """One account a tenant's usage is reported to, and whose customer it counts for."""

    owner_id: uuid.UUID
    billed_id: uuid.UUID


# --------------------------------------------------------------------------- accounts


def platform_key() -> str | None:
    return stripe_api.settings().stripe_api_key


def agency_account_row(agency_id: uuid.UUID) -> StripeAccount | None:
    with db.session.no_autoflush, in_tenant(agency_id):
        return db.session.scalars(select(StripeAccount).where(
            StripeAccount.tenant_id == agency_id)).one_or_none()


def targets(tenant: Tenant) -> list[Target]:
    """The accounts the tenant's usage goes to (see the module's docstring)."""
    found: list[Target] = []
    agency = tenant if tenant.kind == TenantKind.AGENCY else (
        tenant.parent if tenant.kind == TenantKind.WORKSPACE else None)
    if agency is None:
        return found
    if platform_key():
        found.append(Target(PLATFORM_TENANT_ID, agency.id))
    if tenant.kind == TenantKind.WORKSPACE and agency_account_row(agency.id) is not None:
        found.append(Target(agency.id, tenant.id))
    return found


def account(owner_id: uuid.UUID) -> Account | None:
    """How to reach the owner's account; None when it has none (or its key is gone).
    Opening an agency's key records its use in the agency's audit log and commits."""
    key = platform_key()
    if owner_id == PLATFORM_TENANT_ID:
        return Account(owner_id, key) if key else None
    row = agency_account_row(owner_id)
    if row is None:
        return None
    if row.mode == "connect":
        return Account(owner_id, key, row.connect_account_id) if key else None
    if row.credential_id is None:
        return None
    with in_tenant(owner_id):
        secret = str(vault.use_credential(row.credential_id, KEY_PURPOSE).get("api_key") or "")
    return Account(owner_id, secret) if secret else None


# --------------------------------------------------------------------------- meters


def meters(acct: Account) -> dict[str, StripeMeter]:
    """The account's Billing Meters, one per billed meter, made where missing."""
    with in_tenant(acct.owner_id):
        kept = {m.meter: m for m in db.session.scalars(select(StripeMeter))}
        missing = [m for m in BILLED if m.name not in kept]
        if missing:
            kept |= _make_meters(acct, missing)
            db.session.commit()
        return kept


def _make_meters(acct: Account, missing: list[Meter]) -> dict[str, StripeMeter]:
    api = stripe_api.client(acct)
    existing = {m.event_name: m.id for m in api.v1.billing.meters.list(
        {"status": "active", "limit": 100}, acct.options()).auto_paging_iter()}
    made: dict[str, StripeMeter] = {}
    for meter in missing:
        name = event_name(meter.name)
        meter_id = existing.get(name)
        if meter_id is None:
            meter_id = api.v1.billing.meters.create({
                "display_name": meter.label, "event_name": name,
                "default_aggregation": {"formula": "sum"},
                "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
                "value_settings": {"event_payload_key": "value"},
            }, acct.options(f"overture-meter-{acct.owner_id}-{meter.name}")).id
        row = StripeMeter(tenant_id=acct.owner_id, meter=meter.name, event_name=name,
                          stripe_meter_id=meter_id)
        db.session.add(row)
        made[meter.name] = row
    return made


# --------------------------------------------------------------------------- customers


def customer_row(billed_id: uuid.UUID, owner_id: uuid.UUID) -> StripeCustomer | None:
    with db.session.no_autoflush, in_tenant(billed_id):
        return db.session.scalars(select(StripeCustomer).where(
            StripeCustomer.owner_id == owner_id)).one_or_none()


def customer(acct: Account, billed_id: uuid.UUID) -> str:
    """The billed tenant's customer id in the account, created on first need (and
    committed with its route for webhooks)."""
    found = customer_row(billed_id, acct.owner_id)
    if found is not None:
        return found.customer_id
    tenant = db.session.get(Tenant, billed_id)
    name = tenant.name if tenant is not None else str(billed_id)
    made = stripe_api.client(acct).v1.customers.create(
        {"name": name, "metadata": {"overture_tenant_id": str(billed_id)}},
        acct.options(f"overture-customer-{acct.owner_id}-{billed_id}"))
    with in_tenant(billed_id):
        db.session.add(StripeCustomer(tenant_id=billed_id, owner_id=acct.owner_id,
                                      customer_id=made.id, updated_at=utcnow()))
        link(made.id, "customer", billed_id, acct.owner_id)
        db.session.commit()
    return str(made.id)


def link(stripe_id: str, kind: str, tenant_id: uuid.UUID, owner_id: uuid.UUID) -> None:
    """Route webhooks about `stripe_id` to the tenant (kept when it exists)."""
    if db.session.get(StripeLink, stripe_id) is None:
        db.session.add(StripeLink(stripe_id=stripe_id, kind=kind, routes_to=tenant_id,
                                  owner_id=owner_id))


def probe(acct: Account) -> None:
    """A cheap call that proves the key (and the Connect account) answer: one meter."""
    stripe_api.client(acct).v1.billing.meters.list({"limit": 1}, acct.options())

