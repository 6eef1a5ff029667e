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
    """List the models glmeval knows, current ones first: family, limits, thinking, prices and status."""
    from tabulate import tabulate

    from glmeval.catalogue.listing import HEADERS, display_rows
    from glmeval.catalogue.models import CATALOGUE_DATE

    rows = [row.cells() for row in display_rows()]
    click.echo(tabulate(rows, headers=list(HEADERS), tablefmt="simple", disable_numparse=True))
    click.echo(
        f"Catalogue as of {CATALOGUE_DATE}; ? = not known. Prices are indicative (sources and dates in "
        "glmeval/catalogue/models.py); override them in a suite's prices:."
    )
