"""A plan's price book: what each meter costs, and how model usage is charged. Pure.

Stored as JSON on the plan (exact decimal strings), read into frozen dataclasses:

    {"meters": {"steps": {"unit_price": "0.002", "included": "1000"},
                "action_calls": {"tiers": [{"up_to": "1000", "unit_price": "0.01"},
                                           {"up_to": null, "unit_price": "0.005"}]}},
     "models": {"mode": "cost_plus", "markup_percent": "30"}}

- A meter is priced on its period total (all dimensions): the first `included` units
  are free, the rest (the billable quantity) at `unit_price`, or through graduated
  `tiers` (each tier's units at its own price; the last tier has no `up_to`).
  A gauge (knowledge storage) is priced on its level at the period's end.
- Model usage (`models`) is priced per `provider:model`: `cost_plus` charges the
  provider's cost (the `llm_cost` meter, USD) plus `markup_percent`; `rate_card`
  charges input and output tokens at a price per million for the models listed, and
  the cost plus `markup_percent` for the others; `none` does not charge it. The token
  and cost meters are therefore not priced under `meters`.

`parse` checks a book and raises ValidationFailed naming the field (`price_book.meters.
steps.tiers[1].up_to`); `dump` gives the JSON back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from overture.billing.meters import BY_NAME, INPUT_TOKENS, MODEL_COST, OUTPUT_TOKENS
from overture.platform.errors import ValidationFailed

# ISO 4217 codes a plan may use, with their minor unit (decimal places of an amount).
CURRENCIES: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SEK": 2,
    "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "BRL": 2, "MXN": 2, "INR": 2, "SGD": 2,
    "HKD": 2, "ZAR": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3,
}
MODEL_CURRENCY = "USD"  # what `llm_cost` is counted in
MODEL_METERS = frozenset({MODEL_COST, INPUT_TOKENS, OUTPUT_TOKENS})
MODES = ("cost_plus", "rate_card", "none")
PRICE_PLACES = 12  # unit prices go down to fractions of a cent per token or byte
MAX_AMOUNT = Decimal(10) ** 12
MAX_MARKUP = Decimal(10_000)  # percent
MAX_TIERS = 20
MAX_RATES = 200
ROOT = "price_book"


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # of the billable quantity, inclusive; None: no end
    unit_price: Decimal


@dataclass(frozen=True)
class MeterPrice:
    unit_price: Decimal = Decimal(0)
    included: Decimal = Decimal(0)
    tiers: tuple[Tier, ...] = ()  # graduated; when given, unit_price is not used


@dataclass(frozen=True)
class ModelRate:
    input_per_mtok: Decimal
    output_per_mtok: Decimal


@dataclass(frozen=True)
class ModelPricing:
    mode: str = "cost_plus"
    markup_percent: Decimal = Decimal(0)
    rates: dict[str, ModelRate] = field(default_factory=dict)  # rate_card: per provider:model


@dataclass(frozen=True)
class PriceBook:
    meters: dict[str, MeterPrice] = field(default_factory=dict)
    models: ModelPricing = field(default_factory=ModelPricing)


def minor_unit(currency: str) -> int:
    return CURRENCIES[currency]


def check_currency(value: object, name: str = "currency") -> str:
    code = str(value or "").strip().upper()
    if code not in CURRENCIES:
        raise ValidationFailed.field(name, "an ISO 4217 code, one of "
                                           + ", ".join(sorted(CURRENCIES)))
    return code


def amount(name: str, value: object, places: int = PRICE_PLACES,
           limit: Decimal = MAX_AMOUNT) -> Decimal:
    """A non-negative decimal with at most `places` decimals; a number or a string."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise ValidationFailed.field(name, "must be a number")
    try:
        found = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed.field(name, f"must be a number, not {str(value)[:40]!r}") from None
    if not found.is_finite() or found < 0:
        raise ValidationFailed.field(name, "must be a non-negative number")
    if found > limit:
        raise ValidationFailed.field(name, f"must be at most {limit}")
    if found != found.quantize(Decimal(1).scaleb(-places)):
        raise ValidationFailed.field(name, f"at most {places} decimal places")
    return found + 0  # no negative zero


