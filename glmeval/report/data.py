"""What a renderer is given: :class:`ReportData`, and the few helpers every view shares.

This module imports nothing else from :mod:`glmeval.report`, so the views, the loader and
every renderer can depend on it without any of them depending on the package itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd

from glmeval.analysis.compare import Comparison
from glmeval.store import RunInfo

T = TypeVar("T")


@dataclass
class Scale:
    """What a report of a big run shows less of, and where the rest is.

    Set by :func:`glmeval.report.load.load_report_data` when a run has more results than a
    page can show (``full_limit``). Then ``ReportData.results`` is the lean frame (every
    result's numbers, no text: :func:`glmeval.analysis.lean.lean_results_frame`), so the
    summary, parameter effects and failure counts cover the whole run; ``ReportData.detail``
    holds the full rows of the ``shown`` cases only (worst first), which the matrix and the
    failure list draw. ``cells`` has every (case, variant) verdict; ``exports`` maps an export
    format to the file written next to the report (filled in by ``write_reports``).
    """

    results: int
    cases: int
    cells: pd.DataFrame
    shown: list[str]
    exports: dict[str, str] = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        """Cases of the run the matrix leaves out."""
        return self.cases - len(self.shown)

    @property
    def cells_failed(self) -> int:
        return int((~self.cells["passed"].astype(bool)).sum()) if not self.cells.empty else 0

    @property
    def failing_not_error(self) -> int:
        """Failing cells with at least one answer (the header badge's "N failing")."""
        if self.cells.empty:
            return 0
        return int(((~self.cells["passed"].astype(bool)) & (self.cells["kind"] != "error")).sum())


@dataclass
class ReportData:
    """Everything a renderer may show about one run.

    ``jobs`` maps a job id to the request that was sent (messages, params, threshold...), read
    from the store so the HTML can show the full conversation; ``variants`` maps a variant id
    to its grid values, for parameter effects; ``history`` holds per-run, per-variant figures
    of the suite's recent runs, for trends; ``comparison`` is the result of
    ``glmeval.analysis.compare.compare_runs`` against ``baseline`` when one was asked for.
    ``cache`` memoises computed views so rendering several formats does the work once.
    ``unfinished`` is set for a run that stopped (or was killed) before every planned job
    had a result: "interrupted: 336 of 400 jobs have no result: glmeval run --resume RUN",
    so a headline over 64 answers never reads as if the run were whole.
    """

    run: RunInfo
    results: pd.DataFrame
    checks: pd.DataFrame
    summary: pd.DataFrame
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: pd.DataFrame | None = None
    baseline: RunInfo | None = None
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)
    unfinished: str | None = None
    detail: pd.DataFrame | None = None
    """The full rows of the cases a big run's matrix shows (None: ``results`` has every row)."""
    scale: Scale | None = None
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


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


def memo(data: ReportData, key: str, build: Callable[[], T]) -> T:
    """``build()`` once per report: the matrix, effects and trends are shared by every format."""
    if key not in data.cache:
        data.cache[key] = build()
    result: T = data.cache[key]
    return result


def numeric_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as numbers, or all NaN when the frame lacks it (a run stored before it existed)."""
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce")
    return pd.Series(float("nan"), index=frame.index, dtype=float)


def has_reasoning(frame: pd.DataFrame) -> bool:
    """Whether any row of a results frame has reasoning text or reasoning tokens above zero:
    what decides if the reports show reasoning at all, so glm-4-only runs look as before."""
    if frame.empty:
        return False
    if bool((numeric_column(frame, "reasoning_tokens") > 0).any()):
        return True
    if "reasoning_chars" in frame.columns:  # the lean frame of a big run
        return bool((pd.to_numeric(frame["reasoning_chars"], errors="coerce") > 0).any())
    if "reasoning" in frame.columns:
        return any(isinstance(t, str) and t for t in frame["reasoning"].tolist())
    return False


def variant_order(data: ReportData) -> list[str]:
    """Variants as the plan listed them, then any others found in the results."""
    order = [v for v in data.summary["variant"].tolist()] if not data.summary.empty else []
    if not data.results.empty:
        for v in dict.fromkeys(data.results["variant_id"].tolist()):
            if v not in order:
                order.append(v)
    return order


def hidden_cases(data: ReportData) -> int:
    """Cases the matrix of a big run leaves out (0 for any run shown whole)."""
    return data.scale.hidden if data.scale is not None else 0


def matrix_rows(data: ReportData) -> pd.DataFrame:
    """The frame the matrix is built from: every result, or a big run's shown cases."""
    return data.detail if data.detail is not None else data.results


__all__ = ["ReportData", "Scale", "hidden_cases", "matrix_rows", "is_missing", "clean", "memo", "variant_order", "numeric_column", "has_reasoning"]
