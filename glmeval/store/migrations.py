"""The schema as a list of named, append-only migrations (the way simonw/llm keeps its own).

A fresh database is built by running every migration from empty; an older one runs only the
ones it lacks, in order. Each name, once applied, is recorded in ``_migrations`` with when it
ran, so a newer glmeval knows exactly what an older one did, and CI caches and long-lived
laptops that keep databases for months open with their history intact.

Rules for whoever adds one: append a new function decorated with :func:`migration` at the
end, named ``mNNN_what_it_does`` with the next number; never edit, rename, reorder or remove
one that has shipped (databases out there already recorded it). The DDL is written once, in
SQLite's spelling; on PostgreSQL the connection translates its types (and gives every table a
``rowid``), so one text serves both engines: keep to ``TEXT`` / ``INTEGER`` / ``REAL``, plain
``CREATE TABLE`` / ``ALTER TABLE ... ADD COLUMN`` / ``CREATE INDEX IF NOT EXISTS``, and run
SQLite-only functions (``json_extract``) only on SQLite (a PostgreSQL history is always made by
a glmeval that has every migration, so back-fills of old rows never run there).

Before names were recorded, glmeval counted versions in ``meta.schema_version`` (1, 2, 3).
Such a database is read as having run the first N migrations, which are exactly what those
versions held. ``meta.schema_version`` is still written (as the number of migrations applied)
so a glmeval from before named migrations refuses a newer database instead of writing to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from glmeval.errors import GlmevalError
from glmeval.store.engine import Connection, engine_of, table_names
from glmeval.store.sqlite import insert_sql, run_script, write_transaction

Step = Callable[[Connection], None]


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Step

    @property
    def number(self) -> int:
        """``3`` for ``m003_...``: its place in the list, and the schema version it brings."""
        return int(self.name[1:4])


MIGRATIONS: list[Migration] = []


def migration(step: Step) -> Step:
    """Append ``step`` to :data:`MIGRATIONS` under its function name."""
    MIGRATIONS.append(Migration(step.__name__, step))
    return step


MIGRATIONS_TABLE = "_migrations"

# Tables every glmeval database has; a SQLite file with other tables (and without ``meta``)
# is someone else's database, which glmeval must not write into.
OWN_TABLES = frozenset({"meta", "runs", "results", "checks", "cache", "shards", "leases", "batches", MIGRATIONS_TABLE})


# -- the migrations, oldest first; append only ------------------------------------------------


@migration
def m001_initial(conn: Connection) -> None:
    """Runs, results, check results and the response cache (schema version 1)."""
    run_script(
        conn,
        """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    suite_hash TEXT,
    suite_path TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    status TEXT NOT NULL DEFAULT 'running',
    git_commit TEXT,
    git_branch TEXT,
    git_dirty INTEGER,
    version TEXT,
    host TEXT,
    settings TEXT,
    local INTEGER NOT NULL DEFAULT 0,
    replay INTEGER NOT NULL DEFAULT 0,
    total_jobs INTEGER,
    variants TEXT
);
CREATE INDEX IF NOT EXISTS runs_suite ON runs (suite, started_at);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs (id),
    job_id TEXT NOT NULL,
    case_id TEXT NOT NULL,
    variant_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    model TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    passed INTEGER NOT NULL,
    score REAL,
    output TEXT,
    tool_calls TEXT,
    finish_reason TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    total_tokens INTEGER,
    latency_ms REAL,
    ttft_ms REAL,
    queue_ms REAL,
    retry_ms REAL,
    cost REAL,
    error_kind TEXT,
    error_status INTEGER,
    error_code TEXT,
    error_message TEXT,
    attempts INTEGER,
    cached INTEGER NOT NULL DEFAULT 0,
    request_id TEXT,
    job TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, job_id)
);
CREATE TABLE IF NOT EXISTS checks (
    run_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    type TEXT NOT NULL,
    label TEXT,
    metric TEXT,
    passed INTEGER NOT NULL,
    score REAL,
    weight REAL,
    reason TEXT,
    error INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, job_id, idx)
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    model TEXT,
    completion TEXT NOT NULL,
    created_at REAL NOT NULL
);
""",
    )


@migration
def m002_baseline_origin_tags(conn: Connection) -> None:
    """``runs.baseline`` (the run this one was gated against), ``runs.origin`` and
    ``runs.imported_at`` (set when a run arrived by ``glmeval import``: CI machines are thrown
    away, so runs travel as files), ``results.tags`` (the case's tags, queryable without
    parsing the job JSON, back-filled from it), and an index to find a case's results in a run.

    The back-fill runs only when there are rows, so a new database needs no JSON functions.
    """
    run_script(
        conn,
        """
