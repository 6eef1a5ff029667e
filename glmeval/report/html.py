"""One self-contained HTML report: Jinja2 templates, inline CSS, inline SVG charts, a few
lines of vanilla JavaScript, and nothing fetched from the network.

It is what people open on a laptop or a phone and share, so it must work from a file://
URL, in a mail attachment or a CI artefact viewer with no CDN and no framework. Model output
is untrusted: the environment autoescapes everything, and the only markup not produced by
the templates is the charts' SVG, which :mod:`glmeval.report.charts` builds from escaped text.
Nothing here marks model output ``|safe``.

Every matrix cell is a ``<details>`` whose body is a full-screen sheet (CSS only: it opens
without JavaScript); the script adds filtering by variant, pass/fail and case name, sortable
summary columns and Escape to close. In a sheet, a thinking model's reasoning sits collapsed
above each answer, web search results below it; a conversation's images are thumbnails of
their inline ``data:`` URLs (the only images the page's CSP allows), an http(s) image a link.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from urllib.parse import quote

from jinja2 import BytecodeCache, Environment, FileSystemBytecodeCache, PackageLoader, StrictUndefined
from jinja2.bccache import Bucket
from markupsafe import Markup

import glmeval.report.views as views
from glmeval.report.charts import bar_chart, default_fmt, hbar_chart, line_chart, pct_fmt
from glmeval.report.content import is_multimodal
from glmeval.report.data import ReportData
from glmeval.report.markdown import DELTA_METRICS, delta_cell, fmt_ci, fmt_cost, fmt_ms, fmt_num, fmt_p, fmt_pct, setting_text
from glmeval.report.matrix import message_text, message_tool_calls, variant_codes
from glmeval.sanitize import visible

SBS_ANSWER_CHARS = 1_500  # answers in the side-by-side view; the cell sheet has them in full
COMPACT_VARIANTS = 8  # above this many variants the matrix heads show codes and the key is open
BEST_SHOWN = 3  # names in the "best pass rate" card before "+N more"


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment: autoescape on for every template, undefined names are errors."""
    env = Environment(
        loader=PackageLoader("glmeval.report", "templates"),
        bytecode_cache=_bytecode_cache(),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible,
    )
    env.filters.update(setting=setting_text, ms=fmt_ms, pct=fmt_pct, num=fmt_num, cost=fmt_cost, when=_when, clip=_clip, msgtext=views.message_text,
                       msgbody=functools.partial(message_text, with_calls=False), msgcalls=message_tool_calls,
                       parts=views.message_parts, reasoning=views.clip_reasoning)
    env.tests["multimodal"] = is_multimodal
    env.globals["reasoning_label"] = views.reasoning_label
    return env


def _bytecode_cache() -> BytecodeCache | None:
    """Compiling report.html.j2 costs about 0.15 s a process, a tenth of what a user waits for
    after a 2,000-job run's last answer; Jinja2's per-user cache folder keeps the compiled code
    (keyed by the template's source, so an upgrade recompiles). None where that folder is unsafe
    or cannot be made: the templates compile as before."""
    try:
        return _QuietCache()
    except (OSError, RuntimeError):
        return None


