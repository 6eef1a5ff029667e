"""How one test item (a case × variant, all its repeats) came out, and the text that says why.

A failed item's report is written for the person reading CI output: the checks that failed
with their reasons and an excerpt of the answer, repeats with the same story told once. The
``glm`` fixture uses the same :func:`excerpt` for ``glm.check`` failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from glmeval.sanitize import visible

if TYPE_CHECKING:
    import pytest

    from glmeval.records import Completion, Job, Result
    from glmeval.suite import Suite

EXCERPT_CHARS = 300
MAX_REPEATS_SHOWN = 3

Outcome = Literal["pass", "fail", "error"]


class CaseItem(Protocol):
    """What batching and judging need of a collected item (:class:`~glmeval.pytest_plugin.collect.SuiteItem`)."""

    suite: Suite
    case_id: str
    variant_id: str
    jobs: list[Job]
    session: pytest.Session


@dataclass
class Verdict:
    """How one item came out: ``pass``, ``fail`` or ``error``."""

    outcome: Outcome
    text: str = ""
    passed: int = 0
    total: int = 0


class CaseFailed(Exception):
    """A case × variant whose checks did not pass: shown as its text, without a traceback."""


class CaseError(Exception):
    """A case × variant with repeats that got no answer (rate limit exhausted, timeout, HTTP
    error). Raised during setup so pytest counts it as an *error*, not a failure; its report
    is just the text (see the plugin's ``pytest_runtest_makereport``)."""


def judge(item: CaseItem, results: dict[str, Result], missing: dict[str, str]) -> Verdict:
    """Aggregate the item's repeats by the case's threshold.

    A repeat without an answer (rate limit exhausted, timeout, HTTP error) counts as not
    passed; if the passes still reach the threshold the item passes, otherwise any such
    repeat makes the item an *error* (nothing to judge) rather than a failure. ``missing``
    says why a job has no result at all.
    """
    total = len(item.jobs)
    found = [results.get(j.id) for j in item.jobs]
    passed = sum(1 for r in found if r is not None and r.status == "pass")
    threshold = item.jobs[0].threshold if item.jobs else None
    needed = total if threshold is None else math.ceil(threshold * total - 1e-9)
    if passed >= needed:
        return Verdict("pass", passed=passed, total=total)
    errored = [(j, r) for j, r in zip(item.jobs, found) if r is None or r.status == "error"]
    rule = "every repeat must pass" if threshold is None else f"threshold {threshold:g} needs {needed}"
    head = f"{item.case_id} [{item.variant_id}]"
    if errored:
        lines = [f"{head}: {len(errored)} of {total} repeat(s) got no answer ({passed} passed; {rule})"]
        reasons: dict[str, list[int]] = {}
        for job, result in errored:
            if result is None:
                why = missing.get(job.id, "no result")
            else:
                attempts = result.completion.attempts
                why = f"{result.completion.error}" + (f" (after {attempts} attempts)" if attempts > 1 else "")
            reasons.setdefault(why, []).append(job.repeat + 1)
        for why, repeats in reasons.items():
            which = "repeat" if len(repeats) == 1 else "repeats"
            lines.append(f"  {which} {', '.join(map(str, repeats))}: {why}" if total > 1 else f"  {why}")
        return Verdict("error", "\n".join(lines), passed, total)
    failures = [r for r in found if r is not None and r.status == "fail"]
    names = list(dict.fromkeys(c.label or c.type for r in failures for c in r.checks if not c.passed))
    what = f"failed: {', '.join(names)}" if names else "score below min-score"
    if total > 1:
        lines = [f"{head}: {passed} of {total} repeats passed ({rule}); {what}"]
    else:
        lines = [f"{head}: {what}"]
    lines.extend(describe_failures(failures, total))
    return Verdict("fail", "\n".join(lines), passed, total)


def excerpt(completion: Completion, limit: int = EXCERPT_CHARS) -> str:
    """The answer as a reader needs it in a failure: text (cut), then any tool calls; what
    the model wrote shows its control and bidi characters escaped (``repr`` does that for the
    text), so a failure never drives the terminal."""
    text = completion.text or ""
    shown = repr(text if len(text) <= limit else text[:limit] + "…")
    parts = [f"answer: {shown}" if text or not completion.tool_calls else ""]
    for call in completion.tool_calls:
        parts.append(visible(f"tool call: {call.name}({call.arguments})"))
    return "\n".join(p for p in parts if p)


def describe_failures(results: list[Result], total: int) -> list[str]:
    """Failed checks with reasons and the answer, repeats with the same story told once."""
    groups: dict[tuple[Any, ...], list[Result]] = {}
    for result in results:
        failed = tuple((c.label or c.type, c.reason) for c in result.checks if not c.passed)
        groups.setdefault((failed, result.completion.text, result.score), []).append(result)
    lines: list[str] = []
    for shown, ((failed, _text, score), members) in enumerate(groups.items()):
        if shown >= MAX_REPEATS_SHOWN:
            rest = sum(len(m) for m in list(groups.values())[MAX_REPEATS_SHOWN:])
            lines.append(f"... and {rest} more failing repeat(s)")
            break
        repeats = ", ".join(str(r.job.repeat + 1) for r in members)
        label = f"repeat {repeats}" if len(members) == 1 else f"repeats {repeats} (same answer)"
        indent = "  " if total > 1 else ""
        if total > 1:
            lines.append(f"{label}:")
        if failed:
            for name, reason in failed:
                lines.append(visible(f"{indent}FAILED {name}: {reason}"))
        else:
            min_score = members[0].job.min_score
            lines.append(f"{indent}score {score:.2f} is below min-score {min_score}")
        for line in excerpt(members[0].completion).splitlines():
            lines.append(f"{indent}{line}")
    return lines


__all__ = [
    "CaseItem", "Verdict", "Outcome", "CaseFailed", "CaseError", "judge", "excerpt", "describe_failures",
    "EXCERPT_CHARS", "MAX_REPEATS_SHOWN",
]
