"""Collection: suite files as pytest files, each case × variant as one test item.

Only files matching the ``glmeval_pattern`` ini option (default ``*.glmeval.yaml`` /
``*.glmeval.yml``) or listed in ``glmeval_suites`` are collected, so the plugin never grabs
someone's unrelated YAML. An item's id (``greeting.glmeval.yaml::capital[glm-4-temperature=0.2]``)
is stable as long as the suite's grid is; suite and case tags become markers for ``-m``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from glmeval.pytest_plugin.options import DEFAULT_PATTERNS
from glmeval.pytest_plugin.state import GlmevalState, get_state
from glmeval.pytest_plugin.verdict import CaseError, CaseFailed, Verdict

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr, TracebackStyle

    from glmeval.records import Job
    from glmeval.suite import Suite


class GlmevalWarning(UserWarning):
    """Something about a suite a person should know (shown in pytest's warnings summary)."""


def matches(path: Path, config: pytest.Config) -> bool:
    patterns: list[str] = config.getini("glmeval_pattern") or DEFAULT_PATTERNS
    if any(fnmatch.fnmatch(path.name, p) for p in patterns if "/" not in p):
        return True
    try:
        rel = path.relative_to(config.rootpath).as_posix()
    except ValueError:
        rel = None
    if rel is not None and any(fnmatch.fnmatch(rel, p) for p in patterns if "/" in p):
        return True
    return path.resolve() in listed_suites(config)


def listed_suites(config: pytest.Config) -> set[Path]:
    listed: list[str] = config.getini("glmeval_suites") or []
    return {(config.rootpath / p).resolve() for p in listed}


def collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    """A :class:`SuiteFile` for a suite file this session should collect, else None."""
    if file_path.suffix not in (".yaml", ".yml") or not matches(file_path, parent.config):
        return None
    return SuiteFile.from_parent(parent, path=file_path)


_MARKER_CHARS = re.compile(r"[^\w-]")


def marker_name(tag: str) -> str:
    """A suite or case tag as a pytest marker name (``-m`` needs a plain word)."""
    name = _MARKER_CHARS.sub("_", tag.strip()) or "_"
    return name


def register_marker(state: GlmevalState, tag: str) -> str:
    """The marker for a suite or case tag, registered on first use so that
    ``--strict-markers`` accepts it and ``-m`` can select by it."""
    name = marker_name(tag)
    if name not in state.markers:
        state.markers.add(name)
        state.config.addinivalue_line("markers", f"{name}: glmeval suite or case tag {tag!r}")
    return name


class SuiteFile(pytest.File):
    """A glmeval suite file; its items are case × variant, repeats folded into one."""

    def collect(self) -> Iterator[pytest.Item]:
        from glmeval.plan import build_plan
        from glmeval.suite import load_suite
        from glmeval.suite.yamlsrc import load_yaml

        state = get_state(self.config)
        shown = _display_path(self.path, self.config)
        suite = load_suite(shown)
        plan = build_plan(suite, model_override=state.models or None)
        suite.path = self.path
        source = load_yaml(self.path)
        lines = {case.id: source.line(("cases", i)) for i, case in enumerate(suite.cases)}
        groups: dict[tuple[str, str], list[Job]] = {}
        for job in plan.jobs:
            groups.setdefault((job.case_id, job.variant_id), []).append(job)
        for warning in getattr(plan, "warnings", []):
            warnings.warn(GlmevalWarning(f"{shown}: {warning}"), stacklevel=1)
        skipped: dict[str, str] = dict(getattr(plan, "skipped", []))
        cases = {case.id: case for case in suite.cases}

        def make_item(case_id: str, label: str, jobs: list[Job]) -> SuiteItem:
            item: SuiteItem = SuiteItem.from_parent(
                self, name=_item_name(case_id, label), suite=suite, case_id=case_id,
                variant_id=label, jobs=jobs, line=lines.get(case_id),
            )
            case = cases.get(case_id)
            tags = jobs[0].tags if jobs else [*suite.tags, *(case.tags if case else [])]
            item.add_marker("glmeval")
            for tag in dict.fromkeys(tags):
                item.add_marker(register_marker(state, tag))
            return item

        for case in suite.cases:
            case_id = case.id or "case"
            if case_id in skipped:
                # Skipped cases show up as skipped tests, as pytest users expect.
                for label in plan.variants:
                    item = make_item(case_id, label, [])
                    item.add_marker(pytest.mark.skip(reason=skipped[case_id]))
                    yield item
                continue
            for (gcase, label), jobs in groups.items():
                if gcase == case_id:
                    yield make_item(case_id, label, jobs)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | TerminalRepr:  # type: ignore[override]  # Collector narrows Node's signature
        """A suite problem is the user's to fix: show file:line: message, not our stack."""
        from glmeval.errors import GlmevalError

        if isinstance(excinfo.value, GlmevalError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def _display_path(path: Path, config: pytest.Config) -> Path:
    """The suite path as users typed it (relative to where pytest runs) for error messages."""
    try:
        return Path(os.path.relpath(path, config.invocation_params.dir)) if path.is_absolute() else path
    except ValueError:  # another drive on Windows
        return path


def _item_name(case_id: str, variant_id: str) -> str:
    """``capital[glm-4-temperature=0.2]``: the variant label with spaces as dashes, so the
    id stays one shell word and is stable as long as the suite's grid is."""
    return f"{case_id}[{variant_id.replace(' ', '-')}]"


class SuiteItem(pytest.Item):
    """One case × variant; its repeats are ``jobs`` and it passes by the case's threshold."""

    def __init__(
        self,
        *,
        suite: Suite,
        case_id: str,
        variant_id: str,
        jobs: list[Job],
        line: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.case_id = case_id
        self.variant_id = variant_id
        self.jobs = jobs
        self.line = line
        self._verdict: Verdict | None = None

    def setup(self) -> None:
        """Run (or find) this item's results; a repeat without an answer is a setup error,
        which pytest reports as an *error*, not a failure."""
        state = get_state(self.config)
        state.prepare(self)
        if state.error is not None:
            return
        verdict = state.verdict(self)
        self._verdict = verdict
        self.user_properties.append(("glmeval_run", state.run_id))
        self.user_properties.append(("glmeval_passed", f"{verdict.passed}/{verdict.total}"))
        if verdict.outcome == "error":
            raise CaseError(verdict.text)

    def runtest(self) -> None:
        state = get_state(self.config)
        if state.error is not None:
            pytest.fail(state.error, pytrace=False)
        if self._verdict is not None and self._verdict.outcome == "fail":
            raise CaseFailed(self._verdict.text)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: TracebackStyle | None = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.line - 1 if self.line else None), self.name


def add_listed_suites(config: pytest.Config) -> None:
    """When pytest picks its own paths (testpaths or the current folder), also collect the
    suites listed in ``glmeval_suites`` that lie outside them; explicit paths on the command
    line always win, as they do for Python tests."""
    source = getattr(config, "args_source", None)  # pytest >= 7.4
    if source is None or source == pytest.Config.ArgsSource.ARGS:
        return
    listed = sorted(listed_suites(config))
    if not listed:
        return
    roots = [(config.invocation_params.dir / a.split("::")[0]).resolve() for a in config.args]
    for path in listed:
        if path.exists() and not any(path == r or r in path.parents for r in roots):
            config.args.append(str(path))


__all__ = [
    "GlmevalWarning", "SuiteFile", "SuiteItem", "collect_file", "matches", "listed_suites", "add_listed_suites",
    "marker_name", "register_marker",
]
