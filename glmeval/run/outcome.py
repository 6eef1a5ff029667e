"""What a run tells back: running totals for the progress display and how the run ended."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from glmeval.records import ErrorInfo, ErrorKind, Result, RunStatus
from glmeval.run.client import RETRYABLE_KINDS
from glmeval.run.ratelimit import DEFAULT_PROVIDER, Lane

__all__ = ["RunCounts", "RunOutcome", "abort_message", "pace_line", "unanswered_line"]


@dataclass
class RunCounts:
    """Running totals for progress display; ``tokens``/``cost`` include cached answers,
    ``grader_cost`` is what judge calls spent on top. ``pace`` is :func:`pace_line` as of the
    latest result ("" while nothing is held back). ``unanswered``: errors of a transient kind
    (429, 5xx, network) that outlasted their retries, which a resume may well answer."""

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
    pace: str = ""
    unanswered: int = 0

    def add(self, result: Result) -> None:
        self.done += 1
        status = result.status
        if status == "pass":
            self.passed += 1
        elif status == "fail":
            self.failed += 1
        else:
            self.errors += 1
            error = result.completion.error
            self.unanswered += int(error is not None and error.kind in RETRYABLE_KINDS)
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


def pace_line(cut: list[Lane], backing_off: MutableMapping[tuple[str, str], float], now: float) -> str:
    """What holds a run back, one part per (model, provider): ``glm-4: 8→4 in flight (429s),
    backing off 3.2s``. ``cut`` are the lanes whose limit 429s cut; ``backing_off`` maps lanes
    to when their last scheduled retry is due (entries as good as due are dropped from it)."""
    notes: dict[tuple[str, str], str] = {}
    for lane in cut:
        notes[(lane.model, lane.provider)] = f"{lane.name}: {lane.ceiling}→{lane.limit} in flight (429s)"
    for key, due in list(backing_off.items()):
        if due - now < 0.05:  # as good as due: "backing off 0.0s" says nothing
            del backing_off[key]
            continue
        if key in notes:
            notes[key] += f", backing off {due - now:.1f}s"
        else:
            name = key[0] if key[1] == DEFAULT_PROVIDER else f"{key[0]}@{key[1]}"
            notes[key] = f"{name}: backing off {due - now:.1f}s"
    return "; ".join(notes.values())


def unanswered_line(outcome: RunOutcome, suite_path: Path | str | None) -> str | None:
    """After a run whose transient errors outlasted their retries: how many, and the command
    that runs them again (``--resume`` runs every job without an answer); None otherwise."""
    n = outcome.counts.unanswered
    if not n:
        return None
    jobs = "1 job" if n == 1 else f"{n} jobs"
    again = f"glmeval run --resume {outcome.run_id} {suite_path or ''}".rstrip()
    return f"{jobs} ended without an answer (429, 5xx or network errors outlasted the retries); finish the run with `{again}`"


def abort_message(info: ErrorInfo) -> str:
    """The one line a run stopped by a fatal error prints."""
    if info.kind == "auth":
        return f"authentication failed ({info}); check ZHIPUAI_API_KEY (or --base-url)"
    if info.kind == "balance":
        return f"the account has no balance left ({info}); recharge, or run with --local"
    if info.kind == "unreachable":
        return info.message
    return str(info)
