"""Reading one run out of the store into :class:`~glmeval.report.data.ReportData`.

This is the only part of :mod:`glmeval.report` that touches the store: the views and the
renderers work from the loaded data, so a report can be made for any past run, or any pair
of runs, and never needs the runner.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pandas as pd

from glmeval.analysis.compare import Comparison, compare_runs
from glmeval.analysis.frames import _rows_of, checks_frame, results_frame, summary_frame
from glmeval.analysis.lean import (
    FULL_RESULTS,
    answer_groups_sql,
    cell_frame,
    check_counts,
    count_results,
    lean_results_frame,
    variant_dicts,
)
from glmeval.errors import GlmevalError
from glmeval.report.data import ReportData, Scale
from glmeval.report.summary import enrich_summary
from glmeval.store import RunInfo, StoreReader
from glmeval.store.lease import unfinished_line

HISTORY_RUNS = 20
"""Runs with more results than this get a big run's report: counts over every result, the
matrix capped at :data:`MATRIX_CELLS` cells (worst cases first) and the full data exported."""
MATRIX_CELLS = 1_000
_JOB_FIELDS = ("messages", "params", "threshold", "description", "tags", "vars", "min_score")


def _load_jobs(
    store: StoreReader, run_id: str, job_ids: list[str] | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The request of every result (for the conversation view) and each variant's grid values.

    SQLite's ``json_extract`` pulls out just the fields a report shows, and identical JSON
    texts (the same conversation across variants and repeats) are parsed once: for a 10,000
    result run that is a tenth of a second instead of parsing every stored job in full.
    """
    jobs: dict[str, dict[str, Any]] = {}
    variants: dict[str, dict[str, Any]] = {}
    parsed: dict[str, Any] = {}

    def load(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        if text not in parsed:
            try:
                parsed[text] = json.loads(text)
            except ValueError:
                parsed[text] = None
        return parsed[text]

    extract = ", ".join(f"json_extract(job, '$.{f}')" for f in _JOB_FIELDS)
    try:
        rows = _rows_of(store, f"SELECT job_id, variant_id, variant, {extract} FROM results WHERE run_id = ?", run_id, job_ids, "ORDER BY rowid")
        split = True
    except sqlite3.OperationalError:  # an SQLite built without JSON functions
        rows = _rows_of(store, "SELECT job_id, variant_id, variant, job FROM results WHERE run_id = ?", run_id, job_ids, "ORDER BY rowid")
        split = False
    for row in rows:
        job_id, variant_id, variant = row[0], row[1], row[2]
        if split:
            # json_extract returns JSON text for arrays/objects and SQL values for scalars.
            jobs[job_id] = {f: (load(v) if f in ("messages", "params", "tags", "vars") else v) for f, v in zip(_JOB_FIELDS, row[3:])}
        else:
            job = load(row[3]) or {}
            jobs[job_id] = {f: job.get(f) for f in _JOB_FIELDS}
        if variant_id not in variants:
            variants[variant_id] = load(variant) or {}
    return jobs, variants


def load_report_data(
    store: StoreReader,
    run_id: str,
    baseline: str | None = None,
    history_runs: int = HISTORY_RUNS,
    recorded_baseline: bool = True,
    full_limit: int | None = None,
    matrix_cells: int | None = None,
    comparison: Comparison | None = None,
) -> ReportData:
    """Read one run (and optionally its baseline comparison and the suite's history) from the store.

    ``baseline`` is a run id already resolved by the caller. Without one, the baseline the run
    was gated against (``runs.baseline``, set by ``glmeval run --baseline``) is used when it is
    still stored, so the report of a gated run shows what the gate saw; ``recorded_baseline=False``
    turns that off. ``history_runs`` bounds how many of the suite's runs feed the trends (0: none).

    A run of more than ``full_limit`` results (default :data:`FULL_RESULTS`) loads as a big
    run (:func:`load_big_run`): its text is read only for the ``matrix_cells`` cells (default
    :data:`MATRIX_CELLS`) the matrix shows.

    ``comparison`` is one already made with this run as its head (the gate's): it is the
    baseline then, and no second comparison is made.
    """
    run = store.get_run(run_id)
    if run is None:
        raise GlmevalError(f"no run {run_id!r} in {store.path}")
    history = load_history(store, run, history_runs) if history_runs > 0 else None
    stored = count_results(store, run_id)
    if stored > (FULL_RESULTS if full_limit is None else full_limit):
        data = load_big_run(store, run, stored, MATRIX_CELLS if matrix_cells is None else matrix_cells)
        data.history = history
    else:
        results = results_frame(store, run_id)
        checks = checks_frame(store, run_id)
        summary = enrich_summary(summary_frame(results, run.variants), checks, results)
        jobs, variants = _load_jobs(store, run_id)
        data = ReportData(run=run, results=results, checks=checks, summary=summary, jobs=jobs, variants=variants, history=history)
    data.unfinished = unfinished_line(run, stored)
    if comparison is not None and comparison.head.id == run_id:
        data.baseline, data.comparison = comparison.base, comparison
        return data
    if baseline is None and recorded_baseline:
        recorded = run.baseline
        if recorded and recorded != run_id and store.get_run(recorded) is not None:
            baseline = recorded
    if baseline:
        if baseline == run_id:
            raise GlmevalError(f"the baseline is the run itself ({run_id}); name an earlier run")
        data.baseline = store.get_run(baseline)
        if data.baseline is None:
            raise GlmevalError(f"no baseline run {baseline!r} in {store.path}")
        data.comparison = compare_runs(store, baseline, run_id)
    return data


def load_big_run(store: StoreReader, run: RunInfo, stored: int, matrix_cells: int = MATRIX_CELLS) -> ReportData:
    """A run too big to hold every answer: the summary, effects and verdicts from the lean
    frame (numbers only, every result), the distinct answers and checks counted by the
    database, and the full rows of the worst cases only, as many as fit ``matrix_cells``.

    Worst first: cases with an errored cell, then cases with a failing one, then the rest, each
    group in the order the run wrote them.
    """
    variants = variant_dicts(store, run.id)
    lean = lean_results_frame(store, run.id, variants)
    cells = cell_frame(lean)
    groups = answer_groups_sql(store, run.id)
    summary = enrich_summary(summary_frame(lean, run.variants), pd.DataFrame(), lean,
                             check_counts=check_counts(store, run.id), groups=groups)
    bad = cells[~cells["passed"].astype(bool)]
    errored = set(bad.loc[bad["kind"] == "error", "case_id"])
    failing = set(bad["case_id"])
    order = list(dict.fromkeys(cells["case_id"].tolist()))
    ranked = sorted(range(len(order)), key=lambda i: (0 if order[i] in errored else 1 if order[i] in failing else 2, i))
    per_case = max(1, int(cells["variant_id"].nunique()))
    shown = [order[i] for i in ranked[: max(1, matrix_cells // per_case)]]
    job_ids = lean.loc[lean["case_id"].isin(set(shown)), "job_id"].tolist()
    detail = results_frame(store, run.id, jobs=job_ids)
    checks = checks_frame(store, run.id, jobs=job_ids)
    jobs, _ = _load_jobs(store, run.id, job_ids)
    scale = Scale(results=stored, cases=len(order), cells=cells, shown=shown)
    data = ReportData(run=run, results=lean, checks=checks, summary=summary, jobs=jobs, variants=variants,
                      detail=detail, scale=scale)
    data.cache["answer_groups"] = groups
    return data


def load_history(store: StoreReader, run: RunInfo, limit: int = HISTORY_RUNS) -> pd.DataFrame:
    """Per run and variant of this suite (up to and including ``run``): pass rate, latency, cost.

    Reads only the few columns it needs, for the ``limit`` most recent runs, so a long history
    does not slow the report down.
    """
    columns = ["run_id", "started_at", "local", "variant", "jobs", "pass_rate", "latency_p50_ms", "cost"]
    runs = store.conn.execute(
        "SELECT id, started_at, local FROM runs WHERE suite = ? AND started_at <= ? ORDER BY started_at DESC LIMIT ?",
        (run.suite, run.started_at, limit),
    ).fetchall()
    if not runs:
        return pd.DataFrame(columns=columns)
    ids = [r[0] for r in runs]
    marks = ",".join("?" * len(ids))
    # Counted by the database, and the medians one run at a time: twenty runs of 100,000
    # results read whole would be two million rows in memory for a few points on a chart.
    counted = store.conn.execute(
        # cost: the answers plus their grading, unknown only when neither is known (as in summary_frame)
        "SELECT run_id, variant_id, COUNT(*), AVG(CASE WHEN status = 'pass' THEN 1.0 ELSE 0.0 END), "
        "COALESCE(SUM(CASE WHEN cost IS NULL AND COALESCE(judge_cost, 0) = 0 THEN NULL "
        "ELSE COALESCE(cost, 0) + COALESCE(judge_cost, 0) END), 0) "
        f"FROM results WHERE run_id IN ({marks}) GROUP BY run_id, variant_id", ids
    ).fetchall()
    if not counted:
        return pd.DataFrame(columns=columns)
    medians: dict[tuple[str, str], float] = {}
    for run_id in ids:
        fresh = store.conn.execute(
            "SELECT variant_id, latency_ms FROM results WHERE run_id = ? AND cached = 0 AND status != 'error'", (run_id,)
        ).fetchall()
        if fresh:
            latency = pd.DataFrame([tuple(r) for r in fresh], columns=["variant", "latency_ms"])
            for variant, median in latency.groupby("variant")["latency_ms"].median().items():
                medians[(run_id, str(variant))] = float(median)
    grouped = pd.DataFrame(
        [(r[0], r[1], int(r[2]), float(r[3]), float(r[4]), medians.get((r[0], str(r[1])), float("nan"))) for r in counted],
        columns=["run_id", "variant", "jobs", "pass_rate", "cost", "latency_p50_ms"],
    )
    meta = pd.DataFrame([tuple(r) for r in runs], columns=["run_id", "started_at", "local"])
    out = grouped.merge(meta, on="run_id").sort_values(["started_at", "variant"], kind="stable")
    return out[columns].reset_index(drop=True)


__all__ = ["HISTORY_RUNS", "FULL_RESULTS", "MATRIX_CELLS", "load_report_data", "load_big_run", "load_history"]
