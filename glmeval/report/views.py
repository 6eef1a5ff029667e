"""What every renderer shows, computed once from :class:`~glmeval.report.ReportData`.

Markdown, HTML, JUnit and JSON must agree on what "passed" means for a case with repeats, on
which variant is best in a column and on what a parameter did, so those decisions live here
and the renderers only format them. Results are grouped with dictionaries built in one pass
(never a DataFrame filter per row), because a 10,000-result run must render in a second or two.
Computed views are memoised on ``data.cache`` so rendering two formats does the work once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from glmeval.analysis.stats import wilson_interval

if TYPE_CHECKING:
    from glmeval.report import ReportData


def is_missing(value: Any) -> bool:
    """``None`` or NaN: what pandas gives for a value the store never had."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def clean(value: Any) -> Any:
    """A JSON- and template-friendly scalar: NaN → ``None``, numpy scalars → Python."""
    if is_missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    return value


def _memo(data: ReportData, key: str, build: Callable[[], Any]) -> Any:
    if key not in data.cache:
        data.cache[key] = build()
    return data.cache[key]


# -- the case x variant matrix -----------------------------------------------------------


@dataclass
class CheckRow:
    """One check's verdict as shown to a person."""

    label: str
    type: str
    passed: bool
    score: float | None
    reason: str
    error: bool


@dataclass
class Attempt:
    """One repeat of a case on a variant: the answer and how it was judged."""

    job_id: str
    repeat: int
    status: str
    output: str
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    latency_ms: float | None
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    error: str | None
    error_kind: str | None
    cached: bool
    attempts: int | None
    checks: list[CheckRow] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[CheckRow]:
        return [c for c in self.checks if not c.passed]

    def why(self) -> str:
        """One line saying why this answer did not pass."""
        if self.status == "error":
            return f"error ({self.error_kind}): {self.error}"
        failed = self.failed_checks
        return "; ".join(shown_reason(c) for c in failed) if failed else ""


def shown_reason(check: CheckRow) -> str:
    """``label: reason`` for one failed check, as every report and the terminal show it.

    A reason that already starts with the check's type (``tool-call get_weather: …``) loses
    that prefix when the label shows the type, so it is not printed twice; a check that
    errored (raised, returned nothing usable, its file vanished) is marked ``check error:``
    so a broken check is not read as the model's failure."""
    label, reason = check.label, check.reason
    if check.type and label.split(" ", 1)[0] in (check.type, "not"):
        for prefix in (f"{label}: ", f"{label} ", f"not {check.type}: ", f"{check.type}: ", f"{check.type} "):
            if reason.startswith(prefix) and (prefix.startswith("not ") == label.startswith("not ")):
                reason = reason[len(prefix):]
                break
    text = f"{label}: {reason}"
    return f"check error: {text}" if check.error else text


@dataclass
class Cell:
    """A case on a variant: all its repeats and the verdict across them.

    ``passed`` follows the case's ``threshold`` (minimum share of passing repeats; every
    repeat by default), so a flaky case the suite tolerates is not shown as a failure.
    ``kind`` is for colour: ``pass`` (every repeat), ``partial`` (some), ``fail`` (none) or
    ``error`` (every non-passing repeat had no answer at all).
    """

    case_id: str
    variant_id: str
    vi: int
    attempts: list[Attempt]
    threshold: float | None = None

    @property
    def n(self) -> int:
        return len(self.attempts)

    @property
    def passes(self) -> int:
        return sum(a.status == "pass" for a in self.attempts)

    @property
    def errors(self) -> int:
        return sum(a.status == "error" for a in self.attempts)

    @property
    def passed(self) -> bool:
        need = 1.0 if self.threshold is None else float(self.threshold)
        return self.n > 0 and self.passes / self.n >= need - 1e-9

    @property
    def kind(self) -> str:
        if self.passes == self.n:
            return "pass"
        if self.errors and self.errors == self.n - self.passes:
            return "error"
        return "partial" if self.passes else "fail"

    @property
    def label(self) -> str:
        if self.n == 1:
            return {"pass": "pass", "fail": "fail", "error": "error", "partial": "fail"}[self.kind]
        return f"{self.passes}/{self.n}"

    @property
    def icon(self) -> str:
        return {"pass": "✅", "partial": "⚠️", "fail": "❌", "error": "💥"}[self.kind]

    def why(self) -> str:
        """The distinct reasons of the failing repeats, in repeat order."""
        reasons: list[str] = []
        for a in self.attempts:
            w = a.why()
            if w and w not in reasons:
                reasons.append(w)
        return " | ".join(reasons)