class _QuietCache(FileSystemBytecodeCache):
    """A cache that never fails a report: a full disk or an unreadable entry means compiling."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _visible(value: Any) -> Any:
    """Every value a template prints, controls and bidi overrides as visible escapes
    (autoescape handles markup, not these); Markup (charts, our own HTML) keeps its type."""
    return visible(value) if isinstance(value, str) else value


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "–"


def _clip(text: str | None, limit: int = SBS_ANSWER_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + f"\n… (+{len(text) - limit:,} chars; open the cell for the full answer)"


def _sort_value(value: Any) -> str:
    """The ``data-v`` a sortable column sorts by: a number, or empty for missing (sorted last)."""
    value = views.clean(value)
    return "" if value is None else repr(float(value))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _variant_parts(data: ReportData, variant_id: str) -> tuple[str, str]:
    """(model, the other grid values) for a two-line variant heading."""
    v = data.variants.get(variant_id)
    if not v:
        model, _, rest = variant_id.partition(" ")
        return model, rest
    rest = " ".join(f"{k}={val}" for k, val in v.items() if k != "model")
    return str(v.get("model", "")), rest


def summary_rows(data: ReportData) -> list[dict[str, Any]]:
    """Display and sort values for each summary cell, with the best ones flagged.

    The TTFR and reasoning-tokens cells are there only when :func:`summary_headers` shows
    their columns (some variant has them), so a glm-4 report reads as it always did.
    """
    s = data.summary
    best = views.best_variants(s)
    codes = variant_codes(data)
    ttfr, reasoning = views.shows_ttfr(s), views.shows_reasoning(s)
    distinct = views.shows_distinct(s)
    rows = []
    for r in s.to_dict("records"):
        v = r["variant"]

        def cell(col: str, text: str, sort: Any, v: str = v) -> dict[str, Any]:
            return {"text": text, "sort": _sort_value(sort), "best": v in best.get(col, set())}

        checks_total = r.get("checks_total") or 0
        cells = [
            {**cell("pass_rate", fmt_pct(r["pass_rate"]), r["pass_rate"]),
             "sub": fmt_ci(r.get("pass_lo"), r.get("pass_hi")), "bar": views.clean(r["pass_rate"]) or 0.0},
            {**cell("case_pass_rate", f"{r['cases_passed']}/{r['cases']}" if r.get("cases") else "–", r.get("case_pass_rate")),
             "sub": fmt_pct(r.get("case_pass_rate")) if r.get("cases") else ""},
            {**cell("checks_rate", f"{r.get('checks_passed', 0)}/{checks_total}" if checks_total else "–", r.get("checks_rate")),
             "sub": fmt_pct(r.get("checks_rate")) if checks_total else ""},
            cell("latency_p50_ms", fmt_ms(r["latency_p50_ms"]), r["latency_p50_ms"]),
            cell("latency_p95_ms", fmt_ms(r["latency_p95_ms"]), r["latency_p95_ms"]),
            cell("ttft_p50_ms", fmt_ms(r["ttft_p50_ms"]), r["ttft_p50_ms"]),
        ]
        if ttfr:
            cells.append(cell("ttfr_p50_ms", fmt_ms(r.get("ttfr_p50_ms")), r.get("ttfr_p50_ms")))
        cells += [
            cell("prompt_tokens", fmt_num(r["prompt_tokens"]), r["prompt_tokens"]),
            cell("completion_tokens", fmt_num(r["completion_tokens"]), r["completion_tokens"]),
        ]
        if reasoning:
            cells.append(cell("reasoning_tokens_mean", fmt_num(r.get("reasoning_tokens_mean")), r.get("reasoning_tokens_mean")))
        if distinct:
            cells.append(cell("distinct_answers", fmt_num(r.get("distinct_answers")), r.get("distinct_answers")))
        cells += [
            cell("cost", fmt_cost(r["cost"]), r["cost"]),
            {**cell("errors", str(r["errors"]), r["errors"]), "bad": bool(r["errors"])},
        ]
        rows.append({"variant": v, "code": codes.get(v, ""), "parts": _variant_parts(data, v), "cells": cells, "jobs": r["jobs"]})
    return rows


SUMMARY_HEADERS: list[tuple[str, str]] = [
    ("pass rate", "share of answers that passed every check; below it the 95% Wilson interval"),
    ("cases", "cases passing on this variant (repeats judged by the case's threshold)"),
    ("checks", "checks passed / checks run"),
    ("p50 ms", "median latency of fresh (uncached) calls"),
    ("p95 ms", "95th percentile latency of fresh calls"),
    ("TTFT p50", "median time to first answer token (streamed calls)"),
    ("prompt tok", "mean prompt tokens per call"),
    ("compl. tok", "mean completion tokens per call"),
    ("cost", "estimated cost of the run's calls (CNY)"),
    ("errors", "calls that produced no answer"),
]
TTFR_HEADER = ("TTFR p50", "median time to first reasoning token (streamed calls of thinking models)")
REASONING_HEADER = ("reason. tok", "mean reasoning tokens per answer (part of the completion tokens)")
DISTINCT_HEADER = ("distinct", "different answers a case got over its repeats, mean per case (1 = every repeat said the same)")


def summary_headers(data: ReportData) -> list[tuple[str, str]]:
    """The summary's column headers, with TTFR after TTFT and reasoning tokens after the
    completion tokens when some variant has them (the same rule as :func:`summary_rows`)."""
    headers = list(SUMMARY_HEADERS)
    labels = [label for label, _ in SUMMARY_HEADERS]
    if views.shows_distinct(data.summary):  # the later columns first, so the earlier indexes still hold
        headers.insert(labels.index("compl. tok") + 1, DISTINCT_HEADER)
    if views.shows_reasoning(data.summary):
        headers.insert(labels.index("compl. tok") + 1, REASONING_HEADER)
    if views.shows_ttfr(data.summary):
        headers.insert(labels.index("TTFT p50") + 1, TTFR_HEADER)
    return headers


def _cost_fmt(value: float) -> str:
    return "¥" + default_fmt(value)


METRIC_FMT = {"pass_rate": pct_fmt, "latency_p50_ms": default_fmt, "completion_tokens": default_fmt,
              "reasoning_tokens": default_fmt, "cost": _cost_fmt, "distinct_answers": default_fmt}
EFFECT_COLUMNS = {"pass_rate": ("pass rate", fmt_pct), "latency_p50_ms": ("p50 ms", fmt_ms),
                  "completion_tokens": ("completion tok", fmt_num), "reasoning_tokens": ("reasoning tok", fmt_num),
                  "cost": ("cost/call", fmt_cost), "distinct_answers": ("distinct answers", fmt_num)}


def effect_blocks(data: ReportData) -> list[dict[str, Any]]:
    """Per grid axis: one chart per shown metric (series = models), the table behind them and,
    for the thinking axis, the off → on contrast per model."""
    blocks = []
    for eff in views.effects(data):
        charts: list[Markup] = []
        values = eff.set_values
        for key, label in eff.metrics:
            table = eff.tables[key]
            series = {m: [views.clean(table.at[val, m]) for val in values] for m in eff.models}
            series = {m: row for m, row in series.items() if any(v is not None for v in row)}
            kwargs: dict[str, Any] = {"title": f"{label} by {eff.axis}", "fmt": METRIC_FMT[key],
                                      "y_max": 1.0 if key == "pass_rate" else None, "width": 420, "height": 220}
            if eff.numeric and len(values) >= 3:
                charts.append(line_chart(values, series, **kwargs))
            else:
                charts.append(bar_chart(values, series, **kwargs))
        keys = [k for k, _ in eff.metrics]
        rows = [[r["model"], r["value"], str(r["n"])] + [EFFECT_COLUMNS[k][1](r[k]) for k in keys] for r in eff.long_rows()]
        contrast = [[r["model"]] + [delta_cell(k, r[k]) for k in keys] for r in eff.contrast()]
        blocks.append({
            "axis": eff.axis,
            "charts": charts,
            "unset": len(values) < len(eff.values),
            "headers": [EFFECT_COLUMNS[k][0] for k in keys],
            "rows": rows,
            "contrast": contrast,
        })
    return blocks


def provider_block(data: ReportData) -> dict[str, Any] | None:
    """The providers section (None for a run with one provider): rows with best cells, the
    agreement pairs, a latency chart by provider and model, and the one-line verdict."""
    rows = views.provider_rows(data)
    if not rows:
        return None
    best = views.best_rows(rows)
    table = [{
        "provider": r.provider, "model": r.model, "calls": r.calls, "errors": r.errors,
        "cells": [(fmt_pct(r.pass_rate), i in best["pass_rate"]), (fmt_ms(r.latency_p50_ms), i in best["latency_p50_ms"]),
                  (fmt_ms(r.ttft_p50_ms), i in best["ttft_p50_ms"]), (fmt_cost(r.cost_per_call), i in best["cost_per_call"]),
                  (fmt_cost(r.cost), False)],
    } for i, r in enumerate(rows)]
    names = list(dict.fromkeys(r.provider for r in rows))
    series = {m: [next((r.latency_p50_ms for r in rows if r.model == m and r.provider == p), None) for p in names]
              for m in dict.fromkeys(r.model for r in rows)}
    chart = bar_chart(names, series, title="latency p50 (ms) by provider", fmt=default_fmt, width=420, height=220)
    pairs = [{**views.agreement_cells(p), "same": fmt_pct(p.same_rate), "p": fmt_p(p.p_value)} for p in views.agreements(data)]
    return {"headline": views.headline(data), "rows": table, "pairs": pairs, "chart": chart}


def trend_block(data: ReportData) -> dict[str, Any]:
    tr = views.trends(data)
    if not tr.enough:
        return {"enough": False, "runs": len(tr.runs), "charts": []}
    labels = [dt.datetime.fromtimestamp(t).strftime("%m-%d %H:%M") for t in tr.started]
    tips = [f"{r} ({lab})" for r, lab in zip(tr.runs, labels)]
    charts = []
    for key, label in views.TREND_METRICS:
        fmt = pct_fmt if key == "pass_rate" else _cost_fmt if key == "cost" else default_fmt
        charts.append(line_chart(labels, tr.series[key], title=label, fmt=fmt, y_max=1.0 if key == "pass_rate" else None,
                                 x_tips=tips, width=420, height=220))
    return {"enough": True, "runs": len(tr.runs), "charts": charts, "variants": len(tr.variants)}


def _split_delta(text: str) -> tuple[str, str]:
    """``"80% → 60% (-20 pp)"`` → (``"80% → 60%"``, ``"-20 pp"``): the change goes on its own line."""
    main_part, sep, rest = text.partition(" (")
    return (main_part, rest.rstrip(")")) if sep else (text, "")


def baseline_block(data: ReportData) -> dict[str, Any] | None:
    if data.baseline is None:
        return None
    cmp = data.comparison
    if cmp is None:
        return {"base": data.baseline, "available": False}
    regressed, fixed = views.regression_pairs(cmp)
    rows = []
    for r in views.delta_rows(cmp):
        m = r["metrics"]
        pr = m.get("pass_rate")
        delta = views.clean(pr[2]) if pr and len(pr) > 2 else None
        rows.append({
            "variant": r["variant"],
            "cells": [_split_delta(delta_cell(k, m.get(k))) for k, _ in DELTA_METRICS],
            "p": fmt_p(r["p_value"]),
            "verdict": r["verdict"] or "",
            "trend": "down" if (delta or 0) < 0 else "up" if (delta or 0) > 0 else "flat",
        })
    return {
        "base": data.baseline,
        "available": True,
        "regressed": regressed,
        "fixed": fixed,
        "rows": rows,
        "headers": [h for _, h in DELTA_METRICS],
        "only_in_base": list(cmp.only_in_base),
        "only_in_head": list(cmp.only_in_head),
        "mixed": data.baseline.local != data.run.local,
    }


def render_html(data: ReportData) -> str:
    """The report as one HTML document (a string), safe to open from disk or a CI artefact."""
    from glmeval.version import __version__

    env = environment()
    run = data.run
    m = views.matrix(data)
    totals = views.totals(data)
    s = data.summary
    best_pass = views.best_variants(s).get("pass_rate", set())
    codes = variant_codes(data)
    pass_chart = None
    if not s.empty:
        pass_chart = hbar_chart(
            s["variant"].tolist(),
            s["pass_rate"].tolist(),
            intervals=list(zip(s["pass_lo"].tolist(), s["pass_hi"].tolist())) if "pass_lo" in s.columns else None,
            title="Pass rate by variant (bars) with 95% interval (whiskers)",
            fmt=pct_fmt,
            x_max=1.0,
            width=640,
            highlight=[v in best_pass for v in s["variant"]],
            codes=[codes.get(v, v) for v in s["variant"]],
        )
    variant_heads = [{"i": i, "id": v, "code": codes[v], "parts": _variant_parts(data, v)} for i, v in enumerate(m.variants)]
    best = [v for v in m.variants if v in best_pass] + sorted(best_pass - set(m.variants))
    failures, failures_total = views.failure_items(data)
    template = env.get_template("report.html.j2")
    return template.render(
        run=run,
        outcome=views.outcome(data),
        failures={"items": failures, "total": failures_total, "more": failures_total - len(failures)},
        version=__version__,
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        duration=_duration(totals["duration_s"]),
        totals=totals,
        models=views.models(data),
        settings=run.settings or {},
        notes=([data.unfinished] if data.unfinished else []) + data.notes,
        summary_headers=summary_headers(data),
        summary_rows=summary_rows(data),
        pass_chart=pass_chart,
        matrix=m,
        variant_heads=variant_heads,
        compact=len(variant_heads) > COMPACT_VARIANTS,
        data=data,
        cell_messages=functools.partial(views.cell_messages, data),
        effects=effect_blocks(data),
        providers=provider_block(data),
        trends=trend_block(data),
        baseline=baseline_block(data),
        best_pass={"shown": best[:BEST_SHOWN], "more": best[BEST_SHOWN:], "codes": codes},
        scale=scale_block(data),
    )


def scale_block(data: ReportData) -> dict[str, Any] | None:
    """What a big run's page leaves out and the links to the full data (None: a run shown whole)."""
    sc = data.scale
    if sc is None:
        return None
    exports = [{"name": name, "href": quote(name)} for name in sc.exports.values()]
    return {"shown": len(sc.shown), "cases": sc.cases, "hidden": sc.hidden, "results": sc.results, "exports": exports}


__all__ = ["render_html", "environment"]
