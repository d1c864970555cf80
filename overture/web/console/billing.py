"""Billing: the plan the tenant is billed at, its draft invoice for a month (the running
one by default) line by line, and for an agency each client's cost, price and margin
with their total. The same services as /api/v1/billing, with `billing.read`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import request

from overture.billing import accounts, invoices, periods, pricebook, pricing
from overture.billing.meters import INPUT_TOKENS, OUTPUT_TOKENS
from overture.platform.db import utcnow
from overture.tenants.models import TenantKind
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of
from overture.web.console.usage import _months, label, shown

READ = "billing.read"
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}

register_nav("Billing", "console.billing", READ, "billing")
register_nav("Plans", "console.plans", READ, "billing")  # (plans.py) next to Billing


def amount(value: Decimal | None, currency: str | None) -> str:
    """Money in its currency, to its minor unit: "$1,234.50", "1,234.500 KWD"."""
    if value is None:
        return "—"
    if currency in pricebook.CURRENCIES:
        value = pricing.round_money(Decimal(value), currency)
    text = f"{abs(value):,f}"
    sign = "-" if value < 0 else ""
    symbol = SYMBOLS.get(currency or "")
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency or ''}".strip()


def unit_price(line: pricing.InvoiceLine, currency: str) -> str:
    """The line's rate as people read it: per 1M tokens, + markup, per unit, tiers."""
    if line.meter == pricing.BASE_FEE:
        return "monthly"
    if line.markup_percent is not None:
        return f"cost + {line.markup_percent.normalize():f} %"
    if line.tiers:
        return "; ".join(f"{shown(line.meter, t.quantity)} at {t.unit_price.normalize():f}"
                         for t in line.tiers)
    if line.unit_price is None:
        return ""
    if line.meter in (INPUT_TOKENS, OUTPUT_TOKENS):
        return f"{(line.unit_price * pricing.MTOK).normalize():f} per 1M"
    return f"{line.unit_price.normalize():f} each"


@bp.get("/billing", endpoint="billing")
@page(READ)
def billing_page() -> Any:
    access = console_access()
    month = request.args.get("month", "").strip()
    context: dict[str, Any] = {"draft": None, "rebilling": None, "period": None}
    errors: FormErrors
    with form_errors({"month"}) as errors:
        period = periods.parse(month=month) if month else periods.month_of(utcnow())
        context.update(period=period, period_label=label(period))
        account = accounts.account_of(access.tenant.id)
        context["account"] = account
        if account is not None:
            context["draft"] = invoices.draft_invoice(access.tenant, period)
        if access.tenant.is_agency:
            context["rebilling"] = invoices.rebilling(access, period)
    return render("console/billing.html", status_of(errors), title="Billing", errors=errors,
                  month=month, months=_months(utcnow()), amount=amount, shown=shown,
                  unit_price=unit_price, defines=access.tenant.kind in (
                      TenantKind.PLATFORM, TenantKind.AGENCY),
                  **{"account": None, **context})

