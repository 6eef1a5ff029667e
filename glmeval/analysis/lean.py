"""Narrow views of one big run: every result's numbers without its text, read page by page.

A 100,000-result run holds hundreds of megabytes of answers, conversations and check
reasons; the summary, parameter effects and failure counts need none of that text. These
readers page through the store by ``rowid`` (keyset pages, so neither SQLite nor PostgreSQL
ever hands back the whole run at once) and keep only numbers and short ids, so the
process's memory grows with the run's numbers, not with what the model wrote.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from glmeval.analysis.frames import case_frame, results_frame
from glmeval.store import StoreReader
from glmeval.store.engine import engine_of

PAGE_ROWS = 5_000
FULL_RESULTS = 20_000
"""A run with more results than this is big: its reports and comparisons read the lean frame
(numbers and short ids, every result) instead of every answer's text."""
DEFAULT_PROVIDER = "zhipu"

# The stored columns the lean frame keeps as they are (numbers and short ids).
LEAN_COLUMNS = [
    "job_id", "case_id", "variant_id", "repeat", "model", "status", "score", "cached", "latency_ms", "ttft_ms",
    "prompt_tokens", "completion_tokens", "total_tokens", "cost", "judge_cost", "reasoning_tokens", "ttfr_ms",
]
_SHARED = [LEAN_COLUMNS.index(c) for c in ("case_id", "variant_id", "model", "status")]  # repeated across rows (and runs)
_FLOATS = [
    "score", "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "judge_cost",
    "reasoning_tokens", "ttfr_ms",
]