@dataclass
class Matrix:
    cases: list[str]
    variants: list[str]
    cells: dict[tuple[str, str], Cell]
    case_info: dict[str, dict[str, Any]]

    def row(self, case_id: str) -> list[Cell | None]:
        return [self.cells.get((case_id, v)) for v in self.variants]

    def case_passed(self, case_id: str) -> bool:
        return all(c.passed for c in self.row(case_id) if c is not None)

    def messages(self, case_id: str) -> list[dict[str, Any]]:
        return self.case_info.get(case_id, {}).get("messages", [])

    def same_conversation(self, case_id: str) -> bool:
        return bool(self.case_info.get(case_id, {}).get("same_messages", True))


def failure_lines(data: ReportData, limit: int = 10, width: int = 160) -> list[str]:
    """One line per failing case × variant, errors first: what a terminal shows after a run,
    so nobody has to open a report to learn why the build is red."""
    bad = [c for c in matrix(data).cells.values() if not c.passed]
    bad.sort(key=lambda c: (c.kind != "error", c.case_id, c.vi))
    lines = []
    for cell in bad[:limit]:
        why = " ".join(cell.why().split())
        if len(why) > width:
            why = why[: width - 1] + "…"
        lines.append(f"{cell.icon} {cell.case_id} [{cell.variant_id}] {cell.label}: {why}")
    if len(bad) > limit:
        lines.append(f"… and {len(bad) - limit} more (see the report)")
    return lines


def failure_items(data: ReportData, limit: int = 200, width: int = 400) -> tuple[list[dict[str, Any]], int]:
    """The HTML report's "Failures and errors" list: one item per failing case × variant
    (errors first, then in matrix order) with why it failed (the failing checks' reasons or
    the error text), and how many there are in all."""
    m = matrix(data)
    bad = [m.cells[(c, v)] for c in m.cases for v in m.variants if (c, v) in m.cells and not m.cells[(c, v)].passed]
    bad.sort(key=lambda c: c.kind != "error")  # stable: matrix order within each group
    items = []
    for cell in bad[:limit]:
        why = " ".join(cell.why().split())
        if len(why) > width:
            why = why[: width - 1] + "…"
        items.append({
            "case_id": cell.case_id,
            "variant_id": cell.variant_id,
            "kind": cell.kind,
            "label": f"{cell.passes}/{cell.n}" if cell.n > 1 else cell.label,
            "errors": cell.errors,
            "why": why or "below the case's threshold",
        })
    return items, len(bad)


def outcome(data: ReportData) -> dict[str, str]:
    """The header badge: the stored status, coloured by what the run actually produced, so a
    run whose every call failed is never shown as a green "complete". ``tone`` is good (every
    case passed), warn (some cases failed), bad (errors, or a run that did not finish)."""
    status = data.run.status
    t = totals(data)
    parts = [status]
    if t["errors"]:
        parts.append(f"{t['errors']} error{'s' if t['errors'] != 1 else ''}")
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


def variant_order(data: ReportData) -> list[str]:
    """Variants as the plan listed them, then any others found in the results."""
    order = [v for v in data.summary["variant"].tolist()] if not data.summary.empty else []
    if not data.results.empty:
        for v in dict.fromkeys(data.results["variant_id"].tolist()):
            if v not in order:
                order.append(v)
    return order


