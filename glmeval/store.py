"""The SQLite history: runs, results, check results and the response cache.

Results are written one by one as they arrive, so an interrupted run loses nothing and can be
resumed. WAL mode and a busy timeout let two runs write the same database at once. The schema
carries a version; :data:`MIGRATIONS` brings an older database up to date on open.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from glmeval.errors import GlmevalError
from glmeval.records import CheckResult, Completion, Job, Result

DEFAULT_DB = Path(".glmeval") / "results.db"
SCHEMA_VERSION = 1

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
"""

# version -> SQL that upgrades a database at version-1 to it.
MIGRATIONS: dict[int, str] = {}


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


class Store:
    """A connection to the results database. Not shared across threads: the runner writes
    from its coordinating thread, where results arrive."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA busy_timeout = 30000")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise GlmevalError(
                f"{self.path}: not a usable glmeval database ({exc}); point --db at another file or move this one aside"
            ) from None
        except OSError as exc:
            raise GlmevalError(f"{self.path}: cannot open the database ({exc.strerror})") from None

    def _migrate(self) -> None:
        has_meta = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        current = 0
        if has_meta:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise GlmevalError(
                f"{self.path}: database schema version {current} is newer than this glmeval ({SCHEMA_VERSION}); upgrade glmeval"
            )
        if current == SCHEMA_VERSION:
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if current == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
            else:
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[version].split(";"):
                        if statement.strip():
                            self.conn.execute(statement)
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise

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
        from glmeval import __version__

        run_id = run_id or new_run_id()
        git = git_info(cwd)
        self.conn.execute(
            """INSERT INTO runs (id, suite, suite_hash, suite_path, started_at, status, git_commit, git_branch,
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

    def get_run(self, run_id: str) -> RunInfo | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_info(row) if row else None

    def list_runs(self, suite: str | None = None, limit: int = 20) -> list[RunInfo]:
        sql = "SELECT * FROM runs"
        args: list[Any] = []
        if suite:
            sql += " WHERE suite = ?"
            args.append(suite)
        sql += " ORDER BY started_at DESC LIMIT ?"
        args.append(limit)
        return [_run_info(r) for r in self.conn.execute(sql, args)]

    def resolve_run(self, ref: str, suite: str | None = None) -> str:
        """A run id from ``latest``, ``latest~N``, an id or an unambiguous id prefix."""
        if ref == "latest" or ref.startswith("latest~"):
            n = 0
            if "~" in ref:
                try:
                    n = int(ref.split("~", 1)[1])
                except ValueError:
                    raise GlmevalError(f"bad run reference {ref!r}; use latest, latest~N or a run id") from None
            runs = self.list_runs(suite=suite, limit=n + 1)
            if len(runs) <= n:
                raise GlmevalError(f"no run {ref!r} in {self.path}" + (f" for suite {suite!r}" if suite else ""))
            return runs[n].id
        rows = self.conn.execute("SELECT id FROM runs WHERE id LIKE ? ORDER BY started_at DESC", (ref + "%",)).fetchall()
        if len(rows) == 1 or (rows and rows[0][0] == ref):
            return rows[0][0]
        if len(rows) > 1:
            raise GlmevalError(f"run reference {ref!r} is ambiguous ({len(rows)} runs match); give more of the id")
        by_commit = self.conn.execute(
            "SELECT id FROM runs WHERE git_commit LIKE ? ORDER BY started_at DESC LIMIT 1", (ref + "%",)
        ).fetchone()
        if by_commit and len(ref) >= 7:
            return by_commit[0]
        raise GlmevalError(f"no run {ref!r} in {self.path}; `glmeval runs` lists them")

    # -- results --------------------------------------------------------------------------

    def add_result(self, run_id: str, result: Result) -> None:
        """Write one result and its checks in one transaction."""
        job, c = result.job, result.completion
        err = c.error
        self.conn.execute("BEGIN")
        try:
            self.conn.execute(
                """INSERT OR REPLACE INTO results (run_id, job_id, case_id, variant_id, variant, repeat, model, mode,
                   status, passed, score, output, tool_calls, finish_reason, prompt_tokens, completion_tokens,
                   total_tokens, latency_ms, ttft_ms, queue_ms, retry_ms, cost, error_kind, error_status, error_code,
                   error_message, attempts, cached, request_id, job, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
        return Result(job, completion, checks, bool(row["passed"]), row["score"] or 0.0, row["cost"] or 0.0)

    # -- cache ----------------------------------------------------------------------------

    def cache_get(self, key: str) -> Completion | None:
        row = self.conn.execute("SELECT completion FROM cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        completion = Completion.from_dict(json.loads(row[0]))
        completion.cached = True
        return completion

    def cache_put(self, key: str, model: str, completion: Completion) -> None:
        if completion.error is not None:
            return
        data = completion.to_dict()
        data.pop("raw", None)
        self.conn.execute(
            "INSERT OR REPLACE INTO cache (key, model, completion, created_at) VALUES (?, ?, ?, ?)",
            (key, model, json.dumps(data, ensure_ascii=False), time.time()),
        )


def _run_info(row: sqlite3.Row) -> RunInfo:
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
    )