def pages(
    store: StoreReader, columns: str, run_id: str, where: str = "", params: Sequence[Any] = (), page: int = PAGE_ROWS
) -> Iterator[list[Any]]:
    """The run's results rows in written order, ``page`` at a time: ``SELECT rowid, {columns}``.

    Each page is its own query after the last ``rowid`` seen, so memory holds one page
    whatever the engine's cursor does (psycopg's default cursor buffers a whole result). On
    SQLite the run's first ``rowid`` is looked up once and ``+run_id`` keeps the planner on the
    rowid range: through the ``(run_id, variant_id, case_id)`` index every page would sort the
    whole run again.
    """
    extra = f" AND ({where})" if where else ""
    run_term = "run_id = ?"
    last = -1
    if engine_of(store.conn) == "sqlite":
        first = store.conn.execute("SELECT MIN(rowid) FROM results WHERE run_id = ?", (run_id,)).fetchone()
        if first is None or first[0] is None:
            return
        last, run_term = int(first[0]) - 1, "+run_id = ?"
    while True:
        rows = store.conn.execute(
            f"SELECT rowid, {columns} FROM results WHERE {run_term} AND rowid > ?{extra} ORDER BY rowid LIMIT ?",
            (run_id, last, *params, page),
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield rows
        if len(rows) < page:
            return


def count_results(store: StoreReader, run_id: str) -> int:
    """How many results the run has stored (one indexed count, no row read)."""
    row = store.conn.execute("SELECT COUNT(*) FROM results WHERE run_id = ?", (run_id,)).fetchone()
    return int(row[0]) if row else 0


def variant_dicts(store: StoreReader, run_id: str) -> dict[str, dict[str, Any]]:
    """Each variant's grid values, one stored text per variant (not one per result)."""
    rows = store.conn.execute(
        "SELECT variant_id, MIN(variant) FROM results WHERE run_id = ? GROUP BY variant_id", (run_id,)
    ).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for variant_id, text in rows:
        try:
            value = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            value = {}
        out[str(variant_id)] = value if isinstance(value, dict) else {}
    return out


def _job_fields(store: StoreReader, run_id: str) -> str:
    """``threshold`` and ``provider`` of the stored job: pulled out by SQLite's ``json_extract``
    when it has one, else the job text itself (parsed a page at a time)."""
    try:
        store.conn.execute(
            "SELECT json_extract(job, '$.threshold') FROM results WHERE run_id = ? LIMIT 1", (run_id,)
        ).fetchall()
        return "json_extract(job, '$.threshold'), json_extract(job, '$.provider')"
    except sqlite3.OperationalError:  # PostgreSQL, or an SQLite built without JSON functions
        return "job"


def lean_results_frame(
    store: StoreReader, run_id: str, variants: dict[str, dict[str, Any]] | None = None, digests: bool = False,
    shared: dict[Any, Any] | None = None,
) -> pd.DataFrame:
    """One row per result with the columns summaries, effects and verdicts read, and no text.

    Columns: :data:`LEAN_COLUMNS` plus ``provider`` (the job's, else the variant's, else
    ``zhipu``), ``threshold`` (NaN: every repeat must pass) and ``reasoning_chars`` (the length
    of the stored reasoning, so "did anything reason" needs no text). Repeated ids are shared
    strings, so 100,000 rows of one model cost one ``"glm-4"``.

    With ``digests`` the frame also has ``output``: a 64-bit digest of each answer's text and
    tool calls, not the text, so two big runs can tell which cases' answers changed
    (:func:`glmeval.analysis.frames.case_frame`) without holding either run's answers.
    ``shared`` (the ids already read, by value) lets frames of several runs share their ids.
    """
    variants = variant_dicts(store, run_id) if variants is None else variants
    job_sql = _job_fields(store, run_id)
    split = job_sql != "job"
    shared = {} if shared is None else shared
    chunks: list[pd.DataFrame] = []
    names = [*LEAN_COLUMNS, "provider", "threshold", "reasoning_chars", *(["output"] if digests else [])]
    select = f"{', '.join(LEAN_COLUMNS)}, LENGTH(reasoning), {job_sql}" + (", output, tool_calls" if digests else "")
    after = 2 + len(LEAN_COLUMNS) + (2 if split else 1)  # where output and tool_calls sit in a row
    for rows in pages(store, select, run_id):
        records = []
        for row in rows:
            values = list(row[1 : 1 + len(LEAN_COLUMNS)])
            for i in _SHARED:
                values[i] = shared.setdefault(values[i], values[i])
            reasoning_chars = row[1 + len(LEAN_COLUMNS)] or 0
            if split:
                threshold, provider = row[2 + len(LEAN_COLUMNS)], row[3 + len(LEAN_COLUMNS)]
            else:
                try:
                    job = json.loads(row[2 + len(LEAN_COLUMNS)] or "{}")
                except ValueError:
                    job = {}
                threshold, provider = job.get("threshold"), job.get("provider")
            if not provider:
                provider = variants.get(str(values[2]), {}).get("provider") or DEFAULT_PROVIDER
            record = (*values, shared.setdefault(provider, str(provider)), threshold, reasoning_chars)
            if digests:
                record = (*record, answer_digest(row[after], row[after + 1]))
            records.append(record)
        chunks.append(pd.DataFrame.from_records(records, columns=names))
    if not chunks:
        return pd.DataFrame(columns=names)
    frame = pd.concat(chunks, ignore_index=True)
    for column in [*_FLOATS, "threshold"]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["cached"] = frame["cached"].fillna(0).astype(bool)
    frame["passed"] = frame["status"] == "pass"
    frame["repeat"] = pd.to_numeric(frame["repeat"], errors="coerce").fillna(0).astype(int)
    return frame


def answer_digest(output: Any, tool_calls: Any) -> int:
    """A 64-bit fingerprint of one answer (text and tool calls), equal exactly when both are
    (a chance collision is 1 in 2**64 per pair): an int, so a column of them is 8 bytes a row."""
    text = (output if isinstance(output, str) else "") + "\x00" + (tool_calls if isinstance(tool_calls, str) else "")
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little", signed=True)


def comparison_frame(store: StoreReader, run_ids: Sequence[str]) -> list[pd.DataFrame]:
    """The results of runs that are compared with each other, alike for all of them: every
    column (:func:`glmeval.analysis.frames.results_frame`) while each is small, else the lean
    frame with answer digests for all (a text and a digest never compare equal)."""
    if max((count_results(store, r) for r in run_ids), default=0) > FULL_RESULTS:
        shared: dict[Any, Any] = {}  # the runs of one suite share their case ids: read them once
        return [lean_results_frame(store, r, digests=True, shared=shared).drop(columns=["job_id"]) for r in run_ids]
    return [results_frame(store, r) for r in run_ids]


def cell_frame(lean: pd.DataFrame) -> pd.DataFrame:
    """One row per (case, variant) in first-seen order: ``n`` repeats, ``passes``, ``errors``,
    ``passed`` (:func:`glmeval.analysis.frames.case_frame`'s verdict, the one comparisons use)
    and ``kind`` (pass, partial, fail, error: :class:`glmeval.report.matrix.Cell`'s rule)."""
    columns = ["case_id", "variant_id", "n", "passes", "errors", "passed", "kind"]
    if lean.empty:
        return pd.DataFrame(columns=columns)
    g = case_frame(lean).rename(columns={"repeats": "n"})
    kind = pd.Series("fail", index=g.index, dtype=object)
    kind[g["passes"] > 0] = "partial"
    kind[(g["errors"] > 0) & (g["errors"] == g["n"] - g["passes"])] = "error"
    kind[g["passes"] == g["n"]] = "pass"
    g["kind"] = kind
    return g[columns]


def answer_groups_sql(store: StoreReader, run_id: str) -> pd.DataFrame:
    """:func:`glmeval.report.summary.answer_groups` counted by the database: per (variant,
    case) answered at least twice (the only ones the distinct-answers figures read), how many
    answers and how many different ones (text and tool calls). A run without repeats gets no row."""
    rows = store.conn.execute(
        "SELECT variant_id, case_id, COUNT(*), COUNT(DISTINCT COALESCE(output, '') || ? || COALESCE(tool_calls, '')) "
        "FROM results WHERE run_id = ? AND status != 'error' GROUP BY variant_id, case_id HAVING COUNT(*) >= 2",
        ("\x1f", run_id),
    ).fetchall()
    return pd.DataFrame([tuple(r) for r in rows], columns=["variant_id", "case_id", "answers", "distinct"])


def check_counts(store: StoreReader, run_id: str) -> pd.DataFrame:
    """Per variant: checks passed (``sum``) and run (``count``), the summary's checks column."""
    rows = store.conn.execute(
        "SELECT r.variant_id, SUM(CASE WHEN c.passed = 1 THEN 1 ELSE 0 END), COUNT(*) FROM checks c "
        "JOIN results r ON r.run_id = c.run_id AND r.job_id = c.job_id WHERE c.run_id = ? GROUP BY r.variant_id",
        (run_id,),
    ).fetchall()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["variant_id", "sum", "count"])
    return frame.set_index("variant_id")


__all__ = [
    "PAGE_ROWS", "FULL_RESULTS", "LEAN_COLUMNS", "answer_digest", "comparison_frame", "pages", "count_results", "variant_dicts", "lean_results_frame", "cell_frame",
    "answer_groups_sql", "check_counts",
]
