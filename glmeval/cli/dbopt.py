"""The ``--db`` value every command takes: a SQLite file or a ``postgresql://`` URL.

``click.Path`` would fold a URL's ``//`` into one slash, so the value is kept as text when it
names a PostgreSQL server and becomes a path otherwise; ``GLMEVAL_DB`` goes through the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


class DatabaseParam(click.ParamType):
    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | Path:
        from glmeval.store.location import database_location, is_postgres_url

        if isinstance(value, Path) or not is_postgres_url(value):
            text = str(value)
            if not text.strip():
                self.fail("empty; give a database file or a postgresql:// URL", param, ctx)
            return Path(text)
        return database_location(str(value))


DB = DatabaseParam()
DB_HELP = "Results database: a SQLite file (default .glmeval/results.db) or postgresql://USER:PASS@HOST/DB; env GLMEVAL_DB."

__all__ = ["DB", "DB_HELP", "DatabaseParam"]
