"""Pricing (`-k billing`), pure: a price book turns a period's usage into invoice lines,
each rounded once to the currency's minor unit (half up), the total their sum; graduated
tiers add up; included quantities never go negative; model usage at cost plus a markup
or at a rate card; bad price books are refused naming the field; an agency's cost,
price and margin per client, and their totals, add up to the cent (hypothesis)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overture.billing import accounts, invoices, pricebook, pricing
from overture.platform.errors import ValidationFailed

D = Decimal
GPT, HAIKU = "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"


def book(**body):
    return pricebook.parse(body)


def test_billing_meter_lines_with_included_units_and_a_base_fee():
    plan = book(meters={"steps": {"unit_price": "0.002", "included": "1000"},
                        "runs_started": {"unit_price": "0.01"}})
    invoice = pricing.price(plan, "USD", D("49"), {("steps", ""): D(1500),
                                                   ("runs_started", ""): D(3),
                                                   ("action_calls", "slack"): D(9)})
    lines = {line.meter: line for line in invoice.lines}
    assert set(lines) == {"base_fee", "steps", "runs_started"}  # action calls: not priced
    assert (lines["steps"].included, lines["steps"].billable, lines["steps"].amount) == (
        D(1000), D(500), D("1.00"))
    assert lines["runs_started"].amount == D("0.03")
    assert lines["base_fee"].amount == D("49.00")
    assert invoice.total == D("50.03")


def test_billing_each_line_is_rounded_once_half_up_and_the_total_is_their_sum():
    plan = book(meters={"steps": {"unit_price": "0.005"}, "runs_started": {"unit_price": "0.005"}})
    invoice = pricing.price(plan, "USD", None, {("steps", ""): D(1), ("runs_started", ""): D(1)})
    # 0.005 each: each line rounds half up to 0.01; a sum rounded at the end would be 0.01
    assert [line.amount for line in invoice.lines] == [D("0.01"), D("0.01")]
    assert invoice.total == D("0.02")
    yen = pricing.price(book(meters={"steps": {"unit_price": "0.5"}}), "JPY", D(100),
                        {("steps", ""): D(3)})
    assert [line.amount for line in yen.lines] == [D(100), D(2)]  # 1.5 -> 2


def test_billing_graduated_tiers_price_each_band_at_its_own_rate():
    plan = book(meters={"action_calls": {"included": "100", "tiers": [
        {"up_to": "1000", "unit_price": "0.01"}, {"up_to": "5000", "unit_price": "0.005"},
        {"up_to": None, "unit_price": "0.001"}]}})
    invoice = pricing.price(plan, "USD", None, {("action_calls", "slack"): D(4000),
                                                ("action_calls", "jira"): D(3100)})
    (line,) = invoice.lines
    assert (line.quantity, line.billable, line.unit_price) == (D(7100), D(7000), None)
    assert [(p.since, p.up_to, p.quantity) for p in line.tiers] == [
        (D(0), D(1000), D(1000)), (D(1000), D(5000), D(4000)), (D(5000), None, D(2000))]
    assert line.amount == D("10.00") + D("20.00") + D("2.00")


def test_billing_model_usage_at_cost_plus_a_markup_and_at_a_rate_card():
    usage = {("llm_cost", GPT): D("1.234"), ("llm_input_tokens", GPT): D(2_000_000),
             ("llm_output_tokens", GPT): D(500_000), ("llm_cost", HAIKU): D("2")}
    plus = pricing.price(book(models={"mode": "cost_plus", "markup_percent": "30"}), "USD",
                         None, usage)
    assert [(li.dimension, li.amount) for li in plus.lines] == [(HAIKU, D("2.60")),
                                                                (GPT, D("1.60"))]  # 1.6042
    card = pricing.price(book(models={"mode": "rate_card", "markup_percent": "10", "rates": {
        GPT: {"input_per_mtok": "0.25", "output_per_mtok": "1"}}}), "USD", None, usage)
    assert [(li.meter, li.dimension, li.amount) for li in card.lines] == [
        ("llm_cost", HAIKU, D("2.20")),  # not on the card: cost plus 10 %
        ("llm_input_tokens", GPT, D("0.50")), ("llm_output_tokens", GPT, D("0.50"))]
    assert pricing.price(book(models={"mode": "none"}), "USD", None, usage).lines == ()


@pytest.mark.parametrize(("body", "field"), [
    ({"meters": {"nope": {"unit_price": "1"}}}, "price_book.meters.nope"),
    ({"meters": {"llm_cost": {"unit_price": "1"}}}, "price_book.meters.llm_cost"),
    ({"meters": {"steps": {"unit_price": "-1"}}}, "price_book.meters.steps.unit_price"),
    ({"meters": {"steps": {"unit_price": "abc"}}}, "price_book.meters.steps.unit_price"),
    ({"meters": {"steps": {"included": "1e400"}}}, "price_book.meters.steps.included"),
    ({"meters": {"steps": {"tiers": [{"up_to": "10", "unit_price": "1"},
                                     {"up_to": "5", "unit_price": "1"},
                                     {"up_to": None, "unit_price": "1"}]}}},
     "price_book.meters.steps.tiers[1].up_to"),
    ({"meters": {"steps": {"tiers": [{"up_to": "10", "unit_price": "1"}]}}},
     "price_book.meters.steps.tiers[0].up_to"),
    ({"models": {"mode": "free"}}, "price_book.models.mode"),
    ({"models": {"mode": "rate_card", "rates": {"gpt": {"input_per_mtok": "1",
                                                        "output_per_mtok": "1"}}}},
     "price_book.models.rates.gpt"),
    ({"models": {"mode": "rate_card", "rates": {"a:b\x00": {"input_per_mtok": "1",
                                                          "output_per_mtok": "1"}}}},
     "price_book.models.rates.a:b\x00"),
    ({"colour": "red"}, "price_book.colour"),
])
def test_billing_a_bad_price_book_is_refused_naming_the_field(body, field):
    with pytest.raises(ValidationFailed) as caught:
        pricebook.parse(body)
    assert [e["field"] for e in caught.value.errors] == [field]


def test_billing_model_cost_in_another_currency_needs_a_rate_card():
    with pytest.raises(ValidationFailed) as caught:
        pricebook.parse({"models": {"mode": "cost_plus"}}, "EUR")
    assert caught.value.errors[0]["field"] == "price_book.models.mode"


def test_billing_a_price_book_survives_its_json():
    plan = book(meters={"steps": {"unit_price": "0.00200", "included": "10"},
                        "embeddings": {"tiers": [{"up_to": "5", "unit_price": "1"},
                                                 {"up_to": None, "unit_price": "0.5"}]}},
                models={"mode": "rate_card", "markup_percent": "12.5",
                        "rates": {GPT: {"input_per_mtok": "0.3", "output_per_mtok": "1.2"}}})
    assert pricebook.parse(pricebook.dump(plan)) == plan
    assert pricebook.dump(plan)["meters"]["steps"] == {"included": "10", "unit_price": "0.002"}


# --------------------------------------------------------------------------- properties

amounts = st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False)
quantities = st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False)


@st.composite
def tier_lists(draw):
    ends = sorted(set(draw(st.lists(st.integers(1, 10**6), max_size=4))))
    prices = draw(st.lists(amounts, min_size=len(ends) + 1, max_size=len(ends) + 1))
    bounded = [pricebook.Tier(D(e), p) for e, p in zip(ends, prices, strict=False)]
    return (*bounded, pricebook.Tier(None, prices[-1]))


@settings(max_examples=200, deadline=None)
@given(quantity=quantities, included=quantities, tiers=tier_lists())
def test_billing_tiers_add_up_and_included_never_goes_negative(quantity, included, tiers):
    line = pricing.meter_line("steps", quantity, pricebook.MeterPrice(included=included,
                                                                      tiers=tiers), "USD")
    assert line.billable == max(D(0), quantity - included) >= 0
    assert sum((p.quantity for p in line.tiers), D(0)) == line.billable
    assert all(p.quantity > 0 for p in line.tiers)
    exact = sum((p.amount for p in line.tiers), D(0))
    assert line.amount == pricing.round_money(exact, "USD")
    assert abs(line.amount - exact) <= D("0.005")


@settings(max_examples=100, deadline=None)
@given(a=quantities, b=quantities, tiers=tier_lists())
def test_billing_using_more_never_costs_less(a, b, tiers):
    price = pricebook.MeterPrice(tiers=tiers)
    low, high = sorted((a, b))
    assert pricing.meter_line("steps", low, price, "USD").amount <= \
        pricing.meter_line("steps", high, price, "USD").amount


@settings(max_examples=200, deadline=None)
@given(fee=amounts.map(lambda a: a.quantize(D("0.01"))), steps=quantities, cost=quantities,
       unit=amounts, markup=st.decimals(min_value=0, max_value=500, places=2),
       currency=st.sampled_from(["USD", "JPY", "KWD"]))
def test_billing_an_invoice_is_its_rounded_lines(fee, steps, cost, unit, markup, currency):
    models = {"mode": "cost_plus", "markup_percent": str(markup)} if currency == "USD" \
        else {"mode": "none"}
    plan = pricebook.parse({"meters": {"steps": {"unit_price": str(unit)}}, "models": models},
                           currency)
    invoice = pricing.price(plan, currency, fee, {("steps", ""): steps, ("llm_cost", GPT): cost})
    places = pricebook.minor_unit(currency)
    assert all(line.amount.as_tuple().exponent == -places for line in invoice.lines)
    assert invoice.total == sum((line.amount for line in invoice.lines), D(0))
    assert all(line.amount >= 0 for line in invoice.lines)


# --------------------------------------------------------------------------- rebilling

def terms(name: str, fee: str, body: dict) -> accounts.Terms:
    return accounts.Terms(uuid.uuid4(), uuid.uuid4(), name, "USD", D(fee),
                          pricebook.parse(body), 1)


WHOLESALE = terms("Wholesale", "99", {"meters": {"steps": {"unit_price": "0.0007",
                                                           "included": "1000"}},
                                      "models": {"mode": "cost_plus"}})
usages = st.fixed_dictionaries({
    ("steps", ""): quantities, ("runs_started", ""): quantities,
    ("llm_cost", GPT): st.decimals(min_value=0, max_value=500, places=6),
    ("llm_cost", HAIKU): st.decimals(min_value=0, max_value=500, places=6)})


@settings(max_examples=100, deadline=None)
@given(clients=st.lists(st.tuples(usages, st.booleans()), min_size=1, max_size=6),
       markup=st.decimals(min_value=0, max_value=200, places=2),
       step_price=st.decimals(min_value=0, max_value=1, places=5))
def test_billing_cost_price_and_margin_always_add_up_to_the_cent(clients, markup, step_price):
    retail = terms("Retail", "19.99", {
        "meters": {"steps": {"unit_price": str(step_price)},
                   "runs_started": {"tiers": [{"up_to": "100", "unit_price": "0.01"},
                                              {"up_to": None, "unit_price": "0.0075"}]}},
        "models": {"mode": "cost_plus", "markup_percent": str(markup)}})
    bills = [invoices.bill(SimpleNamespace(id=i), usage, retail if planned else None, WHOLESALE)
             for i, (usage, planned) in enumerate(clients)]
    for b, (usage, planned) in zip(bills, clients, strict=True):
        assert b.cost == invoices.wholesale(WHOLESALE, usage).total
        assert b.price == (invoices.retail(retail, usage).total if planned else None)
        assert b.cost + b.margin == (b.price or 0)
        assert all(v.as_tuple().exponent == -2 for v in (b.cost, b.margin))
    view = invoices.totals(WHOLESALE, bills)
    assert view.cost + view.margin == view.price
    assert view.price == sum((b.price for b in bills if b.price is not None), D(0))
    assert view.currency == "USD"
