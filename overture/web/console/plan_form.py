"""The plan form: a price book as a table (a row per meter, a row per rate-card model),
read into the fields the plans service takes, and the service's refusals put back
beside the cell they are about.

Form names follow the API's field paths (`price_book.meters.steps.unit_price`), so a
refusal names its cell; tiers are one cell per meter written `1000: 0.01, 5000: 0.005,
above: 0.001` (units up to 1000 at 0.01, and so on; `above` is the last, open tier).
Rate-card rows are `rate-<i>-model`, `rate-<i>-input`, `rate-<i>-output`.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.datastructures import MultiDict

from overture.billing import meters, pricebook
from overture.platform.errors import ValidationFailed

BOOK = "price_book"
PRICED = tuple(m for m in meters.CATALOGUE if m.name not in pricebook.MODEL_METERS)
BLANK_RATES = 3  # empty rate-card rows offered below the filled ones
OPEN = ("above", "*", "rest")
TIER_HINT = "up to: unit price, ..., above: unit price"


def meter_key(name: str, part: str) -> str:
    return f"{BOOK}.meters.{name}.{part}"


def blank() -> dict[str, Any]:
    return {"name": "", "currency": "USD", "base_fee": "0", "webhook_rate_ceiling": "",
            "mode": "cost_plus",
            "markup_percent": "0", "meters": {m.name: {} for m in PRICED},
            "rates": [{"model": "", "input": "", "output": ""}] * BLANK_RATES}


def of_plan(plan: Any) -> dict[str, Any]:
    """The form's values for a saved plan."""
    book = plan.price_book or {}
    models = book.get("models", {})
    rows = [{"model": model, "input": rate["input_per_mtok"], "output": rate["output_per_mtok"]}
            for model, rate in models.get("rates", {}).items()]
    form = {"name": plan.name, "currency": plan.currency,
            "base_fee": pricebook.plain(plan.base_fee), "mode": models.get("mode", "cost_plus"),
            "webhook_rate_ceiling": "" if plan.webhook_rate_ceiling is None
            else str(plan.webhook_rate_ceiling),
            "markup_percent": models.get("markup_percent", "0"), "meters": {},
            "rates": rows + [{"model": "", "input": "", "output": ""}] * BLANK_RATES}
    for m in PRICED:
        spec = book.get("meters", {}).get(m.name)
        form["meters"][m.name] = {} if spec is None else {
            "unit_price": spec.get("unit_price", ""), "included": spec.get("included", ""),
            "tiers": tiers_text(spec.get("tiers", []))}
    return form


def tiers_text(tiers: list[dict[str, Any]]) -> str:
    return ", ".join(f"{t['up_to'] if t['up_to'] is not None else 'above'}: {t['unit_price']}"
                     for t in tiers)


def read(data: MultiDict[str, str]) -> dict[str, Any]:
    """The posted form's values, as typed (for showing the form again)."""
    count = data.get("rate_rows", "")
    rows = [{part: data.get(f"rate-{i}-{part}", "").strip() for part in ("model", "input",
                                                                          "output")}
            for i in range(min(int(count), pricebook.MAX_RATES) if count.isdigit() else 0)]
    return {"name": data.get("name", ""), "currency": data.get("currency", "USD"),
            "base_fee": data.get("base_fee", "").strip(), "mode": data.get("mode", "cost_plus"),
            "webhook_rate_ceiling": data.get("webhook_rate_ceiling", "").strip(),
            "markup_percent": data.get("markup_percent", "").strip(), "rates": rows,
            "meters": {m.name: {part: data.get(meter_key(m.name, part), "").strip()
                                for part in ("unit_price", "included", "tiers")}
                       for m in PRICED}}


def fields(form: dict[str, Any]) -> dict[str, Any]:
    """The plans service's fields for the form's values; ValidationFailed names a cell."""
    book_meters = {}
    for name, cells in form["meters"].items():
        if not any(cells.values()):
            continue  # a row left empty: the meter is not priced
        spec: dict[str, Any] = {"included": cells.get("included") or "0"}
        if cells.get("tiers"):
            spec["tiers"] = parse_tiers(meter_key(name, "tiers"), cells["tiers"])
        else:
            spec["unit_price"] = cells.get("unit_price") or "0"
        book_meters[name] = spec
    models: dict[str, Any] = {"mode": form["mode"],
                              "markup_percent": form["markup_percent"] or "0"}
    if form["mode"] == "rate_card":
        models["rates"] = {row["model"]: {"input_per_mtok": row["input"] or "0",
                                          "output_per_mtok": row["output"] or "0"}
                           for row in form["rates"] if row["model"]}
    return {"name": form["name"], "currency": form["currency"],
            "base_fee": form["base_fee"] or "0",
            "webhook_rate_ceiling": form.get("webhook_rate_ceiling") or None,
            BOOK: {"meters": book_meters, "models": models}}


def parse_tiers(name: str, text: str) -> list[dict[str, Any]]:
    tiers = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        bound, colon, price = part.partition(":")
        if not colon:
            raise ValidationFailed.field(name, f"write each tier as {TIER_HINT}")
        bound = bound.strip()
        tiers.append({"up_to": None if bound.lower() in OPEN else bound,
                      "unit_price": price.strip()})
    return tiers


_RATE = re.compile(rf"^{BOOK}\.models\.rates\.(?P<model>.+)\.(?P<part>input|output)_per_mtok$")


def cell_of(field: str, form: dict[str, Any]) -> str:
    """The form cell an error's field path belongs to."""
    field = re.sub(r"\.tiers\[\d+\].*$", ".tiers", field)
    match = _RATE.match(field)
    if match:
        for i, row in enumerate(form["rates"]):
            if row["model"] == match["model"]:
                return f"rate-{i}-{match['part']}"
    if field.startswith(f"{BOOK}.models.rates."):
        model = field.removeprefix(f"{BOOK}.models.rates.")
        for i, row in enumerate(form["rates"]):
            if row["model"] == model:
                return f"rate-{i}-model"
    return field.removeprefix(f"{BOOK}.models.")