def checks_by_job(data: ReportData) -> dict[str, list[CheckRow]]:
    def build() -> dict[str, list[CheckRow]]:
        out: dict[str, list[CheckRow]] = {}
        c = data.checks
        if c.empty:
            return out
        cols = [c[k].tolist() for k in ("job_id", "label", "type", "passed", "score", "reason", "error")]
        for job_id, label, typ, passed, score, reason, error in zip(*cols):
            out.setdefault(job_id, []).append(
                CheckRow(label or typ, typ, bool(passed), clean(score), reason or "", bool(error))
            )
        return out

    return _memo(data, "checks_by_job", build)


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    if is_missing(raw) or not raw:
        return []
    try:
        calls = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return [{"name": "?", "arguments": str(raw)}]
    out = []
    for call in calls or []:
        args = call.get("arguments", "")
        try:
            pretty = json.dumps(json.loads(args), ensure_ascii=False, indent=2) if args else ""
        except (TypeError, ValueError):
            pretty = str(args)
        out.append({"name": call.get("name", "?"), "arguments": pretty, "id": call.get("id")})
    return out


def matrix(data: ReportData) -> Matrix:
    def build() -> Matrix:
        variants = variant_order(data)
        vindex = {v: i for i, v in enumerate(variants)}
        by_job = checks_by_job(data)
        cells: dict[tuple[str, str], Cell] = {}
        cases: list[str] = []
        info: dict[str, dict[str, Any]] = {}
        res = data.results
        if res.empty:
            return Matrix([], variants, {}, {})
        cols = (
            "job_id", "case_id", "variant_id", "repeat", "status", "output", "tool_calls", "finish_reason",
            "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "cost", "error_kind", "error_message",
            "error_status", "cached", "attempts", "threshold",
        )
        columns = [res[k].tolist() if k in res.columns else [None] * len(res) for k in cols]
        for row in zip(*columns):
            (job_id, case_id, variant_id, repeat, status, output, tool_calls, finish, latency, ttft, pt, ct, cost,
             ekind, emsg, estatus, cached, attempts, threshold) = row
            job = data.jobs.get(job_id, {})
            error = None
            if status == "error":
                where = f"HTTP {int(estatus)} " if not is_missing(estatus) else ""
                error = f"{where}{emsg or ''}".strip() or str(ekind)
            attempt = Attempt(
                job_id=job_id,
                repeat=int(repeat),
                status=status,
                output=output if isinstance(output, str) else "",
                tool_calls=_tool_calls(tool_calls),
                finish_reason=clean(finish),
                latency_ms=clean(latency),
                ttft_ms=clean(ttft),
                prompt_tokens=clean(pt),
                completion_tokens=clean(ct),
                cost=clean(cost),
                error=error,
                error_kind=clean(ekind),
                cached=bool(cached),
                attempts=clean(attempts),
                checks=by_job.get(job_id, []),
            )
            key = (case_id, variant_id)
            cell = cells.get(key)
            if cell is None:
                if case_id not in info:
                    cases.append(case_id)
                    info[case_id] = {
                        "messages": job.get("messages") or [],
                        "description": job.get("description"),
                        "tags": job.get("tags") or [],
                        "tools": (job.get("params") or {}).get("tools"),
                        "same_messages": True,
                    }
                elif job.get("messages") is not None and job.get("messages") != info[case_id]["messages"]:
                    info[case_id]["same_messages"] = False
                if variant_id not in vindex:
                    vindex[variant_id] = len(variants)
                    variants.append(variant_id)
                if is_missing(threshold):
                    threshold = job.get("threshold")
                cell = cells[key] = Cell(case_id, variant_id, vindex[variant_id], [], clean(threshold))
            cell.attempts.append(attempt)
        for cell in cells.values():
            cell.attempts.sort(key=lambda a: a.repeat)
        return Matrix(cases, variants, cells, info)

    return _memo(data, "matrix", build)


