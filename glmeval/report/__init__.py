"""Reports: views of stored runs rendered as Markdown, HTML, JSON or JUnit XML.

Every renderer starts from :class:`ReportData` (pandas frames read from the store by
:mod:`glmeval.report.load`), so a report can be made for any past run, or any pair of runs,
and never needs the runner. What the renderers agree on (cell verdicts, best values,
parameter effects, trends) is computed once in the view modules, named together in
:mod:`glmeval.report.views`. This package module only picks renderers and writes files: it
imports the renderers, and nothing in the package imports it back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from glmeval.errors import GlmevalError
from glmeval.report.data import ReportData
from glmeval.report.export import EXPORT_FILES, EXPORTERS
from glmeval.report.html import render_html
from glmeval.report.jsonreport import render_json
from glmeval.report.junit import render_junit
from glmeval.report.load import HISTORY_RUNS, load_report_data
from glmeval.report.markdown import render_markdown, render_step_summary
from glmeval.store import StoreReader

Renderer = Callable[[ReportData], str]

RENDERERS: dict[str, Renderer] = {"md": render_markdown, "html": render_html, "json": render_json, "junit": render_junit}
FORMATS: tuple[str, ...] = (*RENDERERS, *EXPORTERS)
FILE_NAMES: dict[str, str] = {"md": "report.md", "html": "report.html", "json": "report.json", "junit": "junit.xml",
                              **EXPORT_FILES}


def report_dir(out: Path, suite: str, run_id: str) -> Path:
    """``out/<suite>/<run-id>``, with the names made safe as single folder names.

    A suite's name is free text: ``../x``, ``/etc`` or ``a/b`` must not steer reports out of
    ``out``. Letters (any script), digits, ``-``, ``_`` and ``.`` are kept; anything else
    becomes ``_``; a name of dots only becomes ``_``.
    """
    return Path(out) / safe_name(suite) / safe_name(run_id)


def safe_name(name: str) -> str:
    """One folder name from free text (see :func:`report_dir`)."""
    cleaned = re.sub(r"[^\w.\-]", "_", name, flags=re.UNICODE).strip()
    return "_" if not cleaned.strip(".") else cleaned[:120]


def renderer(fmt: str) -> Renderer:
    """The render function of a format name (``md``, ``html``, ``json``, ``junit``)."""
    if fmt in RENDERERS:
        return RENDERERS[fmt]
    if fmt in EXPORTERS:
        raise GlmevalError(f"{fmt} is an export of the stored results, not a rendering; use write_export")
    raise GlmevalError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def append_step_summary(data: ReportData) -> Path | None:
    """Append the compact Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set.

    GitHub Actions shows that file on the job's page, so a CI run explains itself without
    anyone downloading artefacts. Returns the file written, or ``None`` outside Actions.
    """
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(render_step_summary(data))
            fh.write("\n")
    except OSError:
        return None
    return path


def write_reports(
    store: StoreReader,
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

    ``csv`` / ``jsonl`` among the formats export every result (:mod:`glmeval.report.export`);
    a big run (:class:`~glmeval.report.data.Scale`) with an HTML or Markdown report gets both
    exports anyway, written first, so the capped report links to the full data.
    """
    out_dir = Path(out_dir)
    written = []
    path = out_dir
    exports = [f for f in formats if f in EXPORTERS]
    renders = [f for f in formats if f not in EXPORTERS]
    try:
        for fmt in renders:
            renderer(fmt)
        if renders and data is None:
            data = load_report_data(store, run_id, baseline=baseline)
        if data is not None and data.scale is not None and {"md", "html"} & set(renders):
            exports = list(dict.fromkeys([*exports, *EXPORTERS]))
        out_dir.mkdir(parents=True, exist_ok=True)
        for fmt in exports:
            path = out_dir / FILE_NAMES[fmt]
            write_export(store, run_id, fmt, path)
            written.append(path)
            if data is not None and data.scale is not None:
                data.scale.exports[fmt] = path.name
        for fmt in renders:
            assert data is not None
            path = out_dir / FILE_NAMES[fmt]
            path.write_text(renderer(fmt)(data), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise GlmevalError(
            f"{path}: cannot write the report ({exc.strerror or exc}); the results are stored, "
            f"render them again with `glmeval report {run_id} --out DIR`"
        ) from None
    if step_summary and "md" in formats and data is not None:
        append_step_summary(data)
    return written


def write_export(store: StoreReader, run_id: str, fmt: str, path: Path) -> int:
    """Export every result of the run to ``path`` as ``csv`` or ``jsonl``; returns the rows.
    Written to a temporary name first, so a half-written export never passes for a whole one."""
    if fmt not in EXPORTERS:
        raise GlmevalError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORTERS)}")
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8", newline="") as fh:
        n = EXPORTERS[fmt](store, run_id, fh)
    part.replace(path)
    return n


__all__ = [
    "ReportData", "load_report_data", "write_reports", "renderer", "append_step_summary", "report_dir", "safe_name",
    "FORMATS", "FILE_NAMES", "HISTORY_RUNS", "RENDERERS", "Renderer", "EXPORTERS", "write_export",
]
