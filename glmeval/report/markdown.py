"""GitHub-flavoured Markdown report, readable in a pull-request comment."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Callable

import pandas as pd
from tabulate import tabulate

from glmeval.report import ReportData

MAX_OUTPUT = 160

Section = Callable[[ReportData], str]
SECTIONS: list[Section] = []


def section(fn: Section) -> Section:
    SECTIONS.append(fn)
    return fn


def fmt_ms(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.0f}"


def fmt_pct(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0%}"


def fmt_num(value: Any, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def fmt_cost(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"¥{value:.4f}"


def md_escape(text: str, limit: int = MAX_OUTPUT) -> str:
    """One table cell: no pipes or newlines, truncated with a visible note."""
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    if len(text) > limit:
        text = text[: limit - 1] + f"… (+{len(text) - limit + 1} chars)"
    return text


def summary_table(summary: pd.DataFrame, tablefmt: str = "github") -> str:
    rows = [
        [
            r.variant,
            fmt_pct(r.pass_rate),
            f"{r.passed}/{r.jobs}",
            fmt_ms(r.latency_p50_ms),
            fmt_ms(r.latency_p95_ms),
            fmt_ms(r.ttft_p50_ms),
            fmt_num(r.prompt_tokens),
            fmt_num(r.completion_tokens),
            fmt_cost(r.cost),
            r.errors,
        ]
        for r in summary.itertuples()
    ]
    headers = ["variant", "pass rate", "passed", "p50 ms", "p95 ms", "TTFT p50 ms", "prompt tok", "completion tok", "cost", "errors"]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


@section
def header(data: ReportData) -> str:
    run = data.run
    started = dt.datetime.fromtimestamp(run.started_at).strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"# glmeval report: {run.suite}", ""]
    if run.local:
        lines += ["> **Simulated**: answered by glmeval's local GLM server, not the real API.", ""]
    if run.replay:
        lines += ["> **Replayed** from the response cache: no request was sent.", ""]
    facts = [f"run `{run.id}`", f"started {started}", f"status **{run.status}**"]
    if run.git_commit:
        facts.append(f"commit `{run.git_commit[:10]}`{' (dirty)' if run.git_dirty else ''}")
    lines.append(" · ".join(facts))
    return "\n".join(lines)


@section
def summary(data: ReportData) -> str:
    return "## Summary by variant\n\n" + summary_table(data.summary)


@section
def failures(data: ReportData) -> str:
    res = data.results
    if res.empty:
        return ""
    bad = res[res["status"] != "pass"]
    if bad.empty:
        return "## Failures\n\nNone: every check passed."
    checks = data.checks
    rows = []
    for r in bad.itertuples():
        if r.status == "error":
            why = f"error ({r.error_kind}): {r.error_message}"
        else:
            failed = checks[(checks["job_id"] == r.job_id) & (~checks["passed"])]
            why = "; ".join(f"{c.label}: {c.reason}" for c in failed.itertuples())
        rows.append([r.case_id, r.variant_id, r.repeat, md_escape(why, 240), md_escape(r.output or "")])
    return "## Failures\n\n" + tabulate(
        rows, headers=["case", "variant", "repeat", "why", "answer"], tablefmt="github", disable_numparse=True
    )


def render_markdown(data: ReportData) -> str:
    parts = [s(data) for s in SECTIONS]
    return "\n\n".join(p for p in parts if p) + "\n"
