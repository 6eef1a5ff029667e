"""Checks on a thinking model's reasoning (``Completion.reasoning``), kept apart from the answer.

Text checks judge the answer alone, so a word the model only thought about never passes a
``contains``. These checks look at the reasoning itself: what it says, how many tokens it took,
or that there was none (thinking off, or ``reasoning_effort: none``). ``on: reasoning`` points
any other text check at the reasoning as well; these need no ``on`` and refuse one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glmeval.catalogue.tokens import count_tokens
from glmeval.checks.args import got, number_problem, unknown_args
from glmeval.checks.context import CheckContext
from glmeval.checks.registry import register
from glmeval.checks.text import validate_text_values
from glmeval.records import CheckSpec, Completion

__all__ = ["reasoning_token_count"]

_NONE_HINT = "thinking was off, or the model does not think"


def _excerpt(text: str, limit: int = 80) -> str:
    text = text.replace("\n", " ")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def reasoning_token_count(completion: Completion) -> tuple[int, bool]:
    """``(tokens, estimated)``: the API's reasoning tokens, else an estimate from the reasoning
    text (a record made before the client estimated it), else 0 when there is no reasoning."""
    if completion.reasoning_tokens is not None:
        return completion.reasoning_tokens, completion.reasoning_estimated
    if completion.reasoning.strip():
        return count_tokens(completion.reasoning), True
    return 0, False


def _values(spec: CheckSpec) -> list[str]:
    value: Any = spec.args.get("value", spec.args.get("values"))
    if value is None:
        raise ValueError(f"{spec.type} needs a value")
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


@register("reasoning-contains", validate=validate_text_values, text_check=False)
def reasoning_contains(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The reasoning (not the answer) contains the value (every value, when a list)."""
    values = _values(spec)
    ignore_case = bool(spec.args.get("ignore_case", spec.args.get("icase", False)))
    how = " (ignoring case)" if ignore_case else ""
    quoted = ", ".join(map(repr, values))
    if not completion.reasoning.strip():
        return False, f"expected the reasoning to contain {quoted}{how}; there is no reasoning ({_NONE_HINT})"
    text = completion.reasoning.casefold() if ignore_case else completion.reasoning
    missing = [v for v in values if (v.casefold() if ignore_case else v) not in text]
    if not missing:
        return True, f"reasoning contains {quoted}{how}"
    return False, (
        f"expected the reasoning to contain {', '.join(map(repr, missing))}{how}; "
        f"reasoning was {_excerpt(completion.reasoning)}"
    )


def _validate_max_reasoning_tokens(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value",))
    value = spec.args.get("value")
    if value is None:
        return problems + ["needs a number, e.g. `max-reasoning-tokens: 2000`"]
    problem = number_problem(value, "value", whole=True, example="max-reasoning-tokens: 2000")
    return problems + ([problem] if problem else [])


@register("max-reasoning-tokens", validate=_validate_max_reasoning_tokens, text_check=False)
def max_reasoning_tokens(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The model reasoned in at most N tokens (usage's reasoning_tokens, else estimated from the text)."""
    value = spec.args.get("value")
    if value is None or isinstance(value, bool):
        raise ValueError("max-reasoning-tokens needs a number, e.g. `max-reasoning-tokens: 2000`")
    limit = int(value)
    tokens, estimated = reasoning_token_count(completion)
    ok = tokens <= limit
    how = " (estimated from the reasoning text; the API reported none)" if estimated else ""
    return ok, f"reasoning tokens {tokens} {'<=' if ok else '>'} {limit}{how}"


def _validate_no_reasoning(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value",))
    if spec.args.get("value") not in (None, True):
        problems.append(f"no-reasoning takes no value; write `- no-reasoning`; {got(spec.args['value'])}")
    return problems


@register("no-reasoning", validate=_validate_no_reasoning, text_check=False)
def no_reasoning(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The model did not reason: no reasoning text, and no reasoning tokens in usage."""
    text = completion.reasoning.strip()
    tokens = completion.reasoning_tokens or 0
    if not text and not tokens:
        return True, "no reasoning"
    if not text:
        return False, f"expected no reasoning; the reasoning text is empty but usage reports {tokens} reasoning tokens"
    counted, estimated = reasoning_token_count(completion)
    how = " (estimated)" if estimated else ""
    return False, f"expected no reasoning; the model reasoned for {counted} tokens{how}: {_excerpt(text)}"
