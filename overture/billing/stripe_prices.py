"""A plan as Stripe prices, exactly, or the reasons it cannot be. Pure.

One product per plan, and under it one price per item:

- `base_fee`: a flat monthly price (licensed, quantity 1), `unit_amount` in the
  currency's minor unit.
- `meter:<name>`: a metered monthly price on the account's Billing Meter of that meter.
  A plain unit price is `unit_amount_decimal` (minor units, up to 12 decimals, so sub-cent
  prices are exact); included units or tiers make it `tiered` + `graduated`: the
  included units are a first free tier (`up_to: included`, `unit_amount_decimal: 0`)
  and each of the plan's tiers, which count billable units, is shifted by them.
- `model:llm_cost`: model usage at cost plus markup. Meter events take whole numbers
  only, so `llm_cost` (USD, six decimals in the roll-ups) is reported in **micro-dollars**
  (`COST_SCALE`), and the price per micro-dollar is `(1 + markup/100) / 10^6` USD, i.e.
  `unit_amount_decimal = (1 + markup/100) * 10^-4` cents: cost * (1 + markup) exactly.

Stripe rounds each line once, to the minor unit, as the draft invoice does.

Not representable (`unsupported` says why; such a plan is not sent to Stripe and the
Overture draft invoice stays the source of truth): a rate card per `provider:model`
(Stripe's meters sum every model; a price cannot pick one model's tokens), a priced
gauge (knowledge storage is a level, not events), and fractional included units or tier
bounds (Stripe's `up_to` is a whole number).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from overture.billing.accounts import Terms
from overture.billing.meters import MODEL_COST
from overture.billing.pricebook import MeterPrice, minor_unit, plain
from overture.billing.stripe_sync import BILLED_NAMES

COST_SCALE = Decimal(1_000_000)  # llm_cost is reported in micro-dollars
BASE_FEE = "base_fee"
MODEL_ITEM = f"model:{MODEL_COST}"


@dataclass(frozen=True)
class PriceSpec:
    item: str  # base_fee | meter:<name> | model:llm_cost
    meter: str | None  # the catalogue meter a metered price counts
    params: dict[str, Any]  # prices.create, without `product`


def reported(meter: str, quantity: Decimal) -> Decimal:
    """The value a meter event carries for a quantity of the meter (whole numbers)."""
    return quantity * COST_SCALE if meter == MODEL_COST else quantity


def from_reported(meter: str, value: Decimal) -> Decimal:
    return value / COST_SCALE if meter == MODEL_COST else value


def unsupported(terms: Terms) -> list[str]:
    """Why Stripe cannot charge this plan exactly (empty: it can)."""
    found = []
    if terms.book.models.mode == "rate_card" and terms.book.models.rates:
        found.append("a rate card per provider:model: Stripe's token meters sum every "
                     "model, so a price cannot charge one model's tokens")
    for name, price in terms.book.meters.items():
        if name not in BILLED_NAMES:
            found.append(f"{name} is a level, not reported to Stripe as events")
        bounds = [price.included] + [t.up_to for t in price.tiers if t.up_to is not None]
        if any(b != b.to_integral_value() for b in bounds):
            found.append(f"{name}: Stripe's tiers need whole-number included units and "
                         "bounds")
    return found


def minor(amount: Decimal, currency: str) -> Decimal:
    return amount.scaleb(minor_unit(currency))


def specs(terms: Terms) -> list[PriceSpec]:
    """The plan's prices (call only when `unsupported` is empty)."""
    currency = terms.currency.lower()
    found = []
    if terms.base_fee:
        found.append(PriceSpec(BASE_FEE, None, {
            "currency": currency, "unit_amount": int(minor(terms.base_fee, terms.currency)),
            "recurring": {"interval": "month", "usage_type": "licensed"},
            "nickname": "Monthly base fee"}))
    for name, price in terms.book.meters.items():
        found.append(PriceSpec(f"meter:{name}", name, {
            "currency": currency, "recurring": _metered(), "nickname": name,
            **_meter_price(price, terms.currency)}))
    if terms.book.models.mode != "none":
        factor = 1 + terms.book.models.markup_percent / 100
        found.append(PriceSpec(MODEL_ITEM, MODEL_COST, {
            "currency": currency, "recurring": _metered(),
            "nickname": f"Model usage at cost + {plain(terms.book.models.markup_percent)} %",
            "unit_amount_decimal": plain(minor(factor, terms.currency) / COST_SCALE)}))
    return found


def _metered() -> dict[str, Any]:
    return {"interval": "month", "usage_type": "metered"}  # `meter` added at sync


def _meter_price(price: MeterPrice, currency: str) -> dict[str, Any]:
    if not price.included and not price.tiers:
        return {"unit_amount_decimal": plain(minor(price.unit_price, currency))}
    tiers: list[dict[str, Any]] = []
    if price.included:
        tiers.append({"up_to": int(price.included), "unit_amount_decimal": "0"})
    for tier in price.tiers or ():
        up_to = "inf" if tier.up_to is None else int(price.included + tier.up_to)
        tiers.append({"up_to": up_to,
                      "unit_amount_decimal": plain(minor(tier.unit_price, currency))})
    if not price.tiers:
        tiers.append({"up_to": "inf",
                      "unit_amount_decimal": plain(minor(price.unit_price, currency))})
    return {"billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": tiers}
