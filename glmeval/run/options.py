"""How a run is told to run: :class:`RunOptions`, the plain settings the CLI, the pytest plugin
and the ``glm`` fixture hand to the runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glmeval.checks import CheckRegistry
from glmeval.run.ratelimit import Budget, ModelLimit
from glmeval.run.retry import DEFAULT_RETRY_BUDGET

__all__ = ["RunOptions"]


@dataclass
class RunOptions:
    """How to run: limits, retries and the cache policy.

    ``cache``: ``"off"`` (default: always call, as a regression test should), ``"use"``
    (answer from the cache when the exact request was made before), or ``"replay"`` (answer
    only from the cache; a miss is an error and nothing is sent). Fresh answers are written to
    the cache in every mode. ``cache_namespace`` keeps the local server's answers apart in the
    cache (``"local"``; empty for the real API; by default the client's), so a simulated
    answer is never replayed as a real one.

    ``model_limits`` maps model names (``"*"`` = every model) to concurrency / RPM / TPM
    limits; ``budget`` caps spending (one :class:`Budget` may be shared by several runs).
    ``checks`` is the suite's check registry (its check files over the built-ins); ``None``
    means the built-ins and plugins alone.

    Retries (:mod:`glmeval.run.retry`): a job retries 429s, 5xx and network errors for up to
    ``retry_budget`` seconds of wall time from its first attempt; ``retries`` caps the number
    of retries on top (``None``: the budget alone decides). Backoff is exponential from
    ``backoff_base`` up to ``backoff_max`` seconds, with full jitter; a ``Retry-After`` wins.
    """

    concurrency: int = 8
    retries: int | None = None
    retry_budget: float = DEFAULT_RETRY_BUDGET
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    cache: str = "off"
    judge_model: str = "glm-4"
    embedding_model: str = "embedding-3"
    suite_dir: Path = field(default_factory=Path.cwd)
    prices: dict[str, dict[str, float]] | None = None
    seed: int | None = None
    model_limits: dict[str, ModelLimit] = field(default_factory=dict)
    budget: Budget | None = None
    cache_namespace: str = ""
    handle_sigint: bool = True
    notify: Callable[[str], None] | None = None
    checks: CheckRegistry | None = None
    provider_prices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def prices_for(self, provider: str) -> dict[str, Any] | None:
        """The price overrides for ``provider``'s answers: its own ``prices:`` over the suite's
        (the same model costs what each host charges)."""
        own = self.provider_prices.get(provider)
        if not own:
            return self.prices
        return {**(self.prices or {}), **own}
