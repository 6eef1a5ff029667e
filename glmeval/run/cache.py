"""The response cache as a run sees it: keys kept apart per endpoint, and when to read it.

Every fresh successful answer is written whatever the mode (cheap, and it makes ``--replay``
of any past run possible). *Reading* it is opt-in: ``off`` (the default: always call, as a
regression test should), ``use`` (answer from the cache when the exact request was made
before) or ``replay`` (answer only from the cache; a miss is an error and nothing is sent),
because silently re-used answers make a regression test test nothing. Judge replies and
embeddings are read in every mode: their key holds the rubric and the answer, so a hit is the
same verdict on the same text, never a stale one.
"""

from __future__ import annotations

import hashlib
import threading

from glmeval.errors import GlmevalError
from glmeval.records import Completion, ErrorInfo, Job
from glmeval.store import Store

__all__ = ["ResponseCache"]


class ResponseCache:
    """The store's cache table for one run, namespaced by its target and thread-safe.

    ``namespace`` keeps the local server's answers (``"local"``) and any other endpoint's
    (``"url:..."``) apart from the real API's (``""``), so a simulated answer is never replayed
    as a real one. ``lock`` is the run's store lock: the store's connection is shared by the
    coordinator (results) and the workers (judge replies).

    An answer is kept whole (:meth:`Completion.to_dict`: the reasoning apart from the text, its
    tokens and whether they were estimated, both first-token times, cache-hit tokens, web_search
    results), so a replayed answer is judged, stored and reported like the call it replays.
    """

    def __init__(self, store: Store, lock: threading.Lock, namespace: str, mode: str) -> None:
        self.store = store
        self.lock = lock
        self.namespace = namespace
        self.mode = mode

    def key(self, key: str) -> str:
        """``key`` as stored for this run's target."""
        ns = self.namespace
        return key if not ns else hashlib.sha256(f"{ns}\x00{key}".encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        with self.lock:
            return self.store.cache_get(self.key(key))

    def put(self, key: str, model: str, completion: Completion) -> None:
        """Keep a successful answer (an error is never cached)."""
        if completion.error is not None:
            return
        with self.lock:
            self.store.cache_put(self.key(key), model, completion)

    def has(self, job: Job) -> bool:
        with self.lock:
            return bool(self.store.cache_count([self.key(job.cache_key)]))

    def answer(self, job: Job) -> Completion | None:
        """What the cache policy answers ``job`` with instead of a call: the cached answer
        (``use``, ``replay``), a ``replay_miss`` error (``replay``), or ``None``: call."""
        if self.mode not in ("use", "replay"):
            return None
        hit = self.get(job.cache_key)
        if hit is not None:
            hit.attempts = 0
            return hit
        if self.mode != "replay":
            return None
        where = " from the local server" if self.namespace == "local" else " (answers of --local runs replay only with --local)"
        return Completion(
            error=ErrorInfo("replay_miss", f"no cached answer to this exact request{where}; --replay sends no request"),
            attempts=0,
        )

    def preflight_replay(self, jobs: list[Job]) -> list[str]:
        """Warning lines for a ``--replay`` of ``jobs``; a :class:`GlmevalError` when none of
        them is cached (an all-error run would otherwise be stored and become the next
        ``--baseline latest``)."""
        n = len(jobs)
        with self.lock:
            hits = self.store.cache_count([self.key(job.cache_key) for job in jobs])
        if hits == 0:
            apart = (
                "answers of runs without --local are cached apart" if self.namespace == "local"
                else "answers of --local runs replay only with --local"
            )
            raise GlmevalError(
                f"nothing to replay: none of the {n} job{'s' if n != 1 else ''} is in the cache for this target "
                f"(run once without --replay first; {apart})"
            )
        if hits < n:
            return [f"warning: replay: {n - hits} of {n} jobs are not in the cache; they are stored as errors (replay_miss)"]
        return []
