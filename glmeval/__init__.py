"""glmeval: prompt evaluation and regression testing for ZhipuAI GLM chat models.

The pipeline runs in one direction: suite -> plan -> run -> check -> store -> report.
"""

from __future__ import annotations

from glmeval.version import __version__

__all__ = ["__version__", "results", "checks"]


def results(db: str | None = None, run: str | None = None):  # type: ignore[no-untyped-def]
    """A tidy pandas DataFrame, one row per result, parameters as columns."""
    from glmeval.analysis.frames import results_frame

    return results_frame(db=db, run=run)


# ``glmeval.checks`` is both the check registry package and, called, the check-results frame.
from glmeval import checks as checks  # noqa: E402

