"""Checks on what a call cost: latency, time to first token, tokens, money.

They look at measurements rather than at the text, so they also run on a call that failed
(``needs_answer=False``): a timeout still has a latency worth reporting. An answer replayed
from the cache keeps the timing measured when it was recorded; the timing checks pass it and
say so rather than judge a number that was not measured now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glmeval.catalogue import prices
from glmeval.checks.args import number_problem, unknown_args
from glmeval.checks.context import CheckContext
from glmeval.checks.registry import register
from glmeval.records import CheckSpec, Completion

_EXAMPLES = {
    "max-latency-ms": "max-latency-ms: 10000",
    "max-ttft-ms": "max-ttft-ms: 800",
    "max-completion-tokens": "max-completion-tokens: 300",
    "max-total-tokens": "max-total-tokens: 2000",
    "max-cost": "max-cost: 0.01",
}


def _limit(spec: CheckSpec) -> float:
    value = spec.args.get("value")
    if value is None or isinstance(value, bool):
        raise ValueError(f"{spec.type} needs a number, e.g. `{spec.type}: 1000`")
    return float(value)


def _validate_limit(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    """A limit is a number >= 0 (whole for token counts)."""
    problems = unknown_args(spec, ("value",))
    example = _EXAMPLES.get(spec.type, f"{spec.type}: 1000")
    value = spec.args.get("value")
    if value is None:
        return problems + [f"needs a number, e.g. `{example}`"]
    problem = number_problem(value, "value", whole=spec.type.endswith("-tokens"), example=example)
    return problems + ([problem] if problem else [])


@register("max-latency-ms", needs_answer=False, validate=_validate_limit, text_check=False)
def max_latency_ms(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The call took at most N milliseconds (the attempt that answered, not queueing or retries)."""
    limit = _limit(spec)
    if completion.latency_ms is None:
        return False, "no latency was measured"
    if completion.cached:
        return True, f"answer replayed from cache; stored latency {completion.latency_ms:.0f} ms not re-measured"
    ok = completion.latency_ms <= limit
    return ok, f"latency {completion.latency_ms:.0f} ms {'<=' if ok else '>'} {limit:g} ms"


@register("max-ttft-ms", needs_answer=False, validate=_validate_limit, text_check=False)
def max_ttft_ms(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The first token arrived within N milliseconds (measured in stream mode only)."""
    limit = _limit(spec)
    if completion.ttft_ms is None:
        if ctx.job.mode != "stream":
            return True, f"time to first token is measured only in stream mode; not applicable to {ctx.job.mode} mode"
        return False, "no time to first token was measured (the stream produced no content)"
    if completion.cached:
        return True, f"answer replayed from cache; stored TTFT {completion.ttft_ms:.0f} ms not re-measured"
    ok = completion.ttft_ms <= limit
    return ok, f"time to first token {completion.ttft_ms:.0f} ms {'<=' if ok else '>'} {limit:g} ms"


@register("max-completion-tokens", needs_answer=False, validate=_validate_limit, text_check=False)
def max_completion_tokens(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer used at most N completion tokens (as the API reported usage)."""
    limit = _limit(spec)
    ok = completion.completion_tokens <= limit
    return ok, f"completion tokens {completion.completion_tokens} {'<=' if ok else '>'} {limit:g}"


@register("max-total-tokens", needs_answer=False, validate=_validate_limit, text_check=False)
def max_total_tokens(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """Prompt plus completion used at most N tokens (as the API reported usage)."""
    limit = _limit(spec)
    total = completion.total_tokens or completion.prompt_tokens + completion.completion_tokens
    ok = total <= limit
    return ok, (
        f"total tokens {total} ({completion.prompt_tokens} prompt + {completion.completion_tokens} completion) "
        f"{'<=' if ok else '>'} {limit:g}"
    )


@register("max-cost", needs_answer=False, validate=_validate_limit, text_check=False)
def max_cost(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The call cost at most N yuan, by glmeval's price table or the suite's prices."""
    limit = _limit(spec)
    model = ctx.job.model or completion.model or ""
    price = prices.price_for(model, ctx.prices, completion.prompt_tokens, completion.completion_tokens)
    if price is None:
        return True, f"no price known for model {model!r}, counted as 0 yuan (add it under the suite's prices)"
    spent = prices.cost(model, completion.prompt_tokens, completion.completion_tokens, ctx.prices)
    ok = spent <= limit
    return ok, (
        f"cost {spent:.6g} yuan {'<=' if ok else '>'} {limit:g} yuan "
        f"({completion.prompt_tokens} prompt + {completion.completion_tokens} completion tokens "
        f"at {price[0]:g}/{price[1]:g} yuan per 1M)"
    )
