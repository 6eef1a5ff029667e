"""pandas frames built from the store: the one place reports and the Python API get data.

A report is a view of stored runs, so every renderer starts from these frames and never from
live runner state; any past run, or any pair of runs, renders the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from glmeval.analysis.stats import wilson_interval
from glmeval.store import Store, StoreReader

RESULT_COLUMNS = [
    "run_id", "job_id", "case_id", "variant_id", "repeat", "model", "mode", "status", "passed", "score",
    "output", "tool_calls", "finish_reason", "prompt_tokens", "completion_tokens", "total_tokens",
    "latency_ms", "ttft_ms", "queue_ms", "retry_ms", "cost", "error_kind", "error_status", "error_code",
    "error_message", "attempts", "cached", "request_id", "judge_tokens", "judge_cost",
    "reasoning", "reasoning_tokens", "reasoning_estimated", "ttfr_ms", "cached_tokens", "web_search", "thinking",
]
# Columns results_frame adds to the stored ones (before the per-parameter columns).
EXTRA_COLUMNS = ["suite", "threshold", "tags"]


def _open(db: str | Path | StoreReader | None) -> tuple[StoreReader, Store | None]:
    """The store to read, and the one we opened for a path (so must close), if any."""
    if db is None or isinstance(db, (str, Path)):
        opened = Store(db, create=False)
        return opened, opened
    return db, None


def _scalar(value: Any) -> Any:
    """A cell value: scalars as they are, lists and dicts as JSON text (hashable, groupable)."""
    return value if not isinstance(value, (list, dict)) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def results_frame(db: str | Path | StoreReader | None = None, run: str | None = None) -> pd.DataFrame:
    """One row per result (job), with the request parameters as columns.

    Besides the stored columns: ``suite``, ``threshold`` (the case's minimum pass rate across
    repeats, NaN for "every repeat must pass"), ``tags`` (comma-separated), then one column
    per grid axis (``temperature``, ``prompt``...) and per scalar request parameter
    (``max_tokens``, ``top_p``...), so ``df.groupby("temperature")`` works without parsing
    JSON. ``run`` is any reference :meth:`Store.resolve_run` accepts (default ``latest``).

    A thinking model's ``reasoning`` is its own column (``output`` is the answer alone), with
    ``reasoning_tokens`` (part of ``completion_tokens``; NaN where unknown, as in runs recorded
    before glmeval kept it), ``reasoning_estimated``, ``ttfr_ms`` (time to the first reasoning
    token, streams only; ``ttft_ms`` is the first *answer* token), ``cached_tokens``,
    ``web_search`` (JSON text, like ``tool_calls``) and ``thinking`` (on/off/auto, None for a
    model that does not think).
    """
    store, opened = _open(db)
    try:
        run_id = store.resolve_run(run or "latest")
        info = store.require_run(run_id)
        rows = store.conn.execute(
            f"SELECT {', '.join(RESULT_COLUMNS)}, variant, job FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
    finally:
        if opened is not None:
            opened.close()
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
    frame["reasoning"] = frame["reasoning"].fillna("").astype(str)
    frame["reasoning_estimated"] = frame["reasoning_estimated"].fillna(0).astype(bool)
    for column in ("reasoning_tokens", "ttfr_ms", "cached_tokens"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["threshold"] = pd.to_numeric(frame["threshold"], errors="coerce").astype(float)
    return frame


def checks_frame(db: str | Path | StoreReader | None = None, run: str | None = None) -> pd.DataFrame:
    """One row per check result, with the case, variant, repeat and model it belongs to."""
    store, opened = _open(db)
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
        if opened is not None:
            opened.close()
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


def _numeric(results: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as floats, all NaN when the frame has no such column (a frame built by hand
    or by an older glmeval)."""
    if column not in results.columns:
        return pd.Series(float("nan"), index=results.index, dtype=float)
    return pd.to_numeric(results[column], errors="coerce").astype(float)


SUMMARY_COLUMNS = [
    "variant", "model", "jobs", "passed", "failed", "errors", "pass_rate", "latency_p50_ms",
    "latency_p95_ms", "ttft_p50_ms", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "cached", "judge_cost",
    "reasoning_tokens_mean", "reasoning_tokens_total", "ttfr_p50_ms",
    "pass_rate_lo", "pass_rate_hi", "cases", "cases_passed", "case_pass_rate",
]


def _sum_known(values: pd.Series) -> float:
    """A sum that stays unknown (NaN) when every value is unknown: a model without a known price
    costs "?", not ¥0."""
    return float(values.sum(min_count=1))


