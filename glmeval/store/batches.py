"""The Batch API work a run submitted (table ``batches``, migration ``m007_batches``).

Written the moment it exists, so a killed run loses none of it: the uploaded input file (and
which jobs it holds) before the batch is created, the batch id right after. ``--resume`` reads
these rows to poll what was submitted rather than submit it again. SQL is portable (``?``
placeholders through the store's connection, ``ON CONFLICT`` upserts, Unix seconds as REAL).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from glmeval.store.store import Store

__all__ = ["FINAL_STATES", "StoredBatch", "note_batch", "note_state", "note_upload", "stored_batches"]

FINAL_STATES = frozenset({"completed", "failed", "expired", "cancelled", "lost"})
"""States after which a batch does no more work; ``lost`` is glmeval's own: the endpoint no
longer knows the batch (a ``--local`` server does not outlive its run)."""


@dataclass(frozen=True)
class StoredBatch:
    """One row: an input file, the batch made from it (``None`` until created), its jobs."""

    input_file_id: str
    run_id: str
    batch_id: str | None
    model: str
    job_ids: tuple[str, ...]
    status: str
    output_file_id: str | None
    error_file_id: str | None
    collected: bool


def note_upload(store: Store, run_id: str, input_file_id: str, model: str, job_ids: list[str]) -> None:
    """An input file is uploaded; its batch is not created yet."""
    now = time.time()
    store.conn.execute(
        "INSERT INTO batches (input_file_id, run_id, batch_id, model, job_ids, status, created, updated) "
        "VALUES (?, ?, NULL, ?, ?, 'uploaded', ?, ?)",
        (input_file_id, run_id, model, json.dumps(job_ids), now, now),
    )


def note_batch(store: Store, input_file_id: str, batch_id: str, status: str) -> None:
    """The batch made from ``input_file_id`` exists on the endpoint."""
    store.conn.execute(
        "UPDATE batches SET batch_id = ?, status = ?, updated = ? WHERE input_file_id = ?",
        (batch_id, status, time.time(), input_file_id),
    )


def note_state(
    store: Store,
    input_file_id: str,
    status: str,
    *,
    output_file_id: str | None = None,
    error_file_id: str | None = None,
    collected: bool = False,
) -> None:
    """The batch's latest state; ``collected`` once every job of it has its result stored."""
    store.conn.execute(
        "UPDATE batches SET status = ?, output_file_id = COALESCE(?, output_file_id), "
        "error_file_id = COALESCE(?, error_file_id), collected = ?, updated = ? WHERE input_file_id = ?",
        (status, output_file_id or None, error_file_id or None, int(collected), time.time(), input_file_id),
    )


def stored_batches(store: Store, run_id: str) -> list[StoredBatch]:
    """Every batch row of ``run_id``, oldest first."""
    rows = store.conn.execute(
        "SELECT input_file_id, run_id, batch_id, model, job_ids, status, output_file_id, error_file_id, collected "
        "FROM batches WHERE run_id = ? ORDER BY created, input_file_id",
        (run_id,),
    ).fetchall()
    return [
        StoredBatch(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5], r[6], r[7], bool(r[8]))
        for r in rows
    ]
