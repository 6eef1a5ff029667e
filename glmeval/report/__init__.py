"""Reports: views of stored runs rendered as Markdown, HTML, JSON or JUnit XML.

Every renderer starts from :class:`ReportData` (pandas frames read from the store), so a
report can be made for any past run, or any pair of runs, and never needs the runner.
What the renderers agree on (cell verdicts, best values, parameter effects, trends) is
computed once in :mod:`glmeval.report.views`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from glmeval.analysis.frames import checks_frame, results_frame, summary_frame
from glmeval.errors import GlmevalError
from glmeval.store import RunInfo, Store

FORMATS: tuple[str, ...] = ("md", "html", "json", "junit")
FILE_NAMES: dict[str, str] = {"md": "report.md", "html": "report.html", "json": "report.json", "junit": "junit.xml"}
HISTORY_RUNS = 20


def report_dir(out: Path, suite: str, run_id: str) -> Path:
    """``out/<suite>/<run-id>``, with the names made safe as single folder names.

    A suite's name is free text: ``../x``, ``/etc`` or ``a/b`` must not steer reports out of
    ``out``. Letters (any script), digits, ``-``, ``_`` and ``.`` are kept; anything else
    becomes ``_``; a name of dots only becomes ``_``.
    """
    return Path(out) / safe_name(suite) / safe_name(run_id)


def safe_name(name: str) -> str:
    import re

    cleaned = re.sub(r"[^\w.\-]", "_", name, flags=re.UNICODE).strip()
    return "_" if not cleaned.strip(".") else cleaned[:120]


@dataclass
class ReportData:
    """Everything a renderer may show about one run.

    ``jobs`` maps a job id to the request that was sent (messages, params, threshold...), read
    from the store so the HTML can show the full conversation; ``variants`` maps a variant id
    to its grid values, for parameter effects; ``history`` holds per-run, per-variant figures
    of the suite's recent runs, for trends; ``comparison`` is the result of
    ``glmeval.analysis.compare.compare_runs`` against ``baseline`` when one was asked for.
    ``cache`` memoises computed views so rendering several formats does the work once.
    """

    run: RunInfo
    results: pd.DataFrame
    checks: pd.DataFrame
    summary: pd.DataFrame
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: pd.DataFrame | None = None
    baseline: RunInfo | None = None
    comparison: Any = None
    notes: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


_JOB_FIELDS = ("messages", "params", "threshold", "description", "tags", "vars", "min_score")


def _load_jobs(store: Store, run_id: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The request of every result (for the conversation view) and each variant's grid values.

    SQLite's ``json_extract`` pulls out just the fields a report shows, and identical JSON
    texts (the same conversation across variants and repeats) are parsed once: for a 10,000
    result run that is a tenth of a second instead of parsing every stored job in full.
    """
    jobs: dict[str, dict[str, Any]] = {}
    variants: dict[str, dict[str, Any]] = {}
    parsed: dict[str, Any] = {}

    def load(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        if text not in parsed:
            try:
                parsed[text] = json.loads(text)
            except ValueError:
                parsed[text] = None
        return parsed[text]

    extract = ", ".join(f"json_extract(job, '$.{f}')" for f in _JOB_FIELDS)
    try:
        rows = store.conn.execute(
            f"SELECT job_id, variant_id, variant, {extract} FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        split = True
    except sqlite3.OperationalError:  # an SQLite built without JSON functions
        rows = store.conn.execute(
            "SELECT job_id, variant_id, variant, job FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        split = False
    for row in rows:
        job_id, variant_id, variant = row[0], row[1], row[2]
        if split:
            # json_extract returns JSON text for arrays/objects and SQL values for scalars.
            jobs[job_id] = {f: (load(v) if f in ("messages", "params", "tags", "vars") else v) for f, v in zip(_JOB_FIELDS, row[3:])}
        else:
            job = load(row[3]) or {}
            jobs[job_id] = {f: job.get(f) for f in _JOB_FIELDS}
        if variant_id not in variants:
            variants[variant_id] = load(variant) or {}
    return jobs, variants


def load_report_data(
    store: Store,
    run_id: str,
    baseline: str | None = None,
    history_runs: int = HISTORY_RUNS,
    recorded_baseline: bool = True,
) -> ReportData:
    """Read one run (and optionally its baseline comparison and the suite's history) from the store.

    ``baseline`` is a run id already resolved by the caller. Without one, the baseline the run
    was gated against (``runs.baseline``, set by ``glmeval run --baseline``) is used when it is
    still stored, so the report of a gated run shows what the gate saw; ``recorded_baseline=False``
    turns that off. ``history_runs`` bounds how many of the suite's runs feed the trends (0: none).
    """
    from glmeval.errors import GlmevalError
    from glmeval.report import views

    run = store.get_run(run_id)
    if run is None:
        raise GlmevalError(f"no run {run_id!r} in {store.path}")
    results = results_frame(store, run_id)
    checks = checks_frame(store, run_id)
    summary = views.enrich_summary(summary_frame(results, run.variants), checks)
    jobs, variants = _load_jobs(store, run_id)
    history = views.load_history(store, run, history_runs) if history_runs > 0 else None
    data = ReportData(run=run, results=results, checks=checks, summary=summary, jobs=jobs, variants=variants, history=history)
    if baseline is None and recorded_baseline:
        recorded = getattr(run, "baseline", None)
        if recorded and recorded != run_id and store.get_run(recorded) is not None:
            baseline = recorded
    if baseline:
        if baseline == run_id:
            raise GlmevalError(f"the baseline is the run itself ({run_id}); name an earlier run")
        data.baseline = store.get_run(baseline)
        if data.baseline is None:
            raise GlmevalError(f"no baseline run {baseline!r} in {store.path}")
        data.comparison, note = views.load_comparison(store, baseline, run_id)
        if note:
            data.notes.append(note)
    return data


def renderer(fmt: str) -> Callable[[ReportData], str]:
    """The render function of a format name (``md``, ``html``, ``json``, ``junit``)."""
    if fmt == "md":
        from glmeval.report.markdown import render_markdown

        return render_markdown
    if fmt == "html":
        from glmeval.report.html import render_html

        return render_html
    if fmt == "json":
        from glmeval.report.jsonreport import render_json

        return render_json
    if fmt == "junit":
        from glmeval.report.junit import render_junit

        return render_junit
    from glmeval.errors import GlmevalError

    raise GlmevalError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def append_step_summary(data: ReportData) -> Path | None:
    """Append the compact Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set.

    GitHub Actions shows that file on the job's page, so a CI run explains itself without
    anyone downloading artefacts. Returns the file written, or ``None`` outside Actions.
    """
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    from glmeval.report.markdown import render_step_summary

    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(render_step_summary(data))
            fh.write("\n")
    except OSError:
        return None
    return path


def write_reports(
    store: Store,
    run_id: str,
    out_dir: Path,
    formats: tuple[str, ...] = ("md",),
    baseline: str | None = None,
    step_summary: bool = True,
    data: ReportData | None = None,
) -> list[Path]:
    """Render the run into ``out_dir`` in each format; returns the files written.

    With ``md`` among the formats and ``GITHUB_STEP_SUMMARY`` set, the compact summary is
    also appended there (``step_summary=False`` turns that off). ``data`` lets a caller that
    already loaded the run (``glmeval run`` prints its summary first) skip a second load.
    """
    if data is None:
        data = load_report_data(store, run_id, baseline=baseline)
    out_dir = Path(out_dir)
    written = []
    path = out_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            render = renderer(fmt)
            path = out_dir / FILE_NAMES[fmt]
            path.write_text(render(data), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise GlmevalError(
            f"{path}: cannot write the report ({exc.strerror or exc}); the results are stored, "
            f"render them again with `glmeval report {run_id} --out DIR`"
        ) from None
    if step_summary and "md" in formats:
        append_step_summary(data)
    return written


__all__ = [
    "ReportData", "load_report_data", "write_reports", "renderer", "append_step_summary", "FORMATS", "FILE_NAMES",
]
