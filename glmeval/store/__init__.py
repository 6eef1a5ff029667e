"""The history: runs, results, check results and the response cache, in SQLite.

Results are written one by one as they arrive, so an interrupted run loses nothing and can be
resumed. WAL mode and a busy timeout let two runs write the same database at once. The schema
is a list of named migrations; opening an older database applies the ones it lacks, so a
newer glmeval reads the history an older one wrote (CI caches and long-lived laptops keep
databases for months).

The parts:

* :mod:`~glmeval.store.store`: :class:`Store`, the connection and every read and write.
* :mod:`~glmeval.store.migrations`: the schema, as named append-only migrations.
* :mod:`~glmeval.store.sqlite`: what is SQLite's own (connecting, locking, read-only files,
  the catalogue), kept apart so a second engine is one sibling module.
* :mod:`~glmeval.store.refs`: ``latest~N``, id prefixes and git refs to run ids.
* :mod:`~glmeval.store.runinfo`: :class:`RunInfo`, run ids, the default location.
* :mod:`~glmeval.store.protocols`: :class:`StoreReader` / :class:`StoreWriter`, what the rest
  of glmeval needs from a store.
* :mod:`~glmeval.store.transfer`: export and import of a run as a file, CSV and JSONL.
"""

from __future__ import annotations

from glmeval.store.migrations import MIGRATIONS, SCHEMA_VERSION, Migration, migrate
from glmeval.store.protocols import StoreReader, StoreWriter
from glmeval.store.refs import git_info
from glmeval.store.runinfo import DEFAULT_DB, RunInfo, default_db_path, new_run_id
from glmeval.store.sqlite import is_readonly_error
from glmeval.store.store import Store

__all__ = [
    "DEFAULT_DB",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "RunInfo",
    "Store",
    "StoreReader",
    "StoreWriter",
    "default_db_path",
    "git_info",
    "is_readonly_error",
    "migrate",
    "new_run_id",
]
