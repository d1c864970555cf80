"""`overture prices`: the model price table that usage cost is computed from."""

from __future__ import annotations

from typing import Any

import click

from overture.cli.base import load as _settings
from overture.platform.errors import ValidationFailed


@click.group("prices")
def prices_group() -> None:
    """The per-model LLM price table (USD per million tokens) that turns every tenant's
    tokens into cost. A change applies to later calls only; each is audited in the
    platform's log."""


CLI_ACTOR_LABEL = "overture prices (CLI)"


def _argument_errors(err: ValidationFailed) -> str:
    names = {"provider": "PROVIDER", "model": "MODEL", "input_per_mtok": "INPUT",
             "output_per_mtok": "OUTPUT"}
    return "; ".join(f"{names.get(e['field'], e['field'])}: {e['message']}"
                     for e in err.errors)


def _price_line(entry: Any) -> str:
    from overture.orchestration.llm.prices import plain

    source = f"{entry.source} via {entry.via}" if entry.via else entry.source
    return (f"{entry.provider}/{entry.model}: input {plain(entry.input_per_mtok)}, "
            f"output {plain(entry.output_per_mtok)} USD per million tokens ({source})")


@prices_group.command("list")
@click.option("--provider", default=None, help="only this provider's models")
def prices_list(provider: str | None) -> None:
    """Every priced model: set in the table, or a built-in default."""
    from overture.orchestration.llm import prices
    from overture.web.app import create_app

    if provider is not None and provider not in prices.PRICED_PROVIDERS:
        raise click.BadParameter("one of " + ", ".join(prices.PRICED_PROVIDERS),
                                 param_hint="--provider")
    app = create_app(_settings())
    with app.app_context():
        entries = prices.list_prices(provider)
    width = max([len(f"{e.provider}/{e.model}") for e in entries] + [5])
    click.echo(f"{'MODEL':{width}}  {'INPUT':>12}  {'OUTPUT':>12}  SOURCE")
    for e in entries:
        click.echo(f"{e.provider + '/' + e.model:{width}}  {prices.plain(e.input_per_mtok):>12}"
                   f"  {prices.plain(e.output_per_mtok):>12}  {e.source}")
    click.echo("(USD per million tokens. A model not listed has no price: calls to it "
               "record tokens but no cost; "
               + ", ".join(f"{p} falls back to {f}'s prices"
                           for p, f in prices.FALLBACK_PROVIDER.items()) + ".)")


@prices_group.command("set")
@click.argument("provider")
@click.argument("model")
@click.argument("input_price", metavar="INPUT")
@click.argument("output_price", metavar="OUTPUT")
def prices_set(provider: str, model: str, input_price: str, output_price: str) -> None:
    """Set MODEL's price at PROVIDER: INPUT and OUTPUT in USD per million tokens."""
    from overture.orchestration.llm import prices
    from overture.platform import audit
    from overture.platform.db import db
    from overture.web.app import create_app

    app = create_app(_settings())
    with app.app_context():
        old = prices.effective_price(provider.strip(), model.strip())
        try:
            entry, _ = prices.change_price(
                provider, model, input_price, output_price,
                actor=audit.Actor("cli", None, CLI_ACTOR_LABEL))
        except ValidationFailed as err:
            raise click.UsageError(_argument_errors(err)) from err
        db.session.commit()
    click.echo("set " + _price_line(entry))
    if old is not None:
        click.echo("was " + _price_line(old))
    click.echo("applies to calls from now on")


@prices_group.command("delete")
@click.argument("provider")
@click.argument("model")
def prices_delete(provider: str, model: str) -> None:
    """Remove MODEL's price at PROVIDER from the table."""
    from overture.orchestration.llm import prices
    from overture.platform import audit
    from overture.platform.db import db
    from overture.web.app import create_app

    app = create_app(_settings())
    with app.app_context():
        try:
            old, now = prices.remove_price(provider, model,
                                           actor=audit.Actor("cli", None, CLI_ACTOR_LABEL))
        except ValidationFailed as err:
            raise click.UsageError(_argument_errors(err)) from err
        db.session.commit()
    click.echo("deleted " + _price_line(old))
    if now is None:
        click.echo(f"calls to {old.provider}/{old.model} now record tokens but no cost")
    else:
        click.echo("calls now pay " + _price_line(now))
