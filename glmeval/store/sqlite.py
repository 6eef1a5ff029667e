"""Everything the store says to SQLite that another SQL engine would say differently.

Connecting (read-write with WAL and a busy timeout, or read-only), telling "cannot be
written" from "not a database", and the spellings the store's SQL is written in: ``?``
placeholders, ``BEGIN IMMEDIATE`` for a write transaction, ``INSERT OR REPLACE`` / ``OR
IGNORE``, ``rowid`` for insertion order. PostgreSQL (:mod:`glmeval.store.postgres`) takes
the same statements through a connection that translates those spellings, so
:func:`write_transaction`, :func:`run_script` and :func:`insert_sql` serve both engines; the
catalogue is asked through :mod:`glmeval.store.engine`. The schema's DDL is in
:mod:`glmeval.store.migrations`.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from glmeval.errors import GlmevalError
from glmeval.store.engine import Connection, table_columns, table_names

# Seconds a connection waits for another writer's lock, and an open retries a "locked" setup.
BUSY_TIMEOUT_S = 30.0

# The implicit column that orders rows as they were inserted (PostgreSQL tables get a real one
# of the same name).
ROWID = "rowid"

_READONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def is_readonly_error(exc: BaseException, path: str | Path | None = None) -> bool:
    """Whether ``exc`` means "this database (or its folder) cannot be written", as opposed to
    "this file is not a usable database". A read-only file is good history (a CI artefact on a
    read-only mount, say) and must never get the "move this one aside" advice.

    SQLite says so directly (``SQLITE_READONLY``: "attempt to write a readonly database"), or
    only as "unable to open database file" when it cannot create its journal files beside a
    database in a read-only folder; ``path`` tells that case from a truly missing folder.
    """
    if isinstance(exc, OSError):
        return exc.errno in _READONLY_ERRNOS
    if not isinstance(exc, sqlite3.Error):
        return False
    name = getattr(exc, "sqlite_errorname", None) or ""
    text = str(exc).lower()
    if name.startswith("SQLITE_READONLY") or "readonly database" in text or "read-only" in text:
        return True
    if (name.startswith("SQLITE_CANTOPEN") or "unable to open database file" in text) and path is not None:
        return not writable(Path(path))
    return False


def writable(path: Path) -> bool:
    """Whether the database file (when it exists) and its folder (where SQLite keeps its -wal,
    -shm and -journal files) can be written; ``os.access`` knows about read-only mounts and
    immutable files even for root."""
    folder = nearest_existing_folder(path)
    if not os.access(folder, os.W_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def nearest_existing_folder(path: Path) -> Path:
    """The closest folder above ``path`` that exists (where a new database would be made)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def open_for_writing(path: Path, setup: Callable[[sqlite3.Connection], None]) -> sqlite3.Connection:
    """Connect read-write, switch to WAL, then run ``setup`` (the migrations and a write probe).

    Switching to WAL and creating the schema can meet another process doing the same
    (pytest-xdist workers opening one new database); SQLite reports that as "locked" without
    waiting, so this waits and tries again, up to :data:`BUSY_TIMEOUT_S`. The caller turns the
    ``sqlite3`` and ``OSError`` exceptions into one clear line.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.02
    while True:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            setup(conn)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        except BaseException:
            conn.close()
            raise


def probe_writable(conn: Connection) -> None:
    """Take the write lock and touch a row, then roll back. Opening may succeed on a file
    SQLite can only read (it falls back to read-only quietly); this finds out at open, with
    one clear line, not at the first result."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
    finally:
        conn.execute("ROLLBACK")


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open with SQLite's ``mode=ro``: no write, no journal-mode change.

    A WAL database in a read-only folder cannot make its -shm file. With no pending
    write-ahead log there is nothing it would hold, so the file is then read as is
    (``immutable=1``); with one, reading would miss writes, which is refused in one line.
    """
    base = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    try:
        return _connect_uri(base)
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_CANTOPEN" and "unable to open" not in str(exc):
            raise
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise GlmevalError(
            f"{path} is read-only and has unmerged writes in {wal.name} that SQLite cannot read "
            "from a read-only folder; copy the database with its -wal file somewhere writable"
        )
    return _connect_uri(base + "&immutable=1")


def _connect_uri(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opening is lazy: read now
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def write_transaction(conn: Connection) -> Iterator[Connection]:
    """One transaction that holds the write lock from its start (``BEGIN IMMEDIATE``; on
    PostgreSQL a transaction-wide advisory lock), so what it reads cannot change before it
    writes; rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def run_script(conn: Connection, script: str) -> None:
    """Execute ``;``-separated statements one by one (``executescript`` would commit the
    surrounding transaction, and a migration must stay atomic)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


OnConflict = Literal["fail", "replace", "ignore"]


def insert_sql(table: str, columns: list[str] | tuple[str, ...], on_conflict: OnConflict = "fail") -> str:
    """``INSERT`` of ``columns`` with ``?`` placeholders; ``replace`` overwrites the row with
    the same primary key, ``ignore`` keeps the existing one."""
    verb = {"fail": "INSERT", "replace": "INSERT OR REPLACE", "ignore": "INSERT OR IGNORE"}[on_conflict]
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


__all__ = [
    "BUSY_TIMEOUT_S",
    "ROWID",
    "OnConflict",
    "insert_sql",
    "is_readonly_error",
    "nearest_existing_folder",
    "open_for_writing",
    "open_readonly",
    "probe_writable",
    "run_script",
    "table_columns",
    "table_names",
    "writable",
    "write_transaction",
]
