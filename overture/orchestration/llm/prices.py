"""Per-model prices (per million tokens), editable by the platform admin.

`model_prices` is a platform table, not tenant-owned: one price list for the whole
installation. `DEFAULT_PRICES` seeds it and answers for models without a row; a row
the admin edits wins over the default. A model with neither (a self-hosted one, say)
has no price: calls to it record tokens but no cost.

Cost is computed per call from the price in force at that moment, so a change applies
to later calls only. `change_price` and `remove_price` are the platform admin's acts:
they validate, write and audit in the platform tenant's chain; the caller commits.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Numeric, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from overture.orchestration.llm.registry import PROVIDERS
from overture.platform import audit
from overture.platform.db import PLATFORM_TENANT_ID, IdMixin, db, utcnow
from overture.platform.errors import NotFound, ValidationFailed

MTOK = Decimal(1_000_000)
# A sane ceiling, far above any public list price, that catches a misplaced decimal
# point (USD per million tokens); the column holds six decimals.
MAX_PER_MTOK = Decimal(10_000)
PLACES = 6
MODEL_MAX = 120
# The providers a price can apply to: the offline ones (`local`, `scripted`) never cost.
PRICED_PROVIDERS = tuple(sorted(PROVIDERS))

# (provider, model) -> (input USD per 1M tokens, output USD per 1M tokens)
DEFAULT_PRICES: dict[tuple[str, str], tuple[str, str]] = {
    ("openai", "gpt-4o"): ("2.50", "10.00"),
    ("openai", "gpt-4o-mini"): ("0.15", "0.60"),
    ("openai", "gpt-4.1"): ("2.00", "8.00"),
    ("openai", "gpt-4.1-mini"): ("0.40", "1.60"),
    ("openai", "gpt-4.1-nano"): ("0.10", "0.40"),
    ("anthropic", "claude-opus-4-1"): ("15.00", "75.00"),
    ("anthropic", "claude-sonnet-4-5"): ("3.00", "15.00"),
    ("anthropic", "claude-haiku-4-5"): ("1.00", "5.00"),
}
# Azure deployments of OpenAI models price like OpenAI unless the admin says otherwise.
FALLBACK_PROVIDER = {"azure_openai": "openai"}


class ModelPrice(IdMixin, db.Model):
    __tablename__ = "model_prices"
    __table_args__ = (UniqueConstraint("provider", "model"),)

    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(120))
    input_per_mtok: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    output_per_mtok: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


@dataclass(frozen=True)
class Price:
    input_per_mtok: Decimal
    output_per_mtok: Decimal

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (Decimal(input_tokens) * self.input_per_mtok
                + Decimal(output_tokens) * self.output_per_mtok) / MTOK


def seed_default_prices() -> int:
    """Insert a row for each default the table lacks (never overwrites an edit).
    Returns how many were added; the caller commits."""
    have = {(p, m) for p, m in db.session.execute(select(ModelPrice.provider, ModelPrice.model))}
    added = 0
    for (provider, model), (inp, out) in DEFAULT_PRICES.items():
        if (provider, model) not in have:
            db.session.add(ModelPrice(provider=provider, model=model,
                                      input_per_mtok=Decimal(inp), output_per_mtok=Decimal(out)))
            added += 1
    return added


def parse_amount(field: str, value: object) -> Decimal:
    """USD per million tokens: a number from 0 to MAX_PER_MTOK with at most six decimals."""
    if isinstance(value, bool) or value is None:
        raise ValidationFailed.field(field, "must be a number (USD per million tokens)")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed.field(
            field, f"must be a number (USD per million tokens), not {str(value)[:40]!r}"
        ) from None
    if not amount.is_finite() or amount < 0:
        raise ValidationFailed.field(field, "must be a non-negative number")
    if amount > MAX_PER_MTOK:
        raise ValidationFailed.field(
            field, f"must be at most {MAX_PER_MTOK} (USD per million tokens)")
    if amount != amount.quantize(Decimal(1).scaleb(-PLACES)):
        raise ValidationFailed.field(field, f"at most {PLACES} decimal places")
    return amount + 0  # no negative zero


def check_model_key(provider: str, model: str) -> tuple[str, str]:
    """A (provider, model) a price can be set for, stripped."""
    provider, model = (provider or "").strip(), (model or "").strip()
    if provider not in PROVIDERS:
        raise ValidationFailed.field("provider", "one of " + ", ".join(PRICED_PROVIDERS)
                                     + " (the offline providers never cost)")
    if not model:
        raise ValidationFailed.field("model", "the model name is required")
    if len(model) > MODEL_MAX:
        raise ValidationFailed.field("model", f"at most {MODEL_MAX} characters")
    if any(unicodedata.category(c).startswith("C") for c in model):
        raise ValidationFailed.field("model", "no control characters")
    return provider, model


def _row(provider: str, model: str) -> ModelPrice | None:
    return db.session.execute(select(ModelPrice).where(
        ModelPrice.provider == provider, ModelPrice.model == model)).scalar_one_or_none()


def set_price(provider: str, model: str, input_per_mtok: Decimal | str | float,
              output_per_mtok: Decimal | str | float) -> ModelPrice:
    """Create or change one model's price (unaudited: the platform admin's act is
    `change_price`; the caller commits)."""
    inp = parse_amount("input_per_mtok", input_per_mtok)
    out = parse_amount("output_per_mtok", output_per_mtok)
    provider, model = check_model_key(provider, model)
    row = _row(provider, model)
    if row is None:
        row = ModelPrice(provider=provider, model=model)
        db.session.add(row)
    row.input_per_mtok, row.output_per_mtok = inp, out
    row.updated_at = utcnow()
    return row


@dataclass(frozen=True)
class PriceEntry:
    """A price as the platform admin sees it: where it comes from, too.

    `source` is `table` (a row: seeded or edited), `default` (DEFAULT_PRICES, no row)
    or `fallback` (no price of its own: FALLBACK_PROVIDER's, as `via`)."""

    provider: str
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    source: str
    updated_at: datetime | None = None
    via: str | None = None

    @property
    def price(self) -> Price:
        return Price(self.input_per_mtok, self.output_per_mtok)

    def details(self) -> dict[str, Any]:
        """For audit events: exact decimal strings."""
        body = {"input_per_mtok": plain(self.input_per_mtok),
                "output_per_mtok": plain(self.output_per_mtok), "source": self.source}
        if self.via:
            body["via"] = self.via
        return body


def plain(amount: Decimal) -> str:
    """2.500000 -> '2.5', 10.000000 -> '10': exact, without trailing zeros."""
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _entry_of_row(row: ModelPrice, source: str = "table") -> PriceEntry:
    return PriceEntry(row.provider, row.model, row.input_per_mtok, row.output_per_mtok,
                      source, row.updated_at)


def _default_entry(provider: str, model: str) -> PriceEntry | None:
    if (provider, model) not in DEFAULT_PRICES:
        return None
    inp, out = DEFAULT_PRICES[(provider, model)]
    return PriceEntry(provider, model, Decimal(inp), Decimal(out), "default")


def effective_price(provider: str, model: str) -> PriceEntry | None:
    """The price calls to `model` at `provider` are charged now: the table's row, else
    the default, else the fallback provider's; None when nobody set one."""
    for p in (provider, FALLBACK_PROVIDER.get(provider)):
        if p is None:
            continue
        row = _row(p, model)
        entry = _entry_of_row(row) if row is not None else _default_entry(p, model)
        if entry is None:
            continue
        if p != provider:
            return PriceEntry(provider, model, entry.input_per_mtok, entry.output_per_mtok,
                              "fallback", entry.updated_at, via=p)
        return entry
    return None


def price_for(provider: str, model: str) -> Price | None:
    """The price of `model` at `provider`: the table's row, else the default, else the
    fallback provider's; None when nobody set one (a self-hosted model, say)."""
    entry = effective_price(provider, model)
    return None if entry is None else entry.price


def list_prices(provider: str | None = None) -> list[PriceEntry]:
    """Every priced model (rows, and the defaults no row overrides), by provider and
    model. A model not listed has no price of its own (see FALLBACK_PROVIDER)."""
    stmt = select(ModelPrice)
    if provider:
        stmt = stmt.where(ModelPrice.provider == provider)
    entries = {(r.provider, r.model): _entry_of_row(r) for r in db.session.scalars(stmt)}
    for p, m in DEFAULT_PRICES:
        if (p, m) not in entries and (provider is None or p == provider):
            entries[(p, m)] = _default_entry(p, m)  # type: ignore[assignment]
    return [entries[k] for k in sorted(entries)]


def _audited(action: str, row_id: object, provider: str, model: str,
             old: PriceEntry | None, new: PriceEntry | None,
             actor: audit.Actor | None) -> None:
    audit.record(action, target_type="model_price", target_id=row_id,
                 tenant_id=PLATFORM_TENANT_ID, actor=actor,
                 details={"provider": provider, "model": model,
                          "old": old.details() if old else None,
                          "new": new.details() if new else None})


def change_price(provider: str, model: str, input_per_mtok: object, output_per_mtok: object,
                 actor: audit.Actor | None = None) -> tuple[PriceEntry, bool]:
    """The platform admin sets one model's price (created or updated), audited as
    `model_price.set` with the old and new prices in the platform tenant's chain.
    Returns the price now in force and whether a row was created; the caller commits."""
    inp = parse_amount("input_per_mtok", input_per_mtok)
    out = parse_amount("output_per_mtok", output_per_mtok)
    provider, model = check_model_key(provider, model)
    old = effective_price(provider, model)
    created = _row(provider, model) is None
    row = set_price(provider, model, inp, out)
    db.session.flush()
    new = _entry_of_row(row)
    _audited("model_price.set", row.id, provider, model, old, new, actor)
    return new, created


def remove_price(provider: str, model: str,
                 actor: audit.Actor | None = None) -> tuple[PriceEntry, PriceEntry | None]:
    """The platform admin deletes a model's row, audited as `model_price.deleted`.
    Later calls pay the default (or the fallback provider's) price if there is one,
    else nothing. Returns (the deleted price, the price now in force); the caller
    commits. NotFound when the table holds no row for it."""
    provider, model = check_model_key(provider, model)
    row = _row(provider, model)
    if row is None:
        hint = ("; its default price applies and cannot be deleted (set it to 0 to "
                "charge nothing)") if (provider, model) in DEFAULT_PRICES else ""
        raise NotFound(f"no price set for {provider}/{model}{hint}")
    old, row_id = _entry_of_row(row), row.id
    db.session.delete(row)
    db.session.flush()
    new = effective_price(provider, model)
    _audited("model_price.deleted", row_id, provider, model, old, new, actor)
    return old, new


def cost_of(provider: str, model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
    price = price_for(provider, model)
    return None if price is None else price.cost(input_tokens, output_tokens)
