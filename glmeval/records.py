"""Plain records passed between the stages: suite -> plan -> run -> check -> store -> report.

Every stage takes and returns these dataclasses and nothing richer, so a stage can be tested,
replaced or run in another process (pytest-xdist workers) without dragging clients along.
They convert to and from plain dicts (``to_dict``/``from_dict``) because the store keeps them
as JSON and the cache replays them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["sync", "stream", "async", "batch"]
# A request's thinking state: "auto" is glm-4.6's default, where the model decides.
Thinking = Literal["on", "off", "auto"]
THINKING_STATES: tuple[Thinking, ...] = ("on", "off", "auto")
"""How a call is made: one response, a server-sent event stream, an async task polled for, or a
line of a Batch API file (half price, answered within the batch's window: :mod:`glmeval.run.batch`)."""
MODES: tuple[Mode, ...] = ("sync", "stream", "async", "batch")

ResultStatus = Literal["pass", "fail", "error"]
"""A job's verdict: its checks passed, failed, or there was no answer to check."""

RunStatus = Literal["running", "complete", "interrupted", "aborted", "budget"]
"""A stored run's state: ``running`` until the runner stores how it ended: ``complete``,
``interrupted`` (Ctrl-C or a stop before every job had a result), ``aborted`` (a bad key, an
empty balance or an unreachable server stopped it) or ``budget`` (stopped before a job would
pass ``--max-cost`` / ``--max-tokens``). A run stored as ``running`` whose lease holder is
gone (killed outright) reads as ``interrupted`` too (:func:`glmeval.store.lease.effective_status`)."""

ErrorKind = Literal[
    "auth",
    "balance",
    "rate_limit",
    "server",
    "bad_request",
    "content_filter",
    "timeout",
    "connection",
    "stream_cut",
    "task_failed",
    "replay_miss",
    "cancelled",
    "unreachable",
    "unknown",
]
"""Why a call produced no answer. The client classifies what the endpoint did (``auth`` to
``task_failed``, else ``unknown``); the runner adds ``replay_miss`` (``--replay`` and no cached answer),
``cancelled`` (the run stopped first), ``unreachable`` (no call ever got through) and
``unknown`` for an internal error. A budget stop is a run status, not an
error: the jobs it keeps from starting get no result at all."""


CheckTarget = Literal["answer", "reasoning"]
"""What a text check judges: the answer (``Completion.text``) or a thinking model's reasoning."""
CHECK_TARGETS: tuple[CheckTarget, ...] = ("answer", "reasoning")


@dataclass(frozen=True)
class CheckSpec:
    """One check as the suite states it, already normalised.

    ``args`` holds the check's own arguments (``value`` for the one-argument shorthand
    ``- contains: 北京``); the common options every check takes live in their own fields.
    ``on`` points a text check at the reasoning instead of the answer; it is left out of
    ``to_dict`` and the label while it is the default, so specs stored before it existed
    read back equal and keep their labels.
    """

    type: str
    args: dict[str, Any] = field(default_factory=dict)
    negate: bool = False
    weight: float = 1.0
    metric: str | None = None
    threshold: float | None = None
    line: int | None = None
    on: CheckTarget = "answer"

    @property
    def value(self) -> Any:
        return self.args.get("value")

    def label(self) -> str:
        """A short human name for reports: ``contains 北京``, ``not regex ^\\d+$``,
        ``contains 北京 on reasoning``."""
        if self.metric:
            return self.metric
        value = self.args.get("value")
        shown = "" if value is None else f" {value}" if not isinstance(value, (dict, list)) else f" {value!r}"
        text = f"{'not ' if self.negate else ''}{self.type}{shown}"
        suffix = "" if self.on == "answer" else f" on {self.on}"
        limit = 60 - len(suffix)
        return (text if len(text) <= limit else text[: limit - 3] + "...") + suffix

    def to_dict(self) -> dict[str, Any]:
        data = _shallow(self)
        if self.on == "answer":
            del data["on"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckSpec:
        return cls(**{k: v for k, v in data.items() if k in _fields(cls)})


@dataclass(frozen=True)
class Job:
    """One fully rendered request: the unit the runner executes and the store keys results by.

    ``variant`` holds the grid axis values that distinguish this job's variant
    (model, prompt, mode, temperature...), ``variant_id`` a readable stable label of them.
    ``params`` are exactly the keyword arguments sent to ``chat.completions.create`` besides
    model and messages. ``cache_key`` hashes everything that determines the answer.
    ``threshold`` is the case's minimum pass rate across repeats (default: every repeat
    passes); ``min_score`` lets one answer pass on its weighted check score instead of
    requiring every check to pass. ``thinking`` is the thinking state the request runs with:
    what the suite asked for, else the model's default from the catalogue (``None`` for a model
    that does not think or is not in the catalogue), so it is recorded even when nothing is sent.
    """

    id: str
    suite: str
    case_id: str
    variant_id: str
    variant: dict[str, Any]
    repeat: int
    model: str
    mode: Mode
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    checks: list[CheckSpec]
    vars: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    threshold: float | None = None
    min_score: float | None = None
    cache_key: str = ""
    description: str | None = None
    thinking: Thinking | None = None
    provider: str = "zhipu"

    @property
    def limit_key(self) -> str:
        """What rate limits and concurrency caps are kept per: the model, and for a provider
        other than the default ``zhipu`` its name too (``zai/glm-4.7``): each host has its own
        account and its own limits."""
        return self.model if self.provider == "zhipu" else f"{self.provider}/{self.model}"

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        return self.params.get("tools")

    def to_dict(self) -> dict[str, Any]:
        data = _shallow(self)
        data["checks"] = [c.to_dict() for c in self.checks]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        data = {k: v for k, v in data.items() if k in _fields(cls)}
        data["checks"] = [CheckSpec.from_dict(c) for c in data.get("checks", [])]
        return cls(**data)


@dataclass
class ToolCall:
    """A function call the model asked for; ``arguments`` is the JSON string as sent on the wire."""

    name: str
    arguments: str
    id: str | None = None
    type: str = "function"

    def parsed_arguments(self) -> Any:
        import json

        return json.loads(self.arguments) if self.arguments else {}


@dataclass
class ErrorInfo:
    """Why a call produced no answer; ``kind`` is one of :data:`ErrorKind`, which the retry
    policy acts on (retry, give up on the job, or stop the run)."""

    kind: ErrorKind
    message: str
    status: int | None = None
    code: str | None = None

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else self.kind
        code = f" code {self.code}" if self.code else ""
        return f"{where}{code}: {self.message}"


@dataclass
class Completion:
    """What one call produced, success or failure, with the timing that was measured.

    ``latency_ms`` is the duration of the attempt that produced the answer; ``queue_ms`` the
    time waiting for a concurrency or rate-limit slot and ``retry_ms`` the time spent in failed
    attempts and backoff, so a rate-limited run does not look like a slow model.

    ``text`` is the answer alone; a thinking model's ``reasoning`` (``reasoning_content`` on the
    wire) is kept apart, with ``reasoning_tokens`` from ``usage.completion_tokens_details``
    (part of ``completion_tokens``), or estimated from the text when the API gives none
    (``reasoning_estimated``). ``ttft_ms`` is the time to the first *answer* token (content or a
    tool call); ``ttfr_ms`` the time to the first reasoning token (streams only).
    ``cached_tokens`` is ``usage.prompt_tokens_details.cached_tokens``; ``web_search`` the
    response's ``web_search`` results when the web_search tool was used.
    """

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    request_id: str | None = None
    model: str | None = None
    error: ErrorInfo | None = None
    attempts: int = 1
    cached: bool = False
    queue_ms: float = 0.0
    retry_ms: float = 0.0
    raw: dict[str, Any] | None = None
    reasoning: str = ""
    reasoning_tokens: int | None = None
    reasoning_estimated: bool = False
    ttfr_ms: float | None = None
    cached_tokens: int | None = None
    web_search: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        data = _shallow(self)
        data["tool_calls"] = [_shallow(t) for t in self.tool_calls]
        data["error"] = _shallow(self.error) if self.error is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Completion:
        data = {k: v for k, v in data.items() if k in _fields(cls)}
        data["tool_calls"] = [ToolCall(**t) for t in data.get("tool_calls") or []]
        if data.get("error"):
            data["error"] = ErrorInfo(**data["error"])
        return cls(**data)


@dataclass
class CheckResult:
    """The verdict of one check: pass/fail, a score in [0, 1] and a reason a person understands."""

    type: str
    passed: bool
    score: float
    reason: str
    metric: str | None = None
    weight: float = 1.0
    label: str | None = None
    error: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _shallow(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**{k: v for k, v in data.items() if k in _fields(cls)})


@dataclass
class Result:
    """A job, what it produced and how it was judged: the row the store keeps.

    ``cost`` is the answer's own (``None`` when the model's price is unknown: never a
    made-up ¥0); ``judge_tokens`` / ``judge_cost`` are what model-graded
    checks spent grading it, kept apart so a judge never inflates a model's cost."""

    job: Job
    completion: Completion
    checks: list[CheckResult]
    passed: bool
    score: float
    cost: float | None = 0.0
    judge_tokens: int = 0
    judge_cost: float = 0.0

    @property
    def status(self) -> ResultStatus:
        """``pass``, ``fail`` or ``error`` (no answer to judge)."""
        if self.completion.error is not None:
            return "error"
        return "pass" if self.passed else "fail"


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _fields(cls: type) -> set[str]:
    return set(_names(cls))


def _shallow(obj: Any) -> dict[str, Any]:
    """Fields as a dict without deep-copying nested values: ``dataclasses.asdict`` recursion
    was the largest CPU cost per stored result, and the dict is only serialised to JSON."""
    return {name: getattr(obj, name) for name in _names(type(obj))}
