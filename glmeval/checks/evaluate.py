"""Running checks: the context a check sees, and the verdict of one check and of a whole job.

A check function takes ``(completion, spec, ctx)`` and returns a :class:`CheckResult`, a bool,
a float score in [0, 1], a ``(passed, reason)`` / ``(score, reason)`` tuple or a
``{pass, score, reason}`` dict; :func:`evaluate` normalises that and applies the options every
check shares (``not``, ``weight``, ``metric``, ``threshold``, ``on``). Checks never open a connection:
a model-graded check asks ``ctx.grader``, which the runner provides, so judge calls share the
client, cache, retries and rate limits.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from glmeval.checks.builtin import load_builtin
from glmeval.checks.context import CheckContext
from glmeval.checks.registry import unknown_type_message
from glmeval.records import CheckResult, CheckSpec, Completion

__all__ = ["evaluate", "evaluate_all"]


def _normalise(raw: Any, spec: CheckSpec) -> CheckResult:
    if isinstance(raw, CheckResult):
        return raw
    reason = ""
    if isinstance(raw, tuple):
        raw, reason = raw[0], str(raw[1]) if len(raw) > 1 else ""
    if isinstance(raw, bool):
        return CheckResult(spec.type, raw, 1.0 if raw else 0.0, reason or ("passed" if raw else "failed"))
    if isinstance(raw, (int, float)):
        score = max(0.0, min(1.0, float(raw)))
        threshold = spec.threshold if spec.threshold is not None else 0.5
        passed = score >= threshold
        return CheckResult(
            spec.type, passed, score, reason or f"score {score:.2f} {'>=' if passed else '<'} threshold {threshold:g}"
        )
    if isinstance(raw, dict):
        passed = bool(raw.get("pass", raw.get("passed", False)))
        given = raw.get("score")
        score = (1.0 if passed else 0.0) if given is None else max(0.0, min(1.0, float(given)))
        return CheckResult(spec.type, passed, score, str(raw.get("reason", "")) or ("passed" if passed else "failed"))
    raise TypeError(
        f"check {spec.type!r} returned {type(raw).__name__}; expected bool, a score, (bool, reason), "
        "{pass, score, reason} or a CheckResult"
    )


def _judged(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[Completion, CheckContext]:
    """What a check looks at: the completion as it is, or, for ``on: reasoning``, one whose
    text is the reasoning (and without tool calls, which belong to the answer). The context
    is copied with its ``subject`` set but shares ``grader_usage``, so judge spend still counts."""
    if spec.on == "answer":
        return completion, ctx
    return (
        dataclasses.replace(completion, text=completion.reasoning, tool_calls=[]),
        dataclasses.replace(ctx, subject=spec.on),
    )


def evaluate(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """Run one check and apply ``on``, ``not``, ``threshold``, ``weight`` and ``metric``.

    Order: ``on: reasoning`` hands a text check the reasoning as its text; the check runs; a
    ``threshold`` then decides pass/fail from the score (so ``threshold: 0.6`` on a similarity
    makes 0.62 pass, and on a plain check 1/0 decides as before); ``not`` then flips the verdict
    and the score. A check that raises, or that had no answer to look at, is an error: it fails,
    and ``not`` does not turn it into a pass. So is ``on: reasoning`` on a check that does not
    judge text (the suite loader refuses it; a spec built in code can still carry it).
    """
    registry = ctx.registry if ctx.registry is not None else load_builtin()
    definition = registry.get(spec.type)
    if definition is None:
        result = CheckResult(spec.type, False, 0.0, unknown_type_message(spec.type, registry), error=True)
    elif definition.needs_answer and completion.error is not None:
        result = CheckResult(spec.type, False, 0.0, f"no answer to check: {completion.error}", error=True)
    elif spec.on != "answer" and not definition.text_check:
        reason = f"on: {spec.on} applies to text checks only; {spec.type} does not judge the text"
        result = CheckResult(spec.type, False, 0.0, reason, error=True)
    else:
        try:
            judged, judged_ctx = _judged(completion, spec, ctx)
            result = _normalise(definition.fn(judged, spec, judged_ctx), spec)
            if spec.threshold is not None and not result.error:
                passed = result.score >= spec.threshold
                if passed != result.passed:
                    sign = ">=" if passed else "<"
                    result.reason = f"{result.reason}; score {result.score:.2f} {sign} threshold {spec.threshold:g}"
                result.passed = passed
        except Exception as exc:
            result = CheckResult(spec.type, False, 0.0, f"check raised {type(exc).__name__}: {exc}", error=True)
    if spec.negate and not result.error:
        result.passed = not result.passed
        result.score = 1.0 - result.score
        if result.passed:
            result.reason = f"not {spec.type}: the check failed, as required ({result.reason})"
        else:
            result.reason = f"not {spec.type}: expected the check to fail, but it passed ({result.reason})"
    result.type = spec.type
    result.weight = spec.weight
    result.metric = spec.metric
    result.label = spec.label()
    return result


def evaluate_all(
    completion: Completion, specs: list[CheckSpec], ctx: CheckContext, min_score: float | None = None
) -> tuple[list[CheckResult], bool, float]:
    """All checks of a job, then the job's verdict.

    The job passes when every check passes, or, when the case sets ``min-score``, when the
    weighted mean score reaches it. An error (no answer) never passes. With no checks at all
    an answer passes with score 1.
    """
    results = [evaluate(completion, spec, ctx) for spec in specs]
    total_weight = sum(r.weight for r in results)
    score = sum(r.score * r.weight for r in results) / total_weight if total_weight else 1.0
    if completion.error is not None:
        return results, False, 0.0
    passed = score >= min_score if min_score is not None else all(r.passed for r in results)
    return results, passed, score