def _mapping(name: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed.field(name, "must be an object")
    return value


def _unknown(name: str, value: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(value) - known)
    if extra:
        raise ValidationFailed.field(f"{name}.{extra[0]}", "unknown field; known: "
                                     + ", ".join(sorted(known)))


def parse(value: object, currency: str = "USD") -> PriceBook:
    """The price book in `value` (JSON), checked; ValidationFailed names the field."""
    body = _mapping(ROOT, value)
    _unknown(ROOT, body, {"meters", "models"})
    meters = _mapping(f"{ROOT}.meters", body.get("meters"))
    book = {name: _meter(f"{ROOT}.meters.{name}", name, spec) for name, spec in meters.items()}
    return PriceBook(dict(sorted(book.items())), _models(body.get("models"), currency))


def _meter(name: str, meter: str, value: object) -> MeterPrice:
    if meter in MODEL_METERS:
        raise ValidationFailed.field(name, "model tokens and cost are priced under "
                                           f"{ROOT}.models")
    if meter not in BY_NAME:
        raise ValidationFailed.field(name, "not a meter; see GET /api/v1/usage/meters")
    spec = _mapping(name, value)
    _unknown(name, spec, {"unit_price", "included", "tiers"})
    tiers = _tiers(f"{name}.tiers", spec.get("tiers"))
    if tiers and spec.get("unit_price") not in (None, "", 0, "0"):
        raise ValidationFailed.field(f"{name}.unit_price", "give a unit price or tiers, "
                                                           "not both")
    return MeterPrice(amount(f"{name}.unit_price", spec.get("unit_price", 0)),
                      amount(f"{name}.included", spec.get("included", 0), places=6), tiers)


def _tiers(name: str, value: object) -> tuple[Tier, ...]:
    if value in (None, []):
        return ()
    if not isinstance(value, list) or len(value) > MAX_TIERS:
        raise ValidationFailed.field(name, f"a list of at most {MAX_TIERS} tiers")
    tiers, previous = [], Decimal(0)
    for i, spec in enumerate(value):
        where = f"{name}[{i}]"
        spec = _mapping(where, spec)
        _unknown(where, spec, {"up_to", "unit_price"})
        last = i == len(value) - 1
        up_to = spec.get("up_to")
        if up_to in (None, "") and not last:
            raise ValidationFailed.field(f"{where}.up_to", "only the last tier has no end")
        if up_to not in (None, "") and last:
            raise ValidationFailed.field(f"{where}.up_to", "the last tier has no end "
                                                           "(up_to: null)")
        end = None if up_to in (None, "") else amount(f"{where}.up_to", up_to, places=6)
        if end is not None and end <= previous:
            raise ValidationFailed.field(f"{where}.up_to", "must be above the tier before")
        tiers.append(Tier(end, amount(f"{where}.unit_price", spec.get("unit_price"))))
        previous = end if end is not None else previous
    return tuple(tiers)


def _models(value: object, currency: str) -> ModelPricing:
    name = f"{ROOT}.models"
    spec = _mapping(name, value)
    _unknown(name, spec, {"mode", "markup_percent", "rates"})
    mode = spec.get("mode", "cost_plus")
    if mode not in MODES:
        raise ValidationFailed.field(f"{name}.mode", "one of " + ", ".join(MODES))
    markup = amount(f"{name}.markup_percent", spec.get("markup_percent", 0), places=4,
                    limit=MAX_MARKUP)
    if mode == "cost_plus" and currency != MODEL_CURRENCY:
        raise ValidationFailed.field(f"{name}.mode", "model cost is counted in USD: a plan "
                                                     f"in {currency} prices models with a "
                                                     "rate_card")
    rates = _rates(f"{name}.rates", spec.get("rates")) if mode == "rate_card" else {}
    return ModelPricing(mode, markup, rates)


def _rates(name: str, value: object) -> dict[str, ModelRate]:
    spec = _mapping(name, value)
    if len(spec) > MAX_RATES:
        raise ValidationFailed.field(name, f"at most {MAX_RATES} models")
    rates = {}
    for model, rate in sorted(spec.items()):
        where = f"{name}.{model}"
        provider, _, model_name = model.partition(":")
        if not provider or not model_name or len(model) > 200 or not model.isprintable():
            raise ValidationFailed.field(where, "name a model as provider:model")
        rate = _mapping(where, rate)
        _unknown(where, rate, {"input_per_mtok", "output_per_mtok"})
        rates[model] = ModelRate(amount(f"{where}.input_per_mtok", rate.get("input_per_mtok")),
                                 amount(f"{where}.output_per_mtok", rate.get("output_per_mtok")))
    return rates


# --------------------------------------------------------------------------- JSON


def plain(value: Decimal) -> str:
    """An exact decimal without trailing zeros or an exponent: "0.002", "30"."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def dump(book: PriceBook) -> dict[str, Any]:
    meters = {}
    for name, price in book.meters.items():
        spec: dict[str, Any] = {"included": plain(price.included)}
        if price.tiers:
            spec["tiers"] = [{"up_to": None if t.up_to is None else plain(t.up_to),
                              "unit_price": plain(t.unit_price)} for t in price.tiers]
        else:
            spec["unit_price"] = plain(price.unit_price)
        meters[name] = spec
    models: dict[str, Any] = {"mode": book.models.mode,
                              "markup_percent": plain(book.models.markup_percent)}
    if book.models.mode == "rate_card":
        models["rates"] = {m: {"input_per_mtok": plain(r.input_per_mtok),
                               "output_per_mtok": plain(r.output_per_mtok)}
                           for m, r in book.models.rates.items()}
    return {"meters": meters, "models": models}
