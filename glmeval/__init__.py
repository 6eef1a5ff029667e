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
    from pathlib import Path

    import pandas as pd

    from glmeval import checks as checks
    from glmeval.store import Store

__all__ = ["__version__", "results", "checks"]


def results(db: str | Path | Store | None = None, run: str | None = None) -> pd.DataFrame:
    """A tidy pandas DataFrame, one row per result, parameters as columns."""
    from glmeval.analysis.frames import results_frame

    return results_frame(db=db, run=run)


def __getattr__(name: str) -> Any:
    """``glmeval.checks`` on first use (PEP 562). It is both the check registry package and,
    called, the check-results frame; importing it sets the attribute, so this runs once."""
    if name == "checks":
        return importlib.import_module("glmeval.checks")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
