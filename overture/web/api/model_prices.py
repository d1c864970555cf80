"""The installation's per-model LLM prices, for platform admins.

One price list for every tenant (a platform table): the cost of each model call is
computed from the price in force when the call is made, so a change applies to later
calls only. Every change is audited in the platform tenant's chain.
"""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import DateTime, Decimal, Dict, List, Nested, String
from apiflask.validators import OneOf, Range

from overture.orchestration.llm import prices
from overture.platform.db import db
from overture.platform.errors import NotFound
from overture.web.api import api
from overture.web.api.schemas import Strict
from overture.web.auth import require

TAGS = ["Model prices"]
PERMISSION = "prices.manage"
USD = "USD per million tokens"
UNPRICED_NOTE = (
    "A model that is not listed has no price: calls to it record their tokens "
    "(llm_input_tokens, llm_output_tokens) but no cost (llm_cost), and an agent's "
    "max_cost cannot stop it. Self-hosted models (vLLM, Ollama, LM Studio) are unpriced "
    "unless a price is set for them. "
    + "; ".join(f"{p} models without a price of their own use {f}'s price for the same "
                "model name" for p, f in prices.FALLBACK_PROVIDER.items())
    + ". A price change applies to later calls only.")


class ModelPriceOut(Schema):
    provider = String()
    model = String()
    input_per_mtok = String(metadata={"description": USD + ", as an exact decimal"})
    output_per_mtok = String(metadata={"description": USD + ", as an exact decimal"})
    source = String(metadata={"description": "`table` (set in the price table), `default` "
                                             "(built in, never edited) or `fallback` "
                                             "(another provider's price, see `via`)"})
    via = String(allow_none=True, metadata={"description": "the provider whose price a "
                                                           "`fallback` uses"})
    updated_at = DateTime(allow_none=True)


class ModelPriceList(Schema):
    items = List(Nested(ModelPriceOut))
    providers = List(String(), metadata={"description": "providers a price can be set for"})
    fallbacks = Dict(metadata={"description": "provider -> provider whose prices it uses "
                                              "for models it has no price for"})
    note = String(metadata={"description": "what happens to calls to unlisted models"})


class ModelPriceQuery(Strict):
    provider = String(load_default=None, validate=OneOf(prices.PRICED_PROVIDERS))


def _amount(description: str) -> Decimal:
    return Decimal(required=True, validate=Range(0, prices.MAX_PER_MTOK),
                   metadata={"description": f"{description}, {USD} (0 to "
                                            f"{prices.MAX_PER_MTOK}, at most "
                                            f"{prices.PLACES} decimals)"})


class ModelPriceSet(Strict):
    input_per_mtok = _amount("price of input (prompt) tokens")
    output_per_mtok = _amount("price of output (completion) tokens")


class ModelPriceDeleted(Schema):
    deleted = Nested(ModelPriceOut, metadata={"description": "the price that was removed"})
    effective = Nested(ModelPriceOut, allow_none=True, metadata={
        "description": "the price later calls pay now (a default or fallback), or null: "
                       "tokens but no cost"})


def view(entry: prices.PriceEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"provider": entry.provider, "model": entry.model,
            "input_per_mtok": prices.plain(entry.input_per_mtok),
            "output_per_mtok": prices.plain(entry.output_per_mtok),
            "source": entry.source, "via": entry.via, "updated_at": entry.updated_at}


@api.get("/model-prices")
@require(PERMISSION)
@api.input(ModelPriceQuery, location="query", arg_name="query")
@api.output(ModelPriceList)
@api.doc(tags=TAGS, summary="Every priced model (set in the table, or built-in defaults)",
         description=UNPRICED_NOTE)
def list_model_prices(query: dict[str, Any]) -> dict[str, Any]:
    return {"items": [view(e) for e in prices.list_prices(query["provider"])],
            "providers": list(prices.PRICED_PROVIDERS),
            "fallbacks": dict(prices.FALLBACK_PROVIDER), "note": UNPRICED_NOTE}


@api.get("/model-prices/<provider>/<path:model>")
@require(PERMISSION)
@api.output(ModelPriceOut)
@api.doc(tags=TAGS, summary="The price calls to one model pay now (404: none, tokens only)")
def get_model_price(provider: str, model: str) -> dict[str, Any] | None:
    provider, model = prices.check_model_key(provider, model)
    entry = prices.effective_price(provider, model)
    if entry is None:
        raise NotFound(f"{provider}/{model} has no price: calls to it record tokens but no "
                       "cost")
    return view(entry)


@api.put("/model-prices/<provider>/<path:model>")
@require(PERMISSION)
@api.input(ModelPriceSet, arg_name="body")
@api.output(ModelPriceOut)
@api.doc(tags=TAGS, summary="Set one model's price (201 when new); later calls pay it",
         responses={200: "updated", 201: "created"})
def set_model_price(provider: str, model: str,
                    body: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
    entry, created = prices.change_price(provider, model, body["input_per_mtok"],
                                         body["output_per_mtok"])
    db.session.commit()
    return view(entry), 201 if created else 200


@api.delete("/model-prices/<provider>/<path:model>")
@require(PERMISSION)
@api.output(ModelPriceDeleted)
@api.doc(tags=TAGS, summary="Remove one model's price from the table (404 when it has none)")
def delete_model_price(provider: str, model: str) -> dict[str, Any]:
    old, now = prices.remove_price(provider, model)
    db.session.commit()
    return {"deleted": view(old), "effective": view(now)}
