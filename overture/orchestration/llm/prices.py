"""Per-model prices (per million tokens), editable by the platform admin.

`model_prices` is a platform table, not tenant-owned: one price list for the whole
installation. `DEFAULT_PRICES` seeds it and answers for models without a row; a row
the admin edits wins over the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Numeric, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import IdMixin, db, utcnow
from overture.platform.errors import ValidationFailed

MTOK = Decimal(1_000_000)

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


def set_price(provider: str, model: str, input_per_mtok: Decimal | str | float,
              output_per_mtok: Decimal | str | float) -> ModelPrice:
    """Create or change one model's price (a platform-admin act; the caller checks
    the role, audits and commits)."""
    inp, out = Decimal(str(input_per_mtok)), Decimal(str(output_per_mtok))
    for field, value in (("input_per_mtok", inp), ("output_per_mtok", out)):
        if not value.is_finite() or value < 0:
            raise ValidationFailed.field(field, "must be a non-negative number")
    provider, model = provider.strip(), model.strip()
    if not provider or not model:
        raise ValidationFailed.field("model", "provider and model are required")
    row = db.session.execute(select(ModelPrice).where(
        ModelPrice.provider == provider, ModelPrice.model == model)).scalar_one_or_none()
    if row is None:
        row = ModelPrice(provider=provider, model=model)
        db.session.add(row)
    row.input_per_mtok, row.output_per_mtok = inp, out
    row.updated_at = utcnow()
    return row


def price_for(provider: str, model: str) -> Price | None:
    """The price of `model` at `provider`: the table's row, else the default, else the
    fallback provider's; None when nobody set one (a self-hosted model, say)."""
    for p in (provider, FALLBACK_PROVIDER.get(provider)):
        if p is None:
            continue
        row = db.session.execute(select(ModelPrice).where(
            ModelPrice.provider == p, ModelPrice.model == model)).scalar_one_or_none()
        if row is not None:
            return Price(row.input_per_mtok, row.output_per_mtok)
        if (p, model) in DEFAULT_PRICES:
            inp, out = DEFAULT_PRICES[(p, model)]
            return Price(Decimal(inp), Decimal(out))
    return None


def cost_of(provider: str, model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
    price = price_for(provider, model)
    return None if price is None else price.cost(input_tokens, output_tokens)
