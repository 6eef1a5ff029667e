"""Reports: views of stored runs rendered as Markdown, HTML, JSON or JUnit XML.

Every renderer starts from :class:`ReportData` (pandas frames read from the store), so a
report can be made for any past run and never needs the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from glmeval.frames import checks_frame, results_frame, summary_frame
from glmeval.store import RunInfo, Store


@dataclass
class ReportData:
    run: RunInfo
    results: pd.DataFrame
    checks: pd.DataFrame
    summary: pd.DataFrame


def load_report_data(store: Store, run_id: str) -> ReportData:
    run = store.get_run(run_id)
    if run is None:
        from glmeval.errors import GlmevalError

        raise GlmevalError(f"no run {run_id!r} in {store.path}")
    results = results_frame(store, run_id)
    return ReportData(run=run, results=results, checks=checks_frame(store, run_id), summary=summary_frame(results, run.variants))


def write_reports(store: Store, run_id: str, out_dir: Path, formats: tuple[str, ...] = ("md",)) -> list[Path]:
    """Render the run into ``out_dir`` in each format; returns the files written."""
    from glmeval.report.markdown import render_markdown

    data = load_report_data(store, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if "md" in formats:
        path = out_dir / "report.md"
        path.write_text(render_markdown(data), encoding="utf-8")
        written.append(path)
    if "html" in formats:
        try:
            from glmeval.report.html import render_html
        except ImportError:
            render_html = None  # type: ignore[assignment]
        if render_html is not None:
            path = out_dir / "report.html"
            path.write_text(render_html(data), encoding="utf-8")
            written.append(path)
    return written
