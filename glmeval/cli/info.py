"""``glmeval checks`` and ``glmeval models``: what is available, without reading the source."""

from __future__ import annotations

import click

from glmeval.cli.group import main


@main.command("checks")
def list_checks() -> None:
    """List every check type (built-in and from plugins) with its one-line description."""
    from tabulate import tabulate

    from glmeval.checks import load_builtin

    registry = load_builtin()
    rows = []
    seen: dict[int, str] = {}
    for name in sorted(registry):
        definition = registry[name]
        first = seen.setdefault(id(definition.fn), name)
        doc = definition.doc if first == name else f"alias of {first}"
        rows.append([name, "yes" if definition.graded else "", doc])
    click.echo(tabulate(rows, headers=["check", "model-graded", "what it asserts"], tablefmt="simple"))


@main.command("models")
def list_models() -> None:
    """List the models glmeval knows: context window, max output and price per 1M tokens."""
    from tabulate import tabulate

    from glmeval.catalogue import prices
    from glmeval.catalogue.models import MODELS

    rows = []
    for name, spec in MODELS.items():
        price = prices.price_for(name)
        shown = "–" if price is None else f"{price[0]:g} / {price[1]:g}"
        rows.append([name, getattr(spec, "context_window", ""), getattr(spec, "max_output", ""), shown])
    click.echo(tabulate(rows, headers=["model", "context", "max output", "¥ in / out per 1M"], tablefmt="simple"))
    click.echo("Prices are indicative (see glmeval/catalogue/ for sources and dates); override them in a suite's prices:.")