ALTER TABLE runs ADD COLUMN baseline TEXT;
ALTER TABLE runs ADD COLUMN origin TEXT;
ALTER TABLE runs ADD COLUMN imported_at REAL;
ALTER TABLE results ADD COLUMN tags TEXT;
CREATE INDEX IF NOT EXISTS results_case ON results (run_id, variant_id, case_id);
""",
    )
    if engine_of(conn) == "sqlite" and conn.execute("SELECT 1 FROM results LIMIT 1").fetchone():
        conn.execute("UPDATE results SET tags = json_extract(job, '$.tags') WHERE json_valid(job)")


@migration
def m003_judge_usage(conn: Connection) -> None:
    """Tokens and cost the judge model spent grading each result."""
    run_script(
        conn,
        """
ALTER TABLE results ADD COLUMN judge_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN judge_cost REAL NOT NULL DEFAULT 0;
""",
    )


@migration
def m004_reasoning(conn: Connection) -> None:
    """What thinking models and the 2026 API add to a result: the reasoning kept apart from the
    answer, its tokens (part of ``completion_tokens``; ``reasoning_estimated`` when counted
    from the text because the API gave none), the time to the first reasoning token, the
    prompt's cache-hit tokens, the ``web_search`` results (JSON, NULL when none) and the
    thinking state the request ran with. Older rows keep NULL: nothing was recorded then."""
    run_script(
        conn,
        """
ALTER TABLE results ADD COLUMN reasoning TEXT;
ALTER TABLE results ADD COLUMN reasoning_tokens INTEGER;
ALTER TABLE results ADD COLUMN reasoning_estimated INTEGER;
ALTER TABLE results ADD COLUMN ttfr_ms REAL;
ALTER TABLE results ADD COLUMN cached_tokens INTEGER;
ALTER TABLE results ADD COLUMN web_search TEXT;
ALTER TABLE results ADD COLUMN thinking TEXT;
""",
    )


@migration
def m005_leases(conn: Connection) -> None:
    """Which process holds each running run (:mod:`glmeval.store.lease`): a random holder
    token, its host, pid and since, and the heartbeat that says it is alive (Unix seconds).
    A row lives only while its run is being run; ``runs.total_jobs`` already keeps the
    planned count an interrupted run is measured against."""
    run_script(
        conn,
        """
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    since REAL NOT NULL,
    heartbeat REAL NOT NULL
);
""",
    )


@migration
def m006_shards(conn: Connection) -> None:
    """One row per shard of a run split across machines (``glmeval run --shard K/N --run-id``):
    how many jobs it had, how it ended and where it ran. The run is complete when all
    ``shard_count`` rows are; until then its status says it is still running."""
    run_script(
        conn,
        """
CREATE TABLE IF NOT EXISTS shards (
    run_id TEXT NOT NULL,
    shard INTEGER NOT NULL,
    shard_count INTEGER NOT NULL,
    status TEXT NOT NULL,
    jobs INTEGER NOT NULL,
    host TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    PRIMARY KEY (run_id, shard)
);
""",
    )


@migration
def m007_batches(conn: Connection) -> None:
    """The Batch API's work of each run (:mod:`glmeval.store.batches`): one row per uploaded
    input file, written before the batch is created, then its batch id, state and result files,
    so ``--resume`` polls what was submitted instead of submitting it again. ``job_ids`` is a
    JSON list; ``collected`` is 1 once the batch's results are stored."""
    run_script(
        conn,
        """
CREATE TABLE IF NOT EXISTS batches (
    input_file_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    batch_id TEXT,
    model TEXT NOT NULL,
    job_ids TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    output_file_id TEXT,
    error_file_id TEXT,
    collected INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batches_run ON batches (run_id);
""",
    )


# -- running them ------------------------------------------------------------------------------

# The number of migrations this glmeval knows; a database with all of them is current.
SCHEMA_VERSION = len(MIGRATIONS)

# The highest ``meta.schema_version`` written before names were recorded: a database at
# version N <= this without a migrations table ran exactly the first N migrations.
LEGACY_SCHEMA_VERSION = 3


