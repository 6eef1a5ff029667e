"""The SQLite history: runs, results, check results and the response cache.

Results are written one by one as they arrive, so an interrupted run loses nothing and can be
resumed. WAL mode and a busy timeout let two runs write the same database at once. The schema
carries a version; :data:`MIGRATIONS` brings an older database up to date on open, so a newer
glmeval reads the history an older one wrote (CI caches and long-lived laptops keep databases
for months).

Schema history:

* 1: runs, results, checks, cache.
* 2: ``runs.baseline`` (the run this one was gated against), ``runs.origin`` and
  ``runs.imported_at`` (set when a run arrived by ``glmeval import``: CI machines are thrown
  away, so runs travel as files), ``results.tags`` (the case's tags, queryable without parsing
  the job JSON), and an index to find a case's results in a run.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import sqlite3
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glmeval.errors import GlmevalError
from glmeval.records import CheckResult, Completion, Job, Result

DEFAULT_DB = Path(".glmeval") / "results.db"
SCHEMA_VERSION = 3

SCHEMA = """
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
    variants TEXT,
    baseline TEXT,
    origin TEXT,
    imported_at REAL
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
    tags TEXT,
    judge_tokens INTEGER NOT NULL DEFAULT 0,
    judge_cost REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, job_id)
);
CREATE INDEX IF NOT EXISTS results_case ON results (run_id, variant_id, case_id);
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
"""

# version -> SQL (statements separated by ";") or a function that upgrades a database at
# version-1 to it. Each runs inside the same IMMEDIATE transaction as the version bump, so a
# crash or a concurrent opener never sees a half-migrated database.
Migration = str | Callable[[sqlite3.Connection], None]
MIGRATIONS: dict[int, Migration] = {
    2: """
ALTER TABLE runs ADD COLUMN baseline TEXT;
ALTER TABLE runs ADD COLUMN origin TEXT;
ALTER TABLE runs ADD COLUMN imported_at REAL;
ALTER TABLE results ADD COLUMN tags TEXT;
UPDATE results SET tags = json_extract(job, '$.tags') WHERE json_valid(job);
CREATE INDEX IF NOT EXISTS results_case ON results (run_id, variant_id, case_id);
""",
    3: """
ALTER TABLE results ADD COLUMN judge_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN judge_cost REAL NOT NULL DEFAULT 0;
""",
}

# Tables every glmeval database has; a SQLite file without them (and without ``meta``) is
# someone else's database, which glmeval must not write into.
_OWN_TABLES = {"meta", "runs", "results", "checks", "cache"}


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
        return not _writable(Path(path))
    return False


def _writable(path: Path) -> bool:
    """Whether the database file (when it exists) and its folder (where SQLite keeps its -wal,
    -shm and -journal files) can be written; ``os.access`` knows about read-only mounts and
    immutable files even for root."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK):
        return False
    return not path.exists() or os.access(path, os.W_OK)


def default_db_path() -> Path:
    return Path(os.environ.get("GLMEVAL_DB") or DEFAULT_DB)


