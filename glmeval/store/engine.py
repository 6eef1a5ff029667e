"""The one execute path both engines share, and the few questions each answers its own way.

Every statement the store (and the modules that read it: frames, reports, leases) sends goes
through ``conn.execute`` / ``conn.executemany`` with ``?`` placeholders, where ``conn`` is a
``sqlite3.Connection`` or a :class:`~glmeval.store.postgres.PgConnection` that translates the
SQLite spellings (see that module). What cannot be one statement for both, the catalogue
(which tables and columns exist), is asked here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any, Literal, Protocol, runtime_checkable

Engine = Literal["sqlite", "postgresql"]


class Cursor(Protocol):
    """What a statement gives back, on either engine."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ..., /) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of ``sqlite3.Connection`` the store uses; :class:`PgConnection` has it too."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any: ...

    def close(self) -> None: ...


def engine_of(conn: Connection) -> Engine:
    return "sqlite" if isinstance(conn, sqlite3.Connection) else "postgresql"


@runtime_checkable
class Catalogue(Protocol):
    """A connection that answers the catalogue questions itself (the PostgreSQL one does)."""

    def table_names(self) -> set[str]: ...

    def table_columns(self, table: str) -> list[str]: ...


def _catalogue(conn: Connection) -> Catalogue:
    if not isinstance(conn, Catalogue):
        raise TypeError(f"not a store connection: {type(conn).__name__}")
    return conn


def table_names(conn: Connection) -> set[str]:
    if isinstance(conn, sqlite3.Connection):
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return _catalogue(conn).table_names()


def table_columns(conn: Connection, table: str) -> list[str]:
    """The table's columns in order (SQLite's implicit ``rowid`` and PostgreSQL's stand-in left out)."""
    if isinstance(conn, sqlite3.Connection):
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    return _catalogue(conn).table_columns(table)


__all__ = ["Catalogue", "Connection", "Cursor", "Engine", "engine_of", "table_columns", "table_names"]
