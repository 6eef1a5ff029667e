"""Run-wide figures: the per-variant summary with intervals, the best value per column, the
header's totals and its status badge.

What "best" means (direction and shown precision) is decided here, so the Markdown bold and
the HTML highlight always mark the same cells.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from glmeval.analysis.frames import run_cost
from glmeval.analysis.stats import wilson_interval
from glmeval.report.data import ReportData, clean
from glmeval.report.matrix import matrix

# column -> whether higher is better
BEST_DIRECTION: dict[str, bool] = {
    "pass_rate": True,
    "case_pass_rate": True,
    "checks_rate": True,
    "latency_p50_ms": False,
    "latency_p95_ms": False,
    "ttft_p50_ms": False,
    "ttfr_p50_ms": False,
    "prompt_tokens": False,
    "completion_tokens": False,
    "reasoning_tokens_mean": False,
    "cost": False,
    "errors": False,
}


# decimals each column is shown with (markdown.py / html.py formatters)
BEST_PRECISION: dict[str, int] = {
    "pass_rate": 2, "case_pass_rate": 2, "checks_rate": 2, "latency_p50_ms": 0, "latency_p95_ms": 0, "ttft_p50_ms": 0,
    "prompt_tokens": 1, "completion_tokens": 1, "cost": 4, "errors": 0, "ttfr_p50_ms": 0, "reasoning_tokens_mean": 1,
}

REASONING_COLUMN = "reasoning_tokens_mean"
TTFR_COLUMN = "ttfr_p50_ms"
DISTINCT_COLUMN = "distinct_answers"


def answer_groups(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, case) with an answer: ``answers`` how many, ``distinct`` how
    many different ones (the answer text and its tool calls, errors left out)."""
    if results.empty or "output" not in results.columns:
        return pd.DataFrame(columns=["variant_id", "case_id", "answers", "distinct"])
    answered = results[results["status"] != "error"]
    # fillna first: pandas' string dtype keeps a missing value missing through astype(str).
    calls = answered["tool_calls"].fillna("").astype(str) if "tool_calls" in answered.columns else ""
    frame = pd.DataFrame({"variant_id": answered["variant_id"], "case_id": answered["case_id"],
                          "answer": answered["output"].fillna("").astype(str) + "\x1f" + calls})
    grouped = frame.groupby(["variant_id", "case_id"])["answer"].agg(["count", "nunique"]).reset_index()
    return grouped.rename(columns={"count": "answers", "nunique": "distinct"})


def distinct_answers(results: pd.DataFrame, groups: pd.DataFrame | None = None) -> dict[str, float]:
    """Per variant, the mean number of different answers a case got over its repeats.

    Only cases answered at least twice count, and a variant without any is left out: with one
    answer per case there is nothing to compare. 1.0 means every repeat said the same (greedy
    decoding, or a temperature too low to matter); higher is more variety. ``groups`` is
    :func:`answer_groups` already counted (by the database, for a big run).
    """
    groups = answer_groups(results) if groups is None else groups
    repeated = groups[groups["answers"] >= 2]
    if repeated.empty:
        return {}
    return {str(k): float(v) for k, v in repeated.groupby("variant_id")["distinct"].mean().items()}


def shows_distinct(summary: pd.DataFrame) -> bool:
    """Whether the summary gets a "distinct answers" column: some variant repeated a case."""
    if summary.empty or DISTINCT_COLUMN not in summary.columns:
        return False
    return bool(pd.to_numeric(summary[DISTINCT_COLUMN], errors="coerce").notna().any())


def shows_reasoning(summary: pd.DataFrame) -> bool:
    """Whether the summary gets a reasoning-tokens column: some variant reasoned. A run
    without thinking models (or stored before reasoning was recorded) keeps its old table."""
    if summary.empty or REASONING_COLUMN not in summary.columns:
        return False
    return bool((pd.to_numeric(summary[REASONING_COLUMN], errors="coerce") > 0).any())


def shows_ttfr(summary: pd.DataFrame) -> bool:
    """Whether the summary gets a TTFR column: some variant streamed reasoning."""
    if summary.empty or TTFR_COLUMN not in summary.columns:
        return False
    return bool(pd.to_numeric(summary[TTFR_COLUMN], errors="coerce").notna().any())