def git_info(cwd: Path | None = None) -> dict[str, Any]:
    """Commit, branch and dirty flag when run inside a git checkout; empty otherwise."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_branch": git("rev-parse", "--abbrev-ref", "HEAD"), "git_dirty": bool(status)}


def _git_rev_parse(ref: str, cwd: Path | None = None) -> str | None:
    """The full commit sha ``ref`` names in the git checkout at ``cwd``, or None."""
    if ref.startswith("-"):
        return None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) >= 40 else None


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class RunInfo:
    id: str
    suite: str
    started_at: float
    ended_at: float | None
    status: str
    local: bool
    replay: bool
    total_jobs: int | None
    variants: list[str]
    settings: dict[str, Any]
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    suite_hash: str | None = None
    suite_path: str | None = None
    version: str | None = None
    host: str | None = None
    baseline: str | None = None
    origin: str | None = None
    imported_at: float | None = None

    @property
    def short_commit(self) -> str:
        """``1a2b3c4d5e`` or ``1a2b3c4d5e+`` for a dirty checkout; empty outside git."""
        if not self.git_commit:
            return ""
        return self.git_commit[:10] + ("+" if self.git_dirty else "")


class Store:
    """A connection to the results database. Not shared across threads: the runner writes
    from its coordinating thread, where results arrive.

    ``create=False`` is for commands that only read history (``runs``, ``show``, ``compare``,
    ``report``, ``export``, ``history``): a missing file is a mistake there (a wrong ``--db``),
    not a reason to make an empty one, and the file is opened read-only (``readonly``
    defaults to ``not create``), so history on a read-only mount or in a write-protected file
    can be read. A read-only open changes nothing: no journal mode, no migration; only a
    database that needs a schema upgrade is opened for writing, to be upgraded (or refused
    with one line when it cannot be written). Writing to a read-only database fails at open
    with "... is read-only; pass --db to write elsewhere".
    """

    def __init__(self, path: str | Path | None = None, create: bool = True, readonly: bool | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        readonly = (not create) if readonly is None else readonly
        self.readonly = readonly
        if (readonly or not create) and not self.path.exists():
            raise GlmevalError(
                f"no results database at {self.path}; run a suite first, or point --db (GLMEVAL_DB) at one"
            )
        if self.path.is_dir():
            raise GlmevalError(f"{self.path}: is a directory, not a results database")
        if readonly and self._open_readonly():
            return
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            deadline = time.monotonic() + 30.0
            delay = 0.02
            while True:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                self.conn = conn
                try:
                    self._setup(conn)
                    break
                except sqlite3.OperationalError as exc:
                    # Switching to WAL and creating the schema can meet another process doing
                    # the same (pytest-xdist workers opening one new database); SQLite reports
                    # that as "locked" without waiting, so wait here and try again.
                    if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                        raise
                    conn.close()
                    conn = None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
        except (sqlite3.DatabaseError, OSError) as exc:
            if conn is not None:
                conn.close()
            if is_readonly_error(exc, self.path):
                raise GlmevalError(self._readonly_message()) from None
            if isinstance(exc, OSError):
                raise GlmevalError(f"{self.path}: cannot open the database ({exc.strerror or exc})") from None
            raise GlmevalError(
                f"{self.path}: not a usable glmeval database ({exc}); point --db at another file or move this one aside"
            ) from None
        except GlmevalError:
            if conn is not None:
                conn.close()
            raise

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()
        # Opening may succeed on a file SQLite can only read (it falls back to read-only
        # quietly); find out now, with one clear line, not at the first result.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        finally:
            conn.execute("ROLLBACK")

    def _readonly_message(self) -> str:
        """The one line for a database glmeval may read but not write."""
        if self.readonly:  # reading needed a schema upgrade, and it cannot be written
            return (
                f"{self.path} is read-only and needs a schema upgrade this glmeval cannot write; "
                "copy it somewhere writable and point --db at the copy"
            )
        if not self.path.exists():
            folder = self.path.parent
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            return f"cannot create {self.path}: {folder} is read-only; pass --db to write elsewhere"
        return f"{self.path} is read-only; pass --db to write elsewhere (runs, show, report and export can still read it)"

    def _open_readonly(self) -> bool:
        """Open with SQLite's ``mode=ro``: no write, no journal-mode change, no migration, so a
        database on a read-only mount or in a write-protected file (a CI artefact, say) can be
        read. Returns False when the file needs a schema upgrade first (the caller then opens
        it for writing, which migrates, or says it cannot)."""
        base = "file:" + urllib.parse.quote(str(self.path.resolve())) + "?mode=ro"
        wal = Path(f"{self.path}-wal")
        conn: sqlite3.Connection | None = None
        try:
            try:
                conn = self._connect_ro(base)
            except sqlite3.OperationalError as exc:
                # A WAL database in a read-only folder cannot make its -shm file. With no
                # pending write-ahead log there is nothing it would hold: read the file as is.
                if getattr(exc, "sqlite_errorname", "") != "SQLITE_CANTOPEN" and "unable to open" not in str(exc):
                    raise
                if wal.exists() and wal.stat().st_size > 0:
                    raise GlmevalError(
                        f"{self.path} is read-only and has unmerged writes in {wal.name} that SQLite cannot read "
                        "from a read-only folder; copy the database with its -wal file somewhere writable"
                    ) from None
                conn = self._connect_ro(base + "&immutable=1")
            self.conn = conn
            version = self._schema_version()
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if not os.access(self.path, os.R_OK):
                raise GlmevalError(f"{self.path}: cannot open the database (permission denied)") from None
            raise GlmevalError(
                f"{self.path}: not a usable glmeval database ({exc}); point --db at another file or move this one aside"
            ) from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if version > SCHEMA_VERSION:
            conn.close()
            raise GlmevalError(
                f"{self.path}: database schema version {version} is newer than this glmeval ({SCHEMA_VERSION}); upgrade glmeval"
            )
        if version < SCHEMA_VERSION:
            conn.close()
            return False
        return True

    @staticmethod
    def _connect_ro(uri: str) -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opening is lazy: read now
        except BaseException:
            conn.close()
            raise
        return conn

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _schema_version(self) -> int:
        """0 for an empty file; raises for a SQLite file that is not a glmeval database."""
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            if tables - _OWN_TABLES:
                raise GlmevalError(
                    f"{self.path}: a SQLite database but not a glmeval one (tables: {', '.join(sorted(tables)[:5])}); "
                    "point --db at another file"
                )
            return 0
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            return int(row[0]) if row else 0
        except ValueError:
            raise GlmevalError(f"{self.path}: unreadable schema version {row[0]!r}") from None

    def _migrate(self) -> None:
        """Create the schema in a new file, or bring an older one up to :data:`SCHEMA_VERSION`.

        The version is read again under the write lock: two processes opening the same old
        database at once must not both run ``ALTER TABLE`` (the second would fail).
        """
        current = self._schema_version()
        if current > SCHEMA_VERSION:
            raise GlmevalError(
                f"{self.path}: database schema version {current} is newer than this glmeval ({SCHEMA_VERSION}); upgrade glmeval"
            )
        if current == SCHEMA_VERSION:
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            current = self._schema_version()
            if current == 0:
                _run_script(self.conn, SCHEMA)
            elif current < SCHEMA_VERSION:
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    step = MIGRATIONS[version]
                    if callable(step):
                        step(self.conn)
                    else:
                        _run_script(self.conn, step)
            if current != SCHEMA_VERSION:
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        return self._schema_version()

    def close(self) -> None:
        self.conn.close()

    # -- runs -----------------------------------------------------------------------------

    def start_run(
        self,
        suite: str,
        *,
        suite_hash: str | None = None,
        suite_path: str | None = None,
        settings: dict[str, Any] | None = None,
        local: bool = False,
        replay: bool = False,
        total_jobs: int | None = None,
        variants: list[str] | None = None,
        run_id: str | None = None,
        cwd: Path | None = None,
    ) -> str:
        from glmeval.version import __version__

        run_id = run_id or new_run_id()
        git = git_info(cwd)
        self.conn.execute(
            # OR IGNORE: pytest-xdist workers all start the same run id; the first one creates it.
            """INSERT OR IGNORE INTO runs (id, suite, suite_hash, suite_path, started_at, status, git_commit, git_branch,
               git_dirty, version, host, settings, local, replay, total_jobs, variants)
               VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                run_id,
                suite,
                suite_hash,
                suite_path,
                time.time(),
                git.get("git_commit"),
                git.get("git_branch"),
                None if "git_dirty" not in git else int(git["git_dirty"]),
                __version__,
                platform.node(),
                json.dumps(settings or {}, ensure_ascii=False, default=str),
                int(local),
                int(replay),
                total_jobs,
                json.dumps(variants or [], ensure_ascii=False),
            ),
        )
        return run_id

    def finish_run(self, run_id: str, status: str) -> None:
        self.conn.execute("UPDATE runs SET ended_at = ?, status = ? WHERE id = ?", (time.time(), status, run_id))

    def set_baseline(self, run_id: str, baseline_id: str | None) -> None:
        """Remember which run ``run_id`` was gated against, for ``glmeval show``."""
        self.conn.execute("UPDATE runs SET baseline = ? WHERE id = ?", (baseline_id, run_id))

    def get_run(self, run_id: str) -> RunInfo | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_info(row) if row else None

    def require_run(self, run_id: str) -> RunInfo:
        """The run, or a clear error naming the database."""
        info = self.get_run(run_id)
        if info is None:
            raise GlmevalError(f"no run {run_id!r} in {self.path}; `glmeval runs` lists them")
        return info

    def list_runs(
        self,
        suite: str | None = None,
        limit: int | None = 20,
        *,
        before: float | None = None,
        status: str | None = None,
        exclude: str | None = None,
        oldest_first: bool = False,
    ) -> list[RunInfo]:
        """Runs, newest first (``oldest_first`` for history), optionally only of one suite,
        started strictly before ``before``, with a given status, or other than ``exclude``."""
        clauses: list[str] = []
        args: list[Any] = []
        if suite:
            clauses.append("suite = ?")
            args.append(suite)
        if before is not None:
            clauses.append("started_at < ?")
            args.append(before)
        if status:
            clauses.append("status = ?")
            args.append(status)
        if exclude:
            clauses.append("id != ?")
            args.append(exclude)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        sql += " ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        runs = [_run_info(r) for r in self.conn.execute(sql, args)]
        return runs[::-1] if oldest_first else runs

    def run_counts(self, run_ids: list[str]) -> dict[str, dict[str, float]]:
        """Per run: results, passed, failed, errors, tokens and cost, in one query."""
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        rows = self.conn.execute(
            f"""SELECT run_id, COUNT(*) AS results, SUM(status = 'pass') AS passed, SUM(status = 'fail') AS failed,
                   SUM(status = 'error') AS errors, SUM(total_tokens) AS tokens, SUM(cost) AS cost
                FROM results WHERE run_id IN ({marks}) GROUP BY run_id""",
            run_ids,
        ).fetchall()
        return {r["run_id"]: {k: (r[k] or 0) for k in ("results", "passed", "failed", "errors", "tokens", "cost")} for r in rows}

    def suites(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT suite FROM runs ORDER BY suite")]

    def resolve_run(
        self,
        ref: str,
        suite: str | None = None,
        *,
        before: float | None = None,
        exclude: str | None = None,
        cwd: Path | None = None,
    ) -> str:
        """A run id from a reference a person types.

        In order: ``latest`` / ``latest~N`` (the newest, or N before it; of ``suite`` when
        given, started before ``before`` and other than ``exclude`` when given, which is how
        ``run --baseline latest`` finds "the previous run of this suite"), a full run id, an
        unambiguous id prefix, then a git ref (``main``, ``HEAD~1``, a sha): ``git rev-parse``
        turns it into a commit and the newest run made at that commit wins. A commit prefix
        stored in the database also works when git is not at hand (an imported run).
        """
        ref = ref.strip()
        if not ref:
            raise GlmevalError("empty run reference; use latest, latest~N, a run id or a git ref")
        where = f" for suite {suite!r}" if suite else ""
        if ref == "latest" or ref.startswith("latest~"):
            n = 0
            if "~" in ref:
                try:
                    n = int(ref.split("~", 1)[1])
                except ValueError:
                    n = -1
                if n < 0:
                    raise GlmevalError(f"bad run reference {ref!r}; use latest, latest~N (N >= 0) or a run id")
            runs = self.list_runs(suite=suite, limit=n + 1, before=before, exclude=exclude)
            if len(runs) <= n:
                have = len(runs)
                raise GlmevalError(
                    f"no run {ref!r} in {self.path}{where}"
                    + (f" (only {have} run{'s' if have != 1 else ''})" if have else " (no runs yet)")
                )
            return runs[n].id
        scope = " AND suite = ?" if suite else ""
        scope_args: list[Any] = [suite] if suite else []
        exact = self.conn.execute("SELECT id FROM runs WHERE id = ?" + scope, [ref, *scope_args]).fetchone()
        if exact:
            return str(exact[0])
        rows = self.conn.execute(
            "SELECT id FROM runs WHERE substr(id, 1, ?) = ?" + scope + " ORDER BY started_at DESC",
            [len(ref), ref, *scope_args],
        ).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if len(rows) > 1:
            shown = ", ".join(r[0] for r in rows[:3]) + (", ..." if len(rows) > 3 else "")
            raise GlmevalError(f"run reference {ref!r} is ambiguous ({len(rows)} runs match: {shown}); give more of the id")
        commit = _git_rev_parse(ref, cwd)
        if commit:
            row = self.conn.execute(
                "SELECT id FROM runs WHERE git_commit = ?" + scope + " ORDER BY started_at DESC LIMIT 1",
                [commit, *scope_args],
            ).fetchone()
            if row:
                return str(row[0])
            raise GlmevalError(f"no run{where} at git {ref!r} (commit {commit[:10]}) in {self.path}")
        if len(ref) >= 7 and all(ch in "0123456789abcdef" for ch in ref.lower()):
            row = self.conn.execute(
                "SELECT id FROM runs WHERE substr(git_commit, 1, ?) = ?" + scope + " ORDER BY started_at DESC LIMIT 1",
                [len(ref), ref.lower(), *scope_args],
            ).fetchone()
            if row:
                return str(row[0])
        raise GlmevalError(f"no run {ref!r}{where} in {self.path}; `glmeval runs` lists them")

    def delete_run(self, run_id: str) -> None:
        """Remove a run with its results and checks (``import --replace``)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for table in ("checks", "results"):
                self.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            self.conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def columns(self, table: str) -> list[str]:
        """The columns ``table`` has in this database (export/import copy exactly these)."""
        return [r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")]

    # -- results --------------------------------------------------------------------------

    def add_result(self, run_id: str, result: Result) -> None:
        """Write one result and its checks in one transaction."""
        job, c = result.job, result.completion
        err = c.error
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                """INSERT OR REPLACE INTO results (run_id, job_id, case_id, variant_id, variant, repeat, model, mode,
                   status, passed, score, output, tool_calls, finish_reason, prompt_tokens, completion_tokens,
                   total_tokens, latency_ms, ttft_ms, queue_ms, retry_ms, cost, error_kind, error_status, error_code,
                   error_message, attempts, cached, request_id, job, created_at, tags, judge_tokens, judge_cost)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    run_id,
                    job.id,
                    job.case_id,
                    job.variant_id,
                    json.dumps(job.variant, ensure_ascii=False, default=str),
                    job.repeat,
                    job.model,
                    job.mode,
                    result.status,
                    int(result.passed),
                    result.score,
                    c.text,
                    json.dumps([t.__dict__ for t in c.tool_calls], ensure_ascii=False) if c.tool_calls else None,
                    c.finish_reason,
                    c.prompt_tokens,
                    c.completion_tokens,
                    c.total_tokens,
                    c.latency_ms,
                    c.ttft_ms,
                    c.queue_ms,
                    c.retry_ms,
                    result.cost,
                    err.kind if err else None,
                    err.status if err else None,
                    err.code if err else None,
                    err.message if err else None,
                    c.attempts,
                    int(c.cached),
                    c.request_id,
                    json.dumps(job.to_dict(), ensure_ascii=False, default=str),
                    time.time(),
                    json.dumps(list(job.tags), ensure_ascii=False) if job.tags else None,
                    result.judge_tokens,
                    result.judge_cost,
                ),
            )
            self.conn.execute("DELETE FROM checks WHERE run_id = ? AND job_id = ?", (run_id, job.id))
            self.conn.executemany(
                """INSERT INTO checks (run_id, job_id, idx, type, label, metric, passed, score, weight, reason, error)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    (run_id, job.id, i, r.type, r.label, r.metric, int(r.passed), r.score, r.weight, r.reason, int(r.error))
                    for i, r in enumerate(result.checks)
                ],
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def done_job_ids(self, run_id: str, include_errors: bool = False) -> set[str]:
        sql = "SELECT job_id FROM results WHERE run_id = ?"
        if not include_errors:
            sql += " AND status != 'error'"
        return {r[0] for r in self.conn.execute(sql, (run_id,))}

    def iter_results(self, run_id: str) -> Iterator[sqlite3.Row]:
        return iter(self.conn.execute("SELECT * FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)))

    def load_result(self, row: sqlite3.Row) -> Result:
        """Rebuild a Result (job, completion, checks) from a stored row."""
        from glmeval.records import ErrorInfo, ToolCall

        job = Job.from_dict(json.loads(row["job"]))
        error = (
            ErrorInfo(row["error_kind"], row["error_message"] or "", row["error_status"], row["error_code"])
            if row["error_kind"]
            else None
        )
        completion = Completion(
            text=row["output"] or "",
            tool_calls=[ToolCall(**t) for t in json.loads(row["tool_calls"])] if row["tool_calls"] else [],
            finish_reason=row["finish_reason"],
            prompt_tokens=row["prompt_tokens"] or 0,
            completion_tokens=row["completion_tokens"] or 0,
            total_tokens=row["total_tokens"] or 0,
            latency_ms=row["latency_ms"],
            ttft_ms=row["ttft_ms"],
            queue_ms=row["queue_ms"] or 0.0,
            retry_ms=row["retry_ms"] or 0.0,
            request_id=row["request_id"],
            model=row["model"],
            error=error,
            attempts=row["attempts"] or 1,
            cached=bool(row["cached"]),
        )
        checks = [
            CheckResult(r["type"], bool(r["passed"]), r["score"], r["reason"], r["metric"], r["weight"], r["label"], bool(r["error"]))
            for r in self.conn.execute(
                "SELECT * FROM checks WHERE run_id = ? AND job_id = ? ORDER BY idx", (row["run_id"], row["job_id"])
            )
        ]
        return Result(
            job, completion, checks, bool(row["passed"]), row["score"] or 0.0, row["cost"] or 0.0,
            judge_tokens=row["judge_tokens"] or 0, judge_cost=row["judge_cost"] or 0.0,
        )

    # -- cache ----------------------------------------------------------------------------

    def cache_get(self, key: str) -> Completion | None:
        row = self.conn.execute("SELECT completion FROM cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        completion = Completion.from_dict(json.loads(row[0]))
        completion.cached = True
        return completion

    def cache_count(self, keys: list[str]) -> int:
        """How many of ``keys`` have a cached answer (without loading any)."""
        unique = list(dict.fromkeys(keys))
        cached: set[str] = set()
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ",".join("?" * len(chunk))
            cached.update(r[0] for r in self.conn.execute(f"SELECT key FROM cache WHERE key IN ({marks})", chunk))
        return sum(1 for key in keys if key in cached)

    def cache_put(self, key: str, model: str, completion: Completion) -> None:
        if completion.error is not None:
            return
        data = completion.to_dict()
        data.pop("raw", None)
        self.conn.execute(
            "INSERT OR REPLACE INTO cache (key, model, completion, created_at) VALUES (?, ?, ?, ?)",
            (key, model, json.dumps(data, ensure_ascii=False), time.time()),
        )


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute ``;``-separated statements one by one (``executescript`` would commit the
    surrounding transaction, and the migration must stay atomic)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _run_info(row: sqlite3.Row) -> RunInfo:
    keys = set(row.keys())
    return RunInfo(
        id=row["id"],
        suite=row["suite"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=row["status"],
        local=bool(row["local"]),
        replay=bool(row["replay"]),
        total_jobs=row["total_jobs"],
        variants=json.loads(row["variants"] or "[]"),
        settings=json.loads(row["settings"] or "{}"),
        git_commit=row["git_commit"],
        git_branch=row["git_branch"],
        git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
        suite_hash=row["suite_hash"],
        suite_path=row["suite_path"],
        version=row["version"],
        host=row["host"],
        baseline=row["baseline"] if "baseline" in keys else None,
        origin=row["origin"] if "origin" in keys else None,
        imported_at=row["imported_at"] if "imported_at" in keys else None,
    )
