"""pandas frames built from the store: the one place reports and the Python API get data.

A report is a view of stored runs, so every renderer starts from these frames and never from
live runner state; any past run, or any pair of runs, renders the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from glmeval.stats import wilson_interval
from glmeval.store import Store

RESULT_COLUMNS = [
    "run_id", "job_id", "case_id", "variant_id", "repeat", "model", "mode", "status", "passed", "score",
    "output", "tool_calls", "finish_reason", "prompt_tokens", "completion_tokens", "total_tokens",
    "latency_ms", "ttft_ms", "queue_ms", "retry_ms", "cost", "error_kind", "error_status", "error_code",
    "error_message", "attempts", "cached", "request_id",
]
# Columns results_frame adds to the stored ones (before the per-parameter columns).
EXTRA_COLUMNS = ["suite", "threshold", "tags"]


def _open(db: str | Path | Store | None) -> tuple[Store, bool]:
    """The store to read and whether we opened it (and so must close it)."""
    if isinstance(db, Store):
        return db, False
    return Store(db, create=False), True


def _scalar(value: Any) -> Any:
    """A cell value: scalars as they are, lists and dicts as JSON text (hashable, groupable)."""
    return value if not isinstance(value, (list, dict)) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def results_frame(db: str | Path | Store | None = None, run: str | None = None) -> pd.DataFrame:
    """One row per result (job), with the request parameters as columns.

    Besides the stored columns: ``suite``, ``threshold`` (the case's minimum pass rate across
    repeats, NaN for "every repeat must pass"), ``tags`` (comma-separated), then one column
    per grid axis (``temperature``, ``prompt``...) and per scalar request parameter
    (``max_tokens``, ``top_p``...), so ``df.groupby("temperature")`` works without parsing
    JSON. ``run`` is any reference :meth:`Store.resolve_run` accepts (default ``latest``).
    """
    store, owned = _open(db)
    try:
        run_id = store.resolve_run(run or "latest")
        info = store.require_run(run_id)
        rows = store.conn.execute(
            f"SELECT {', '.join(RESULT_COLUMNS)}, variant, job FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
    finally:
        if owned:
            store.close()
    records: list[dict[str, Any]] = []
    for row in rows:
        record: dict[str, Any] = {k: row[k] for k in RESULT_COLUMNS}
        job = json.loads(row["job"])
        record["suite"] = info.suite
        record["threshold"] = job.get("threshold")
        record["tags"] = ",".join(job.get("tags") or [])
        params: dict[str, Any] = {}
        for key, value in (job.get("params") or {}).items():
            if not isinstance(value, (list, dict)):
                params[key] = value
        for key, value in json.loads(row["variant"]).items():
            params[key] = _scalar(value)
        for key, value in params.items():
            if key not in record:
                record[key] = value
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=None if records else RESULT_COLUMNS + EXTRA_COLUMNS)
    frame["passed"] = frame["passed"].astype(bool)
    frame["cached"] = frame["cached"].astype(bool)
    frame["threshold"] = pd.to_numeric(frame["threshold"], errors="coerce").astype(float)
    return frame


def checks_frame(db: str | Path | Store | None = None, run: str | None = None) -> pd.DataFrame:
    """One row per check result, with the case, variant, repeat and model it belongs to."""
    store, owned = _open(db)
    try:
        run_id = store.resolve_run(run or "latest")
        frame = pd.read_sql_query(
            """SELECT c.run_id, c.job_id, r.case_id, r.variant_id, r.repeat, r.model, c.idx, c.type, c.label,
                      c.metric, c.passed, c.score, c.weight, c.reason, c.error
               FROM checks c JOIN results r ON r.run_id = c.run_id AND r.job_id = c.job_id
               WHERE c.run_id = ? ORDER BY r.rowid, c.idx""",
            store.conn,
            params=(run_id,),
        )
    finally:
        if owned:
            store.close()
    frame["passed"] = frame["passed"].astype(bool)
    frame["error"] = frame["error"].astype(bool)
    return frame


def case_frame(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, case): its repeats aggregated into one pass/fail.

    A case passes when its pass rate across repeats reaches the job's ``threshold`` (by
    default every repeat must pass). An errored repeat counts as not passing: a call that
    produced no answer (a content filter, a timeout) did not do the job. ``outputs`` holds the
    answers in repeat order, so two runs can tell whether a case's output changed. Used by
    comparisons and by the summary's case-level pass rate.
    """
    columns = ["variant_id", "case_id", "repeats", "passes", "errors", "rate", "threshold", "passed", "score", "outputs"]
    if results.empty:
        return pd.DataFrame(columns=columns)
    out = []
    threshold_col = "threshold" in results.columns
    for (variant, case), g in results.groupby(["variant_id", "case_id"], sort=False):
        g = g.sort_values("repeat")
        repeats = len(g)
        passes = int((g["status"] == "pass").sum())
        rate = passes / repeats if repeats else 0.0
        threshold = g["threshold"].iloc[0] if threshold_col else None
        need = 1.0 if threshold is None or pd.isna(threshold) else float(threshold)
        scores = pd.to_numeric(g["score"], errors="coerce").fillna(0.0)
        scores = scores.where(g["status"] != "error", 0.0)
        outputs = tuple(
            ("<error>" if status == "error" else "") + (text or "") + (("\x00" + calls) if isinstance(calls, str) and calls else "")
            for status, text, calls in zip(g["status"], g["output"], g.get("tool_calls", [None] * repeats))
        )
        out.append(
            {
                "variant_id": variant,
                "case_id": case,
                "repeats": repeats,
                "passes": passes,
                "errors": int((g["status"] == "error").sum()),
                "rate": rate,
                "threshold": need,
                "passed": rate >= need - 1e-9,
                "score": float(scores.mean()) if repeats else 0.0,
                "outputs": outputs,
            }
        )
    return pd.DataFrame(out, columns=columns)


