"""JUnit XML: one ``<testcase>`` per case × variant, for CI systems that draw test tables.

GitLab, Jenkins, Azure and the GitHub test-report actions all read this format, so a failing
prompt shows up where a failing unit test would. Each variant is a ``<testsuite>`` (CI UIs
group by it) and the testcase name carries the variant too, so names stay unique in UIs that
flatten suites. A case with repeats is one testcase whose verdict follows the case's
threshold; ``<failure>`` lists every failing check's reason per repeat, and a cell whose
non-passing repeats all had no answer is an ``<error>``. Built with :mod:`xml.etree`, which
escapes text; control and bidi characters are written as visible escapes first
(:func:`glmeval.sanitize.visible`), and what XML 1.0 still cannot hold becomes U+FFFD.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from typing import Any

import glmeval.report.views as views
from glmeval.report.data import ReportData
from glmeval.sanitize import visible

MAX_OUT = 4_000
# Characters outside XML 1.0's Char production (control characters, lone surrogates, U+FFFE/F).
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: Any, limit: int | None = None) -> str:
    """Text XML can carry: control and bidi characters as visible escapes (``\\x1b``; XML 1.0
    cannot hold most C0 controls at all), other invalid characters (lone surrogates) as U+FFFD,
    long text cut with a note."""
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"\n… (+{len(text) - limit} chars)"
    return _INVALID_XML.sub("\ufffd", visible(text.replace("\r\n", "\n")))


def _seconds(ms: Any) -> float:
    v = views.clean(ms)
    return float(v) / 1000.0 if v is not None else 0.0


def _cell_details(cell: views.Cell) -> str:
    lines = []
    for a in cell.attempts:
        head = f"repeat {a.repeat + 1}: {a.status}"
        if a.status == "error":
            lines.append(f"{head}: {a.error_kind}: {a.error}")
            continue
        lines.append(head)
        for c in a.checks:
            lines.append(f"  {'PASS' if c.passed else 'FAIL'} {c.label}: {c.reason}")
    return "\n".join(lines)


def _answers(cell: views.Cell) -> str:
    """Each repeat's answer; for a failing cell, a failing repeat's reasoning follows its answer
    (apart, so the answer reads as the checks saw it): often it shows why the answer went wrong."""
    parts = []
    for a in cell.attempts:
        body = a.output or ""
        if a.tool_calls:
            body += ("\n" if body else "") + "\n".join(f"tool call {t['name']}: {t['arguments']}" for t in a.tool_calls)
        parts.append(f"--- repeat {a.repeat + 1} ({a.status}) ---\n{xml_text(body, MAX_OUT)}")
        if a.reasoning and not cell.passed and a.status != "pass":
            tokens = "" if a.reasoning_tokens is None else f", {a.reasoning_tokens} tokens{' (estimated)' if a.reasoning_estimated else ''}"
            parts.append(f"--- reasoning of repeat {a.repeat + 1}{tokens} ---\n{xml_text(a.reasoning, MAX_OUT)}")
    return "\n".join(parts)


def build_junit(data: ReportData) -> ET.Element:
    """The ``<testsuites>`` element (for callers that want to add to it before writing)."""
    run = data.run
    m = views.matrix(data)
    root = ET.Element("testsuites", name=xml_text(f"glmeval {run.suite}"))
    total: dict[str, float] = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
    timestamp = dt.datetime.fromtimestamp(run.started_at).isoformat(timespec="seconds")
    for variant in m.variants:
        cells = [m.cells[(c, variant)] for c in m.cases if (c, variant) in m.cells]
        suite = ET.SubElement(root, "testsuite", name=xml_text(f"{run.suite} [{variant}]"), timestamp=timestamp)
        if run.host:
            suite.set("hostname", xml_text(run.host))
        props = ET.SubElement(suite, "properties")
        for prop, shown in (
            ("run_id", run.id), ("variant", variant), ("git_commit", run.git_commit), ("simulated", str(bool(run.local)).lower()),
            ("replayed", str(bool(run.replay)).lower()),
        ):
            if shown is not None:
                ET.SubElement(props, "property", name=prop, value=xml_text(shown))
        counts: dict[str, float] = {"tests": 0, "failures": 0, "errors": 0, "time": 0.0}
        for cell in cells:
            seconds = sum(_seconds(a.latency_ms) for a in cell.attempts)
            case = ET.SubElement(
                suite, "testcase", classname=xml_text(run.suite), name=xml_text(f"{cell.case_id} [{variant}]"),
                time=f"{seconds:.3f}",
            )
            counts["tests"] += 1
            counts["time"] += seconds
            if not cell.passed:
                summary = f"{cell.passes}/{cell.n} repeats passed"
                why = cell.why()
                message = xml_text(f"{summary}: {why}" if why else summary, 1_000)
                if cell.kind == "error":
                    first = next(a for a in cell.attempts if a.status == "error")
                    el = ET.SubElement(case, "error", message=message, type=xml_text(first.error_kind or "error"))
                    counts["errors"] += 1
                else:
                    el = ET.SubElement(case, "failure", message=message, type="check")
                    counts["failures"] += 1
                el.text = xml_text(_cell_details(cell))
            out = ET.SubElement(case, "system-out")
            out.text = _answers(cell)
        for key, value in counts.items():
            suite.set(key, f"{value:.3f}" if key == "time" else str(value))
            total[key] += value
        suite.set("skipped", "0")
    for key, value in total.items():
        root.set(key, f"{value:.3f}" if key == "time" else str(value))
    return root


def render_junit(data: ReportData) -> str:
    """The JUnit XML document as a string (UTF-8 declared)."""
    root = build_junit(data)
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["render_junit", "build_junit", "xml_text"]
