"""The :class:`Store`: one connection to the results database, and every read and write the
runner, the reports and the history commands make through it.

Results are written one by one as they arrive, so an interrupted run loses nothing and can be
resumed. Opening brings an older database up to date (:mod:`glmeval.store.migrations`); how
SQLite is connected, locked and told apart from a read-only file is :mod:`glmeval.store.sqlite`,
and a ``postgresql://`` location opens :mod:`glmeval.store.postgres` instead: every statement
below is written once and runs on both (``?`` placeholders, no boolean arithmetic).
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from glmeval.errors import GlmevalError
from glmeval.records import CheckResult, Completion, ErrorInfo, Job, Result, ToolCall
from glmeval.store.engine import Connection, Engine, engine_of
from glmeval.store.lease import with_live_status
from glmeval.store.location import database_location
from glmeval.store.migrations import migrate, refuse_newer, schema_state
from glmeval.store.protocols import StoreWriter
from glmeval.store.refs import git_info
from glmeval.store.refs import resolve_run as resolve_ref
from glmeval.store.runinfo import Row, RunInfo, new_run_id, run_info
from glmeval.store.shards import is_sharded, settle
from glmeval.store.sqlite import (
    ROWID,
    insert_sql,
    is_readonly_error,
    nearest_existing_folder,
    open_for_writing,
    open_readonly,
    probe_writable,
    table_columns,
    write_transaction,
)
from glmeval.version import __version__

_RUN_START_COLUMNS = (
    "id", "suite", "suite_hash", "suite_path", "started_at", "status", "git_commit", "git_branch", "git_dirty",
    "version", "host", "settings", "local", "replay", "total_jobs", "variants",
)
_RESULT_COLUMNS = (
    "run_id", "job_id", "case_id", "variant_id", "variant", "repeat", "model", "mode", "status", "passed", "score",
    "output", "tool_calls", "finish_reason", "prompt_tokens", "completion_tokens", "total_tokens", "latency_ms",
    "ttft_ms", "queue_ms", "retry_ms", "cost", "error_kind", "error_status", "error_code", "error_message",
    "attempts", "cached", "request_id", "job", "created_at", "tags", "judge_tokens", "judge_cost",
    "reasoning", "reasoning_tokens", "reasoning_estimated", "ttfr_ms", "cached_tokens", "web_search", "thinking",
)
_CHECK_COLUMNS = ("run_id", "job_id", "idx", "type", "label", "metric", "passed", "score", "weight", "reason", "error")


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

    ``path`` may be a ``postgresql://`` URL (``--db`` / ``GLMEVAL_DB``): the history then lives
    on that server, shared by every machine that points at it, and ``path`` is the URL with its
    password redacted (what every message shows).
    """

    conn: Connection
    path: Path | str

    def __init__(self, path: str | Path | None = None, create: bool = True, readonly: bool | None = None) -> None:
        location = database_location(path)
        self._location = location  # the URL with its password, for reopen(); never shown
        readonly = (not create) if readonly is None else readonly
        self.readonly = readonly
        if isinstance(location, str):
            from glmeval.store.postgres import open_database

            self.conn = open_database(location, create)
            self.path = self.conn.label
            return
        self.path = self.file = location
        if (readonly or not create) and not self.file.exists():
            raise GlmevalError(
                f"no results database at {self.path}; run a suite first, or point --db (GLMEVAL_DB) at one"
            )
        if self.file.is_dir():
            raise GlmevalError(f"{self.path}: is a directory, not a results database")
        if readonly and self._open_readonly():
            return
        try:
            self.conn = open_for_writing(self.file, self._setup)
        except (sqlite3.DatabaseError, OSError) as exc:
            if is_readonly_error(exc, self.file):
                raise GlmevalError(self._readonly_message()) from None
            if isinstance(exc, OSError):
                raise GlmevalError(f"{self.path}: cannot open the database ({exc.strerror or exc})") from None
            raise GlmevalError(
                f"{self.path}: not a usable glmeval database ({exc}); point --db at another file or move this one aside"
            ) from None

    @property
    def engine(self) -> Engine:
        return engine_of(self.conn)

    def _setup(self, conn: sqlite3.Connection) -> None:
        migrate(conn, self.path)
        probe_writable(conn)

    def _readonly_message(self) -> str:
        """The one line for a database glmeval may read but not write."""
        if self.readonly:  # reading needed a schema upgrade, and it cannot be written
            return (
                f"{self.path} is read-only and needs a schema upgrade this glmeval cannot write; "
                "copy it somewhere writable and point --db at the copy"
            )
        if not self.file.exists():
            folder = nearest_existing_folder(self.file)
            return f"cannot create {self.path}: {folder} is read-only; pass --db to write elsewhere"
        return f"{self.path} is read-only; pass --db to write elsewhere (runs, show, report and export can still read it)"

    def _open_readonly(self) -> bool:
        """Open without writing anything, so a database on a read-only mount or in a
        write-protected file (a CI artefact, say) can be read. Returns False when the file
        needs a migration first (the caller then opens it for writing, which migrates, or says
        it cannot). A database whose migrations are all applied but not yet recorded by name
        (made before names were) reads as it is."""
        conn: sqlite3.Connection | None = None
        try:
            conn = open_readonly(self.file)
            state = schema_state(conn, self.path)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if not os.access(self.file, os.R_OK):
                raise GlmevalError(f"{self.path}: cannot open the database (permission denied)") from None
            raise GlmevalError(
                f"{self.path}: not a usable glmeval database ({exc}); point --db at another file or move this one aside"
            ) from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if state.newer or state.pending:
            conn.close()
            refuse_newer(state, self.path)
            return False
        self.conn = conn
        return True

    def reopen(self) -> Store:
        """A second connection to the same database (the lease's heartbeat thread writes on its
        own): ``path`` cannot serve, a PostgreSQL URL's password is redacted there."""
        return type(self)(self._location, readonly=self.readonly)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The database's ``meta.schema_version``: how many migrations it has applied."""
        return schema_state(self.conn, self.path).version

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
        git: Mapping[str, Any] | None = None,
    ) -> str:
        """A new run's row; ``git`` is :func:`git_info` of ``cwd`` found earlier (a
        :class:`~glmeval.store.refs.GitProbe`), else it is asked here."""
        run_id = run_id or new_run_id()
        git = git_info(cwd) if git is None else git
        self.conn.execute(
            # ignore: pytest-xdist workers all start the same run id; the first one creates it.
            insert_sql("runs", _RUN_START_COLUMNS, "ignore"),
            (
                run_id,
                suite,
                suite_hash,
                suite_path,
                time.time(),
                "running",
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
        if is_sharded(self.conn, run_id):  # one shard ended: the run's status follows from all of them
            with write_transaction(self.conn):
                settle(self.conn, run_id)
            return
        self.conn.execute("UPDATE runs SET ended_at = ?, status = ? WHERE id = ?", (time.time(), status, run_id))

    def set_baseline(self, run_id: str, baseline_id: str | None) -> None:
        """Remember which run ``run_id`` was gated against, for ``glmeval show``."""
        self.conn.execute("UPDATE runs SET baseline = ? WHERE id = ?", (baseline_id, run_id))

    def get_run(self, run_id: str) -> RunInfo | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return with_live_status(self.conn, [run_info(row)])[0] if row else None

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
        sql += f" ORDER BY started_at DESC, {ROWID} DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        # A killed run (``running`` with no live lease holder) reads as ``interrupted``.
        runs = with_live_status(self.conn, [run_info(r) for r in self.conn.execute(sql, args)])
        return runs[::-1] if oldest_first else runs

    def run_counts(self, run_ids: list[str]) -> dict[str, dict[str, float]]:
        """Per run: results, passed, failed, errors, tokens and costs, in one query.

        ``cost`` is what the run cost: ``answer_cost`` (the answers' own price, 0 for answers
        whose price is unknown) plus ``judge_cost`` (what model-graded checks spent grading);
        ``priced`` counts the results whose answer price is known, so a caller can show "?"
        instead of ¥0 for a run where none is.
        """
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        rows = self.conn.execute(
            f"""SELECT run_id, COUNT(*) AS results, SUM(CASE WHEN status = 'pass' THEN 1 ELSE 0 END) AS passed,
                   SUM(CASE WHEN status = 'fail' THEN 1 ELSE 0 END) AS failed,
                   SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, SUM(total_tokens) AS tokens,
                   SUM(cost) AS answer_cost, SUM(judge_cost) AS judge_cost,
                   SUM(CASE WHEN cost IS NOT NULL THEN 1 ELSE 0 END) AS priced
                FROM results WHERE run_id IN ({marks}) GROUP BY run_id""",
            run_ids,
        ).fetchall()
        keys = ("results", "passed", "failed", "errors", "tokens", "answer_cost", "judge_cost", "priced")
        out: dict[str, dict[str, float]] = {}
        for r in rows:
            counts = {k: (r[k] or 0) for k in keys}
            counts["cost"] = counts["answer_cost"] + counts["judge_cost"]
            out[r["run_id"]] = counts
        return out

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
        """A run id from a reference a person types (``latest~N``, an id or its prefix, a git
        ref); see :func:`glmeval.store.refs.resolve_run`."""
        return resolve_ref(self, ref, suite, before=before, exclude=exclude, cwd=cwd)

    def delete_run(self, run_id: str) -> None:
        """Remove a run with its results and checks (``import --replace``)."""
        with write_transaction(self.conn):
            for table in ("checks", "results", "leases", "batches"):
                self.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            self.conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def columns(self, table: str) -> list[str]:
        """The columns ``table`` has in this database (export/import copy exactly these)."""
        return table_columns(self.conn, table)

    # -- results --------------------------------------------------------------------------

    def add_result(self, run_id: str, result: Result) -> None:
        """Write one result and its checks in one transaction."""
        self.add_results(run_id, [result])

    def add_results(self, run_id: str, results: Sequence[Result], cache: Sequence[tuple[str, str, Completion]] = ()) -> None:
        """Write finished jobs, their checks and fresh answers for the cache in one
        transaction: the runner writes every answer that arrived together at once, so a burst
        costs one commit and a few statements, not several per job (each statement lets the
        worker threads take the GIL, and the coordinator waits to get it back)."""
        if not results and not cache:
            return
        rows = [_result_row(run_id, r) for r in results]
        checks = [
            (run_id, r.job.id, i, c.type, c.label, c.metric, int(c.passed), c.score, c.weight, c.reason, int(c.error))
            for r in results
            for i, c in enumerate(r.checks)
        ]
        with write_transaction(self.conn):
            if rows:
                self.conn.executemany(insert_sql("results", _RESULT_COLUMNS, "replace"), rows)
                self.conn.executemany(
                    "DELETE FROM checks WHERE run_id = ? AND job_id = ?", [(run_id, r.job.id) for r in results]
                )
            if checks:
                self.conn.executemany(insert_sql("checks", _CHECK_COLUMNS), checks)
            entries = [_cache_row(key, model, c) for key, model, c in cache if c.error is None]
            if entries:
                self.conn.executemany(_CACHE_INSERT, entries)

    def done_job_ids(self, run_id: str, include_errors: bool = False) -> set[str]:
        sql = "SELECT job_id FROM results WHERE run_id = ?"
        if not include_errors:
            sql += " AND status != 'error'"
        return {r[0] for r in self.conn.execute(sql, (run_id,))}

    def iter_results(self, run_id: str) -> Iterator[Row]:
        return cast("Iterator[Row]", iter(self.conn.execute(f"SELECT * FROM results WHERE run_id = ? ORDER BY {ROWID}", (run_id,))))

    def load_result(self, row: Row) -> Result:
        """Rebuild a Result (job, completion, checks) from a stored row.

        The columns of ``m004_reasoning`` are read only where the row has them, so a row
        built by hand or from an older export (a dict) still loads."""
        job = Job.from_dict(json.loads(row["job"]))
        keys = set(row.keys())

        def optional(column: str) -> Any:
            return row[column] if column in keys else None

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
            reasoning=optional("reasoning") or "",
            reasoning_tokens=optional("reasoning_tokens"),
            reasoning_estimated=bool(optional("reasoning_estimated")),
            ttfr_ms=optional("ttfr_ms"),
            cached_tokens=optional("cached_tokens"),
            web_search=json.loads(optional("web_search") or "[]"),
        )
        checks = [
            CheckResult(r["type"], bool(r["passed"]), r["score"], r["reason"], r["metric"], r["weight"], r["label"], bool(r["error"]))
            for r in self.conn.execute(
                "SELECT * FROM checks WHERE run_id = ? AND job_id = ? ORDER BY idx", (row["run_id"], row["job_id"])
            )
        ]
        return Result(
            job, completion, checks, bool(row["passed"]), row["score"] or 0.0, row["cost"],
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
        self.conn.execute(_CACHE_INSERT, _cache_row(key, model, completion))

_CACHE_INSERT = insert_sql("cache", ("key", "model", "completion", "created_at"), "replace")


def _cache_row(key: str, model: str, completion: Completion) -> tuple[str, str, str, float]:
    data = completion.to_dict()
    data.pop("raw", None)
    return (key, model, json.dumps(data, ensure_ascii=False), time.time())


def _result_row(run_id: str, result: Result) -> tuple[Any, ...]:
    """The ``results`` row of one finished job, in :data:`_RESULT_COLUMNS` order."""
    job, c = result.job, result.completion
    err = c.error
    return (
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
        c.reasoning,
        c.reasoning_tokens,
        int(c.reasoning_estimated),
        c.ttfr_ms,
        c.cached_tokens,
        json.dumps(c.web_search, ensure_ascii=False, default=str) if c.web_search else None,
        job.thinking,
    )


if TYPE_CHECKING:

    def _is_a_store_writer(store: Store) -> StoreWriter:
        """mypy proves here that :class:`Store` provides every Protocol method."""
        return store


__all__ = ["Store"]
