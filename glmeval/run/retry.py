"""When a failed attempt is tried again, after how long, and when a job gives up.

The SDK's own retries are off: glmeval honours the server's ``Retry-After`` (both SDKs ignore
it) and stops the whole run on a bad key or an empty balance. Which kinds are worth another
attempt is the client's call (:attr:`CallError.should_retry`: 429, 5xx, timeouts, connection
errors, cut streams); this module decides how long a job keeps trying.

A job's retries are bounded by *time*, not by a count: a burst of 429s or a flaky minute of
5xx outlasts any small number of attempts (at 20% 429 and 10% other faults, five attempts
lose jobs every thousand), while a budget of wall time per job (:data:`DEFAULT_RETRY_BUDGET`,
``--retry-budget``) rides out the burst and still ends a job whose endpoint stays broken. An
explicit ``--retries N`` caps the attempts on top.
"""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from glmeval.records import ErrorInfo

if TYPE_CHECKING:  # the CLI reads the defaults here without loading httpx
    from glmeval.run.client import CallError

__all__ = [
    "DEFAULT_RETRY_BUDGET",
    "UNREACHED_ATTEMPTS",
    "Backoff",
    "RetryPolicy",
    "gave_up",
    "seconds_text",
]

DEFAULT_RETRY_BUDGET = 600.0
"""Seconds of wall time a job may spend retrying transient errors, from its first attempt."""

UNREACHED_ATTEMPTS = 5
"""Attempts a connection error gets while no call of the run has reached the server yet: an
endpoint that cannot be reached at all is reported at once, not after the whole budget."""


class Backoff:
    """Capped exponential backoff with full jitter, or the server's ``Retry-After`` when it gave one.

    Full jitter (a delay drawn uniformly from zero up to the exponential ceiling) spreads a
    crowd of retries that failed together. ``Retry-After`` is a floor the server set: it is
    honoured in full (the retry budget bounds it, not the ceiling), with a little jitter on
    top so the crowd does not all arrive in the instant the server named. ``seed`` makes the
    delays reproducible for tests. Thread-safe: the workers and the judge calls share one.
    """

    def __init__(self, base: float, ceiling: float, seed: int | None = None) -> None:
        self.base = base
        self.ceiling = ceiling
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        with self._lock:
            if retry_after is not None:
                return retry_after + self._rng.uniform(0, min(1.0, 0.1 * retry_after + 0.01))
            ceiling = min(self.base * 2 ** min(attempt - 1, 62), self.ceiling)
            return self._rng.uniform(0, ceiling)


class RetryPolicy:
    """Whether a failed attempt gets another one, and after what delay.

    ``budget``: seconds of wall time per job, counted from its first attempt (queueing for a
    slot between attempts included: that is time the user waits too). ``retries``: an upper
    bound on retries (``None``: only the budget decides).
    """

    def __init__(self, backoff: Backoff, budget: float = DEFAULT_RETRY_BUDGET, retries: int | None = None) -> None:
        self.backoff = backoff
        self.budget = budget
        self.retries = retries

    def delay(
        self, exc: CallError, attempts: int, elapsed: float, reached: bool = True, silent: float = 0.0
    ) -> float | None:
        """Seconds to wait before attempt ``attempts + 1``; ``None`` when the job gives up.

        ``elapsed``: seconds since the job's first attempt began; ``reached``: whether any
        call of the run got an answer yet (see :data:`UNREACHED_ATTEMPTS`); ``silent``:
        seconds since any call of the run last got an answer. A wait that would end past the
        budget is cut to what is left, for one last attempt; a ``Retry-After`` past the budget
        ends the job now (sending before it would only earn another 429). When the whole API
        has answered nothing for a budget's length, jobs stop retrying: an outage then costs
        the run one budget, not one budget per job in turn.
        """
        if not exc.should_retry:
            return None
        if silent > self.budget:
            return None
        if self.retries is not None and attempts > self.retries:
            return None
        if not reached and exc.info.kind == "connection" and attempts >= UNREACHED_ATTEMPTS:
            return None
        left = self.budget - elapsed
        if left <= 0 or (exc.retry_after is not None and exc.retry_after > left):
            return None
        return min(self.backoff.delay(attempts, exc.retry_after), left)

    def final_error(self, exc: CallError, attempts: int, elapsed: float, silent: float = 0.0) -> ErrorInfo:
        """The error a job ends with when :meth:`delay` said no: with its attempts and time
        when it was retried or transient (see :func:`gave_up`); a first-attempt 400 as is."""
        if attempts <= 1 and not exc.should_retry:
            return exc.info
        why = self.why_stopped(exc, attempts, elapsed, silent) if exc.should_retry else None
        return gave_up(exc.info, attempts, elapsed, why)

    def why_stopped(self, exc: CallError, attempts: int, elapsed: float, silent: float = 0.0) -> str:
        """What ended the retries, for the error line: the budget, ``Retry-After``, ``--retries``
        or an API that has answered no call for a budget's length."""
        if silent > self.budget and elapsed < self.budget:
            return f"no call of the run got an answer for {seconds_text(silent)}"
        if self.retries is not None and attempts > self.retries:
            return f"--retries {self.retries}"
        if exc.retry_after is not None and exc.retry_after > self.budget - elapsed:
            return f"the server asked to wait {seconds_text(exc.retry_after)}, past the {seconds_text(self.budget)} retry budget"
        return f"retry budget {seconds_text(self.budget)}"


def gave_up(info: ErrorInfo, attempts: int, seconds: float, why: str | None) -> ErrorInfo:
    """``info`` with how many attempts were made over how long; ``why`` (set when the error
    was transient and the retries ran out) adds what stopped them and that ``--resume`` runs
    the job again, since another try later may well succeed."""
    tried = f"{attempts} attempt{'s' if attempts != 1 else ''} in {seconds_text(seconds)}"
    if why is None:
        return replace(info, message=f"{info.message} ({tried})")
    return replace(info, message=f"{info.message} (gave up after {tried}, {why}; glmeval run --resume runs it again)")


def seconds_text(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``9m58s``: short enough for an error line."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if rest else f"{minutes} min"
