"""When a failed attempt is tried again, and after how long.

The SDK's own retries are off: glmeval counts attempts, honours the server's ``Retry-After``
and stops the whole run on a bad key or an empty balance. Which kinds are worth another
attempt is the client's call (:attr:`CallError.should_retry`); this module adds how many
attempts a run allows and how long it waits between them.
"""

from __future__ import annotations

import random
import threading

from glmeval.run.client import CallError

__all__ = ["Backoff", "may_retry"]


def may_retry(exc: CallError, attempts: int, retries: int) -> bool:
    """Whether a call that failed with ``exc`` on attempt ``attempts`` gets another one."""
    return exc.should_retry and attempts <= retries


class Backoff:
    """Exponential backoff with full jitter, or the server's ``Retry-After`` when it gave one.

    Full jitter (a delay drawn from the upper half of the exponential ceiling) spreads a crowd
    of retries that failed together; a little jitter on top of ``Retry-After`` keeps them from
    all arriving in the instant the server named. ``seed`` makes the delays reproducible for
    tests. Thread-safe: the coordinator and the workers' judge calls share one instance.
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
                return min(retry_after, self.ceiling) + self._rng.uniform(0, min(0.05, retry_after + 0.01))
            ceiling = min(self.base * 2 ** (attempt - 1), self.ceiling)
            return self._rng.uniform(ceiling / 2, ceiling)
