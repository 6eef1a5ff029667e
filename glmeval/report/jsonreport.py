"""The whole run as one JSON document, for dashboards, notebooks and other tools.

It mirrors the store (run, results, checks) plus what the report computed (summary with
intervals, the case × variant verdicts, the baseline comparison), so a consumer never has to
re-derive "did this case pass" from repeats and thresholds. Only the standard library's
:mod:`json` is used; NaN becomes ``null`` because NaN is not JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from typing import Any

import pandas as pd

import glmeval.report.views as views
from glmeval.report.data import ReportData, matrix_rows

SCHEMA = "glmeval.report/1"


def _jsonable(value: Any) -> Any:
    """Recursively turn numpy/pandas scalars, NaN and dataclasses into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Flat rows with NaN → ``None`` and numpy scalars → Python (cheap: one level, no recursion)."""
    if frame.empty:
        return []
    return [{str(k): views.clean(v) for k, v in r.items()} for r in frame.to_dict("records")]


def _search_list(raw: Any) -> list[Any]:
    if isinstance(raw, list):
        return raw
    if isinstance(raw, str) and raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return []
        return parsed if isinstance(parsed, list) else []
    return []


def _thinking_fields(r: dict[str, Any]) -> None:
    """Every result carries the reasoning fields, whatever the run: ``reasoning`` (text, ``""``
    when none), ``reasoning_tokens``, ``reasoning_estimated``, ``ttfr_ms``, ``cached_tokens``,
    ``thinking`` (``null`` when unknown) and ``web_search`` (a list, parsed from the store's
    JSON text), so a consumer need not test which glmeval stored the run."""
    r["reasoning"] = r.get("reasoning") or ""
    for key in ("reasoning_tokens", "cached_tokens"):
        r[key] = None if r.get(key) is None else int(r[key])
    r["reasoning_estimated"] = bool(r.get("reasoning_estimated"))
    r["ttfr_ms"] = r.get("ttfr_ms")
    r["thinking"] = r.get("thinking")
    r["web_search"] = _search_list(r.get("web_search"))


def report_dict(data: ReportData) -> dict[str, Any]:
    """The JSON report as a Python dict (what :func:`render_json` serialises)."""
    m = views.matrix(data)
    results = []
    for r in _records(matrix_rows(data)):
        job = data.jobs.get(r["job_id"], {})
        raw_calls = r.pop("tool_calls", None)
        r["tool_calls"] = json.loads(raw_calls) if isinstance(raw_calls, str) and raw_calls else []
        _thinking_fields(r)
        r["variant"] = data.variants.get(r["variant_id"], {})
        r["request"] = {"messages": job.get("messages"), "params": job.get("params")}  # already plain JSON
        results.append(r)
    cells = [
        {
            "case_id": cell.case_id,
            "variant_id": cell.variant_id,
            "passed": cell.passed,
            "kind": cell.kind,
            "passes": cell.passes,
            "errors": cell.errors,
            "n": cell.n,
            "threshold": cell.threshold,
            "why": cell.why() or None,
        }
        for case in m.cases
        for cell in m.row(case)
        if cell is not None
    ]
    comparison = None
    if data.comparison is not None:
        comparison = {
            "base": data.baseline.id if data.baseline else None,
            "variants": views.delta_rows(data.comparison),
            "only_in_base": list(data.comparison.only_in_base),
            "only_in_head": list(data.comparison.only_in_head),
        }
    small = _jsonable(
        {
            "run": dataclasses.asdict(data.run),
            "totals": views.totals(data),
            "variants": data.variants,
            "baseline": comparison,
            "notes": data.notes,
        }
    )
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "run": small["run"],
        "simulated": bool(data.run.local),
        "replayed": bool(data.run.replay),
        "totals": small["totals"],
        "variants": small["variants"],
        "summary": _records(data.summary),
        "cells": cells,
        "results": results,
        "checks": _records(data.checks),
        "baseline": small["baseline"],
        "notes": small["notes"],
    }
    if data.scale is not None:  # a big run: cells, results and checks are those of the shown cases
        sc = data.scale
        out["scale"] = {"results": sc.results, "cases": sc.cases, "shown_cases": sc.shown, "hidden_cases": sc.hidden,
                        "cells": len(sc.cells), "cells_failed": sc.cells_failed, "exports": dict(sc.exports)}
    if views.shows_providers(data):  # only for a run with several providers, so other reports keep their keys
        out["providers"] = _jsonable({"headline": views.headline(data),
                                      "rows": [dataclasses.asdict(r) for r in views.provider_rows(data)],
                                      "agreement": [p.to_dict() for p in views.agreements(data)]})
    return out


def render_json(data: ReportData) -> str:
    """The JSON report, compact (the C encoder: a 10,000-result run in well under a second);
    non-ASCII kept readable, since model output is mostly Chinese. NaN never reaches it."""
    return json.dumps(report_dict(data), ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"


__all__ = ["render_json", "report_dict", "SCHEMA"]
