"""What a check may look at besides the answer, and what it may ask of the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from glmeval.checks.registry import CheckRegistry
from glmeval.records import CheckTarget, Completion, Job

__all__ = ["CheckContext", "Grader"]


class Grader(Protocol):
    """What a model-graded check may ask of the runner."""

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Completion: ...

    def embed(self, model: str, texts: list[str]) -> list[list[float]]: ...


@dataclass
class CheckContext:
    """Everything a check may look at besides the answer itself.

    ``prices`` are the suite's overrides of :mod:`glmeval.catalogue.prices` (``{model: {input, output}}``
    or ``{model: [input, output]}``, yuan per 1M tokens). ``cost`` is the answer's own cost as the runner computed it. Model-graded checks leave it
    alone and append each judge or embedding call to ``grader_usage`` as ``{check, kind, model,
    prompt_tokens, completion_tokens, cost}``, so the runner can count grading spend apart.
    ``registry`` resolves check names: the suite's own (its check files over the built-ins);
    ``None`` means the built-ins and plugins alone. ``subject`` is what the completion's text
    holds while a check runs: the answer, or the reasoning for a check with ``on: reasoning``;
    the built-in text checks name it in their reasons (``reasoning was '...'``).
    Use one context per job.
    """

    job: Job
    suite_dir: Path = field(default_factory=Path.cwd)
    prices: dict[str, Any] | None = None
    grader: Grader | None = None
    judge_model: str = "glm-4"
    embedding_model: str = "embedding-3"
    cost: float = 0.0
    grader_usage: list[dict[str, Any]] = field(default_factory=list)
    registry: CheckRegistry | None = None
    subject: CheckTarget = "answer"

    @property
    def vars(self) -> dict[str, Any]:
        return self.job.vars
