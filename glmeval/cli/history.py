"""History commands: ``runs``, ``show``, ``compare``, ``history``, ``export`` and ``import``.

They read the SQLite history the ``run`` command writes (``--db`` / ``GLMEVAL_DB``, default
``.glmeval/results.db``). A RUN argument is anything :meth:`Store.resolve_run` accepts: a run
id or an unambiguous start of one, ``latest``, ``latest~N``, or a git ref (``main``,
``HEAD~1``, a sha), which means the newest run made at that commit.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from glmeval.cli.dbopt import DB, DB_HELP
from glmeval.cli.group import main
from glmeval.errors import GlmevalError
from glmeval.sanitize import visible

if TYPE_CHECKING:  # the store and pandas load inside the commands, so `glmeval --help` stays quick
    from glmeval.report.matrix import Cell
    from glmeval.store import RunInfo

_DB = click.option("--db", type=DB, envvar="GLMEVAL_DB", help=DB_HELP)


def _duration(info: RunInfo) -> str:
    if not info.ended_at:
        return "–"
    secs = info.ended_at - info.started_at
    return f"{secs:.1f}s" if secs < 120 else f"{secs / 60:.1f}m"




def _run_cost(counts: dict[str, float]) -> str:
    """A ``runs`` row's cost: answers plus grading, the grading share apart; ``?`` when no
    answer of the run has a known price and nothing was spent grading."""
    from glmeval.report.markdown import cost_with_grading

    if not counts:
        return "¥0"
    judged = counts.get("judge_cost", 0.0)
    if not counts.get("priced") and not judged:
        return "?"
    return cost_with_grading(counts.get("cost", 0.0), judged)


MAX_REASONS = 5  # per failing case in ``show``; the report has the rest
FAILURES_SHOWN = 50  # failing cases ``show`` lists by default: a big run can have tens of thousands
REASON_WIDTH = 200


def _failure_reasons(cell: Cell) -> list[str]:
    """Why a failing case × variant failed, one line per distinct reason (a failed check's
    ``label: reason`` or the call's error), with how many repeats it held for when not all."""
    from glmeval.report.views import shown_reason

    seen: dict[str, int] = {}
    bad = [a for a in cell.attempts if a.status != "pass"]
    for attempt in bad:
        reasons = [attempt.why()] if attempt.status == "error" else [shown_reason(c) for c in attempt.failed_checks]
        for reason in dict.fromkeys(" ".join(r.split()) for r in reasons if r):
            seen[reason] = seen.get(reason, 0) + 1
    if not seen:
        return ["below the case's threshold"]
    lines = []
    for reason, count in list(seen.items())[:MAX_REASONS]:
        clipped = reason if len(reason) <= REASON_WIDTH else reason[: REASON_WIDTH - 1] + "…"
        held = f" ({count} of {cell.n} repeats)" if cell.n > 1 and count < cell.n else ""
        lines.append(f"- {clipped}{held}")
    if len(seen) > MAX_REASONS:
        lines.append(f"… and {len(seen) - MAX_REASONS} more (see the report)")
    return lines


def _flags(info: RunInfo) -> str:
    flags = []
    if info.local:
        flags.append("simulated")
    if info.replay:
        flags.append("replay")
    if info.imported_at:
        flags.append("imported")
    return ",".join(flags)


@main.command("runs")
@click.option("--suite", "-s", help="Only runs of this suite.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_DB
def runs_cmd(suite: str | None, limit: int, as_json: bool, db: str | Path | None) -> None:
    """List stored runs, newest first."""
    from tabulate import tabulate

    from glmeval.report.markdown import fmt_pct as _pct
    from glmeval.report.markdown import fmt_when as _when
    from glmeval.store import Store
    from glmeval.store.lease import unfinished_line

    with Store(db, create=False) as store:
        runs = store.list_runs(suite=suite, limit=limit)
        counts = store.run_counts([r.id for r in runs])
        unfinished = {r.id: unfinished_line(r, int(counts.get(r.id, {}).get("results", 0))) for r in runs}
        if as_json:
            click.echo(json.dumps(
                [{**r.__dict__, **counts.get(r.id, {}), "unfinished": unfinished[r.id]} for r in runs],
                ensure_ascii=False, indent=2,
            ))
            return
        if not runs:
            known = store.suites()
            click.echo(
                f"no runs{f' of suite {suite!r}' if suite else ''} in {store.path}"
                + (f"; suites: {', '.join(known)}" if suite and known else "")
            )
            return
        rows = []
        for r in runs:
            c = counts.get(r.id, {})
            total = int(c.get("results", 0))
            rows.append(
                [
                    r.id,
                    visible(r.suite),
                    _when(r.started_at),
                    _duration(r),
                    r.status,
                    f"{int(c.get('passed', 0))}/{total}" if total else "0",
                    _pct(c.get("passed", 0) / total) if total else "–",
                    int(c.get("errors", 0)),
                    _run_cost(c),
                    r.short_commit or "–",
                    _flags(r),
                ]
            )
        click.echo(
            tabulate(
                rows,
                headers=["run", "suite", "started", "took", "status", "passed", "pass rate", "errors", "cost", "commit", "notes"],
                tablefmt="simple",
                disable_numparse=True,
            )
        )
        for r in runs:  # a killed or stopped run says what it lacks and how to finish it
            line = unfinished[r.id]
            if line is not None and r.status != "running":
                click.echo(line)


@main.command("show")
@click.argument("run", default="latest")
@click.option("--failures", "-f", "max_failures", type=click.IntRange(min=0), default=FAILURES_SHOWN, show_default=True,
              help="Failing cases to list (0: none); the rest are counted, and `glmeval report RUN --format csv` has them all.")
@_DB
def show_cmd(run: str, db: str | Path | None, max_failures: int = FAILURES_SHOWN) -> None:
    """Print one run's summary: facts, per-variant metrics with 95% intervals, failing cases."""
    from tabulate import tabulate

    from glmeval.analysis.frames import case_frame
    from glmeval.report import views
    from glmeval.report.load import load_report_data
    from glmeval.report.markdown import cost_with_grading, plural, settings_text
    from glmeval.report.markdown import fmt_ms as _ms
    from glmeval.report.markdown import fmt_pct as _pct
    from glmeval.report.markdown import fmt_when as _when
    from glmeval.store import Store

    with Store(db, create=False) as store:
        run_id = store.resolve_run(run)
        info = store.require_run(run_id)
        data = load_report_data(store, run_id, history_runs=0, recorded_baseline=False)
        from glmeval.store.shards import run_shards

        shards = run_shards(store.conn, run_id)
    res, summary = data.results, data.summary
    facts = [
        ("run", info.id),
        ("suite", info.suite + (f" ({info.suite_path})" if info.suite_path else "")),
        ("status", info.status + (f" ({info.holder})" if info.holder else "")),
        *([("shards", f"{shards.ended} of {shards.count} done" + (f", waiting for {', '.join(map(str, shards.missing))}" if shards.missing else ""))] if shards else []),
        ("started", _when(info.started_at)),
        ("took", _duration(info)),
    ]
    if info.git_commit:
        facts.append(("git", f"{info.short_commit}" + (f" on {info.git_branch}" if info.git_branch else "")))
    if info.local:
        facts.append(("target", "local GLM server (simulated answers)"))
    if info.replay:
        facts.append(("replay", "answered from the response cache"))
    if info.baseline:
        facts.append(("baseline", info.baseline))
    if info.imported_at:
        facts.append(("imported", f"{_when(info.imported_at)} from {info.origin or '?'}"))
    if info.settings:
        facts.append(("settings", settings_text(info.settings)))
    facts.append(("glmeval", f"{info.version or '?'} on {info.host or '?'}"))
    if not res.empty:
        t = views.totals(data)
        facts.append(("cost", cost_with_grading(t["cost"], t["grader_cost"])))
    if data.unfinished:
        facts.append(("jobs", data.unfinished))
    for key, value in facts:
        click.echo(visible(f"{key:>9}  {value}"))
    click.echo("")
    if summary.empty:
        click.echo("no results")
        return
    rows = [
        [
            visible(str(s.variant)),
            f"{_pct(s.pass_rate)} [{_pct(s.pass_rate_lo)}–{_pct(s.pass_rate_hi)}]",
            f"{s.passed}/{s.jobs}",
            f"{s.cases_passed}/{s.cases}",
            _ms(s.latency_p50_ms),
            _ms(s.latency_p95_ms),
            _ms(s.ttft_p50_ms),
            f"{s.total_tokens:,}",
            cost_with_grading(s.cost, s.grader_cost),
            s.errors,
        ]
        for s in summary.itertuples()
    ]
    click.echo(
        tabulate(
            rows,
            headers=["variant", "pass rate [95% CI]", "answers", "cases", "p50 ms", "p95 ms", "TTFT p50", "tokens", "cost", "errors"],
            tablefmt="simple",
            disable_numparse=True,
        )
    )
    cases = case_frame(res)
    failing = cases[~cases["passed"].astype(bool)]
    if len(failing):
        cells = views.matrix(data).cells
        click.echo("")
        click.echo(f"failing cases ({len(failing)}):")
        for c in failing.head(max_failures).itertuples():
            errs = f", {c.errors} errored" if c.errors else ""
            click.echo(visible(f"  {c.case_id}  [{c.variant_id}]  {c.passes}/{plural(c.repeats, 'repeat')} passed{errs}"))
            cell = cells.get((c.case_id, c.variant_id))
            for line in _failure_reasons(cell) if cell is not None else []:
                click.echo(visible(f"      {line}"))
        if len(failing) > max_failures:
            click.echo(f"  … and {len(failing) - max_failures:,} more; every result: glmeval report {run_id} --format csv")


@main.command("compare")
@click.argument("base")
@click.argument("head", required=False)
@click.option(
    "--variants",
    nargs=2,
    metavar="A B",
    help="Compare two variants of one run (BASE) instead of two runs: glmeval compare latest --variants 'glm-4 temperature=0.2' 'glm-3-turbo temperature=0.2' (a unique start of a label is enough)",
)
@click.option("--fail-on", "fail_on", multiple=True, metavar="RULE", help="Exit 1 when a rule trips (see `glmeval run --help`).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@_DB
def compare_cmd(
    base: str, head: str | None, variants: tuple[str, str] | None, fail_on: tuple[str, ...], as_json: bool, db: str | Path | None
) -> None:
    """Compare run HEAD (default: latest) with run BASE, case by case.

    Per variant: cases that regressed (passed in BASE, fail in HEAD), were fixed, or whose
    output changed; pass rate with 95% intervals; latency p50/p95, tokens and cost deltas;
    and whether the difference is significant (exact McNemar test on paired cases).
    """
    from glmeval.analysis.compare import compare_runs, compare_variants, format_comparison, format_variant
    from glmeval.analysis.gate import evaluate, head_metrics, parse_rules
    from glmeval.store import Store

    rules = parse_rules(fail_on)
    with Store(db, create=False) as store:
        if variants:
            if head:
                raise GlmevalError("--variants compares two variants of one run; give one RUN, not two")
            if rules:
                raise GlmevalError("--fail-on applies to comparisons of two runs, not of two variants")
            vc = compare_variants(store, base, variants[0], variants[1])
            run_id = store.resolve_run(base)
            if as_json:
                click.echo(json.dumps({"run": run_id, **vc.to_dict()}, ensure_ascii=False, indent=2))
            else:
                click.echo(f"run {run_id}")
                click.echo(format_variant(vc))
            return
        head_ref = head or "latest"
        base_id, head_id = store.resolve_run(base), store.resolve_run(head_ref)
        if base_id == head_id:
            raise GlmevalError(f"BASE and HEAD are the same run ({base_id}); name two different runs")
        comparison = compare_runs(store, base_id, head_id)
        trips = evaluate(rules, head_metrics(store, head_id), comparison) if rules else []
    if as_json:
        data = comparison.to_dict()
        data["tripped"] = [t.message for t in trips]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(format_comparison(comparison))
    if trips:
        for trip in trips:
            click.echo(trip.message, err=True)
        sys.exit(1)


@main.command("history")
@click.argument("suite")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=10, show_default=True, help="How many of the latest runs.")
@click.option("--variant", "variant_filter", help="Only this variant (a label or an unambiguous start of one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows instead of tables.")
@_DB
def history_cmd(suite: str, limit: int, variant_filter: str | None, as_json: bool, db: str | Path | None) -> None:
    """Each variant's metrics run after run (oldest first), to see what moved and when."""
    from tabulate import tabulate

    from glmeval.analysis.compare import match_variant
    from glmeval.analysis.frames import results_frame, summary_frame
    from glmeval.report.markdown import cost_with_grading
    from glmeval.report.markdown import fmt_ms as _ms
    from glmeval.report.markdown import fmt_pct as _pct
    from glmeval.report.markdown import fmt_when as _when
    from glmeval.store import Store

    rows: list[dict[str, Any]] = []
    with Store(db, create=False) as store:
        runs = store.list_runs(suite=suite, limit=limit, oldest_first=True)
        if not runs:
            known = store.suites()
            raise GlmevalError(f"no runs of suite {suite!r} in {store.path}" + (f"; suites: {', '.join(known)}" if known else ""))
        for info in runs:
            summary = summary_frame(results_frame(store, info.id), info.variants)
            for s in summary.to_dict("records"):
                figures = {str(k): v for k, v in s.items()}
                rows.append({"run": info.id, "started": info.started_at, "commit": info.short_commit, "status": info.status, **figures})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    if variant_filter:
        chosen = match_variant(variant_filter, variants)
        rows = [r for r in rows if r["variant"] == chosen]
        variants = [chosen]
    if as_json:
        clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
        click.echo(json.dumps(clean, ensure_ascii=False, indent=2, default=str))
        return
    click.echo(f"{suite}: {len(runs)} run{'s' if len(runs) != 1 else ''}, oldest first; pass rate counts cases, [95% CI]")
    for variant in variants:
        table = []
        previous: float | None = None
        for r in (r for r in rows if r["variant"] == variant):
            from glmeval.analysis.stats import wilson_interval

            n, k = int(r["cases"]), int(r["cases_passed"])
            rate = r["case_pass_rate"]
            lo, hi = wilson_interval(k, n)
            move = "" if previous is None or math.isnan(rate) else f"{(rate - previous) * 100:+.0f} pts"
            previous = rate if not math.isnan(rate) else previous
            table.append(
                [
                    r["run"],
                    _when(r["started"]),
                    r["commit"] or "–",
                    f"{_pct(rate)} [{_pct(lo)}–{_pct(hi)}] ({k}/{n})",
                    move,
                    _ms(r["latency_p50_ms"]),
                    _ms(r["latency_p95_ms"]),
                    f"{int(r['total_tokens']):,}",
                    cost_with_grading(r["cost"], r.get("grader_cost")),
                    r["errors"],
                ]
            )
        click.echo("")
        click.echo(f"== {variant} ==")
        click.echo(
            tabulate(
                table,
                headers=["run", "started", "commit", "pass rate", "change", "p50 ms", "p95 ms", "tokens", "cost", "errors"],
                tablefmt="simple",
                disable_numparse=True,
            )
        )


@main.command("export")
@click.argument("run", default="latest")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "jsonl"]),
    default="json",
    show_default=True,
    help="json: the whole run, for `glmeval import` elsewhere; csv/jsonl: one row per result.",
)
@click.option("--out", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write here instead of stdout.")
@_DB
def export_cmd(run: str, fmt: str, out: Path | None, db: str | Path | None) -> None:
    """Export RUN (default: latest) as one JSON file, or its results as CSV or JSONL."""
    from glmeval.store import Store
    from glmeval.store.transfer import export_run, results_table_text

    with Store(db, create=False) as store:
        if fmt == "json":
            text = json.dumps(export_run(store, run), ensure_ascii=False, indent=1) + "\n"
        else:
            text = results_table_text(store, run, fmt)
    if out is None or str(out) == "-":
        click.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise GlmevalError(f"{out}: cannot write ({exc.strerror or exc})") from None
    click.echo(f"exported to {out}", err=True)


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--replace", is_flag=True, help="Overwrite a run that is already in the database.")
@_DB
def import_cmd(files: tuple[Path, ...], replace: bool, db: str | Path | None) -> None:
    """Import runs exported with `glmeval export RUN` (idempotent: a run already present is kept)."""
    from glmeval.store import Store
    from glmeval.store.transfer import import_run, read_export

    datas = [(path, read_export(path)) for path in files]
    with Store(db) as store:
        for path, data in datas:
            run_id, what = import_run(store, data, replace=replace, source=str(path))
            n = len(data["results"])
            click.echo(f"{path}: run {run_id} ({data['run'].get('suite')}, {n} results) {what}")


__all__ = ["runs_cmd", "show_cmd", "compare_cmd", "history_cmd", "export_cmd", "import_cmd"]
