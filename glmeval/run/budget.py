"""What a job will probably cost, and a run's account with its ``--max-cost`` / ``--max-tokens``.

Token use is not known before a call, so the runner works with estimates: the prompt counted
locally (corrected by how this model's real prompt counts compared so far) plus the expected
answer. A budget holds each job's estimate while it runs and settles it with the actual usage
when it ends, so a run stops *before* the job that would pass a limit rather than after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from glmeval.catalogue import prices as price_table
from glmeval.catalogue.tokens import count_prompt_tokens
from glmeval.errors import GlmevalError
from glmeval.records import Completion, Job
from glmeval.run.ratelimit import Budget

__all__ = [
    "DEFAULT_COMPLETION_ESTIMATE",
    "BudgetAccount",
    "Estimator",
    "estimate_job",
    "preflight_budget",
    "prior_completion_tokens",
]

# The prior for a job's answer before any answer of its model was seen:
# min(max_tokens or DEFAULT_COMPLETION_ESTIMATE, 4 x prompt tokens + 64). Most eval answers are
# short, and a prior that assumes the worst (1,024 tokens) makes any reasonable --max-cost
# refuse the first job. Once answers arrive the runner uses their mean plus a fifth instead.
DEFAULT_COMPLETION_ESTIMATE = 512


def prior_completion_tokens(prompt_tokens: int, max_tokens: Any = None) -> int:
    """Completion tokens to expect before any answer was seen (see :data:`DEFAULT_COMPLETION_ESTIMATE`)."""
    cap = DEFAULT_COMPLETION_ESTIMATE
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0:
        cap = max_tokens
    return max(1, min(cap, 4 * prompt_tokens + 64))


def estimate_job(job: Job, prices: dict[str, dict[str, float]] | None = None) -> tuple[int, int, float]:
    """``(prompt tokens, completion tokens, yuan)`` a job is expected to cost before any answer
    was seen: the prompt counted locally and :func:`prior_completion_tokens`. It is what
    ``glmeval plan`` shows and what ``--max-cost``/``--max-tokens`` reserve for a model's first
    jobs, so the two agree."""
    prompt = count_prompt_tokens(job.messages, job.tools)
    completion = prior_completion_tokens(prompt, job.params.get("max_tokens"))
    return prompt, completion, price_table.cost(job.model, prompt, completion, prices)


class Estimator:
    """Per-model estimates that learn from the answers of the run so far.

    Model-graded checks (llm-rubric, similar) spend on top of the answer, and a budget counts
    that spend too; so once a case's answers were graded, its next jobs are expected to cost
    their mean grading plus a fifth as well, which keeps ``--max-cost`` from being overshot by
    the judge. Before any grading of a case was seen its jobs are estimated without it.

    Used by the coordinating thread alone (not thread-safe).
    """

    def __init__(
        self, prices: dict[str, dict[str, float]] | None = None, provider_prices: dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.prices = prices
        self.provider_prices = provider_prices or {}
        self._grading_seen: dict[str, tuple[int, float, int]] = {}  # case id: (grader tokens, yuan, jobs)
        self._completion_seen: dict[str, tuple[int, int]] = {}  # model: (completion tokens, answers)
        self._prompt_ratio: dict[str, tuple[int, int]] = {}  # model: (server's prompt tokens, local count)

    def estimate(self, job: Job) -> tuple[int, int, float]:
        """``(tokens, local prompt tokens, yuan)`` ``job`` will probably use: the prompt counted
        locally and corrected by this model's ratio so far, the completion from the mean of this
        model's answers so far plus a fifth (before any: :func:`prior_completion_tokens`)."""
        local = prompt = count_prompt_tokens(job.messages, job.tools)
        ratio = self._prompt_ratio.get(job.model)
        if ratio and ratio[1]:
            prompt = int(local * ratio[0] / ratio[1]) + 1
        cap = job.params.get("max_tokens")
        seen = self._completion_seen.get(job.model)
        if seen and seen[1]:
            completion = int(seen[0] / seen[1] * 1.2) + 1
            if isinstance(cap, int) and cap > 0:
                completion = min(completion, cap)
        else:
            completion = prior_completion_tokens(local, cap)
        own = self.provider_prices.get(job.provider)
        cost = price_table.cost(job.model, prompt, completion, {**(self.prices or {}), **own} if own else self.prices)
        graded = self._grading_seen.get(job.case_id)
        grading_tokens, grading_cost = 0, 0.0
        if graded and graded[2] and (graded[0] or graded[1]):
            grading_tokens = int(graded[0] / graded[2] * 1.2) + 1
            grading_cost = graded[1] / graded[2] * 1.2
        return prompt + completion + grading_tokens, local, cost + grading_cost

    def learn_grading(self, job: Job, grader_tokens: int, grader_cost: float) -> None:
        """Take what grading one answer of ``job``'s case cost into that case's estimate.

        A case nothing has graded yet keeps no entry (its estimate has no grading either way):
        most suites grade nothing, and an entry per case was 15 MB of a 100,000-case run. A
        zero after some grading is counted, so the mean stays that case's own."""
        seen = self._grading_seen.get(job.case_id)
        if seen is None:
            if not grader_tokens and not grader_cost:
                return
            seen = (0, 0.0, 0)
        self._grading_seen[job.case_id] = (seen[0] + grader_tokens, seen[1] + grader_cost, seen[2] + 1)

    def learn(self, model: str, completion: Completion, local_prompt: int) -> None:
        """Take a fresh answer of ``model`` into its estimates (``local_prompt``: the prompt as
        counted locally when the job was estimated, 0 if it never was)."""
        seen = self._completion_seen.get(model, (0, 0))
        self._completion_seen[model] = (seen[0] + completion.completion_tokens, seen[1] + 1)
        if completion.prompt_tokens and local_prompt:
            ratio = self._prompt_ratio.get(model, (0, 0))
            self._prompt_ratio[model] = (ratio[0] + completion.prompt_tokens, ratio[1] + local_prompt)