def summary_frame(results: pd.DataFrame, variant_order: list[str] | None = None) -> pd.DataFrame:
    """Per variant: pass rate, latency p50/p95 (fresh calls only), TTFT, tokens, cost, errors.

    Cached answers are left out of the latency and TTFT figures: their timing was measured
    on another day and would flatter or slander the model.

    ``pass_rate`` is the share of jobs (answers) that passed, with its 95% Wilson interval in
    ``pass_rate_lo`` / ``pass_rate_hi``: with 12 answers, 75% means "somewhere between 47% and
    91%", and a report should say so. ``cases`` / ``cases_passed`` / ``case_pass_rate``
    aggregate repeats per case by the case's threshold, which is what comparisons and gates
    count.
    """
    columns = [
        "variant", "model", "jobs", "passed", "failed", "errors", "pass_rate", "latency_p50_ms",
        "latency_p95_ms", "ttft_p50_ms", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "cached",
        "pass_rate_lo", "pass_rate_hi", "cases", "cases_passed", "case_pass_rate",
    ]
    if results.empty:
        return pd.DataFrame(columns=columns)
    out = []
    order = variant_order or list(dict.fromkeys(results["variant_id"]))
    order = [v for v in order if v in set(results["variant_id"])] + [
        v for v in dict.fromkeys(results["variant_id"]) if v not in (variant_order or [])
    ]
    per_case = case_frame(results)
    for variant in dict.fromkeys(order):
        g = results[results["variant_id"] == variant]
        cases = per_case[per_case["variant_id"] == variant]
        n_pass = int((g["status"] == "pass").sum())
        lo, hi = wilson_interval(n_pass, len(g))
        fresh = g[~g["cached"] & (g["status"] != "error")]
        judged = g[g["status"] != "error"]
        out.append(
            {
                "variant": variant,
                "model": g["model"].iloc[0],
                "jobs": len(g),
                "passed": int((g["status"] == "pass").sum()),
                "failed": int((g["status"] == "fail").sum()),
                "errors": int((g["status"] == "error").sum()),
                "pass_rate": float((g["status"] == "pass").sum() / len(g)) if len(g) else float("nan"),
                "latency_p50_ms": _q(fresh["latency_ms"], 0.5),
                "latency_p95_ms": _q(fresh["latency_ms"], 0.95),
                "ttft_p50_ms": _q(fresh["ttft_ms"], 0.5),
                "prompt_tokens": float(judged["prompt_tokens"].mean()) if len(judged) else float("nan"),
                "completion_tokens": float(judged["completion_tokens"].mean()) if len(judged) else float("nan"),
                "total_tokens": int(g["total_tokens"].sum()),
                "cost": float(g["cost"].sum()),
                "cached": int(g["cached"].sum()),
                "pass_rate_lo": lo,
                "pass_rate_hi": hi,
                "cases": len(cases),
                "cases_passed": int(cases["passed"].sum()),
                "case_pass_rate": float(cases["passed"].mean()) if len(cases) else float("nan"),
            }
        )
    return pd.DataFrame(out, columns=columns)


def _q(series: pd.Series, q: float) -> float:
    series = series.dropna()
    return float(series.quantile(q)) if len(series) else float("nan")
