"""PostgreSQL through psycopg 3: a connection that speaks the store's SQL.

The store's SQL is small and written once, in SQLite's spelling with ``?`` placeholders
(:mod:`glmeval.store.sqlite` lists what is SQLite's own). :class:`PgConnection` offers the
same ``execute`` / ``executemany`` as a ``sqlite3.Connection`` and translates the handful of
spellings that differ, one statement at a time (translations are cached):

* ``?`` placeholders outside quotes become ``%s``, and every literal ``%`` becomes ``%%``;
* ``BEGIN IMMEDIATE`` (SQLite's "take the write lock now") becomes ``BEGIN`` plus a
  transaction-scoped advisory lock, so a transaction that reads and then writes sees nothing
  change in between, exactly as with SQLite: many writers on many hosts interleave safely;
* ``INSERT OR REPLACE`` / ``INSERT OR IGNORE`` become ``ON CONFLICT (primary key) DO UPDATE``
  / ``DO NOTHING`` (the key is read from the catalogue);
* in ``CREATE TABLE`` / ``ALTER TABLE``, ``REAL`` becomes ``DOUBLE PRECISION`` (PostgreSQL's
  ``REAL`` is 4 bytes, too coarse for Unix times), ``INTEGER`` ``BIGINT``, ``TEXT`` sorts
  bytewise (``COLLATE "C"``, as SQLite sorts), and every new table gets a ``rowid`` identity
  column, standing in for SQLite's implicit one, so ``ORDER BY rowid`` means "in the order
  written" on both engines.

Rows answer to ``row[0]`` and ``row["name"]`` like ``sqlite3.Row``; ``numeric`` sums come back
as ``int`` / ``float`` (not ``Decimal``), booleans go in as 0/1, and psycopg's errors are
raised as the DB-API classes ``sqlite3`` defines (:class:`PostgresError` is an
``sqlite3.OperationalError``), so the store's ``except`` clauses serve both engines.

psycopg is imported only when a PostgreSQL URL is opened: SQLite users need not install it.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from glmeval.errors import GlmevalError
from glmeval.store.location import redact_url, url_password

if TYPE_CHECKING:
    import psycopg

# Every glmeval write transaction on one database takes this advisory lock (like SQLite's
# single write lock). A fixed key, so other tools' advisory locks never collide with it.
WRITE_LOCK_KEY = zlib.crc32(b"glmeval-store-write-lock")
CONNECT_TIMEOUT_S = 10
LOCK_TIMEOUT_MS = 60_000

_QUOTED = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")")
_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(REPLACE|IGNORE)\s+INTO\s+(\w+)\s*\(([^)]*)\)(.*)$", re.S | re.I)
_CREATE_TABLE = re.compile(r"^(\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\w+\s*\()", re.I)
_DDL = re.compile(r"^\s*(CREATE\s+TABLE|ALTER\s+TABLE)\b", re.I)
_TYPES = [
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bTEXT\b", re.I), 'TEXT COLLATE "C"'),
]


class PostgresError(sqlite3.OperationalError):
    """A statement PostgreSQL refused (first line of its message; ``sqlstate`` its code)."""

    sqlstate: str | None = None


class PostgresIntegrityError(sqlite3.IntegrityError):
    """A constraint PostgreSQL enforced (a duplicate key, say)."""

    sqlstate: str | None = None


def _unquoted(sql: str, change: Any) -> str:
    """Apply ``change`` to the parts of ``sql`` outside string literals and quoted names."""
    parts = _QUOTED.split(sql)
    return "".join(part if i % 2 else change(part) for i, part in enumerate(parts))


def _placeholders(part: str) -> str:
    return part.replace("?", "%s")


def _ddl(sql: str) -> str:
    def types(part: str) -> str:
        for pattern, replacement in _TYPES:
            part = pattern.sub(replacement, part)
        return part

    sql = _unquoted(sql, types)
    return _CREATE_TABLE.sub(r"\1rowid BIGSERIAL, ", sql, count=1)


class PgRow(tuple):
    """A row by position and by column name, as ``sqlite3.Row`` gives it."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> PgRow:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Any:
    names = [column.name for column in cursor.description or ()]
    index = {name: i for i, name in enumerate(names)}

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(values, index)

    return make


