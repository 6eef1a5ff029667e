"""What a run tells back: running totals for the progress display and how the run ended."""

from __future__ import annotations

from dataclasses import dataclass

from glmeval.records import ErrorInfo, ErrorKind, Result, RunStatus

__all__ = ["RunCounts", "RunOutcome", "abort_message"]


@dataclass
class RunCounts:
    """Running totals for progress display; ``tokens``/``cost`` include cached answers,
    ``grader_cost`` is what judge calls spent on top."""

    total: int = 0
    done: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    cached: int = 0
    retried: int = 0
    tokens: int = 0
    cost: float = 0.0
    grader_cost: float = 0.0

    def add(self, result: Result) -> None:
        self.done += 1
        status = result.status
        if status == "pass":
            self.passed += 1
        elif status == "fail":
            self.failed += 1
        else:
            self.errors += 1
        self.cached += int(result.completion.cached)
        self.retried += int(result.completion.attempts > 1)
        self.tokens += result.completion.total_tokens
        self.cost += result.cost or 0.0


@dataclass
class RunOutcome:
    """How a run ended. ``status``: complete, interrupted, aborted (bad key / no balance /
    unreachable) or budget (stopped before a job would pass ``--max-cost`` / ``--max-tokens``)."""

    run_id: str
    status: RunStatus
    counts: RunCounts
    abort_reason: str | None = None
    abort_kind: ErrorKind | None = None
    not_run: int = 0
    budget_message: str | None = None


def abort_message(info: ErrorInfo) -> str:
    """The one line a run stopped by a fatal error prints."""
    if info.kind == "auth":
        return f"authentication failed ({info}); check ZHIPUAI_API_KEY (or --base-url)"
    if info.kind == "balance":
        return f"the account has no balance left ({info}); recharge, or run with --local"
    if info.kind == "unreachable":
        return info.message
    return str(info)
