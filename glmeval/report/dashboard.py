"""The history dashboard: one self-contained HTML page of a suite's recent runs.

A run's report answers "how did this run go"; the dashboard answers "where is this suite
going": each variant's pass rate, latency, tokens and cost run after run, how each grid axis
(temperature, thinking, prompt...) moved the pass rate in every run, and the runs themselves.
Like ``report.html`` it is one file with inline CSS and SVG, nothing fetched, everything a
suite author or a model wrote escaped (the template autoescapes; the charts escape their text).

The data comes from :func:`glmeval.analysis.frames.results_frame` and
:func:`~glmeval.analysis.frames.summary_frame`, one run at a time, so the numbers are the same
ones each run's own report shows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from markupsafe import Markup

from glmeval.analysis.frames import results_frame, summary_frame
from glmeval.errors import GlmevalError
from glmeval.hints import did_you_mean
from glmeval.percent import percent
from glmeval.report.charts import default_fmt, line_chart, pct_fmt
from glmeval.report.effects import axis_value_label
from glmeval.store import RunInfo, StoreReader

DASHBOARD_RUNS = 20
MAX_SERIES = 10  # the palette's size: more lines than colours cannot be told apart
FILE_NAME = "history.html"


def _cost_fmt(value: float) -> str:
    return "¥" + default_fmt(value)


# (summary column, chart title, axis formatter, y pinned to 1.0)
VARIANT_METRICS: list[tuple[str, str, Callable[[float], str], bool]] = [
    ("pass_rate", "pass rate", pct_fmt, True),
    ("latency_p50_ms", "latency p50 (ms)", default_fmt, False),
    ("latency_p95_ms", "latency p95 (ms)", default_fmt, False),
    ("total_tokens", "tokens per run", default_fmt, False),
    ("run_cost", "cost per run (¥, answers + grading)", _cost_fmt, False),
]


@dataclass
class RunStats:
    """One run of the suite: its record, the per-variant summary and, per grid axis, the
    metrics by axis value (index: the value's label; columns ``pass_rate``, ``latency_p50_ms``, ``n``)."""

    info: RunInfo
    summary: pd.DataFrame
    axes: dict[str, pd.DataFrame] = field(default_factory=dict)
    results: int = 0
    pass_rate: float | None = None
    cost: float | None = None  # answers + grading; None when no answer's price is known


@dataclass
class History:
    """A suite's last runs, oldest first."""

    suite: str
    runs: list[RunStats]
    total_runs: int


def _clean(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _axis_columns(results: pd.DataFrame) -> list[str]:
    """The grid axes of one run: parameter columns that are constant within a variant, differ
    between variants and appear in the variant labels as ``key=`` (``model`` is the variant itself)."""
    if results.empty:
        return []
    labels = results["variant_id"].astype(str).unique().tolist()
    out = []
    for column in results.columns:
        if column in ("model", "variant_id") or not any(f" {column}=" in f" {lab}" for lab in labels):
            continue
        per_variant = results.groupby("variant_id", sort=False)[column].nunique(dropna=False)
        if per_variant.max() <= 1 and results[column].dropna().astype(str).nunique() > 1:
            out.append(column)
    return out


def _axis_table(results: pd.DataFrame, axis: str) -> pd.DataFrame:
    present = results[axis].map(lambda v: not _is_missing(v))
    results = results[present]  # a variant without the axis (glm-4 on a thinking axis) is no point on it
    labels = results[axis].map(lambda v: axis_value_label(axis, v))
    fresh = ~results["cached"].astype(bool) & (results["status"] != "error")
    frame = pd.DataFrame({
        "value": labels,
        "ok": (results["status"] == "pass").astype(float),
        "lat": pd.to_numeric(results["latency_ms"], errors="coerce").where(fresh),
    })
    g = frame.groupby("value", sort=False)
    return pd.DataFrame({"pass_rate": g["ok"].mean(), "latency_p50_ms": g["lat"].median(), "n": g["ok"].size()})


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _total_cost(answers: float, grading: float) -> float | None:
    """Answers plus grading, the way the run's summary adds them: unknown ("?") only when no
    answer's price is known and nothing was spent grading."""
    if math.isnan(answers):
        return grading or None
    return answers + grading


def run_stats(store: StoreReader, info: RunInfo) -> RunStats:
    """One run's numbers, read through the same frames as its report."""
    results = results_frame(store, info.id)
    summary = summary_frame(results, info.variants)
    if not summary.empty:
        if "answer_cost" in summary.columns:  # ``cost`` already adds the grading to the answers
            summary["run_cost"] = summary["cost"]
        else:
            judge = summary["judge_cost"].fillna(0.0) if "judge_cost" in summary.columns else 0.0
            summary["run_cost"] = summary["cost"] + judge
    stats = RunStats(info, summary, results=len(results))
    if results.empty:
        return stats
    stats.pass_rate = float((results["status"] == "pass").mean())
    answer_cost = pd.to_numeric(results["cost"], errors="coerce")
    judge_cost = pd.to_numeric(results.get("judge_cost", pd.Series(dtype=float)), errors="coerce").fillna(0.0)
    stats.cost = _total_cost(float(answer_cost.sum(min_count=1)), float(judge_cost.sum()))
    stats.axes = {axis: _axis_table(results, axis) for axis in _axis_columns(results)}
    return stats


def load_history_dashboard(store: StoreReader, suite: str, runs: int = DASHBOARD_RUNS) -> History:
    """The ``runs`` most recent runs of ``suite``; an unknown suite is one line naming the stored ones."""
    suites = store.suites()
    if suite not in suites:
        known = ", ".join(suites) if suites else "none yet"
        hint = did_you_mean(suite, suites)
        raise GlmevalError(f"no suite {suite!r} in {store.path}{hint}; suites in the database: {known}")
    infos = store.list_runs(suite, limit=max(1, runs), oldest_first=True)
    total = len(store.list_runs(suite, limit=None))
    return History(suite, [run_stats(store, info) for info in infos], total)


def _when(ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return dt.datetime.fromtimestamp(ts).strftime(fmt) if ts else "–"


def _pct(value: float | None) -> str:
    return percent(value)


def _money(value: float | None) -> str:
    if value is None:
        return "?"
    return f"¥{value:.4f}" if value < 1 else f"¥{value:,.2f}"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def _x_axis(history: History) -> tuple[list[str], list[str]]:
    """Tick labels (dates) and tooltips (run id, date, simulated) for the runs, oldest first."""
    days = {_when(r.info.started_at, "%Y-%m-%d") for r in history.runs}
    labels = [_when(r.info.started_at, "%H:%M" if len(days) == 1 else "%m-%d %H:%M") for r in history.runs]
    if len(set(labels)) < len(labels):  # runs a minute apart: number them, the tooltips keep the dates
        labels = [f"#{i + 1}" for i in range(len(labels))]
    tips = [f"{r.info.id} · {_when(r.info.started_at)}{' · simulated' if r.info.local else ''}" for r in history.runs]
    return labels, tips


def _variants(history: History) -> list[str]:
    """Every variant seen, the latest run's first (they are what the suite runs now)."""
    order: list[str] = []
    for stats in reversed(history.runs):
        order += [v for v in stats.summary["variant"].tolist() if v not in order] if not stats.summary.empty else []
    return order


def variant_charts(history: History) -> tuple[list[Markup], int]:
    """One line chart per metric, a line per variant (at most :data:`MAX_SERIES`), a point per run."""
    labels, tips = _x_axis(history)
    variants = _variants(history)
    shown = variants[:MAX_SERIES]
    charts = []
    for key, title, fmt, pinned in VARIANT_METRICS:
        series: dict[str, list[float | None]] = {v: [] for v in shown}
        for stats in history.runs:
            by_variant = stats.summary.set_index("variant")[key] if not stats.summary.empty else pd.Series(dtype=float)
            for v in shown:
                series[v].append(_clean(by_variant.get(v)) if v in by_variant.index else None)
        charts.append(line_chart(labels, series, title=title, fmt=fmt, y_max=1.0 if pinned else None,
                                 x_tips=tips, width=460, height=230))
    return charts, len(variants)


def _axis_order(values: list[str]) -> list[str]:
    """Numeric axes (temperature) in numeric order, others in the order first seen."""
    def number(label: str) -> float | None:
        try:
            return float(label)
        except ValueError:
            return None

    if all(number(v) is not None for v in values):
        return sorted(values, key=lambda v: number(v) or 0.0)
    return values


def axis_blocks(history: History) -> list[dict[str, Any]]:
    """Per grid axis: a chart of the pass rate per axis value over the runs, and the table
    behind it (newest run first: pass rate and latency p50 per value)."""
    axes: list[str] = []
    for stats in history.runs:
        axes += [a for a in stats.axes if a not in axes]
    labels, tips = _x_axis(history)
    blocks = []
    for axis in axes:
        values: list[str] = []
        for stats in history.runs:
            table = stats.axes.get(axis)
            if table is not None:
                values += [v for v in table.index.tolist() if v not in values]
        values = _axis_order(values)

        def cell(stats: RunStats, value: str, column: str, axis: str = axis) -> float | None:
            table = stats.axes.get(axis)
            return _clean(table.at[value, column]) if table is not None and value in table.index else None

        series = {f"{axis}={v}": [cell(s, v, "pass_rate") for s in history.runs] for v in values[:MAX_SERIES]}
        chart = line_chart(labels, series, title=f"pass rate by {axis}", fmt=pct_fmt, y_max=1.0, x_tips=tips,
                           width=460, height=230)
        rows = []
        for stats in reversed(history.runs):
            cells = []
            for v in values:
                rate, n = cell(stats, v, "pass_rate"), cell(stats, v, "n")
                cells.append({"pct": _pct(rate), "ms": _ms(cell(stats, v, "latency_p50_ms")), "n": int(n) if n else 0})
            rows.append({"id": stats.info.id, "when": _when(stats.info.started_at), "local": stats.info.local, "cells": cells})
        blocks.append({"axis": axis, "values": values, "chart": chart, "rows": rows})
    return blocks


def run_rows(history: History) -> list[dict[str, Any]]:
    """The runs table, newest first."""
    return [
        {
            "id": s.info.id,
            "when": _when(s.info.started_at),
            "commit": s.info.short_commit or "–",
            "branch": s.info.git_branch or "",
            "status": s.info.status,
            "local": s.info.local,
            "replay": s.info.replay,
            "results": s.results,
            "pass_rate": _pct(s.pass_rate),
            "cost": _money(s.cost),
        }
        for s in reversed(history.runs)
    ]


def render_dashboard(history: History) -> str:
    """The dashboard as one HTML document (a string)."""
    from glmeval.report.html import environment
    from glmeval.version import __version__

    charts, n_variants = variant_charts(history)
    simulated = sum(1 for s in history.runs if s.info.local)
    return environment().get_template("dashboard.html.j2").render(
        suite=history.suite,
        version=__version__,
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        shown=len(history.runs),
        total=history.total_runs,
        simulated=simulated,
        first=_when(history.runs[0].info.started_at) if history.runs else "–",
        last=_when(history.runs[-1].info.started_at) if history.runs else "–",
        charts=charts,
        n_variants=n_variants,
        max_series=MAX_SERIES,
        axes=axis_blocks(history),
        runs=run_rows(history),
    )


__all__ = ["DASHBOARD_RUNS", "FILE_NAME", "History", "RunStats", "load_history_dashboard", "render_dashboard",
           "run_stats"]
