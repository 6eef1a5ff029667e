"""The :class:`~glmeval.checks.Grader` the runner hands to model-graded checks.

Checks never open a connection themselves: judge and embedding calls go through the run's
client, limits, retries and cache like jobs do, so ``--max-cost``, ``--rpm`` and ``--replay``
cover grading too. Judge calls run on worker threads, so unlike the coordinator they block:
for their permit (:meth:`Limiter.acquire`, which goes before new jobs, because it finishes a
job already paid for) and through their backoff.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from glmeval.catalogue.tokens import count_prompt_tokens
from glmeval.records import Completion, ErrorInfo, Mode
from glmeval.run.cache import ResponseCache
from glmeval.run.client import CallError, GLMClient
from glmeval.run.ratelimit import Limiter
from glmeval.run.retry import RetryPolicy

__all__ = ["RunGrader", "digest"]


def digest(payload: dict[str, Any]) -> str:
    """A stable hash of a request, the cache key of a judge reply or an embedding."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


class RunGrader:
    """Judge and embedding calls of one run, made from worker threads.

    ``halt`` is the run's stop signal (no new attempts); ``on_error`` sees every failed
    attempt first, so a bad key or an empty balance met by a judge call stops the run too.
    """

    def __init__(
        self,
        client: GLMClient | None,
        limiter: Limiter,
        cache: ResponseCache,
        policy: RetryPolicy,
        halt: threading.Event,
        on_error: Callable[[CallError], None],
    ) -> None:
        self.client = client
        self.limiter = limiter
        self.cache = cache
        self.policy = policy
        self.halt = halt
        self.on_error = on_error

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Completion:
        key = "judge:" + digest({"model": model, "messages": messages, "params": params})
        return self.call(model, "sync", messages, params, key)

    def call(self, model: str, mode: Mode, messages: list[dict[str, Any]], params: dict[str, Any], key: str) -> Completion:
        """One judge call with its retries, answered from the cache in every mode (see
        :mod:`glmeval.run.cache`); a failure is returned as the completion's error."""
        hit = self.cache.get(key)
        if hit is not None:
            hit.attempts = 0
            return hit
        if self.cache.mode == "replay":
            return Completion(error=ErrorInfo("replay_miss", "judge reply not in the cache (--replay sends no request)"), attempts=0)
        if self.client is None:
            return Completion(error=ErrorInfo("unknown", "no client configured"), attempts=0)
        tokens = count_prompt_tokens(messages) + int(params.get("max_tokens") or 256)
        retry_ms = queue_ms = 0.0
        attempts = 0
        first = time.perf_counter()
        while True:
            attempts += 1
            waited = time.perf_counter()
            permit = self.limiter.acquire(model, tokens, stop=self.halt)
            queue_ms += (time.perf_counter() - waited) * 1000
            if permit is None:
                return Completion(error=ErrorInfo("cancelled", "the run was stopped"), attempts=attempts - 1)
            started = time.perf_counter()
            try:
                completion = self.client.attempt(model, mode, messages, params)
            except CallError as exc:
                self.on_error(exc)
                self.limiter.release(permit, None, rate_limited=exc.info.kind == "rate_limit")
                delay = self.policy.delay(exc, attempts, time.perf_counter() - first)
                if delay is None or self.halt.is_set():
                    return Completion(error=exc.info, attempts=attempts, retry_ms=retry_ms, queue_ms=queue_ms)
                retry_ms += (time.perf_counter() - started + delay) * 1000
                self.halt.wait(delay)
                continue
            self.limiter.release(permit, completion.total_tokens)
            completion.attempts, completion.retry_ms, completion.queue_ms = attempts, retry_ms, queue_ms
            self.cache.put(key, model, completion)
            return completion

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """Embeddings, cached like judge replies (so ``--replay`` re-scores ``similar``
        checks without a request); raises on failure, which the check reports."""
        key = "embed:" + digest({"model": model, "input": texts})
        hit = self.cache.get(key)
        if hit is not None:
            vectors: list[list[float]] = json.loads(hit.text)
            return vectors
        if self.cache.mode == "replay":
            raise RuntimeError("embedding not in the cache (--replay sends no request)")
        client = self.client
        if client is None:
            raise RuntimeError("embedding needs a client")
        attempts = 0
        first = time.perf_counter()
        while True:
            attempts += 1
            permit = self.limiter.acquire(model, sum(len(t) for t in texts), stop=self.halt)
            if permit is None:
                raise RuntimeError("the run was stopped")
            try:
                vectors = client.embed(model, texts)
            except CallError as exc:
                self.limiter.release(permit, None, rate_limited=exc.info.kind == "rate_limit")
                self.on_error(exc)
                delay = self.policy.delay(exc, attempts, time.perf_counter() - first)
                if delay is None or self.halt.is_set():
                    raise RuntimeError(str(exc.info)) from None
                self.halt.wait(delay)
                continue
            self.limiter.release(permit, 0)
            self.cache.put(key, model, Completion(text=json.dumps(vectors)))
            return vectors
