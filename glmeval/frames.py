"""pandas frames built from the store: the one place reports and the Python API get data.

A report is a view of stored runs, so every renderer starts from these frames and never from
live runner state; any past run, or any pair of runs, renders the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from glmeval.store import Store

RESULT_COLUMNS = [
    "run_id", "job_id", "case_id", "variant_id", "repeat", "model", "mode", "status", "passed", "score",
    "output", "tool_calls", "finish_reason", "prompt_tokens", "completion_tokens", "total_tokens",
    "latency_ms", "ttft_ms", "queue_ms", "retry_ms", "cost", "error_kind", "error_status", "error_code",
    "error_message", "attempts", "cached", "request_id",
]


def _open(db: str | Path | Store | None) -> Store:
    return db if isinstance(db, Store) else Store(db)


def results_frame(db: str | Path | Store | None = None, run: str | None = None) -> pd.DataFrame:
    """One row per result; the variant's parameters become columns (``temperature``...)."""
    store = _open(db)
    run_id = store.resolve_run(run or "latest")
    rows = store.conn.execute(
        f"SELECT {', '.join(RESULT_COLUMNS)}, variant FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)
    ).fetchall()
    records: list[dict[str, Any]] = []
    for row in rows:
        record = {k: row[k] for k in RESULT_COLUMNS}
        for key, value in json.loads(row["variant"]).items():
            if key != "model":
                record[key] = value if not isinstance(value, (list, dict)) else json.dumps(value, ensure_ascii=False)
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=None if records else RESULT_COLUMNS)
    if not frame.empty:
        frame["passed"] = frame["passed"].astype(bool)
        frame["cached"] = frame["cached"].astype(bool)
    return frame


def checks_frame(db: str | Path | Store | None = None, run: str | None = None) -> pd.DataFrame:
    """One row per check result, with the case and variant it belongs to."""
    store = _open(db)
    run_id = store.resolve_run(run or "latest")
    frame = pd.read_sql_query(
        """SELECT c.run_id, c.job_id, r.case_id, r.variant_id, r.repeat, r.model, c.idx, c.type, c.label,
                  c.metric, c.passed, c.score, c.weight, c.reason, c.error
           FROM checks c JOIN results r ON r.run_id = c.run_id AND r.job_id = c.job_id
           WHERE c.run_id = ? ORDER BY r.rowid, c.idx""",
        store.conn,
        params=(run_id,),
    )
    if not frame.empty:
        frame["passed"] = frame["passed"].astype(bool)
        frame["error"] = frame["error"].astype(bool)
    return frame


def summary_frame(results: pd.DataFrame, variant_order: list[str] | None = None) -> pd.DataFrame:
    """Per variant: pass rate, latency p50/p95 (fresh calls only), TTFT, tokens, cost, errors.

    Cached answers are left out of the latency and TTFT figures: their timing was measured
    on another day and would flatter or slander the model.
    """
    columns = [
        "variant", "model", "jobs", "passed", "failed", "errors", "pass_rate", "latency_p50_ms",
        "latency_p95_ms", "ttft_p50_ms", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "cached",
    ]
    if results.empty:
        return pd.DataFrame(columns=columns)
    out = []
    order = variant_order or list(dict.fromkeys(results["variant_id"]))
    order = [v for v in order if v in set(results["variant_id"])] + [
        v for v in dict.fromkeys(results["variant_id"]) if v not in (variant_order or [])
    ]
    for variant in dict.fromkeys(order):
        g = results[results["variant_id"] == variant]
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
            }
        )
    return pd.DataFrame(out, columns=columns)


def _q(series: pd.Series, q: float) -> float:
    series = series.dropna()
    return float(series.quantile(q)) if len(series) else float("nan")
