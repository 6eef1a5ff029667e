"""Copying a whole history from one database to another (``glmeval migrate --to URL``).

A team moving from one SQLite file per machine to a shared PostgreSQL history keeps every
row: runs, their results and checks, shard rows, the response cache and the migrations
bookkeeping (when each schema step was applied), in the order they were written, so reports,
``compare`` and ``--resume`` read the copy exactly as they read the file. Runs already in the
target (the same id: an earlier, interrupted copy, or two laptops' files copied one after the
other) are kept as they are and counted as skipped; the source is never changed.

It works between any two locations (SQLite to PostgreSQL, back, or file to file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from glmeval.errors import GlmevalError
from glmeval.store.engine import Connection, table_names
from glmeval.store.migrations import MIGRATIONS_TABLE
from glmeval.store.sqlite import ROWID, insert_sql, write_transaction
from glmeval.store.store import Store

# Tables keyed by run, copied for the runs the target lacks; then tables shared by all runs.
RUN_TABLES = ("runs", "results", "checks", "shards", "leases")
SHARED_TABLES = ("cache",)
BATCH = 1000


@dataclass
class CopyReport:
    copied_runs: int = 0
    skipped_runs: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def lines(self, target: str) -> list[str]:
        counts = ", ".join(f"{n:,} {table}" for table, n in self.rows.items() if table != "runs")
        out = [f"copied {self.copied_runs:,} run(s) ({counts}) into {target}"]
        if self.skipped_runs:
            shown = ", ".join(self.skipped_runs[:5]) + (", ..." if len(self.skipped_runs) > 5 else "")
            out.append(f"skipped {len(self.skipped_runs)} run(s) already there: {shown}")
        return out


def copy_history(source: Store, target: Store, progress: Callable[[str], None] | None = None) -> CopyReport:
    """Copy every run the target lacks (with all its rows), the cache entries it lacks, and the
    source's migration dates, in one transaction on the target: a failure leaves it unchanged."""
    if str(source.path) == str(target.path):
        raise GlmevalError(f"--to is the database being copied ({target.path}); name another one")
    report = CopyReport()
    src, dst = source.conn, target.conn
    present = {r[0] for r in dst.execute("SELECT id FROM runs")}
    run_ids = [r[0] for r in src.execute(f"SELECT id FROM runs ORDER BY {ROWID}")]
    todo = [rid for rid in run_ids if rid not in present]
    report.skipped_runs = [rid for rid in run_ids if rid in present]
    report.copied_runs = len(todo)
    have = table_names(src)
    with write_transaction(dst):
        for table in RUN_TABLES:
            if table not in have or table not in table_names(dst):
                continue
            key = "id" if table == "runs" else "run_id"
            report.rows[table] = _copy_rows(source, target, table, key, todo, progress)
        for table in SHARED_TABLES:
            report.rows[table] = _copy_rows(source, target, table, None, None, progress)
        _copy_migration_dates(src, dst)
    return report


def _copy_rows(
    source: Store, target: Store, table: str, key: str | None, run_ids: list[str] | None, progress: Callable[[str], None] | None
) -> int:
    columns = [c for c in source.columns(table) if c in set(target.columns(table))]
    select = f"SELECT {', '.join(columns)} FROM {table}"
    insert = insert_sql(table, columns, "fail" if key else "ignore")
    copied = 0
    batches = [run_ids[i : i + 500] for i in range(0, len(run_ids), 500)] if run_ids is not None else [None]
    for chunk in batches:
        if chunk is not None and not chunk:
            continue
        sql, args = select, []
        if chunk is not None:
            sql += f" WHERE {key} IN ({','.join('?' * len(chunk))})"
            args = list(chunk)
        cursor = source.conn.execute(sql + f" ORDER BY {ROWID}", args)
        while True:
            rows = cursor.fetchmany(BATCH)
            if not rows:
                break
            target.conn.executemany(insert, [tuple(r) for r in rows])
            copied += len(rows)
            if progress is not None:
                progress(f"{table}: {copied:,}")
    return copied


def _copy_migration_dates(src: Connection, dst: Connection) -> None:
    """Keep when each migration was first applied (the source's dates), not when the target was made."""
    rows = src.execute(f"SELECT name, applied_at FROM {MIGRATIONS_TABLE}").fetchall()
    for name, applied_at in rows:
        dst.execute(f"UPDATE {MIGRATIONS_TABLE} SET applied_at = ? WHERE name = ?", (applied_at, name))


def table_rows(store: Store, table: str) -> list[tuple[object, ...]]:
    """Every row of ``table`` (its columns in order, ``rowid`` left out), sorted: what
    ``migrate --check`` and the tests compare between two databases."""
    columns = store.columns(table)
    rows = [tuple(r) for r in store.conn.execute(f"SELECT {', '.join(columns)} FROM {table}")]
    return sorted(rows, key=repr)


__all__ = ["CopyReport", "RUN_TABLES", "SHARED_TABLES", "copy_history", "table_rows"]