def enrich_summary(
    summary: pd.DataFrame,
    checks: pd.DataFrame,
    results: pd.DataFrame | None = None,
    *,
    check_counts: pd.DataFrame | None = None,
    groups: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Add the 95% Wilson interval of the pass rate, the checks passed per variant and, given
    the results, the distinct answers per case (:func:`distinct_answers`).

    An interval next to the rate stops people reading 2 of 3 vs 3 of 3 as a real difference.
    Idempotent, so a summary that already has the columns is returned unchanged. A big run
    passes what the database counted: ``check_counts`` (per variant ``sum`` and ``count`` of
    checks passed and run) and ``groups`` (:func:`answer_groups`).
    """
    if summary.empty or "pass_lo" in summary.columns:
        return summary
    out = summary.copy()
    if "pass_rate_lo" in out.columns and "pass_rate_hi" in out.columns:
        out["pass_lo"], out["pass_hi"] = out["pass_rate_lo"], out["pass_rate_hi"]
    else:
        bounds = [wilson_interval(int(p), int(n)) for p, n in zip(out["passed"], out["jobs"])]
        out["pass_lo"] = [b[0] for b in bounds]
        out["pass_hi"] = [b[1] for b in bounds]
    if check_counts is not None or not checks.empty:
        grouped = check_counts if check_counts is not None else checks.groupby("variant_id")["passed"].agg(["sum", "count"])
        out["checks_passed"] = [int(grouped["sum"].get(v, 0)) for v in out["variant"]]
        out["checks_total"] = [int(grouped["count"].get(v, 0)) for v in out["variant"]]
    else:
        out["checks_passed"] = 0
        out["checks_total"] = 0
    out["checks_rate"] = [p / t if t else float("nan") for p, t in zip(out["checks_passed"], out["checks_total"])]
    if results is not None:
        distinct = distinct_answers(results, groups)
        out[DISTINCT_COLUMN] = [distinct.get(str(v), float("nan")) for v in out["variant"]]
    return out


def best_variants(summary: pd.DataFrame) -> dict[str, set[str]]:
    """For each comparable column, the variants holding its best value.

    Nothing is marked when there is one variant or every variant ties: a highlight should
    point at a difference, not decorate a column.
    """
    out: dict[str, set[str]] = {}
    if len(summary) < 2:
        return out
    for col, higher in BEST_DIRECTION.items():
        if col not in summary.columns:
            continue
        values = {v: clean(x) for v, x in zip(summary["variant"], summary[col])}
        # Compare at the precision shown, so two cells that read the same are both marked or neither.
        digits = BEST_PRECISION.get(col, 6)
        finite = {v: round(float(x), digits) for v, x in values.items() if x is not None}
        if len(finite) < 2 or len(set(round(x, 12) for x in finite.values())) < 2:
            continue
        best = max(finite.values()) if higher else min(finite.values())
        out[col] = {v for v, x in finite.items() if abs(x - best) <= 1e-12 * max(1.0, abs(best))}
    return out


def totals(data: ReportData) -> dict[str, Any]:
    """Run-wide figures for the header: what a reader wants before any table.

    ``cost`` is what the run cost: ``answer_cost`` (the answers' own price) plus
    ``grader_cost`` (what model-graded checks spent judging them), the same sum as the
    summary's cost column. It is unknown (NaN, shown as "?") only when no answer has a known
    price and nothing was spent grading.
    """
    res = data.results
    if res.empty:
        return {"jobs": 0, "passed": 0, "failed": 0, "errors": 0, "pass_rate": None, "cost": 0.0, "answer_cost": 0.0,
                "grader_cost": 0.0, "tokens": 0, "cached": 0, "duration_s": None, "cases": 0, "cells_failed": 0, "cells": 0}
    status = res["status"]
    duration = (data.run.ended_at - data.run.started_at) if data.run.ended_at else None
    if data.scale is not None:
        cases, cells, cells_failed = data.scale.cases, len(data.scale.cells), data.scale.cells_failed
    else:
        m = matrix(data)
        cases, cells, cells_failed = len(m.cases), len(m.cells), sum(not c.passed for c in m.cells.values())
    answer_cost = float(pd.to_numeric(res["cost"], errors="coerce").sum(min_count=1))
    grader = pd.to_numeric(res["judge_cost"], errors="coerce") if "judge_cost" in res.columns else pd.Series(dtype=float)
    grader_cost = float(grader.fillna(0).sum())
    return {
        "jobs": len(res),
        "passed": int((status == "pass").sum()),
        "failed": int((status == "fail").sum()),
        "errors": int((status == "error").sum()),
        "pass_rate": float((status == "pass").mean()),
        "cost": run_cost(answer_cost, grader_cost),
        "answer_cost": answer_cost,
        "grader_cost": grader_cost,
        "tokens": int(res["total_tokens"].fillna(0).sum()),
        "cached": int(res["cached"].sum()),
        "duration_s": duration,
        "cases": cases,
        "cells": cells,
        "cells_failed": cells_failed,
    }


def models(data: ReportData) -> list[str]:
    if data.results.empty:
        return sorted({str(v.get("model")) for v in data.variants.values() if v.get("model")})
    return list(dict.fromkeys(data.results["model"].tolist()))




def outcome(data: ReportData) -> dict[str, str]:
    """The header badge: the stored status, coloured by what the run actually produced, so a
    run whose every call failed is never shown as a green "complete". ``tone`` is good (every
    case passed), warn (some cases failed), bad (errors, or a run that did not finish)."""
    status = data.run.status
    t = totals(data)
    parts = [status]
    if t["errors"]:
        parts.append(f"{t['errors']} error{'s' if t['errors'] != 1 else ''}")
    if data.scale is not None:
        failing = data.scale.failing_not_error
    else:
        failing = sum(1 for c in matrix(data).cells.values() if not c.passed and c.kind != "error")
    if failing:
        parts.append(f"{failing} failing")
    if status in ("interrupted", "aborted", "failed") or t["errors"]:
        tone = "bad"
    elif status != "complete" or t["cells_failed"] or not t["jobs"]:
        tone = "warn"
    else:
        tone = "good"
    return {"text": " · ".join(parts), "tone": tone}


__all__ = [
    "BEST_DIRECTION", "BEST_PRECISION", "REASONING_COLUMN", "TTFR_COLUMN", "enrich_summary", "best_variants", "totals",
    "models", "outcome", "shows_reasoning", "shows_ttfr", "DISTINCT_COLUMN", "answer_groups", "distinct_answers",
    "shows_distinct",
]
