"""Every result of a run as CSV or JSON Lines, streamed from the store a page at a time.

A big run's report.html shows its worst cases and counts the rest; these files hold all of
it (each answer, its verdict and why it failed), written next to the report and linked from
it, or by ``glmeval report RUN --format csv|jsonl``. Rows are read and written one page at a
time, so a 100,000-result export takes the memory of one page.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and
model output is untrusted: such CSV cells get a leading ``'`` (the usual guard); JSON Lines
keeps every value as stored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from glmeval.analysis.lean import PAGE_ROWS, pages
from glmeval.report.matrix import CheckRow, shown_reason
from glmeval.store import StoreReader

EXPORT_COLUMNS = [
    "run_id", "job_id", "case_id", "variant_id", "repeat", "model", "status", "passed", "score", "why", "output",
    "tool_calls", "reasoning", "finish_reason", "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens",
    "reasoning_tokens", "total_tokens", "cost", "judge_cost", "cached", "attempts", "error_kind", "error_status",
    "error_message",
]
_STORED = [c for c in EXPORT_COLUMNS if c != "why"]
EXPORT_FILES: dict[str, str] = {"csv": "results.csv", "jsonl": "results.jsonl"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _reasons(store: StoreReader, run_id: str, job_ids: list[str]) -> dict[str, str]:
    """Per job of one page, its failed checks as the reports word them (``label: reason``)."""
    out: dict[str, list[str]] = {}
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start : start + 500]
        rows = store.conn.execute(
            f"SELECT job_id, label, type, reason, error FROM checks WHERE run_id = ? AND passed = 0 "
            f"AND job_id IN ({', '.join('?' * len(chunk))}) ORDER BY job_id, idx",
            (run_id, *chunk),
        ).fetchall()
        for job_id, label, typ, reason, error in rows:
            check = CheckRow(label or typ or "", typ or "", False, None, reason or "", bool(error))
            out.setdefault(job_id, []).append(shown_reason(check))
    return {k: "; ".join(v) for k, v in out.items()}


def result_records(store: StoreReader, run_id: str, page: int = PAGE_ROWS) -> Iterator[dict[str, Any]]:
    """The run's results in written order as export records (:data:`EXPORT_COLUMNS`), ``why``
    being the failed checks' reasons or, for an error, what went wrong."""
    for rows in pages(store, ", ".join(_STORED), run_id, page=page):
        why = _reasons(store, run_id, [r[2] for r in rows])
        for row in rows:
            record = dict(zip(_STORED, row[1:]))
            text = why.get(record["job_id"], "")
            if record["status"] == "error":  # worded as the reports word it (matrix.Attempt.why)
                status = record["error_status"]
                where = f"HTTP {int(status)} " if status is not None else ""
                said = (where + (record["error_message"] or "")).strip() or str(record["error_kind"])
                text = f"error ({record['error_kind']}): {said}"
            record["why"] = text
            record["passed"] = bool(record["passed"])
            record["cached"] = bool(record["cached"])
            yield {k: record[k] for k in EXPORT_COLUMNS}


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def write_csv(store: StoreReader, run_id: str, out: TextIO) -> int:
    """Every result as one CSV row (a header first); returns the rows written."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for record in result_records(store, run_id):
        writer.writerow([_csv_cell(record[k]) for k in EXPORT_COLUMNS])
        n += 1
    return n


def write_jsonl(store: StoreReader, run_id: str, out: TextIO) -> int:
    """Every result as one JSON object per line; returns the lines written. Tool calls stay
    the JSON text they were stored as."""
    n = 0
    for record in result_records(store, run_id):
        out.write(json.dumps(record, ensure_ascii=False))
        out.write("\n")
        n += 1
    return n


Exporter = Callable[[StoreReader, str, TextIO], int]
EXPORTERS: dict[str, Exporter] = {"csv": write_csv, "jsonl": write_jsonl}

__all__ = ["EXPORT_COLUMNS", "EXPORT_FILES", "EXPORTERS", "Exporter", "result_records", "write_csv", "write_jsonl"]
