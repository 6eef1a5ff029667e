"""``glmeval report``: render any stored run as Markdown, HTML, JSON or JUnit XML.

A report is a view of the history, so it can be made again at any time, for any past run,
against any baseline, in any format, without calling a model.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from glmeval.cli.dbopt import DB, DB_HELP
from glmeval.cli.group import main
from glmeval.errors import GlmevalError

if TYPE_CHECKING:
    from glmeval.report.data import Scale
    from glmeval.store import StoreReader

DEFAULT_OUT = Path("reports")
# glmeval.report loads pandas and `--help` must not, so the format names are spelled here;
# tests/test_layout.py checks they are glmeval.report.FORMATS.
FORMATS = ("md", "html", "json", "junit", "csv", "jsonl")
EXPORTS = ("csv", "jsonl")  # every stored result, streamed: no report data is loaded for them


def _targets(formats: tuple[str, ...], out: str | None, suite: str, run_id: str) -> dict[str, Path | None]:
    """Where each format goes: ``None`` means standard output.

    No ``--out``: one text format (md, json, junit) prints to stdout, so it pipes; HTML or
    several formats are written to ``reports/<suite>/<run>/`` like ``glmeval run`` does.
    ``--out -`` forces stdout (one format only); a folder (existing, ending in ``/``, without a
    suffix, or with several formats) receives the standard file names; anything else is the file.
    """
    from glmeval.report import FILE_NAMES, report_dir

    if out == "-":
        if len(formats) > 1:
            raise GlmevalError("--out - prints one format; give a folder for several")
        return {formats[0]: None}
    if out is None:
        if len(formats) == 1 and formats[0] != "html":
            return {formats[0]: None}
        folder = report_dir(DEFAULT_OUT, suite, run_id)
        return {f: folder / FILE_NAMES[f] for f in formats}
    path = Path(out)
    is_dir = path.is_dir() or out.endswith(("/", "\\")) or len(formats) > 1 or not path.suffix
    if is_dir:
        return {f: path / FILE_NAMES[f] for f in formats}
    return {formats[0]: path}


@main.command("report")
@click.argument("run", required=False)
@click.option(
    "--baseline",
    metavar="RUN",
    help="Compare against this run: regressions, fixes and metric deltas. Resolved among the same suite's runs "
    "(latest~1 is the one before the latest). Default: the baseline the run was gated against, if any.",
)
@click.option("--no-baseline", is_flag=True, help="Do not compare, even with the run's recorded baseline.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(FORMATS),
    help="md (default), html, json or junit; csv or jsonl export every result (answers, verdicts, why each "
    "failed); repeat for several.",
)
@click.option(
    "--out",
    metavar="PATH",
    help="A file (one format) or a folder. Default: one of md/json/junit to stdout; html or several formats "
    "to reports/<suite>/<run>/. '-' means stdout.",
)
@click.option("--suite", help="Resolve RUN (latest, latest~N) among this suite's runs only.")
@click.option("--history", "history", metavar="SUITE",
              help="Render SUITE's history dashboard instead of one run: one HTML file of its last --runs runs "
              "(pass rate, latency, tokens and cost per variant, each grid axis's effect, the runs). "
              "Default --out: reports/<suite>/history.html.")
@click.option("--runs", "history_runs", type=click.IntRange(0, 500), default=20, show_default=True,
              help="How many of the suite's runs the dashboard shows, or feed a run report's trends (0: none).")
@click.option("--step-summary/--no-step-summary", default=True, show_default=True,
              help="With Markdown, also append the summary to $GITHUB_STEP_SUMMARY when that is set.")
@click.option("--db", type=DB, envvar="GLMEVAL_DB", help=DB_HELP)
def report_cmd(
    run: str | None,
    baseline: str | None,
    no_baseline: bool,
    formats: tuple[str, ...],
    out: str | None,
    suite: str | None,
    history: str | None,
    history_runs: int,
    step_summary: bool,
    db: str | Path | None,
) -> None:
    """Render stored run RUN (id, id prefix, latest, latest~N or a git ref; default latest).

    \b
    Examples:
      glmeval report latest                          Markdown to stdout
      glmeval report latest --format html            reports/<suite>/<run>/report.html
      glmeval report latest --baseline latest~1 --format md --format html --out site/
      glmeval report 20240601-1200 --format junit --out junit.xml
      glmeval report --history qa --runs 30          reports/qa/history.html
    """
    from glmeval.report import append_step_summary, load_report_data, renderer
    from glmeval.store import Store

    if history is not None:
        if history.isdigit() and not _is_suite(db, history):
            # `--history N` used to be the trend length; keep such commands working.
            click.echo(f"note: --history {history} is now --runs {history}", err=True)
            history_runs = min(int(history), 500)
        else:
            _history_cmd(history, history_runs, formats, out, run, baseline, suite, db)
            return
    run = run or "latest"
    formats = tuple(dict.fromkeys(formats or ("md",)))
    if no_baseline and baseline:
        raise GlmevalError("--baseline and --no-baseline contradict each other; give one")
    with Store(db, create=False) as store:
        run_id = store.resolve_run(run, suite=suite)
        info = store.require_run(run_id)
        base_id = store.resolve_run(baseline, suite=info.suite) if baseline else None
        if base_id is not None and base_id == run_id:
            raise GlmevalError(f"the baseline {baseline!r} is the run itself ({run_id}); name an earlier run")
        targets = _targets(formats, out, info.suite, run_id)
        for fmt, path in targets.items():
            if fmt in EXPORTS:
                _export(store, run_id, fmt, path)
        renders = [f for f in formats if f not in EXPORTS]
        data = None
        if renders:
            data = load_report_data(store, run_id, baseline=base_id, history_runs=history_runs,
                                    recorded_baseline=not no_baseline)
        if data is not None and data.scale is not None:
            _big_run_exports(store, run_id, data.scale, targets)
        for fmt, path in targets.items():
            if fmt in EXPORTS or data is None:
                continue
            text = renderer(fmt)(data)
            if path is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
                except OSError as exc:
                    raise GlmevalError(f"{path}: cannot write the report ({exc.strerror})") from None
                click.echo(f"report: {path}", err=True)
        if step_summary and "md" in formats and data is not None:
            written = append_step_summary(data)
            if written is not None:
                click.echo(f"summary appended to {written}", err=True)


def _export(store: StoreReader, run_id: str, fmt: str, path: Path | None) -> None:
    """One export to ``path`` (``None``: standard output, streamed as it is read)."""
    from glmeval.report import write_export
    from glmeval.report.export import EXPORTERS

    exporter = EXPORTERS[fmt]
    if path is None:
        exporter(store, run_id, sys.stdout)
        sys.stdout.flush()
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        n = write_export(store, run_id, fmt, path)
    except OSError as exc:
        raise GlmevalError(f"{path}: cannot write the export ({exc.strerror})") from None
    click.echo(f"export: {path} ({n:,} results)", err=True)


def _big_run_exports(store: StoreReader, run_id: str, scale: Scale, targets: dict[str, Path | None]) -> None:
    """A big run's HTML or Markdown file links to the full data: both exports next to it
    (those already written by ``--format csv|jsonl`` into that folder are reused)."""
    from glmeval.report import FILE_NAMES

    folders = [p.parent for f, p in targets.items() if f in ("md", "html") and p is not None]
    if not folders:
        return
    for fmt in EXPORTS:
        path = folders[0] / FILE_NAMES[fmt]
        if targets.get(fmt) != path:
            _export(store, run_id, fmt, path)
        scale.exports[fmt] = path.name


def _is_suite(db: str | Path | None, name: str) -> bool:
    from glmeval.store import Store

    with Store(db, create=False) as store:
        return name in store.suites()


def _history_cmd(
    suite: str, runs: int, formats: tuple[str, ...], out: str | None, run: str | None, baseline: str | None,
    run_suite: str | None, db: str | Path | None,
) -> None:
    """``glmeval report --history SUITE``: the suite's dashboard, one HTML file."""
    from glmeval.report import safe_name
    from glmeval.report.dashboard import FILE_NAME, load_history_dashboard, render_dashboard
    from glmeval.store import Store

    if any(f != "html" for f in formats):
        raise GlmevalError("--history renders one HTML file; drop --format or give --format html")
    if run is not None or baseline or run_suite:
        raise GlmevalError("--history SUITE shows the suite's runs; drop RUN, --baseline and --suite")
    if out == "-":
        path: Path | None = None
    elif out is None:
        path = DEFAULT_OUT / safe_name(suite) / FILE_NAME
    else:
        path = Path(out)
        if path.is_dir() or out.endswith(("/", "\\")) or not path.suffix:
            path = path / FILE_NAME
    with Store(db, create=False) as store:
        text = render_dashboard(load_history_dashboard(store, suite, runs))
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise GlmevalError(f"{path}: cannot write the dashboard ({exc.strerror})") from None
    click.echo(f"dashboard: {path}", err=True)


__all__ = ["report_cmd"]
