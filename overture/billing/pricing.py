"""Price a period's usage with a price book into invoice lines. Pure, Decimal only.

    invoice = price(book, "USD", base_fee, usage)   # usage: {(meter, dimension): quantity}

Every line's amount is computed exactly and rounded once, to the currency's minor unit
(ROUND_HALF_UP); the total is the sum of the rounded lines, so an invoice always adds
up to the cent and two views of the same lines (an agency's margin, a client's draft
invoice) can never disagree.

`usage` holds each counter's quantity for the period per dimension, and each gauge's
level at the period's end (see `pricebook` for what is priced how). `base_fee=None`
leaves the base fee out and `included=False` ignores included quantities: an agency's
cost of one client is its usage at the wholesale rates, the plan's fee and allowances
being the agency's, once a month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from overture.billing.meters import INPUT_TOKENS, MODEL_COST, OUTPUT_TOKENS, meter
from overture.billing.pricebook import (
    MODEL_CURRENCY,
    MeterPrice,
    ModelRate,
    PriceBook,
    Tier,
    minor_unit,
)

Usage = Mapping[tuple[str, str], Decimal]
MTOK = Decimal(1_000_000)
HUNDRED = Decimal(100)
BASE_FEE = "base_fee"


@dataclass(frozen=True)
class TierPart:
    """The units one tier priced: those above `since` up to `up_to` (None: no end)."""

    since: Decimal
    up_to: Decimal | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # exact, not rounded


@dataclass(frozen=True)
class InvoiceLine:
    meter: str  # or "base_fee"
    dimension: str
    description: str
    quantity: Decimal
    included: Decimal
    billable: Decimal
    unit_price: Decimal | None  # per unit; None when priced through tiers
    amount: Decimal  # rounded to the currency's minor unit
    tiers: tuple[TierPart, ...] = ()
    markup_percent: Decimal | None = None  # cost-plus model lines


@dataclass(frozen=True)
class Invoice:
    currency: str
    lines: tuple[InvoiceLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), round_money(Decimal(0), self.currency))


def round_money(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


def graduated(billable: Decimal, tiers: tuple[Tier, ...]) -> tuple[TierPart, ...]:
    """The billable quantity cut into the tiers, lowest first; only tiers it reaches."""
    parts, since, left = [], Decimal(0), billable
    for tier in tiers:
        if left <= 0:
            break
        taken = left if tier.up_to is None else min(left, tier.up_to - since)
        parts.append(TierPart(since, tier.up_to, taken, tier.unit_price,
                              taken * tier.unit_price))
        left -= taken
        since = tier.up_to if tier.up_to is not None else since + taken
    return tuple(parts)


def meter_line(name: str, quantity: Decimal, price: MeterPrice, currency: str,
               included: bool = True) -> InvoiceLine:
    allowance = price.included if included else Decimal(0)
    billable = max(Decimal(0), quantity - allowance)
    if price.tiers:
        parts = graduated(billable, price.tiers)
        exact = sum((p.amount for p in parts), Decimal(0))
        return InvoiceLine(name, "", meter(name).label, quantity, allowance, billable, None,
                           round_money(exact, currency), parts)
    return InvoiceLine(name, "", meter(name).label, quantity, allowance, billable,
                       price.unit_price, round_money(billable * price.unit_price, currency))


def cost_plus_line(dimension: str, cost: Decimal, markup: Decimal,
                   currency: str) -> InvoiceLine:
    factor = 1 + markup / HUNDRED
    return InvoiceLine(MODEL_COST, dimension, f"Model usage, {dimension or 'unnamed'}", cost,
                       Decimal(0), cost, factor, round_money(cost * factor, currency),
                       markup_percent=markup)


def rate_lines(dimension: str, tokens_in: Decimal, tokens_out: Decimal, rate: ModelRate,
               currency: str) -> list[InvoiceLine]:
    lines = []
    for name, tokens, per_mtok, what in (
            (INPUT_TOKENS, tokens_in, rate.input_per_mtok, "input"),
            (OUTPUT_TOKENS, tokens_out, rate.output_per_mtok, "output")):
        if tokens:
            unit = per_mtok / MTOK
            lines.append(InvoiceLine(name, dimension, f"{dimension}, {what} tokens", tokens,
                                     Decimal(0), tokens, unit,
                                     round_money(tokens * unit, currency)))
    return lines


def model_lines(book: PriceBook, usage: Usage, currency: str) -> list[InvoiceLine]:
    """Per provider:model, as the book's `models` says."""
    pricing = book.models
    if pricing.mode == "none":
        return []
    per_model: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for (name, dimension), quantity in usage.items():
        if name in (MODEL_COST, INPUT_TOKENS, OUTPUT_TOKENS):
            per_model[dimension][name] += quantity
    lines: list[InvoiceLine] = []
    for dimension, sums in sorted(per_model.items()):
        rate = pricing.rates.get(dimension) if pricing.mode == "rate_card" else None
        if rate is not None:
            lines += rate_lines(dimension, sums[INPUT_TOKENS], sums[OUTPUT_TOKENS], rate,
                                currency)
        elif sums[MODEL_COST] and currency == MODEL_CURRENCY:
            lines.append(cost_plus_line(dimension, sums[MODEL_COST], pricing.markup_percent,
                                        currency))
    return lines


def price(book: PriceBook, currency: str, base_fee: Decimal | None, usage: Usage,
          included: bool = True) -> Invoice:
    """The invoice: the base fee (unless none), each priced meter used, model usage."""
    lines: list[InvoiceLine] = []
    if base_fee:  # None (an agency's cost of a client) or no fee: no line
        lines.append(InvoiceLine(BASE_FEE, "", "Monthly base fee", Decimal(1), Decimal(0),
                                 Decimal(1), base_fee, round_money(base_fee, currency)))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (name, _), quantity in usage.items():
        totals[name] += quantity
    for name, meter_price in book.meters.items():
        if totals.get(name):
            lines.append(meter_line(name, totals[name], meter_price, currency, included))
    lines += model_lines(book, usage, currency)
    return Invoice(currency, tuple(lines))
