"""glmeval: prompt evaluation and regression testing for ZhipuAI GLM chat models.

The pipeline runs in one direction: suite -> plan -> run -> check -> store -> report.

This package imports nothing heavy: ``glmeval --version`` and ``--help`` load it, and must
not pay for pandas or the check machinery. ``glmeval.checks`` is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from glmeval.version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import pandas as pd

    from glmeval import checks as checks
    from glmeval.store import Store

__all__ = ["__version__", "results", "runs", "checks"]


def results(
    db: str | Path | Store | None = None,
    run: str | None = None,
    *,
    suite: str | None = None,
    runs: int | str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """A tidy pandas DataFrame, one row per result, parameters as columns (docs/python.md).

    ``run`` is one run (a reference such as ``latest~1``, an id or a git ref; default the
    latest, of ``suite`` when given); ``suite`` alone is every run of that suite; ``runs`` is a
    list of references or a count (the last N runs). ``run_id`` and ``run_started`` tell the
    runs apart; grid axes, model, variant, mode and status are categoricals, tokens, latencies
    and costs floats (NaN for unknown), ``passed`` and ``cached`` bools.
    """
    from glmeval.analysis.frames import results_frame

    return results_frame(db=db, run=run, suite=suite, runs=runs, analysis_dtypes=True)


def runs(db: str | Path | Store | None = None, suite: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """One row per run, oldest first: suite, status, started, git commit, passed, pass rate,
    tokens, answer and judge cost... (docs/python.md). ``limit`` keeps the newest N."""
    from glmeval.analysis.frames import runs_frame

    return runs_frame(db=db, suite=suite, limit=limit)


def __getattr__(name: str) -> Any:
    """``glmeval.checks`` on first use (PEP 562). It is both the check registry package and,
    called, the check-results frame; importing it sets the attribute, so this runs once."""
    if name == "checks":
        return importlib.import_module("glmeval.checks")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
