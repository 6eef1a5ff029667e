"""Seeded, repeatable fault injection for the local server.

A test that injects faults must get the same outcome every run, even though requests arrive
concurrently in a different order each time. So a fault is never drawn from a shared random
stream: it is decided from ``hash(seed, kind, request body, n)`` where ``n`` counts how many
times this exact body was seen before. The first attempt of a request and its retries
therefore each get their own, fixed, draw: a retried request can succeed, and the whole run
is reproducible.

Besides the probabilities there is an exact schedule, ``fail_first``/``fail_kind``: the first
N sightings of every body get one named fault, so "429 twice, then 200" is not a draw but a
certainty (a test can assert exactly three attempts).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from typing import Final

__all__ = [
    "BUSY_ERRORS",
    "FAULT_KINDS",
    "SCHEDULE_KINDS",
    "STREAM_CUTS",
    "FaultConfig",
    "FaultDecision",
    "decide_fault",
]

FAULT_KINDS: Final[tuple[str, ...]] = (
    "balance",
    "rate_limit",
    "server_error",
    "reset",
    "cut_stream",
    "content_filter",
    "model_busy",
    "concurrency",
    "cut_json",
)
"""Exclusive faults, in the order they are tried; ``slow`` combines with any of them.
(New kinds go at the end, so a seed keeps drawing the same faults for the older ones.)"""

BUSY_ERRORS: Final[dict[str, tuple[str, str]]] = {
    # HTTP 429, code 1305, the live message (zhipu-api.md §4.1 CAP-ERR; §4.2 "1305 已触发流量限制").
    "model_busy": ("1305", "该模型当前访问量过大，请您稍后再试"),
    # HTTP 429, code 1302 "并发数过高", as api.z.ai words it (zhipu-api-2026.md §5, kaitranntt/ccs#402).
    "concurrency": (
        "1302",
        "High concurrency usage of this API, please reduce concurrency or contact customer service to increase limits",
    ),
}
"""The 429 faults that carry no ``Retry-After`` (none was seen on ``/paas/v4``, 2026 §5)."""

STREAM_CUTS: Final[frozenset[str]] = frozenset({"cut_stream", "cut_json"})
"""Faults that break a stream; a non-stream request gets a connection reset instead."""

_RATE_FIELDS: Final[tuple[str, ...]] = FAULT_KINDS + ("slow",)
SCHEDULE_KINDS: Final[tuple[str, ...]] = _RATE_FIELDS
"""What ``fail_kind`` may name: any exclusive fault, or ``slow``."""
_TWO64: Final[float] = float(2**64)


@dataclass(frozen=True)
class FaultConfig:
    """Probabilities (0..1) of each fault per request, plus its parameters.

    - ``rate_limit``: HTTP 429, code 1302, with a ``Retry-After`` header of ``retry_after`` s
      (no header with ``retry_after=None``, CLI ``retry_after=none``: /api/paas/v4 sends none).
    - ``balance``: HTTP 429, code 1113 (no balance); the SDK retries it although it is pointless.
    - ``server_error``: HTTP 500, code 500. On async create, half of these become a task that
      ends in FAIL instead.
    - ``reset``: the connection is closed with a TCP RST and no response.
    - ``cut_stream``: a stream stops after a few chunks without its terminating chunk or
      ``[DONE]``; a non-stream request is reset instead.
    - ``content_filter``: non-stream 400 code 1301; stream ends with finish_reason
      ``sensitive``; an async task ends in FAIL.
    - ``model_busy``: HTTP 429, code 1305 "该模型当前访问量过大，请您稍后再试" (no Retry-After).
    - ``concurrency``: HTTP 429, code 1302 "High concurrency usage of this API..." (no Retry-After).
    - ``cut_json``: the 2026 api.z.ai defect (zhipu-api-2026.md §5): halfway through a stream
      one chunk's JSON is cut off and the next ``data:`` frame follows on the same line, then
      the connection closes; the SDK's ``json.loads`` fails mid-iteration. A non-stream
      request is reset instead.
    - ``slow``: ``slow_ms`` extra milliseconds (absolute, not scaled by ``speed``), on top of
      any other outcome.

    A deterministic schedule on top of (before) the probabilities:

    - ``fail_first``: the first ``fail_first`` times a given request body is seen (counted
      per distinct body, so a retry of the same request is its next sighting), it gets the
      fault ``fail_kind`` for certain; from the next sighting on the probabilities above
      apply (all 0 by default, so it then succeeds). ``FaultConfig(fail_first=2,
      fail_kind="rate_limit")`` is "429 twice, then 200" for every request.
    - ``fail_kind``: one of the kinds above (``rate_limit``, ``server_error``, ``reset``,
      ``cut_stream``, ``content_filter``, ``balance``, ``model_busy``, ``concurrency``,
      ``cut_json``) or ``slow``. A scheduled
      ``server_error`` on async create is always the HTTP 500 (never a FAIL task). Judge and
      embedding calls, which only ever get ``rate_limit`` / ``server_error`` / ``slow``, are
      not scheduled other kinds.

    ``Stats.reset()`` restarts the sighting counts, so the schedule starts over. In the CLI
    form: ``"fail_first=2,fail_kind=server_error"``.
    """

    rate_limit: float = 0.0
    server_error: float = 0.0
    cut_stream: float = 0.0
    reset: float = 0.0
    slow: float = 0.0
    content_filter: float = 0.0
    balance: float = 0.0
    model_busy: float = 0.0
    concurrency: float = 0.0
    cut_json: float = 0.0
    retry_after: float | None = 1.0
    slow_ms: float = 3000.0
    seed: int = 0
    fail_first: int = 0
    fail_kind: str = "rate_limit"

    def __post_init__(self) -> None:
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"fault rate {name}={value!r} must be a number between 0 and 1")
        if (self.retry_after is not None and self.retry_after < 0) or self.slow_ms < 0:
            raise ValueError("retry_after and slow_ms must not be negative")
        if isinstance(self.fail_first, bool) or not isinstance(self.fail_first, int) or self.fail_first < 0:
            raise ValueError(f"fail_first={self.fail_first!r} must be a whole number >= 0")
        if self.fail_kind not in SCHEDULE_KINDS:
            raise ValueError(f"fail_kind={self.fail_kind!r} must be one of {', '.join(SCHEDULE_KINDS)}")

    @property
    def active(self) -> bool:
        """Whether any fault can happen at all (lets the server skip hashing when not)."""
        return self.fail_first > 0 or any(getattr(self, name) > 0 for name in _RATE_FIELDS)

    @property
    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` value as sent: seconds, fractional when configured so; None: no header."""
        return None if self.retry_after is None else format(self.retry_after, "g")

    @classmethod
    def parse(cls, spec: str) -> FaultConfig:
        """Build from ``"rate_limit=0.1,cut_stream=0.05,seed=3"`` (the CLI form); the schedule
        is ``"fail_first=2,fail_kind=rate_limit"``."""
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, float | int | str | None] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in known:
                raise ValueError(f"bad fault setting {item!r}; expected one of {', '.join(known)} as name=value")
            if key == "fail_kind":
                values[key] = raw.strip().replace("-", "_")
                continue
            if key == "retry_after" and raw.strip().lower() == "none":
                values[key] = None
                continue
            try:
                values[key] = int(raw) if key in ("seed", "fail_first") else float(raw)
            except ValueError:
                what = "a whole number" if key in ("seed", "fail_first") else "a number"
                raise ValueError(f"bad fault value {item!r}: not {what}") from None
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What happens to one request: at most one exclusive fault, and maybe extra delay."""

    kind: str | None
    slow: bool
    roll: float

    @property
    def none(self) -> bool:
        """True when the request is served normally."""
        return self.kind is None and not self.slow


NO_FAULT: Final[FaultDecision] = FaultDecision(None, False, 1.0)


def _uniform(seed: int, kind: str, body_digest: bytes, nth: int) -> float:
    digest = hashlib.blake2b(b"%d|%s|%d|" % (seed, kind.encode(), nth) + body_digest, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _TWO64


def decide_fault(
    config: FaultConfig,
    body_digest: bytes,
    nth: int,
    allowed: frozenset[str] | None = None,
) -> FaultDecision:
    """Decide the fault for the ``nth`` (0-based) sighting of a body with this digest.

    ``allowed`` limits which exclusive kinds may apply (judge and embedding calls only get
    rate limits and server errors); ``None`` allows every kind. The first ``fail_first``
    sightings get ``fail_kind`` for certain (when allowed); later ones are drawn.
    """
    if nth < config.fail_first:
        scheduled = config.fail_kind
        if scheduled == "slow":
            return FaultDecision(None, True, 0.0)
        if allowed is None or scheduled in allowed:
            return FaultDecision(scheduled, False, 0.0)
    kind: str | None = None
    roll = 1.0
    for name in FAULT_KINDS:
        rate = getattr(config, name)
        if rate <= 0 or (allowed is not None and name not in allowed):
            continue
        u = _uniform(config.seed, name, body_digest, nth)
        if u < rate:
            kind, roll = name, u / rate
            break
    slow = config.slow > 0 and _uniform(config.seed, "slow", body_digest, nth) < config.slow
    return FaultDecision(kind, slow, roll)