def _param(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _params(params: Any) -> list[Any]:
    if params is None:
        return []
    if isinstance(params, dict):
        raise PostgresError("named parameters are not supported; use ? placeholders")
    return [_param(v) for v in params]


class PgConnection:
    """A psycopg connection (autocommit) that takes the store's SQLite-spelled SQL."""

    engine = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any], label: str) -> None:
        self.raw = raw
        self.label = label
        self._keys: dict[str, tuple[str, ...]] = {}

    # -- the sqlite3.Connection surface the store uses ------------------------------------

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        statement = sql.strip().rstrip(";").strip()
        word = statement.split(None, 1)[0].upper() if statement else ""
        with self._errors():
            if word == "BEGIN":
                self.raw.execute("BEGIN")
                return self.raw.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK_KEY])
            if word in ("COMMIT", "ROLLBACK", "END"):
                return self.raw.execute(word if word != "END" else "COMMIT")
            return self.raw.execute(self._translate(statement), _params(parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        rows = [_params(p) for p in parameters]
        with self._errors():
            cursor = self.raw.cursor()
            if rows:
                cursor.executemany(self._translate(sql.strip()), rows)
            return cursor

    def close(self) -> None:
        self.raw.close()

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)

    # -- the catalogue ----------------------------------------------------------------------

    def table_names(self) -> set[str]:
        rows = self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        return {r[0] for r in rows}

    def table_columns(self, table: str) -> list[str]:
        """The columns, in order, without the ``rowid`` stand-in (as SQLite lists them)."""
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [r[0] for r in rows if r[0] != "rowid"]

    def primary_key(self, table: str) -> tuple[str, ...]:
        if table not in self._keys:
            rows = self.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(? AS regclass) AND i.indisprimary",
                (table,),
            ).fetchall()
            self._keys[table] = tuple(r[0] for r in rows)
        return self._keys[table]

    # -- translation ------------------------------------------------------------------------

    def _translate(self, sql: str) -> str:
        match = _INSERT_OR.match(sql)
        if match:
            verb, table, columns, rest = match.groups()
            sql = f"INSERT INTO {table} ({columns}){rest}" + self._conflict(verb.upper(), table, columns)
        return _translated(sql)

    def _conflict(self, verb: str, table: str, columns: str) -> str:
        if verb == "IGNORE":
            return " ON CONFLICT DO NOTHING"
        key = self.primary_key(table)
        if not key:
            raise PostgresError(f"INSERT OR REPLACE into {table}: the table has no primary key")
        others = [c.strip() for c in columns.split(",") if c.strip() and c.strip() not in key]
        if not others:
            return f" ON CONFLICT ({', '.join(key)}) DO NOTHING"
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
        return f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"

    def _errors(self) -> Any:
        return _ErrorMapping(self)


@functools.lru_cache(maxsize=512)
def _translated(sql: str) -> str:
    if _DDL.match(sql):
        sql = _ddl(sql)
    # psycopg reads every ``%`` as a placeholder, quoted or not; ``?`` is one only outside quotes.
    return _unquoted(sql.replace("%", "%%"), _placeholders)


class _ErrorMapping:
    """psycopg errors → the DB-API classes of ``sqlite3`` (one line, no password)."""

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        import psycopg

        if exc is None or not isinstance(exc, psycopg.Error):
            return
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, psycopg.OperationalError) and self.conn.raw.closed:
            raise GlmevalError(f"{self.conn.label}: lost the connection to PostgreSQL ({text})") from None
        error = PostgresIntegrityError(text) if isinstance(exc, psycopg.IntegrityError) else PostgresError(text)
        error.sqlstate = getattr(exc, "sqlstate", None)
        raise error from None


def _number_loader() -> Any:
    """A loader for ``numeric`` (what ``SUM`` of an integer column gives): ``int`` when whole,
    else ``float``, as SQLite returns them; ``Decimal`` would break JSON and arithmetic."""
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        def load(self, data: Any) -> Any:
            text = bytes(data).decode()
            if text.lstrip("-").isdigit():
                return int(text)
            return float(text)

    return NumberLoader