def preflight_budget(
    budget: Budget | None,
    jobs: Iterable[Job],
    estimate: Callable[[Job], tuple[int, int, float]],
    cached: Callable[[Job], bool],
) -> None:
    """Raise :class:`GlmevalError` when a budget cannot cover even the first job it would send
    (``cached``: answered from the cache, so it sends nothing). A budget another run already
    spent from is left to the runner, which stops before the first job that would pass it."""
    if budget is None or not budget.limited or budget.spent_cost or budget.spent_tokens or budget.reserved_tokens:
        return
    first = next((job for job in jobs if not cached(job)), None)
    if first is None:
        return
    tokens, _, cost = estimate(first)
    if budget.max_cost is not None and cost > budget.max_cost + 1e-12:
        raise GlmevalError(f"--max-cost {budget.max_cost:g} cannot cover one job of {first.model} (estimated ¥{cost:.4f})")
    if budget.max_tokens is not None and tokens > budget.max_tokens:
        raise GlmevalError(
            f"--max-tokens {budget.max_tokens:,} cannot cover one job of {first.model} (estimated {tokens:,} tokens)"
        )


class BudgetAccount:
    """One run's side of a :class:`Budget` (which several runs of one invocation may share).

    It counts the jobs of this run that hold a reservation (``holding``): while some do, a job
    that does not fit may still fit once they settle with what they really used, so the run
    waits instead of stopping. ``hit`` records that the budget stopped new jobs, ``next`` the
    estimate of the job it refused (for the message). Used by the coordinating thread alone.
    """

    def __init__(self, budget: Budget | None) -> None:
        self.budget = budget
        self.holding = 0
        self.hit = False
        self.next: tuple[int, float] | None = None

    @property
    def limited(self) -> bool:
        return self.budget is not None and self.budget.limited

    def reserve(self, tokens: int, cost: float) -> bool:
        """Hold a job's estimate before it starts; False (and ``next`` set) if it does not fit."""
        if self.budget is None:
            return True
        if not self.budget.reserve(cost, tokens):
            self.next = (tokens, cost)
            return False
        self.holding += 1
        return True

    def unreserve(self, tokens: int, cost: float) -> None:
        """Give back the estimate of a reserved job that will not run (the run stopped)."""
        if self.budget is not None:
            self.budget.settle(cost, tokens, 0.0, 0)
            self.holding -= 1

    def settle(
        self,
        reserved: tuple[int, float] | None,
        tokens: int,
        cost: float,
        grader_tokens: int,
        grader_cost: float,
    ) -> None:
        """A job ended: replace its reservation (``(tokens, cost)``, ``None`` if it held none)
        with what it used, and add what its judge calls used."""
        if self.budget is None:
            return
        if reserved is not None:
            self.budget.settle(reserved[1], reserved[0], cost, tokens)
            self.holding -= 1
        else:
            self.budget.add(cost, tokens)
        self.budget.add(grader_cost, grader_tokens)

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.budget.exhausted

    def message(self, done: int, planned: int, not_run: int) -> str | None:
        """The line a run stopped by its budget prints (``None`` without a budget)."""
        if self.budget is None:
            return None
        nxt = ""
        if self.next is not None:
            tokens, cost = self.next
            nxt = f" (the next job was estimated at {tokens:,} tokens" + (f", ¥{cost:.4f})" if cost else ")")
        return (
            f"budget reached after {done} of {planned} jobs: spent {self.budget.describe()}; "
            f"stopped before it would be exceeded{nxt}; {not_run} job{'' if not_run == 1 else 's'} not run"
        )
