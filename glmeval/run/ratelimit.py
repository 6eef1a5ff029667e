"""Limits on pace and spend: concurrency (global and per model), rate limits per model in
requests and tokens per minute, and a run budget in yuan and tokens.

The runner's coordinating thread asks :meth:`Limiter.try_acquire` before each call and never
blocks, so a model that is held back by its own limit does not stall calls to other models.
Model-graded checks (judge calls made from worker threads) use the blocking
:meth:`Limiter.acquire`; they take precedence over new jobs, because they finish jobs that
have already been paid for.

Rate limits are token buckets refilled continuously at ``per_minute / 60`` per second and
holding at most one second's worth (:data:`BURST_SECONDS`), so a run never bursts above the
stated pace at start-up, as a bucket holding a whole minute would. Token use is not known
before a call, so a call takes an *estimate* (prompt tokens counted locally plus expected
completion tokens) and settles with the actual usage afterwards: the difference is given back,
or taken as debt that delays later calls.

On top of the configured limits, the in-flight limit of each (model, provider) *adapts*
(AIMD): a 429 halves it (not below 1), a run of successes as long as the limit grows it back
by one, never above the configured concurrency. A 429 from a call that was granted before
the last cut says nothing about the cut limit, so a burst of 429s halves once, not to 1.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

__all__ = [
    "BURST_SECONDS",
    "DEFAULT_PROVIDER",
    "Budget",
    "Lane",
    "Limiter",
    "ModelLimit",
    "Permit",
    "TokenBucket",
    "parse_model_values",
]

BURST_SECONDS = 1.0
"""How much of a per-minute allowance may be spent at once (one second's worth)."""

Clock = Callable[[], float]

DEFAULT_PROVIDER = "zhipu"
"""The provider of a job that names none (``Job.provider``'s default)."""


@dataclass(frozen=True)
class ModelLimit:
    """The limits of one model; ``None`` means unlimited (only the global concurrency applies)."""

    concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None

    def merged(self, other: ModelLimit) -> ModelLimit:
        """``self`` with the fields ``other`` sets (``other`` wins)."""
        return ModelLimit(
            other.concurrency if other.concurrency is not None else self.concurrency,
            other.rpm if other.rpm is not None else self.rpm,
            other.tpm if other.tpm is not None else self.tpm,
        )


class TokenBucket:
    """A bucket of ``per_minute`` units per minute that refills continuously.

    Not thread-safe on its own: :class:`Limiter` guards it with its lock.
    """

    def __init__(self, per_minute: float, clock: Clock = time.monotonic, burst_seconds: float = BURST_SECONDS) -> None:
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self._clock = clock
        self._stamp = clock()

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
            self._stamp = now

    def wait_for(self, amount: float, now: float | None = None) -> float:
        """Seconds until ``amount`` can be taken (0 = now).

        A request larger than the whole bucket goes through once the bucket is full and
        leaves it in debt, so no single call can be blocked forever.
        """
        now = self._clock() if now is None else now
        self._refill(now)
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        """Take ``amount`` (after :meth:`wait_for` said 0); the level may go below zero."""
        self.level -= amount

    def give_back(self, amount: float, now: float | None = None) -> None:
        """Return units (a refund of an over-estimate) or, with a negative amount, take more."""
        self._refill(self._clock() if now is None else now)
        self.level = min(self.capacity, self.level + amount)


@dataclass
class Permit:
    """The right to make one call: the slots it holds and the tokens it reserved."""

    model: str
    tokens: int
    granted_at: float
    provider: str = DEFAULT_PROVIDER


@dataclass
class Lane:
    """The adaptive in-flight limit of one (model, provider): ``limit`` of ``ceiling`` (the
    configured concurrency), the calls ``active`` in it, the successes in a row since the
    last change and when it was last cut. ``rate_limited`` counts its 429s."""

    model: str
    provider: str
    ceiling: int
    limit: int
    active: int = 0
    streak: int = 0
    cut_at: float = -math.inf
    rate_limited: int = 0

    @property
    def name(self) -> str:
        """``glm-4``, or ``glm-4@openrouter`` for another provider."""
        return self.model if self.provider == DEFAULT_PROVIDER else f"{self.model}@{self.provider}"

    def on_rate_limit(self, granted_at: float, now: float) -> None:
        """Halve, unless the call was granted before the last cut (it was sent at the old limit)."""
        self.rate_limited += 1
        self.streak = 0
        if granted_at >= self.cut_at and self.limit > 1:
            self.limit = max(1, self.limit // 2)
            self.cut_at = now

    def on_success(self) -> None:
        """One step back up after ``limit`` successes in a row: about one per round of calls."""
        if self.limit >= self.ceiling:
            return
        self.streak += 1
        if self.streak >= self.limit:
            self.limit += 1
            self.streak = 0


class _ModelState:
    __slots__ = ("limit", "active", "rpm", "tpm")

    def __init__(self, limit: ModelLimit, clock: Clock) -> None:
        self.limit = limit
        self.active = 0
        self.rpm = TokenBucket(limit.rpm, clock) if limit.rpm else None
        self.tpm = TokenBucket(limit.tpm, clock) if limit.tpm else None


class Limiter:
    """Global and per-model concurrency plus per-model RPM/TPM buckets, thread-safe.

    ``limits`` maps model names to :class:`ModelLimit`; the key ``"*"`` applies to every model
    not named (each model gets its own slots and buckets, a default is not shared).
    """

    def __init__(
        self,
        concurrency: int,
        limits: Mapping[str, ModelLimit] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.concurrency = max(1, int(concurrency))
        self._limits = dict(limits or {})
        self._default = self._limits.pop("*", ModelLimit())
        self._clock = clock
        self._models: dict[str, _ModelState] = {}
        self._active = 0
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._blocking_waiters = 0
        self._waiting: dict[str, int] = {}
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._cut = 0  # lanes below their ceiling: nothing to show while 0

    @property
    def active(self) -> int:
        """Calls holding a permit right now."""
        return self._active

    def limit_for(self, model: str) -> ModelLimit:
        """A model's limits; a provider's model (``zai/glm-4.7``, Job.limit_key) takes the
        model's own unless the provider's are named, in its own slots and buckets."""
        if model not in self._limits and "/" in model:
            model = model.split("/", 1)[1]
        return self._default.merged(self._limits[model]) if model in self._limits else self._default

    def _state(self, model: str) -> _ModelState:
        state = self._models.get(model)
        if state is None:
            state = self._models[model] = _ModelState(self.limit_for(model), self._clock)
        return state

    def _lane(self, model: str, provider: str) -> Lane:
        lane = self._lanes.get((model, provider))
        if lane is None:
            cap = self._state(model).limit.concurrency
            ceiling = min(cap or self.concurrency, self.concurrency)
            lane = self._lanes[(model, provider)] = Lane(model, provider, ceiling, ceiling)
        return lane

    def _try(self, model: str, tokens: int, now: float, provider: str) -> tuple[Permit | None, float | None]:
        if self._active >= self.concurrency:
            return None, None
        state = self._state(model)
        cap = state.limit.concurrency
        if cap is not None and state.active >= cap:
            return None, None
        lane = self._lane(model, provider)
        if lane.active >= lane.limit:
            return None, None
        wait = 0.0
        if state.rpm is not None:
            wait = max(wait, state.rpm.wait_for(1, now))
        if state.tpm is not None and tokens > 0:
            wait = max(wait, state.tpm.wait_for(tokens, now))
        if wait > 0:
            return None, wait
        if state.rpm is not None:
            state.rpm.take(1)
        if state.tpm is not None and tokens > 0:
            state.tpm.take(tokens)
        state.active += 1
        lane.active += 1
        self._active += 1
        return Permit(model, tokens, now, provider), None

    def try_acquire(
        self, model: str, tokens: int = 0, provider: str = DEFAULT_PROVIDER
    ) -> tuple[Permit | None, float | None]:
        """Take a permit now if every limit allows it; never blocks.

        Returns ``(permit, None)`` on success, otherwise ``(None, wait)`` where ``wait`` is
        the seconds until a rate bucket refills enough, or ``None`` when the call waits for a
        concurrency slot (which frees when a call ends; the adaptive limit of the model and
        ``provider`` counts as one). Blocking callers (judge calls) go first: while one waits,
        its model and one global slot are kept for it.
        """
        with self._lock:
            if self._waiting.get(model) or self._active + self._blocking_waiters >= self.concurrency:
                return None, None
            return self._try(model, tokens, self._clock(), provider)

    def acquire(
        self,
        model: str,
        tokens: int = 0,
        stop: threading.Event | None = None,
        timeout: float | None = None,
        provider: str = DEFAULT_PROVIDER,
    ) -> Permit | None:
        """Block until a permit is granted; ``None`` if ``stop`` is set or ``timeout`` passes."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._lock:
            self._blocking_waiters += 1
            self._waiting[model] = self._waiting.get(model, 0) + 1
            try:
                while True:
                    if stop is not None and stop.is_set():
                        return None
                    now = self._clock()
                    permit, wait = self._try(model, tokens, now, provider)
                    if permit is not None:
                        return permit
                    step = 0.1 if wait is None else min(wait, 0.1)
                    if deadline is not None:
                        if now >= deadline:
                            return None
                        step = min(step, deadline - now)
                    self._freed.wait(max(step, 0.001))
            finally:
                self._blocking_waiters -= 1
                self._waiting[model] -= 1

    def release(self, permit: Permit, actual_tokens: int | None = None, rate_limited: bool = False) -> None:
        """Free the permit's slots and settle its token estimate with the actual usage.

        ``actual_tokens=None`` (the call failed before any usage was known) refunds the whole
        token estimate: a rejected request is not charged against the per-minute tokens. The
        request itself stays counted against the requests-per-minute bucket. ``rate_limited``
        (a 429) cuts the adaptive limit; a call with usage (a success) may grow it back.
        """
        with self._lock:
            state = self._state(permit.model)
            state.active -= 1
            self._active -= 1
            lane = self._lane(permit.model, permit.provider)
            lane.active -= 1
            was_cut = lane.limit < lane.ceiling
            if rate_limited:
                lane.on_rate_limit(permit.granted_at, self._clock())
            elif actual_tokens is not None:
                lane.on_success()
            self._cut += (lane.limit < lane.ceiling) - was_cut
            if state.tpm is not None:
                used = 0 if actual_tokens is None else actual_tokens
                if used != permit.tokens:
                    state.tpm.give_back(permit.tokens - used)
            self._freed.notify_all()


    def cut_lanes(self) -> list[Lane]:
        """Copies of the lanes running below their configured concurrency after 429s."""
        if not self._cut:
            return []
        with self._lock:
            return [replace(lane) for lane in self._lanes.values() if lane.limit < lane.ceiling]

    def lane(self, model: str, provider: str = DEFAULT_PROVIDER) -> Lane:
        """A copy of the adaptive state of ``model`` at ``provider``."""
        with self._lock:
            return replace(self._lane(model, provider))


class Budget:
    """A spending cap for one ``glmeval run`` invocation (shared by all its suites).

    Before a job is sent, :meth:`reserve` holds its estimated cost and tokens; the job is
    refused when what was spent, plus what in-flight jobs hold, plus its own estimate would
    pass a limit. When the job ends, :meth:`settle` replaces the estimate with the actual
    usage. Judge calls are added with :meth:`add` as they happen. Thread-safe.
    """

    def __init__(self, max_cost: float | None = None, max_tokens: int | None = None) -> None:
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.spent_cost = 0.0
        self.spent_tokens = 0
        self.reserved_cost = 0.0
        self.reserved_tokens = 0
        self._lock = threading.Lock()

    @property
    def limited(self) -> bool:
        return self.max_cost is not None or self.max_tokens is not None

    def reserve(self, cost: float, tokens: int) -> bool:
        """Hold ``cost`` and ``tokens`` for a job about to start; False if that would pass a limit."""
        with self._lock:
            if self.max_cost is not None and self.spent_cost + self.reserved_cost + cost > self.max_cost + 1e-12:
                return False
            if self.max_tokens is not None and self.spent_tokens + self.reserved_tokens + tokens > self.max_tokens:
                return False
            self.reserved_cost += cost
            self.reserved_tokens += tokens
            return True

    def settle(self, reserved_cost: float, reserved_tokens: int, cost: float, tokens: int) -> None:
        """A reserved job ended: drop its reservation and count what it really used."""
        with self._lock:
            self.reserved_cost = max(0.0, self.reserved_cost - reserved_cost)
            self.reserved_tokens = max(0, self.reserved_tokens - reserved_tokens)
            self.spent_cost += cost
            self.spent_tokens += tokens

    def add(self, cost: float, tokens: int) -> None:
        """Count spending that had no reservation (judge calls)."""
        with self._lock:
            self.spent_cost += cost
            self.spent_tokens += tokens

    @property
    def exhausted(self) -> bool:
        """True once the actual spending reached a limit."""
        return (self.max_cost is not None and self.spent_cost >= self.max_cost) or (
            self.max_tokens is not None and self.spent_tokens >= self.max_tokens
        )

    def describe(self) -> str:
        """``¥0.0123 of ¥0.05, 1,234 of 2,000 tokens`` for the limits that are set."""
        parts = []
        if self.max_cost is not None:
            parts.append(f"¥{self.spent_cost:.4f} of ¥{self.max_cost:g}")
        if self.max_tokens is not None:
            parts.append(f"{self.spent_tokens:,} of {self.max_tokens:,} tokens")
        return ", ".join(parts) or "no limit"


def parse_model_values(items: tuple[str, ...] | list[str], what: str, integer: bool = False) -> dict[str, float]:
    """Parse ``glm-4=4`` items (a bare ``N`` means every model, key ``"*"``) into a dict.

    Raises ``ValueError`` with a message naming the flag (``what``) for anything malformed.
    """
    out: dict[str, float] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in str(item).split(","))):
            model, sep, raw = part.rpartition("=")
            model = model.strip() if sep else "*"
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{what}: bad value {part!r}; expected MODEL=N or N") from None
            if not math.isfinite(value) or value <= 0 or (integer and value != int(value)):
                kind = "a positive whole number" if integer else "a positive number"
                raise ValueError(f"{what}: {part!r} must be {kind}")
            if not model:
                raise ValueError(f"{what}: bad value {part!r}; expected MODEL=N or N")
            out[model] = int(value) if integer else value
    return out