def cell_messages(data: ReportData, cell: Cell) -> list[dict[str, Any]]:
    """The conversation sent for this cell (all repeats share it)."""
    if not cell.attempts:
        return []
    return data.jobs.get(cell.attempts[0].job_id, {}).get("messages") or []


def message_text(message: dict[str, Any]) -> str:
    """A message's content as text: multimodal parts and tool results flattened for reading."""
    content = message.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            else:
                parts.append(json.dumps(part, ensure_ascii=False))
        text = "\n".join(parts)
    else:
        text = json.dumps(content, ensure_ascii=False, indent=2)
    calls = message.get("tool_calls")
    if calls:
        text += ("\n" if text else "") + json.dumps(calls, ensure_ascii=False, indent=2)
    return text


# -- summary -----------------------------------------------------------------------------

# column -> whether higher is better
BEST_DIRECTION: dict[str, bool] = {
    "pass_rate": True,
    "case_pass_rate": True,
    "checks_rate": True,
    "latency_p50_ms": False,
    "latency_p95_ms": False,
    "ttft_p50_ms": False,
    "prompt_tokens": False,
    "completion_tokens": False,
    "cost": False,
    "errors": False,
}


# decimals each column is shown with (markdown.py / html.py formatters)
BEST_PRECISION: dict[str, int] = {
    "pass_rate": 2, "case_pass_rate": 2, "checks_rate": 2, "latency_p50_ms": 0, "latency_p95_ms": 0, "ttft_p50_ms": 0,
    "prompt_tokens": 1, "completion_tokens": 1, "cost": 4, "errors": 0,
}


def enrich_summary(summary: pd.DataFrame, checks: pd.DataFrame) -> pd.DataFrame:
    """Add the 95% Wilson interval of the pass rate and the checks passed per variant.

    An interval next to the rate stops people reading 2 of 3 vs 3 of 3 as a real difference.
    Idempotent, so a summary that already has the columns is returned unchanged.
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
    if not checks.empty:
        grouped = checks.groupby("variant_id")["passed"].agg(["sum", "count"])
        out["checks_passed"] = [int(grouped["sum"].get(v, 0)) for v in out["variant"]]
        out["checks_total"] = [int(grouped["count"].get(v, 0)) for v in out["variant"]]
    else:
        out["checks_passed"] = 0
        out["checks_total"] = 0
    out["checks_rate"] = [p / t if t else float("nan") for p, t in zip(out["checks_passed"], out["checks_total"])]
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
    """Run-wide figures for the header: what a reader wants before any table."""
    res = data.results
    if res.empty:
        return {"jobs": 0, "passed": 0, "failed": 0, "errors": 0, "pass_rate": None, "cost": 0.0, "tokens": 0,
                "cached": 0, "duration_s": None, "cases": 0, "cells_failed": 0, "cells": 0}
    m = matrix(data)
    status = res["status"]
    duration = (data.run.ended_at - data.run.started_at) if data.run.ended_at else None
    cells_failed = sum(not c.passed for c in m.cells.values())
    return {
        "jobs": len(res),
        "passed": int((status == "pass").sum()),
        "failed": int((status == "fail").sum()),
        "errors": int((status == "error").sum()),
        "pass_rate": float((status == "pass").mean()),
        "cost": float(res["cost"].fillna(0).sum()),
        "tokens": int(res["total_tokens"].fillna(0).sum()),
        "cached": int(res["cached"].sum()),
        "duration_s": duration,
        "cases": len(m.cases),
        "cells": len(m.cells),
        "cells_failed": cells_failed,
    }


def models(data: ReportData) -> list[str]:
    if data.results.empty:
        return sorted({str(v.get("model")) for v in data.variants.values() if v.get("model")})
    return list(dict.fromkeys(data.results["model"].tolist()))


# -- parameter effects -------------------------------------------------------------------

EFFECT_METRICS: list[tuple[str, str]] = [
    ("pass_rate", "pass rate"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("completion_tokens", "completion tokens (mean)"),
    ("cost", "cost per call (¥)"),
]


@dataclass
class Effect:
    """One grid axis: each metric by the axis's values (rows) and model (columns)."""

    axis: str
    values: list[str]
    models: list[str]
    tables: dict[str, pd.DataFrame]
    numeric: bool
    counts: pd.DataFrame

    def long_rows(self) -> list[dict[str, Any]]:
        """Model × value rows with every metric: the compact table form for Markdown."""
        rows = []
        for model in self.models:
            for value in self.values:
                n = clean(self.counts.at[value, model]) if (value in self.counts.index and model in self.counts.columns) else None
                if not n:
                    continue
                row: dict[str, Any] = {"model": model, "value": value, "n": int(n)}
                for key, _ in EFFECT_METRICS:
                    t = self.tables[key]
                    row[key] = clean(t.at[value, model]) if (value in t.index and model in t.columns) else None
                rows.append(row)
        return rows


