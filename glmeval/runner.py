"""The runner: executes a plan's jobs concurrently and streams results to the store.

It is the only stage that touches the network (through :class:`GLMClient`). Worker threads
make calls, retry with backoff and run the checks; the coordinating thread owns the store
and writes each result as it arrives, so an interrupted run loses nothing. The number of
jobs in flight is bounded, so memory stays flat however long the plan is.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from glmeval import prices as price_table
from glmeval.checks import CheckContext, evaluate_all
from glmeval.client import FATAL_KINDS, RETRYABLE_KINDS, CallError, GLMClient
from glmeval.errors import RunAborted
from glmeval.records import Completion, ErrorInfo, Job, Result
from glmeval.store import Store


@dataclass
class RunOptions:
    """How to run: limits, retries and the cache policy.

    ``cache``: ``"off"`` (default: always call, as a regression test should), ``"use"``
    (answer from the cache when the exact request was made before, store fresh answers), or
    ``"replay"`` (answer only from the cache; a miss is an error and nothing is sent).
    """

    concurrency: int = 8
    retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    cache: str = "off"
    judge_model: str = "glm-4"
    embedding_model: str = "embedding-3"
    suite_dir: Path = field(default_factory=Path.cwd)
    prices: dict[str, dict[str, float]] | None = None
    seed: int | None = None


@dataclass
class RunCounts:
    total: int = 0
    done: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    cached: int = 0
    tokens: int = 0
    cost: float = 0.0

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
        self.tokens += result.completion.total_tokens
        self.cost += result.cost


@dataclass
class RunOutcome:
    run_id: str
    status: str
    counts: RunCounts
    abort_reason: str | None = None


class _Grader:
    """Model-graded checks' way to the network: the same client, retries and cache as jobs."""

    def __init__(self, runner: "Runner") -> None:
        self._runner = runner

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Completion:
        import hashlib
        import json

        key = "judge:" + hashlib.sha256(
            json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()
        return self._runner._call_with_retries(model, "sync", messages, params, key, use_cache=True)

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        client = self._runner.client
        if client is None:
            raise RuntimeError("embedding needs a client; none in replay mode")
        return client.embed(model, texts)


class Runner:
    def __init__(
        self,
        client: GLMClient | None,
        store: Store,
        options: RunOptions | None = None,
        on_result: Callable[[Result, RunCounts], None] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.options = options or RunOptions()
        self.on_result = on_result
        self._stop = threading.Event()
        self._abort: ErrorInfo | None = None
        self._store_lock = threading.Lock()
        self._rng = random.Random(self.options.seed)
        self.grader = _Grader(self)

    def stop(self) -> None:
        """Take no new jobs; in-flight calls finish."""
        self._stop.set()

    # -- one job --------------------------------------------------------------------------

    def _cache_get(self, key: str) -> Completion | None:
        with self._store_lock:
            return self.store.cache_get(key)

    def _cache_put(self, key: str, model: str, completion: Completion) -> None:
        with self._store_lock:
            self.store.cache_put(key, model, completion)

    def _call_with_retries(
        self, model: str, mode: str, messages: list[dict[str, Any]], params: dict[str, Any], cache_key: str, use_cache: bool
    ) -> Completion:
        opts = self.options
        if use_cache and opts.cache in ("use", "replay"):
            hit = self._cache_get(cache_key)
            if hit is not None:
                return hit
        if opts.cache == "replay":
            return Completion(error=ErrorInfo("replay_miss", "not in the cache (--replay sends no request)"), attempts=0)
        if self.client is None:
            return Completion(error=ErrorInfo("unknown", "no client configured"), attempts=0)
        retry_ms = 0.0
        attempts = 0
        while True:
            attempts += 1
            started = time.perf_counter()
            try:
                completion = self.client.attempt(model, mode, messages, params)
            except CallError as exc:
                info = exc.info
                if info.kind in FATAL_KINDS:
                    self._abort = self._abort or info
                    self._stop.set()
                if info.kind not in RETRYABLE_KINDS or attempts > opts.retries or self._abort is not None:
                    return Completion(error=info, attempts=attempts, retry_ms=retry_ms)
                delay = self._backoff(attempts, exc.retry_after)
                retry_ms += (time.perf_counter() - started) * 1000 + delay * 1000
                time.sleep(delay)
                continue
            completion.attempts = attempts
            completion.retry_ms = retry_ms
            if opts.cache != "off" or use_cache:
                self._cache_put(cache_key, model, completion)
            return completion

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter, or the server's Retry-After when it gave one."""
        if retry_after is not None:
            return min(retry_after, self.options.backoff_max) + self._rng.uniform(0, 0.05)
        ceiling = min(self.options.backoff_base * 2 ** (attempt - 1), self.options.backoff_max)
        return self._rng.uniform(ceiling / 2, ceiling)

    def _execute(self, job: Job, queued_at: float) -> Result:
        queue_ms = (time.perf_counter() - queued_at) * 1000
        if self._stop.is_set():
            completion = Completion(error=ErrorInfo("cancelled", "run stopped before this job started"), attempts=0)
        else:
            completion = self._call_with_retries(
                job.model, job.mode, job.messages, job.params, job.cache_key, use_cache=self.options.cache != "off"
            )
        completion.queue_ms = queue_ms
        return self.judge(job, completion)

    def judge(self, job: Job, completion: Completion) -> Result:
        """Score a completion against its job's checks (also used to re-check stored answers)."""
        cost = price_table.cost(job.model, completion.prompt_tokens, completion.completion_tokens, self.options.prices)
        ctx = CheckContext(
            job=job,
            suite_dir=self.options.suite_dir,
            prices=self.options.prices,
            grader=self.grader,
            judge_model=self.options.judge_model,
            cost=cost,
        )
        checks, passed, score = evaluate_all(completion, job.checks, ctx, job.min_score)
        return Result(job=job, completion=completion, checks=checks, passed=passed, score=score, cost=cost)

    # -- the run --------------------------------------------------------------------------

    def run(self, jobs: Iterable[Job], run_id: str, total: int | None = None) -> RunOutcome:
        """Run every job, writing each result to the store as it completes.

        Ctrl-C (KeyboardInterrupt) stops taking new jobs, lets in-flight calls finish and
        returns with status ``interrupted``; the results so far are already stored.
        """
        counts = RunCounts(total=total or 0)
        limit = max(1, self.options.concurrency)
        pending: set[Future[Result]] = set()
        interrupted = False
        job_iter = iter(jobs)
        exhausted = False
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="glmeval") as pool:
            try:
                while True:
                    while not exhausted and not self._stop.is_set() and len(pending) < limit * 2:
                        job = next(job_iter, None)
                        if job is None:
                            exhausted = True
                            break
                        pending.add(pool.submit(self._execute, job, time.perf_counter()))
                    if not pending:
                        break
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._record(run_id, future.result(), counts)
            except KeyboardInterrupt:
                interrupted = True
                self._stop.set()
                try:
                    for future in pending:
                        self._record(run_id, future.result(), counts)
                except KeyboardInterrupt:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        if self._abort is not None:
            status = "aborted"
        elif interrupted or (self._stop.is_set() and not exhausted):
            status = "interrupted"
        else:
            status = "complete"
        with self._store_lock:
            self.store.finish_run(run_id, status)
        reason = str(self._abort) if self._abort else None
        return RunOutcome(run_id=run_id, status=status, counts=counts, abort_reason=reason)

    def _record(self, run_id: str, result: Result, counts: RunCounts) -> None:
        if result.completion.error is not None and result.completion.error.kind == "cancelled":
            return
        with self._store_lock:
            self.store.add_result(run_id, result)
        counts.add(result)
        if self.on_result is not None:
            self.on_result(result, counts)


def abort_message(info: ErrorInfo) -> str:
    if info.kind == "auth":
        return f"authentication failed ({info}); check ZHIPUAI_API_KEY"
    if info.kind == "balance":
        return f"the account has no balance left ({info}); recharge, or run with --local"
    return str(info)


__all__ = ["Runner", "RunOptions", "RunOutcome", "RunCounts", "RunAborted", "abort_message"]
