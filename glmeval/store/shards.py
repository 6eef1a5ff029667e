"""The ``shards`` table: which slices of a shared run have started and how each ended.

A run split across machines (``glmeval run --shard K/N --run-id ID``) is one row in ``runs``
and one row here per shard. Its status is derived from these rows, in the same write
transaction that changes one of them, so shards finishing at the same moment on different
hosts still leave the right answer: ``running`` until all N have ended, ``complete`` when all
N completed, otherwise the worst of their endings (``aborted`` > ``interrupted`` > ``budget``).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass

from glmeval.errors import GlmevalError
from glmeval.store.engine import Connection
from glmeval.store.sqlite import insert_sql, write_transaction

SHARD_COLUMNS = ("run_id", "shard", "shard_count", "status", "jobs", "host", "started_at", "ended_at")
_WORST_FIRST = ("aborted", "interrupted", "budget")


@dataclass(frozen=True)
class ShardRow:
    run_id: str
    shard: int
    shard_count: int
    status: str
    jobs: int
    host: str | None
    started_at: float
    ended_at: float | None


@dataclass(frozen=True)
class RunShards:
    """Where a sharded run stands: ``ended`` of ``count`` shards have ended; ``status`` is the
    run's (derived) status."""

    count: int
    ended: int
    status: str
    rows: tuple[ShardRow, ...]

    @property
    def missing(self) -> list[int]:
        have = {r.shard for r in self.rows if r.status != "running"}
        return [k for k in range(1, self.count + 1) if k not in have]


def shard_rows(conn: Connection, run_id: str) -> list[ShardRow]:
    rows = conn.execute(
        f"SELECT {', '.join(SHARD_COLUMNS)} FROM shards WHERE run_id = ? ORDER BY shard", (run_id,)
    ).fetchall()
    return [ShardRow(*tuple(r)) for r in rows]


def begin_shard(conn: Connection, run_id: str, shard: int, count: int, jobs: int) -> None:
    """Record that shard ``shard`` of ``count`` started (again, after a CI retry) with ``jobs``
    jobs, and put the run back to ``running``. Refuses a shard count other than the run's."""
    with write_transaction(conn):
        rows = shard_rows(conn, run_id)
        if rows and rows[0].shard_count != count:
            raise GlmevalError(
                f"run {run_id} is split into {rows[0].shard_count} shards, not {count}; "
                f"give --shard K/{rows[0].shard_count}, or a new --run-id"
            )
        conn.execute(
            insert_sql("shards", SHARD_COLUMNS, "replace"),
            (run_id, shard, count, "running", jobs, platform.node(), time.time(), None),
        )
        conn.execute("UPDATE runs SET status = 'running', ended_at = NULL WHERE id = ?", (run_id,))


def finish_shard(conn: Connection, run_id: str, shard: int, status: str) -> RunShards:
    """Record how shard ``shard`` ended and settle the run's status from all its shards."""
    with write_transaction(conn):
        conn.execute(
            "UPDATE shards SET status = ?, ended_at = ? WHERE run_id = ? AND shard = ?", (status, time.time(), run_id, shard)
        )
        return settle(conn, run_id)


def settle(conn: Connection, run_id: str) -> RunShards:
    """Derive and store the run's status from its shard rows (inside the caller's transaction)."""
    rows = shard_rows(conn, run_id)
    count = rows[0].shard_count if rows else 0
    ended = [r for r in rows if r.status != "running"]
    if len(ended) < count:
        status, ended_at = "running", None
    else:
        statuses = {r.status for r in ended}
        status = next((s for s in _WORST_FIRST if s in statuses), "complete")
        ended_at = max(r.ended_at or 0.0 for r in ended)
    conn.execute("UPDATE runs SET status = ?, ended_at = ? WHERE id = ?", (status, ended_at, run_id))
    return RunShards(count, len(ended), status, tuple(rows))


def is_sharded(conn: Connection, run_id: str) -> bool:
    return conn.execute("SELECT 1 FROM shards WHERE run_id = ? LIMIT 1", (run_id,)).fetchone() is not None


def run_shards(conn: Connection, run_id: str) -> RunShards | None:
    """The run's shards, or None for a run that was not split."""
    rows = shard_rows(conn, run_id)
    if not rows:
        return None
    ended = [r for r in rows if r.status != "running"]
    status = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    return RunShards(rows[0].shard_count, len(ended), status[0] if status else "running", tuple(rows))


__all__ = ["SHARD_COLUMNS", "RunShards", "ShardRow", "begin_shard", "finish_shard", "is_sharded", "run_shards", "settle", "shard_rows"]
