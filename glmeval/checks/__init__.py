"""Checks: YAML check names mapped to small pure functions, resolved per suite.

The pieces: :mod:`~glmeval.checks.registry` (layered registries and ``@register``),
:mod:`~glmeval.checks.builtin` (the built-in layer: :mod:`text`, :mod:`structured`,
:mod:`metrics`, :mod:`reasoning`, :mod:`search`, :mod:`custom`, :mod:`graded`, plus
entry-point plugins),
:mod:`~glmeval.checks.context` (what a check sees), :mod:`~glmeval.checks.evaluate` (verdicts)
and :mod:`~glmeval.checks.args` (helpers for argument validators). This module is the public
face; called, ``glmeval.checks(db=..., run=...)`` returns the check-results frame.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

from glmeval.checks.args import (
    did_you_mean,
    file_beside,
    flag_problem,
    got,
    has_template,
    is_template,
    number_problem,
    unknown_args,
)
from glmeval.checks.builtin import load_builtin
from glmeval.checks.context import CheckContext, Grader
from glmeval.checks.evaluate import evaluate, evaluate_all
from glmeval.checks.registry import (
    BUILTIN,
    CheckDef,
    CheckFn,
    CheckRegistry,
    Validator,
    load_check_file,
    load_entry_points,
    register,
    validate_with,
    validator,
)
from glmeval.checks.registry import unknown_type_message as _unknown_type_message
from glmeval.records import CheckSpec

__all__ = [
    "REGISTRY",
    "CheckContext",
    "CheckDef",
    "CheckFn",
    "CheckRegistry",
    "Grader",
    "Validator",
    "did_you_mean",
    "evaluate",
    "evaluate_all",
    "file_beside",
    "flag_problem",
    "got",
    "has_template",
    "is_template",
    "known_types",
    "load_builtin",
    "load_entry_points",
    "load_local_checks",
    "number_problem",
    "register",
    "suite_registry",
    "unknown_args",
    "unknown_type_message",
    "validate_check",
    "validator",
]

# The built-in layer (built-ins and plugins); a suite's registry sits on top of it.
REGISTRY = BUILTIN


def suite_registry(name: str) -> CheckRegistry:
    """A fresh registry for one suite: its check files go here, over the built-ins."""
    return load_builtin().child(name)


def load_local_checks(path: str | Path, registry: CheckRegistry | None = None) -> list[str]:
    """Import a Python file of checks and return the names it registered.

    Into ``registry`` when given (a suite's, from :func:`suite_registry`); otherwise into the
    process-wide built-in layer, which is what a ``conftest.py`` calling this directly wants.
    """
    builtin = load_builtin()
    return load_check_file(path, registry if registry is not None else builtin)


def validate_check(
    spec: CheckSpec, suite_dir: str | Path | None = None, tools: list[Any] | None = None, registry: CheckRegistry | None = None
) -> list[str]:
    """The problems with one check's arguments, by its type's validator ([] when it has none)."""
    resolved = registry if registry is not None else load_builtin()
    return validate_with(resolved, spec, Path(suite_dir) if suite_dir is not None else Path.cwd(), tools)


def known_types(registry: CheckRegistry | None = None) -> list[str]:
    return sorted(registry if registry is not None else load_builtin())


def unknown_type_message(name: str, registry: CheckRegistry | None = None) -> str:
    """``unknown check type 'contain'; did you mean 'contains'?`` for suite errors and results."""
    return _unknown_type_message(name, registry if registry is not None else load_builtin())


class _CallableModule(types.ModuleType):
    """Lets ``glmeval.checks(db=..., run=...)`` return the check-results frame while
    ``glmeval.checks`` stays the checks package (a submodule import would otherwise
    replace a function of that name on the package)."""

    def __call__(self, db: Any = None, run: str | None = None) -> Any:
        from glmeval.analysis.frames import checks_frame

        return checks_frame(db=db, run=run)


sys.modules[__name__].__class__ = _CallableModule