def connect(url: str) -> PgConnection:
    """Connect to the database at ``url``; every failure is one line naming the redacted URL
    and what to do (exit 2), never the password."""
    label = redact_url(url)
    try:
        import psycopg
    except ImportError:
        raise GlmevalError(
            f"{label}: PostgreSQL needs the psycopg driver: pip install 'psycopg[binary]' (or glmeval[postgres])"
        ) from None
    try:
        raw = psycopg.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, row_factory=_row_factory, application_name="glmeval"
        )
    except psycopg.Error as exc:
        raise GlmevalError(connect_message(label, str(exc), url)) from None
    except ValueError as exc:  # an unparseable URL
        raise GlmevalError(f"{label}: not a usable PostgreSQL URL ({_scrub(str(exc), url)})") from None
    raw.adapters.register_loader("numeric", _number_loader())
    raw.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
    return PgConnection(raw, label)


def open_database(url: str, create: bool) -> PgConnection:
    """Connect, bring the schema up to date (every migration, under the write lock, so two
    machines opening one new database at once make it once), and check this user may write
    when ``create`` (a run) needs to. ``create=False`` (reading history) refuses a database
    glmeval never wrote to, as a missing SQLite file is refused."""
    from glmeval.store.migrations import migrate, refuse_newer, schema_state
    from glmeval.store.sqlite import probe_writable

    conn = connect(url)
    try:
        state = schema_state(conn, conn.label)
        refuse_newer(state, conn.label)
        if not create and not state.applied:
            raise GlmevalError(
                f"no glmeval history in {conn.label} yet; run a suite first (glmeval run SUITE --db URL), "
                "or point --db (GLMEVAL_DB) at another database"
            )
        try:
            if state.pending or not state.recorded:
                migrate(conn, conn.label)
            if create:
                probe_writable(conn)
        except PostgresError as exc:
            if getattr(exc, "sqlstate", None) == "42501":  # insufficient_privilege
                raise GlmevalError(
                    f"{conn.label}: this user may not write glmeval's tables ({exc}); "
                    "grant it write access, or read with runs, show, report and export"
                ) from None
            raise GlmevalError(f"{conn.label}: cannot set up the glmeval schema ({exc})") from None
    except BaseException:
        conn.close()
        raise
    return conn


def connect_message(label: str, text: str, url: str) -> str:
    """The one line for a connection that failed, by its cause."""
    text = _scrub(text, url)
    low = text.lower()
    detail = " ".join(text.split())
    if "password authentication failed" in low or "no password supplied" in low:
        user = re.search(r'for user "([^"]+)"', text)
        who = f" for user {user.group(1)!r}" if user else ""
        return f"{label}: PostgreSQL refused the password{who}; check the user and password in --db / GLMEVAL_DB"
    missing = re.search(r'database "([^"]+)" does not exist', text)
    if missing:
        name = missing.group(1)
        return f"{label}: the server has no database {name!r}; create it (createdb {name}) or point --db at one that exists"
    role = re.search(r'role "([^"]+)" does not exist', text)
    if role:
        return f"{label}: the server has no user {role.group(1)!r}; check the user in --db / GLMEVAL_DB"
    if any(s in low for s in ("connection refused", "could not translate host", "timeout expired", "no route", "name or service")):
        return f"{label}: cannot reach the PostgreSQL server ({_reason(detail)}); is it running, and are the host and port right?"
    return f"{label}: cannot connect to PostgreSQL ({_reason(detail)})"


def _reason(detail: str) -> str:
    """The driver's message without its "connection to server at ... failed:" preamble."""
    detail = re.sub(r"^connection failed:\s*", "", detail)
    detail = re.sub(r'connection to server at "[^"]*" \([^)]*\), port \d+ failed:\s*', "", detail)
    detail = re.sub(r'connection to server at "[^"]*", port \d+ failed:\s*', "", detail)
    detail = detail.replace("FATAL:", "").strip()
    return detail.split(" Is the server running")[0].strip().rstrip(".") or "no detail"


def _scrub(text: str, url: str) -> str:
    secret = url_password(url)
    if secret:
        text = text.replace(secret, "***")
    return text.replace(url, redact_url(url))


__all__ = ["PgConnection", "PgRow", "PostgresError", "PostgresIntegrityError", "WRITE_LOCK_KEY", "connect", "connect_message"]
