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


__all__ = ["ReportData", "is_missing", "clean", "memo", "variant_order", "numeric_column", "has_reasoning"]
