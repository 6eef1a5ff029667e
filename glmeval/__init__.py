"""glmeval: prompt evaluation and regression testing for ZhipuAI GLM chat models.

The pipeline runs in one direction: suite -> plan -> run -> check -> store -> report.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "results", "checks"]


def results(db: str | None = None, run: str | None = None):  # type: ignore[no-untyped-def]
    """A tidy pandas DataFrame, one row per result, parameters as columns."""
    from glmeval.frames import results_frame

    return results_frame(db=db, run=run)


# ``glmeval.checks`` is both the check registry package and, called, the check-results frame.
from glmeval import checks as checks  # noqa: E402


# ``glmeval.checks`` is both this function and the ``glmeval/checks/`` subpackage. Importing the
# subpackage (which every run does) makes Python set ``glmeval.checks`` to the module, hiding
# the function. So the package intercepts that assignment and makes the subpackage module
# callable as the function: ``glmeval.checks(db=..., run=...)`` and ``glmeval.checks.evaluate``
# both keep working whatever was imported first.
import sys as _sys  # noqa: E402
import types as _types  # noqa: E402

_checks_function = checks


class _CallableChecksModule(_types.ModuleType):
    def __call__(self, db: str | None = None, run: str | None = None):  # type: ignore[no-untyped-def]
        return _checks_function(db=db, run=run)


class _Package(_types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        if name == "checks" and isinstance(value, _types.ModuleType) and type(value) is _types.ModuleType:
            value.__class__ = _CallableChecksModule
            value.__doc__ = value.__doc__ or _checks_function.__doc__
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
if "glmeval.checks" in _sys.modules:  # imported before this line ran (unusual): wrap it now
    setattr(_sys.modules[__name__], "checks", _sys.modules["glmeval.checks"])