def summary_frame(results: pd.DataFrame, variant_order: list[str] | None = None) -> pd.DataFrame:
    """Per variant: pass rate, latency p50/p95 (fresh calls only), TTFT, tokens, cost, errors.

    Cached answers are left out of the latency and TTFT figures: their timing was measured
    on another day and would flatter or slander the model.

    ``pass_rate`` is the share of jobs (answers) that passed, with its 95% Wilson interval in
    ``pass_rate_lo`` / ``pass_rate_hi``: with 12 answers, 75% means "somewhere between 47% and
    91%", and a report should say so. ``cases`` / ``cases_passed`` / ``case_pass_rate``
    aggregate repeats per case by the case's threshold (the same rule as :func:`case_frame`),
    which is what comparisons and gates count. Grouped aggregations keep a 10,000-result run
    well under a second.

    ``reasoning_tokens_mean`` / ``reasoning_tokens_total`` are over the answers whose reasoning
    tokens are known (already inside the completion-token figures, never added to them), and
    ``ttfr_p50_ms`` is the median time to the first reasoning token of fresh streamed answers;
    each is NaN for a variant that has none: a model that does not think, thinking off, a run
    recorded before glmeval kept them (so a glm-4 summary shows no reasoning at all).
    """
    if results.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    seen = list(dict.fromkeys(results["variant_id"].tolist()))
    order = [v for v in (variant_order or []) if v in set(seen)] + [v for v in seen if v not in (variant_order or [])]
    status = results["status"]
    answered = status != "error"
    fresh = ~results["cached"].astype(bool) & answered
    frame = pd.DataFrame(
        {
            "variant": results["variant_id"],
            "case": results["case_id"],
            "model": results["model"],
            "ok": (status == "pass").astype(int),
            "bad": (status == "fail").astype(int),
            "err": (~answered).astype(int),
            "lat": pd.to_numeric(results["latency_ms"], errors="coerce").where(fresh),
            "ttft": pd.to_numeric(results["ttft_ms"], errors="coerce").where(fresh),
            "pt": pd.to_numeric(results["prompt_tokens"], errors="coerce").where(answered),
            "ct": pd.to_numeric(results["completion_tokens"], errors="coerce").where(answered),
            "tt": pd.to_numeric(results["total_tokens"], errors="coerce"),
            "cost": pd.to_numeric(results["cost"], errors="coerce"),
            "judge_cost": pd.to_numeric(results["judge_cost"], errors="coerce") if "judge_cost" in results.columns else 0.0,
            "cached": results["cached"].astype(int),
            "threshold": pd.to_numeric(results["threshold"], errors="coerce") if "threshold" in results.columns else float("nan"),
            "rt": _numeric(results, "reasoning_tokens").where(answered),
            "ttfr": _numeric(results, "ttfr_ms").where(fresh),
        }
    )
    g = frame.groupby("variant", sort=False)
    agg = g.agg(
        model=("model", "first"), jobs=("ok", "size"), passed=("ok", "sum"), failed=("bad", "sum"), errors=("err", "sum"),
        prompt_tokens=("pt", "mean"), completion_tokens=("ct", "mean"), total_tokens=("tt", "sum"), cost=("cost", _sum_known), judge_cost=("judge_cost", "sum"),
        cached=("cached", "sum"),
    )
    agg["latency_p50_ms"] = g["lat"].quantile(0.5)
    agg["latency_p95_ms"] = g["lat"].quantile(0.95)
    agg["ttft_p50_ms"] = g["ttft"].median()
    reasoned = g["rt"].max() > 0
    agg["reasoning_tokens_mean"] = g["rt"].mean().where(reasoned)
    agg["reasoning_tokens_total"] = g["rt"].sum(min_count=1).where(reasoned)
    agg["ttfr_p50_ms"] = g["ttfr"].median()
    cases = frame.groupby(["variant", "case"], sort=False).agg(passes=("ok", "sum"), n=("ok", "size"), threshold=("threshold", "first"))
    need = cases["threshold"].fillna(1.0)
    cases["passed"] = (cases["passes"] / cases["n"]) >= need - 1e-9
    per_case = cases.groupby(level="variant", sort=False)["passed"].agg(["size", "sum", "mean"])
    rows = []
    for variant in order:
        a = agg.loc[variant]
        jobs, passed = int(a["jobs"]), int(a["passed"])
        lo, hi = wilson_interval(passed, jobs)
        rows.append(
            {
                "variant": variant,
                "model": a["model"],
                "jobs": jobs,
                "passed": passed,
                "failed": int(a["failed"]),
                "errors": int(a["errors"]),
                "pass_rate": passed / jobs if jobs else float("nan"),
                "latency_p50_ms": float(a["latency_p50_ms"]),
                "latency_p95_ms": float(a["latency_p95_ms"]),
                "ttft_p50_ms": float(a["ttft_p50_ms"]),
                "prompt_tokens": float(a["prompt_tokens"]),
                "completion_tokens": float(a["completion_tokens"]),
                "total_tokens": int(a["total_tokens"]),
                "cost": float(a["cost"]),
                "judge_cost": float(a["judge_cost"]),
                "cached": int(a["cached"]),
                "pass_rate_lo": lo,
                "pass_rate_hi": hi,
                "cases": int(per_case.at[variant, "size"]),
                "cases_passed": int(per_case.at[variant, "sum"]),
                "case_pass_rate": float(per_case.at[variant, "mean"]),
                "reasoning_tokens_mean": float(a["reasoning_tokens_mean"]),
                "reasoning_tokens_total": float(a["reasoning_tokens_total"]),
                "ttfr_p50_ms": float(a["ttfr_p50_ms"]),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

