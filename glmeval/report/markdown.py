"""GitHub-flavoured Markdown report, readable in a pull-request comment or a CI job summary.

The report is a list of sections (a registry, so a section can be added without touching
the others); each returns a Markdown string or ``""`` to be left out. Model output is
untrusted text: it is escaped so it can neither break a table, inject HTML, render images
nor mention people, and long answers are cut with a note. The whole document stays under
GitHub's comment limit (65,536 characters), again with a note saying where the rest is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
from tabulate import tabulate

import glmeval.report.views as views
from glmeval.percent import percent, plural
from glmeval.redact import redact
from glmeval.report.charts import sparkline
from glmeval.report.data import ReportData
from glmeval.sanitize import visible

MAX_OUTPUT = 160
MAX_MARKDOWN = 60_000
MAX_MATRIX_ROWS = 50
MAX_FAILURE_ROWS = 25
MAX_VARIANT_COLUMNS = 6  # beyond this, matrix headers become V1..Vn with a legend

Section = Callable[[ReportData], str]
SECTIONS: list[Section] = []
COMPACT: set[str] = set()  # section names also used in the CI step summary


def section(fn: Section | None = None, *, compact: bool = False) -> Any:
    """Register a report section (in order); ``compact=True`` also puts it in the step summary."""

    def register(f: Section) -> Section:
        SECTIONS.append(f)
        if compact:
            COMPACT.add(f.__name__)
        return f

    return register(fn) if fn is not None else register


_missing = views.is_missing


def fmt_ms(value: Any) -> str:
    return "–" if _missing(value) else f"{value:,.0f}"


def fmt_pct(value: Any) -> str:
    """A rate that never reads 100% (or 0%) unless it is: 997/1000 is 99.7%."""
    return "–" if _missing(value) else percent(value)


def fmt_num(value: Any, digits: int = 1) -> str:
    return "–" if _missing(value) else f"{value:,.{digits}f}"


def fmt_cost(value: Any) -> str:
    """Yuan; ``?`` when the price is unknown (a model the catalogue has no price for), never ¥0."""
    if _missing(value):
        return "?"
    # Rounded first: a sum of prices lands on a half (¥0.02315) as often as not, and the order
    # an engine adds in (SQLite and PostgreSQL differ) must not flip the last digit shown.
    value = round(float(value), 10)
    if value == 0:
        return "¥0"
    return f"¥{value:.4f}" if abs(value) >= 0.0001 else f"¥{value:.2e}"


def fmt_ci(lo: Any, hi: Any) -> str:
    return "" if _missing(lo) or _missing(hi) else f"{percent(lo).rstrip('%')}–{percent(hi)}"


_MD_SPECIAL = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "!": "\\!",
        "#": "\\#",
        "~": "\\~",
        "$": "\\$",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "@": "&#64;",
        "\n": " ",
        "\r": " ",
        "\t": " ",
    }
)


def md_escape(text: Any, limit: int = MAX_OUTPUT) -> str:
    """One table cell of untrusted text: no pipes, newlines, HTML, links, images or @mentions.

    Truncated to ``limit`` characters (of the original text) with a visible note of how much
    was cut, so a 4,000-character answer does not swallow the comment.
    """
    text = str(text)
    cut = ""
    if len(text) > limit:
        cut = f"… (+{len(text) - limit + 1} chars)"
        text = text[: limit - 1]
    # Controls and bidi overrides become visible escapes (a CRLF is one line end, as \n is).
    return visible(text.replace("\r\n", "\n")).translate(_MD_SPECIAL) + cut


def md_code(text: Any) -> str:
    """Inline code for identifiers we control (run ids, variant labels): backticks doubled safely."""
    text = visible(str(text).replace("\n", " ")).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _bold_if(text: str, best: bool) -> str:
    return f"**{text}**" if best and text != "–" else text


def summary_table(summary: pd.DataFrame, tablefmt: str = "github", highlight: bool | None = None) -> str:
    """Per variant: pass rate with its 95% interval, checks, latency, tokens, cost, errors.

    The best value of each column is bold when ``highlight`` (default: for Markdown formats,
    not for a terminal's ``simple`` table, where asterisks would be noise). A TTFR column
    (time to the first reasoning token) and a reasoning-tokens column (mean per answer) are
    added only when some variant has them, so a run without thinking models reads as before.
    """
    if highlight is None:
        highlight = tablefmt in ("github", "pipe")
    summary = views.enrich_summary(summary, pd.DataFrame())
    best = views.best_variants(summary) if highlight else {}
    ttfr, reasoning = views.shows_ttfr(summary), views.shows_reasoning(summary)
    distinct = views.shows_distinct(summary)

    def mark(col: str, variant: str, text: str) -> str:
        return _bold_if(text, variant in best.get(col, set()))

    rows = []
    for r in summary.to_dict("records"):
        v = r["variant"]
        rate = fmt_pct(r["pass_rate"])
        ci = fmt_ci(r.get("pass_lo"), r.get("pass_hi"))
        checks = f"{r.get('checks_passed', 0)}/{r.get('checks_total', 0)}" if r.get("checks_total") else "–"
        cases = f"{r['cases_passed']}/{r['cases']}" if r.get("cases") else "–"
        row = [
            md_escape(v, 80) if tablefmt in ("github", "pipe") else visible(str(v)),
            mark("pass_rate", v, rate) + (f" ({ci})" if ci else ""),
            mark("case_pass_rate", v, cases),
            mark("checks_rate", v, checks),
            mark("latency_p50_ms", v, fmt_ms(r["latency_p50_ms"])),
            mark("latency_p95_ms", v, fmt_ms(r["latency_p95_ms"])),
            mark("ttft_p50_ms", v, fmt_ms(r["ttft_p50_ms"])),
        ]
        if ttfr:
            row.append(mark("ttfr_p50_ms", v, fmt_ms(r.get("ttfr_p50_ms"))))
        row += [mark("prompt_tokens", v, fmt_num(r["prompt_tokens"])), mark("completion_tokens", v, fmt_num(r["completion_tokens"]))]
        if reasoning:
            row.append(mark("reasoning_tokens_mean", v, fmt_num(r.get("reasoning_tokens_mean"))))
        if distinct:
            row.append(fmt_num(r.get("distinct_answers")))
        row += [mark("cost", v, fmt_cost(r["cost"])), mark("errors", v, str(r["errors"]))]
        rows.append(row)
    headers = ["variant", "pass rate (95% CI)", "cases", "checks", "p50 ms", "p95 ms", "TTFT p50 ms"]
    headers += ["TTFR p50 ms"] if ttfr else []
    headers += ["prompt tok", "completion tok"] + (["reasoning tok"] if reasoning else [])
    headers += (["distinct answers"] if distinct else []) + ["cost", "errors"]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def fmt_when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "–"


_when = fmt_when


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def cost_with_grading(cost: Any, grader_cost: Any) -> str:
    """A run's cost, with the share model-graded checks spent apart when there was one:
    ``¥0.0231 (¥0.0046 grading)``."""
    shown = fmt_cost(cost)
    if not _missing(grader_cost) and grader_cost > 0:
        shown += f" ({fmt_cost(grader_cost)} grading)"
    return shown


def _budget_words(budget: dict[str, Any]) -> str:
    parts = []
    if budget.get("max_cost") is not None:
        parts.append(f"{fmt_cost(budget['max_cost'])} max cost")
    if budget.get("max_tokens") is not None:
        parts.append(f"{budget['max_tokens']:,} max tokens")
    return ", ".join(parts) or "none"


def setting_text(key: str, value: Any) -> str:
    """One stored run setting in words: ``budget: ¥0.05 max cost``, ``limits: glm-4 rpm 60``,
    ``retries=3``. Settings are written by glmeval, not typed by a person, so a dict shown as
    its Python repr would only be noise. Credentials are redacted (a run stored before they
    were kept out of the store may still hold a base URL with a password)."""
    return visible(redact(_setting_words(key, value)))


def _setting_words(key: str, value: Any) -> str:
    if key == "budget" and isinstance(value, dict):
        return f"budget: {_budget_words(value)}"
    if key == "cassette":
        from glmeval.cassette.settings import setting_words

        return setting_words(value)
    if isinstance(value, dict):
        inner = [
            f"{k} " + (" ".join(f"{kk} {vv}" for kk, vv in v.items()) if isinstance(v, dict) else str(v))
            for k, v in value.items()
        ]
        return f"{key}: {', '.join(inner) or 'none'}"
    return f"{key}={value}"


def settings_text(settings: dict[str, Any]) -> str:
    """Every stored run setting in words (see :func:`setting_text`), ``defaults`` for none."""
    return ", ".join(setting_text(k, v) for k, v in settings.items()) if settings else "defaults"



@section(compact=True)
def header(data: ReportData) -> str:
    run = data.run
    t = views.totals(data)
    lines = [f"# glmeval report: {md_escape(run.suite, 120)}", ""]
    if run.local:
        lines += [
            "> [!WARNING]",
            "> **Simulated run**: every answer came from glmeval's local GLM server, not the real API.",
            "> Quality, latency and cost describe the simulator, not GLM.",
            "",
        ]
    if run.replay:
        lines += [
            "> [!NOTE]",
            "> **Replayed from the response cache**: no request was sent; latency figures are from the original calls.",
            "",
        ]
    facts = [f"run {md_code(run.id)}", f"started {_when(run.started_at)}", f"took {_duration(t['duration_s'])}", f"status **{run.status}**"]
    if run.git_commit:
        branch = f" on {md_code(run.git_branch)}" if run.git_branch else ""
        facts.append(f"commit {md_code(run.git_commit[:10])}{branch}{' (dirty)' if run.git_dirty else ''}")
    lines.append(" · ".join(facts))
    lines.append("")
    lines.append(f"**Models**: {', '.join(md_code(m) for m in views.models(data)) or '–'} · "
                 f"**Settings**: {md_escape(settings_text(run.settings), 300)}")
    if t["jobs"]:
        verdict = ("no failures in the answers stored" if data.unfinished else "all passed ✅") if not t["cells_failed"] else f"**{t['cells_failed']} of {t['cells']} case × variant cells failing** ❌"
        cached = f", {t['cached']} from cache" if t["cached"] else ""
        lines += [
            "",
            f"{plural(t['cases'], 'case')} × {plural(len(data.summary), 'variant')}: {verdict} · "
            f"{t['passed']}/{plural(t['jobs'], 'answer')} passed ({fmt_pct(t['pass_rate'])}), "
            f"{plural(t['errors'], 'error')}{cached} · {plural(t['tokens'], 'token')} · "
            f"{cost_with_grading(t['cost'], t.get('grader_cost'))}",
        ]
    else:
        lines += ["", "No results stored for this run yet."]
    lines += ["", f"**{md_escape(data.unfinished, 300)}** ⚠️"] if data.unfinished else []
    for note in data.notes:
        lines += ["", f"_{md_escape(note, 300)}_"]
    return "\n".join(lines)


def _pp(delta: Any) -> str:
    return "" if _missing(delta) else f" ({delta * 100:+.0f} pp)"


def delta_cell(key: str, triple: Any) -> str:
    """``80% → 60% (−20 pp)`` for rates, ``1,200 → 900 (−25%)`` for the rest."""
    if not triple:
        return "–"
    base, head, delta = (list(triple) + [None, None, None])[:3]
    if key == "pass_rate":
        return f"{fmt_pct(base)} → {fmt_pct(head)}{_pp(delta)}"
    fmt = fmt_cost if key == "cost" else fmt_ms if key.startswith("latency") else (lambda x: fmt_num(x, 0))
    rel = ""
    if not _missing(delta) and not _missing(base) and base:
        rel = f" ({delta / base * 100:+.0f}%)"
    elif not _missing(delta):
        rel = f" ({'+' if delta >= 0 else ''}{fmt(delta)})"
    return f"{fmt(base)} → {fmt(head)}{rel}"


def fmt_p(value: Any) -> str:
    """A p-value at the precision that matters: ``<0.001``, ``0.004``, ``0.12``."""
    if _missing(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}" if value < 0.01 else f"{value:.2f}"


DELTA_METRICS = [("pass_rate", "cases passing"), ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms"),
                 ("total_tokens", "tokens"), ("cost", "cost")]


@section(compact=True)
def baseline(data: ReportData) -> str:
    cmp = data.comparison
    if data.baseline is None:
        return ""
    base = data.baseline
    lines = [f"## Against baseline {md_code(base.id)}", ""]
    facts = [f"started {_when(base.started_at)}"]
    if base.git_commit:
        facts.append(f"commit {md_code(base.git_commit[:10])}")
    if base.local != data.run.local:
        facts.append("⚠️ one run is simulated and the other is not")
    lines += [" · ".join(facts), ""]
    if cmp is None:
        return "\n".join(lines + ["_No comparison available._"])
    regressed, fixed = views.regression_pairs(cmp)
    lines.append(
        f"**{len(regressed)} regression{'s' if len(regressed) != 1 else ''}** ❌ · **{len(fixed)} fix{'es' if len(fixed) != 1 else ''}** ✅"
        if regressed or fixed
        else "No case changed from pass to fail or back."
    )
    for title, pairs in (("Regressions (passed in the baseline, fail now)", regressed), ("Fixes (failed in the baseline, pass now)", fixed)):
        if not pairs:
            continue
        shown = pairs[:MAX_FAILURE_ROWS]
        lines += ["", f"### {title}", "", tabulate([[md_escape(v, 80), md_escape(c, 80)] for v, c in shown],
                                                   headers=["variant", "case"], tablefmt="github", disable_numparse=True)]
        if len(pairs) > len(shown):
            lines.append(f"\n_… and {len(pairs) - len(shown)} more; see report.html or report.json._")
    rows = []
    for r in views.delta_rows(cmp):
        m = r["metrics"]
        rows.append([md_escape(r["variant"], 80)] + [delta_cell(k, m.get(k)) for k, _ in DELTA_METRICS]
                    + [fmt_p(r["p_value"]), md_escape(r["verdict"] or "", 80)])
    if rows:
        lines += ["", "### Metric deltas", "", tabulate(rows, headers=["variant"] + [h for _, h in DELTA_METRICS] + ["p", "verdict"],
                                                      tablefmt="github", disable_numparse=True)]
    only_base, only_head = cmp.only_in_base, cmp.only_in_head
    if only_base:
        lines += ["", "Only in the baseline: " + ", ".join(md_escape(x, 80) for x in only_base[:20])]
    if only_head:
        lines += ["", "Only in this run: " + ", ".join(md_escape(x, 80) for x in only_head[:20])]
    return "\n".join(lines)


@section(compact=True)
def summary(data: ReportData) -> str:
    if data.summary.empty:
        return ""
    thinking = ""
    if views.shows_reasoning(data.summary):
        thinking = ("Reasoning tok: a thinking model's reasoning tokens, mean per answer (part of the completion tokens, "
                    "billed as output). ")
    if views.shows_ttfr(data.summary):
        thinking += "TTFR: time to the first reasoning token; TTFT: to the first answer token. "
    if data.summary["cost"].isna().any():
        thinking += "Cost ?: glmeval knows no price for that model (set one under the suite's prices:). "
    grading = float(pd.to_numeric(data.summary.get("grader_cost", pd.Series(dtype=float)), errors="coerce").fillna(0).sum())
    if grading > 0:
        thinking += f"Cost: the answers plus their grading ({fmt_cost(grading)} spent by model-graded checks). "
    return ("## Summary by variant\n\n" + summary_table(data.summary)
            + "\n\n<sub>Pass rate: answers passing every check, with its 95% Wilson interval. "
              "Cases: cases passing on this variant (repeats judged by the case's threshold). "
              "Latency and TTFT: fresh calls only (cached answers excluded). Tokens: mean per call. "
              f"{thinking}Best values in bold.</sub>")


PROVIDER_HEADERS = ["provider", "model", "calls", "pass rate", "p50 ms", "TTFT p50 ms", "cost/call", "cost", "errors"]
AGREEMENT_HEADERS = ["providers", "model", "other parameters", "cases", "same verdict", "only A passes", "only B passes",
                     "p (McNemar)", "passes more"]


@section(compact=True)
def providers(data: ReportData) -> str:
    """Providers side by side (a run with two or more): speed, price, and whether they agree."""
    rows = views.provider_rows(data)
    if not rows:
        return ""
    best = views.best_rows(rows)
    table = [
        [md_escape(r.provider, 60), md_code(r.model), r.calls, _bold_if(fmt_pct(r.pass_rate), i in best["pass_rate"]),
         _bold_if(fmt_ms(r.latency_p50_ms), i in best["latency_p50_ms"]), _bold_if(fmt_ms(r.ttft_p50_ms), i in best["ttft_p50_ms"]),
         _bold_if(fmt_cost(r.cost_per_call), i in best["cost_per_call"]), fmt_cost(r.cost), r.errors]
        for i, r in enumerate(rows)
    ]
    parts = ["## Providers", "", md_escape(views.headline(data), 600), "",
             tabulate(table, headers=PROVIDER_HEADERS, tablefmt="github", disable_numparse=True)]
    pairs = [views.agreement_cells(p) for p in views.agreements(data)]
    if pairs:
        cells = [[md_escape(c["pair"], 80), md_code(c["model"]), md_escape(c["setting"] or "—", 80), c["cases"],
                  fmt_pct(c["same"]), c["a_only"], c["b_only"], fmt_p(c["p"]), md_escape(c["better"] or "neither", 40)]
                 for c in pairs]
        parts += ["", "### Same cases, same verdict?", "",
                  tabulate(cells, headers=AGREEMENT_HEADERS, tablefmt="github", disable_numparse=True)]
    return "\n".join(parts) + ("\n\n<sub>Latency and TTFT: medians of fresh calls. Best per model in bold. Same verdict: "
                               "cases that pass (or fail) on both providers, repeats judged by the case's threshold; "
                               "p: exact McNemar on the cases only one of the two passes.</sub>")


def _variant_headers(variants: list[str]) -> tuple[list[str], str]:
    if len(variants) <= MAX_VARIANT_COLUMNS:
        return [md_escape(v, 60) for v in variants], ""
    legend = " · ".join(f"**V{i + 1}** {md_escape(v, 60)}" for i, v in enumerate(variants))
    return [f"V{i + 1}" for i in range(len(variants))], legend


@section
def matrix(data: ReportData) -> str:
    m = views.matrix(data)
    if not m.cases:
        return ""
    headers, legend = _variant_headers(m.variants)
    cases = m.cases
    # Failing cases first when the table must be cut: they are what a reviewer needs.
    if len(cases) > MAX_MATRIX_ROWS:
        cases = [c for c in cases if not m.case_passed(c)] + [c for c in cases if m.case_passed(c)]
    shown = cases[:MAX_MATRIX_ROWS]
    rows = []
    for case in shown:
        cells = m.row(case)
        rows.append([md_escape(case, 60)] + [("–" if c is None else f"{c.icon} {c.label}") for c in cells])
    parts = ["## Cases × variants", ""]
    if legend:
        parts += [legend, ""]
    parts.append(tabulate(rows, headers=["case"] + headers, tablefmt="github", disable_numparse=True))
    if data.scale is not None:
        parts.append(f"\n_… {data.scale.cases - len(shown):,} more cases, worst first above; every result is in "
                     f"{_full_data(data)}._")
    elif len(cases) > len(shown):
        parts.append(f"\n_… {len(cases) - len(shown)} more cases (all shown in report.html)._")
    parts.append("\n<sub>✅ every repeat passed · ⚠️ some repeats passed · ❌ none passed · 💥 no answer (error). "
                 "Counts are passing repeats / repeats.</sub>")
    return "\n".join(parts)


def failure_rows(data: ReportData, limit: int) -> tuple[list[list[str]], int]:
    """Failing cells as table rows (case, variant, passed, why, answer) and how many there are."""
    m = views.matrix(data)
    failing = [m.cells[(c, v)] for c in m.cases for v in m.variants if (c, v) in m.cells and not m.cells[(c, v)].passed]
    rows = []
    for cell in failing[:limit]:
        first_bad = next((a for a in cell.attempts if a.status != "pass"), cell.attempts[0])
        answer = first_bad.output
        if not answer and first_bad.tool_calls:
            answer = "; ".join(f"{t['name']}({t['arguments']})" for t in first_bad.tool_calls)
        rows.append([
            md_escape(cell.case_id, 60),
            md_escape(cell.variant_id, 60),
            f"{cell.passes}/{cell.n}",
            md_escape(cell.why(), 240),
            md_escape(answer),
        ])
    return rows, (data.scale.cells_failed if data.scale is not None else len(failing))


def _failures(data: ReportData, limit: int) -> str:
    if data.results.empty:
        return ""
    rows, total = failure_rows(data, limit)
    if not total:
        return "## Failures\n\nNone: every case passed on every variant."
    text = "## Failures\n\n" + tabulate(rows, headers=["case", "variant", "passed", "why", "answer"], tablefmt="github",
                                        disable_numparse=True)
    if total > len(rows):
        where = _full_data(data) if data.scale is not None else "report.html"
        text += f"\n\n_… and {total - len(rows):,} more failing cells; see {where}._"
    return text


def _full_data(data: ReportData) -> str:
    """Where a big run's full data is: the exports written next to this report, or how to make them."""
    names = list(data.scale.exports.values()) if data.scale is not None else []
    if names:
        return " / ".join(f"[{n}]({n})" for n in names)
    return f"`glmeval report {data.run.id} --format csv`"


@section
def failures(data: ReportData) -> str:
    return _failures(data, MAX_FAILURE_ROWS)


EFFECT_HEADERS = {"pass_rate": "pass rate", "latency_p50_ms": "p50 ms", "completion_tokens": "completion tok",
                  "reasoning_tokens": "reasoning tok", "cost": "cost/call", "distinct_answers": "distinct answers"}
_EFFECT_FMT: dict[str, Callable[[Any], str]] = {"pass_rate": fmt_pct, "latency_p50_ms": fmt_ms, "completion_tokens": fmt_num,
                                                "reasoning_tokens": fmt_num, "cost": fmt_cost, "distinct_answers": fmt_num}


@section
def parameter_effects(data: ReportData) -> str:
    effects = views.effects(data)
    if not effects:
        return ""
    parts = ["## Parameter effects", ""]
    for eff in effects:
        keys = [k for k, _ in eff.metrics]
        heads = [EFFECT_HEADERS[k] for k in keys]
        rows = []
        for r in eff.long_rows():
            rows.append([md_code(r["model"]), md_escape(r["value"], 60), r["n"]] + [_EFFECT_FMT[k](r[k]) for k in keys])
        parts += [f"### {md_escape(eff.axis, 60)}", ""]
        contrast = eff.contrast()
        if contrast:
            parts += ["Thinking off → on, per model:", "", tabulate(
                [[md_code(r["model"])] + [delta_cell(k, r[k]) for k in keys] for r in contrast],
                headers=["model"] + heads, tablefmt="github", disable_numparse=True), ""]
        parts += [tabulate(rows, headers=["model", eff.axis, "calls"] + heads, tablefmt="github", disable_numparse=True), ""]
    return "\n".join(parts).rstrip()


@section
def trends(data: ReportData) -> str:
    tr = views.trends(data)
    if not tr.enough:
        return ""
    rows = []
    for v in tr.variants:
        cells = [md_escape(v, 60)]
        for key, _ in views.TREND_METRICS:
            values = tr.series[key][v]
            last = next((x for x in reversed(values) if x is not None), None)
            fmt = fmt_pct if key == "pass_rate" else fmt_cost if key == "cost" else fmt_ms
            spark = sparkline(values, 0.0, 1.0) if key == "pass_rate" else sparkline(values)
            cells.append(f"`{spark}` {fmt(last)}")
        rows.append(cells)
    return (f"## Trends (last {len(tr.runs)} runs of this suite, oldest → newest)\n\n"
            + tabulate(rows, headers=["variant"] + [label for _, label in views.TREND_METRICS], tablefmt="github",
                       disable_numparse=True))


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit - 200)
    return text[: cut if cut > 0 else limit - 200] + (
        f"\n\n_… report truncated at {limit:,} characters to fit a GitHub comment; the full report is report.html._\n"
    )


def render_markdown(data: ReportData, limit: int = MAX_MARKDOWN) -> str:
    """The full Markdown report, cut to ``limit`` characters with a note when longer."""
    parts = [s(data) for s in SECTIONS]
    from glmeval.version import __version__

    text = "\n\n".join(p for p in parts if p) + f"\n\n<sub>glmeval {__version__}</sub>\n"
    return _truncate(text, limit)


def render_step_summary(data: ReportData, limit: int = MAX_MARKDOWN) -> str:
    """The compact report for a CI job summary: header, baseline, summary and the worst failures."""
    parts = [s(data) for s in SECTIONS if s.__name__ in COMPACT]
    parts.append(_failures(data, 10))
    return _truncate("\n\n".join(p for p in parts if p) + "\n", limit)


__all__ = [
    "render_markdown", "render_step_summary", "summary_table", "md_escape", "section", "SECTIONS",
    "fmt_ms", "fmt_pct", "fmt_num", "fmt_cost", "fmt_ci", "fmt_p", "fmt_when", "delta_cell", "DELTA_METRICS",
    "plural", "cost_with_grading", "setting_text", "settings_text",
]