@dataclass(frozen=True)
class SchemaState:
    """What a database has: its ``meta.schema_version`` (0 for an empty file), the migration
    names it has applied (recorded, or inferred from a legacy version), and whether they are
    recorded in ``_migrations`` yet."""

    version: int
    applied: tuple[str, ...]
    recorded: bool

    @property
    def pending(self) -> list[Migration]:
        done = set(self.applied)
        return [m for m in MIGRATIONS if m.name not in done]

    @property
    def unknown(self) -> list[str]:
        """Names a newer glmeval applied that this one does not know."""
        known = {m.name for m in MIGRATIONS}
        return [name for name in self.applied if name not in known]

    @property
    def newer(self) -> bool:
        return self.version > SCHEMA_VERSION or bool(self.unknown)


def schema_state(conn: Connection, path: Path | str) -> SchemaState:
    """Read what the database at ``path`` has; raises for a SQLite file that is not glmeval's."""
    tables = table_names(conn)
    if "meta" not in tables:
        if engine_of(conn) == "postgresql":
            # A shared server's database may hold other tables; only glmeval's own names clash.
            clash = sorted(tables & (OWN_TABLES - {"meta"}))
            if clash:
                raise GlmevalError(
                    f"{path}: has tables named like glmeval's ({', '.join(clash)}) but is not a glmeval "
                    "history; point --db at another database (or a schema of its own: ?options=-csearch_path%3DNAME)"
                )
            return SchemaState(0, (), False)
        if tables - OWN_TABLES:
            raise GlmevalError(
                f"{path}: a SQLite database but not a glmeval one (tables: {', '.join(sorted(tables)[:5])}); "
                "point --db at another file"
            )
        return SchemaState(0, (), False)
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0]) if row else 0
    except ValueError:
        raise GlmevalError(f"{path}: unreadable schema version {row[0]!r}") from None
    if MIGRATIONS_TABLE in tables:
        names = tuple(r[0] for r in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY rowid"))
        return SchemaState(version, names, True)
    legacy = min(version, LEGACY_SCHEMA_VERSION)
    return SchemaState(version, tuple(m.name for m in MIGRATIONS[:legacy]), False)


def refuse_newer(state: SchemaState, path: Path | str) -> None:
    if state.newer:
        if state.unknown:
            what = f"has migrations this glmeval does not know ({', '.join(state.unknown)})"
        else:
            what = f"has schema version {state.version}"
        raise GlmevalError(f"{path}: the database {what}: it is newer than this glmeval (schema {SCHEMA_VERSION}); upgrade glmeval")


def migrate(conn: Connection, path: Path | str = "database") -> list[str]:
    """Apply the migrations ``conn`` lacks, in order; returns their names (empty: current).

    Everything happens in one write transaction, together with the record of each name and
    the version bump, so a crash or a concurrent opener never sees a half-migrated database.
    The state is read again under the lock: two processes opening the same old database at
    once must not both run ``ALTER TABLE`` (the second would fail).
    """
    state = schema_state(conn, path)
    refuse_newer(state, path)
    if not state.pending and state.recorded:
        return []
    with write_transaction(conn):
        state = schema_state(conn, path)
        refuse_newer(state, path)
        if not state.recorded:
            # Applied before names were recorded (none for a new file): when is unknown.
            _record(conn, [(name, None) for name in state.applied])
        for step in state.pending:
            step.apply(conn)
            _record(conn, [(step.name, time.time())])
        conn.execute(insert_sql("meta", ("key", "value"), "replace"), ("schema_version", str(SCHEMA_VERSION)))
    return [m.name for m in state.pending]


def _record(conn: Connection, rows: list[tuple[str, float | None]]) -> None:
    conn.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, applied_at REAL)")
    conn.executemany(insert_sql(MIGRATIONS_TABLE, ("name", "applied_at"), "ignore"), rows)


def applied_migrations(conn: Connection) -> list[tuple[str, float | None]]:
    """The recorded ``(name, applied_at)`` rows, in the order they ran."""
    if MIGRATIONS_TABLE not in table_names(conn):
        return []
    return [(r[0], r[1]) for r in conn.execute(f"SELECT name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY rowid")]


__all__ = [
    "LEGACY_SCHEMA_VERSION",
    "MIGRATIONS",
    "MIGRATIONS_TABLE",
    "OWN_TABLES",
    "SCHEMA_VERSION",
    "Migration",
    "SchemaState",
    "applied_migrations",
    "migrate",
    "migration",
    "refuse_newer",
    "schema_state",
]