def grid_axes(data: ReportData) -> list[str]:
    """Keys of the variant dicts besides ``model`` that take two or more values in this run."""
    seen: dict[str, list[str]] = {}
    for variant in data.variants.values():
        for key, value in variant.items():
            if key == "model":
                continue
            shown = json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
            values = seen.setdefault(key, [])
            if shown not in values:
                values.append(shown)
    return [k for k, values in seen.items() if len(values) > 1]


def effects(data: ReportData) -> list[Effect]:
    """Per grid axis, ``pandas.pivot_table`` of each metric by axis value and model.

    Pass rate is the share of passing answers; latency is the median of fresh (uncached,
    successful) calls, like the summary; completion tokens is the mean over answers; cost is
    per call, so axes with unequal numbers of calls still compare.
    """

    def build() -> list[Effect]:
        res = data.results
        out: list[Effect] = []
        if res.empty:
            return out
        variant_of = data.variants
        base = pd.DataFrame(
            {
                "model": res["model"].astype(str),
                "variant_id": res["variant_id"],
                "pass_rate": (res["status"] == "pass").astype(float),
                "latency_p50_ms": res["latency_ms"].where(~res["cached"] & (res["status"] != "error")),
                "completion_tokens": res["completion_tokens"].where(res["status"] != "error"),
                "cost": res["cost"].fillna(0.0),
            }
        )
        for axis in grid_axes(data):
            raw = {vid: (v.get(axis) if axis in v else None) for vid, v in variant_of.items()}
            labels = {
                vid: ("—" if val is None else json.dumps(val, ensure_ascii=False, sort_keys=True) if isinstance(val, (dict, list)) else str(val))
                for vid, val in raw.items()
            }
            frame = base.copy()
            frame["value"] = frame["variant_id"].map(labels).fillna("—")
            numeric_vals = {lab: raw[vid] for vid, lab in labels.items()}
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numeric_vals.values() if v is not None)
            order = list(dict.fromkeys(labels[v] for v in variant_order(data) if v in labels))
            if numeric:
                order.sort(key=lambda lab: (numeric_vals.get(lab) is None, numeric_vals.get(lab) or 0.0))
            model_order = list(dict.fromkeys(frame["model"].tolist()))
            tables: dict[str, pd.DataFrame] = {}
            for key, _ in EFFECT_METRICS:
                agg = "median" if key == "latency_p50_ms" else "mean"
                t = pd.pivot_table(frame, index="value", columns="model", values=key, aggfunc=agg, dropna=False)
                tables[key] = t.reindex(index=order, columns=model_order)
            counts = pd.pivot_table(frame, index="value", columns="model", values="pass_rate", aggfunc="count")
            counts = counts.reindex(index=order, columns=model_order)
            out.append(Effect(axis, order, model_order, tables, numeric, counts))
        return out

    return _memo(data, "effects", build)


# -- trends ------------------------------------------------------------------------------

