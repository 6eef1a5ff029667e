"""``glmeval migrate``: bring a history's schema up to date, or move it to another database.

``glmeval migrate --to postgresql://...`` copies a SQLite history (``--db``, default
``.glmeval/results.db``) into a PostgreSQL one row for row (:mod:`glmeval.store.copy`), so a
team can share one history from then on; ``--to`` may name a SQLite file too (and ``--db`` a
server), so the same command moves a history back.
"""

from __future__ import annotations

from pathlib import Path

import click

from glmeval.cli.dbopt import DB, DB_HELP
from glmeval.cli.group import main


@main.command("migrate")
@click.option("--to", "target", type=DB, metavar="PATH|URL", help="Copy every run, result, check, shard, cache entry and migration date there.")
@click.option("--db", type=DB, envvar="GLMEVAL_DB", help=DB_HELP)
@click.option("--quiet", "-q", is_flag=True, help="Only the summary line.")
def migrate_cmd(target: str | Path | None, db: str | Path | None, quiet: bool) -> None:
    """Apply the schema migrations --db lacks; with --to, copy the whole history into another database."""
    from glmeval.store import Store
    from glmeval.store.copy import copy_history
    from glmeval.store.migrations import applied_migrations

    if target is None:
        with Store(db) as store:
            names = applied_migrations(store.conn)
            click.echo(f"{store.path}: schema current ({len(names)} migrations: {', '.join(n for n, _ in names)})")
        return
    with Store(db, create=False, readonly=False) as source, Store(target) as dest:
        report = copy_history(source, dest, None if quiet else lambda line: click.echo(f"  {line}", err=True))
        for line in report.lines(str(dest.path)):
            click.echo(line)
        click.echo(f"{source.path} is unchanged; point --db (GLMEVAL_DB) at {dest.path} from now on")


__all__ = ["migrate_cmd"]
