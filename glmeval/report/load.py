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

from glmeval.analysis.compare import compare_runs
from glmeval.analysis.frames import checks_frame, results_frame, summary_frame
from glmeval.errors import GlmevalError
from glmeval.report.data import ReportData
from glmeval.report.summary import enrich_summary
from glmeval.store import RunInfo, StoreReader
from glmeval.store.lease import unfinished_line

HISTORY_RUNS = 20
_JOB_FIELDS = ("messages", "params", "threshold", "description", "tags", "vars", "min_score")


def _load_jobs(store: StoreReader, run_id: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
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
        rows = store.conn.execute(
            f"SELECT job_id, variant_id, variant, {extract} FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        split = True
    except sqlite3.OperationalError:  # an SQLite built without JSON functions
        rows = store.conn.execute(
            "SELECT job_id, variant_id, variant, job FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
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
) -> ReportData:
    """Read one run (and optionally its baseline comparison and the suite's history) from the store.

    ``baseline`` is a run id already resolved by the caller. Without one, the baseline the run
    was gated against (``runs.baseline``, set by ``glmeval run --baseline``) is used when it is
    still stored, so the report of a gated run shows what the gate saw; ``recorded_baseline=False``
    turns that off. ``history_runs`` bounds how many of the suite's runs feed the trends (0: none).
    """
    run = store.get_run(run_id)
    if run is None:
        raise GlmevalError(f"no run {run_id!r} in {store.path}")
    results = results_frame(store, run_id)
    checks = checks_frame(store, run_id)
    summary = enrich_summary(summary_frame(results, run.variants), checks, results)
    jobs, variants = _load_jobs(store, run_id)
    history = load_history(store, run, history_runs) if history_runs > 0 else None
    data = ReportData(run=run, results=results, checks=checks, summary=summary, jobs=jobs, variants=variants, history=history)
    data.unfinished = unfinished_line(run, len(results))
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
    rows = store.conn.execute(
        # cost: the answers plus their grading, unknown only when neither is known (as in summary_frame)
        "SELECT run_id, variant_id, status, latency_ms, cached, "
        "CASE WHEN cost IS NULL AND COALESCE(judge_cost, 0) = 0 THEN NULL ELSE COALESCE(cost, 0) + COALESCE(judge_cost, 0) END "
        f"FROM results WHERE run_id IN ({marks})", ids
    ).fetchall()
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["run_id", "variant", "status", "latency_ms", "cached", "cost"])
    frame["ok"] = frame["status"] == "pass"
    frame["fresh_latency"] = frame["latency_ms"].where((frame["cached"] == 0) & (frame["status"] != "error"))
    grouped = frame.groupby(["run_id", "variant"], sort=False).agg(
        jobs=("ok", "size"), pass_rate=("ok", "mean"), latency_p50_ms=("fresh_latency", "median"), cost=("cost", "sum")
    ).reset_index()
    meta = pd.DataFrame([tuple(r) for r in runs], columns=["run_id", "started_at", "local"])
    out = grouped.merge(meta, on="run_id").sort_values(["started_at", "variant"], kind="stable")
    return out[columns].reset_index(drop=True)


__all__ = ["HISTORY_RUNS", "load_report_data", "load_history"]