TREND_METRICS: list[tuple[str, str]] = [
    ("pass_rate", "pass rate"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("cost", "cost per run (¥)"),
]


def load_history(store: Any, run: Any, limit: int = 20) -> pd.DataFrame:
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
        f"SELECT run_id, variant_id, status, latency_ms, cached, cost FROM results WHERE run_id IN ({marks})", ids
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


@dataclass
class Trends:
    runs: list[str]
    started: list[float]
    variants: list[str]
    series: dict[str, dict[str, list[float | None]]]  # metric -> variant -> value per run

    @property
    def enough(self) -> bool:
        return len(self.runs) >= 2


def trends(data: ReportData, max_variants: int = 10) -> Trends:
    """Per variant, each trend metric across the suite's recent runs (oldest first)."""

    def build() -> Trends:
        h = data.history
        if h is None or h.empty:
            return Trends([], [], [], {})
        runs = list(dict.fromkeys(h["run_id"].tolist()))
        started = [float(h.loc[h["run_id"] == r, "started_at"].iloc[0]) for r in runs]
        order = [v for v in variant_order(data) if v in set(h["variant"])]
        order += [v for v in dict.fromkeys(h["variant"].tolist()) if v not in order]
        variants = order[:max_variants]
        index = {(r, v): i for i, (r, v) in enumerate(zip(h["run_id"], h["variant"]))}
        series: dict[str, dict[str, list[float | None]]] = {}
        for key, _ in TREND_METRICS:
            col = h[key].tolist()
            series[key] = {v: [clean(col[index[(r, v)]]) if (r, v) in index else None for r in runs] for v in variants}
        return Trends(runs, started, variants, series)

    return _memo(data, "trends", build)


# -- comparison against a baseline -------------------------------------------------------


def load_comparison(store: Any, base_run: str, head_run: str) -> tuple[Any, str | None]:
    """``glmeval.analysis.compare.compare_runs`` when that module is installed, else ``None`` and why."""
    import importlib

    try:
        compare = importlib.import_module("glmeval.analysis.compare")
    except ModuleNotFoundError as exc:
        if exc.name != "glmeval.analysis.compare":
            raise
        return None, "comparison unavailable: this glmeval has no glmeval.analysis.compare module"
    return compare.compare_runs(store, base_run, head_run), None


def delta_rows(comparison: Any) -> list[dict[str, Any]]:
    """One row per variant: each metric as (base, head, delta), the p-value and the verdict."""
    rows = []
    for vc in getattr(comparison, "variants", []) or []:
        rows.append(
            {
                "variant": vc.variant,
                "metrics": dict(getattr(vc, "metrics", {}) or {}),
                "p_value": getattr(vc, "p_value", None),
                "verdict": getattr(vc, "verdict", ""),
                "regressed": list(getattr(vc, "regressed", []) or []),
                "fixed": list(getattr(vc, "fixed", []) or []),
                "changed": list(getattr(vc, "changed", []) or []),
                "base_n": getattr(vc, "base_n", None),
                "head_n": getattr(vc, "head_n", None),
            }
        )
    return rows


def regression_pairs(comparison: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(variant, case) pairs that regressed and that were fixed, in variant order."""
    regressed, fixed = [], []
    for vc in getattr(comparison, "variants", []) or []:
        regressed += [(vc.variant, c) for c in getattr(vc, "regressed", []) or []]
        fixed += [(vc.variant, c) for c in getattr(vc, "fixed", []) or []]
    return regressed, fixed


__all__ = [
    "Attempt", "Cell", "CheckRow", "Matrix", "Effect", "Trends", "matrix", "checks_by_job", "enrich_summary",
    "best_variants", "totals", "effects", "grid_axes", "trends", "load_history", "load_comparison", "delta_rows",
    "regression_pairs", "message_text", "cell_messages", "models", "variant_order", "clean", "is_missing",
    "EFFECT_METRICS", "TREND_METRICS", "BEST_DIRECTION",
]
