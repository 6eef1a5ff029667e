"""The runner: executes a plan's jobs concurrently and streams results to the store.

It is the only stage that touches the network (through :class:`GLMClient`). The design:

- One **coordinating thread** (the caller's) owns the schedule and the store. It reads jobs
  lazily (a bounded look-ahead, so memory stays flat however long the plan is), decides which
  call may start next, and writes each result the moment it arrives, so an interrupted or
  killed run loses nothing.
- **Worker threads** make one call attempt each and run the checks. A failed attempt that is
  worth retrying goes back to the coordinator, which schedules it after a backoff; no thread
  sleeps through a backoff, and a model held back by its limits never blocks calls to others.
- **Limits** (:mod:`glmeval.run.ratelimit`): a global cap on calls in flight, per-model caps, and
  per-model requests- and tokens-per-minute buckets; an optional budget in yuan and tokens.
- **Timing is honest**: ``latency_ms`` is the attempt that produced the answer; time waiting
  for a slot or a rate bucket is ``queue_ms``; failed attempts plus backoff are ``retry_ms``.
- **Retries** (the SDK's own are off): rate limits, 5xx, timeouts, connection errors and cut
  streams, with exponential backoff and full jitter, or the server's ``Retry-After``. A bad key
  (401) or an empty balance (429 code 1113) stops the whole run at once.
- **Cache**: every fresh successful answer is written to the cache table whatever the mode
  (cheap, and it makes ``--replay`` of any past run possible); *reading* it is opt-in
  (``--cache``), because silently re-used answers make a regression test test nothing.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import queue
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glmeval.catalogue import prices as price_table
from glmeval.catalogue.tokens import count_prompt_tokens
from glmeval.checks import CheckContext, CheckRegistry, evaluate_all
from glmeval.errors import GlmevalError, RunAborted
from glmeval.records import Completion, ErrorInfo, Job, Result
from glmeval.run.client import FATAL_KINDS, RETRYABLE_KINDS, CallError, GLMClient
from glmeval.run.ratelimit import Budget, Limiter, ModelLimit, Permit
from glmeval.store import Store

# The prior for a job's answer before any answer of its model was seen:
# min(max_tokens or DEFAULT_COMPLETION_ESTIMATE, 4 x prompt tokens + 64). Most eval answers are
# short, and a prior that assumes the worst (1,024 tokens) makes any reasonable --max-cost
# refuse the first job. Once answers arrive the runner uses their mean plus a fifth instead.
DEFAULT_COMPLETION_ESTIMATE = 512


def prior_completion_tokens(prompt_tokens: int, max_tokens: Any = None) -> int:
    """Completion tokens to expect before any answer was seen (see :data:`DEFAULT_COMPLETION_ESTIMATE`)."""
    cap = DEFAULT_COMPLETION_ESTIMATE
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0:
        cap = max_tokens
    return max(1, min(cap, 4 * prompt_tokens + 64))


def estimate_job(job: Job, prices: dict[str, dict[str, float]] | None = None) -> tuple[int, int, float]:
    """``(prompt tokens, completion tokens, yuan)`` a job is expected to cost before any answer
    was seen: the prompt counted locally and :func:`prior_completion_tokens`. It is what
    ``glmeval plan`` shows and what ``--max-cost``/``--max-tokens`` reserve for a model's first
    jobs, so the two agree."""
    prompt = count_prompt_tokens(job.messages, job.tools)
    completion = prior_completion_tokens(prompt, job.params.get("max_tokens"))
    return prompt, completion, price_table.cost(job.model, prompt, completion, prices)


@dataclass
class RunOptions:
    """How to run: limits, retries and the cache policy.

    ``cache``: ``"off"`` (default: always call, as a regression test should), ``"use"``
    (answer from the cache when the exact request was made before), or ``"replay"`` (answer
    only from the cache; a miss is an error and nothing is sent). Fresh answers are written to
    the cache in every mode. ``cache_namespace`` keeps the local server's answers apart in the
    cache (``"local"``; empty for the real API; by default the client's), so a simulated
    answer is never replayed as a real one.

    ``model_limits`` maps model names (``"*"`` = every model) to concurrency / RPM / TPM
    limits; ``budget`` caps spending (one :class:`Budget` may be shared by several runs).
    ``checks`` is the suite's check registry (its check files over the built-ins); ``None``
    means the built-ins and plugins alone.
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
    model_limits: dict[str, ModelLimit] = field(default_factory=dict)
    budget: Budget | None = None
    cache_namespace: str = ""
    handle_sigint: bool = True
    notify: Callable[[str], None] | None = None
    checks: CheckRegistry | None = None


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
        self.cost += result.cost


@dataclass
class RunOutcome:
    """How a run ended. ``status``: complete, interrupted, aborted (bad key / no balance) or
    budget (stopped before a job would pass ``--max-cost`` / ``--max-tokens``)."""

    run_id: str
    status: str
    counts: RunCounts
    abort_reason: str | None = None
    abort_kind: str | None = None
    not_run: int = 0
    budget_message: str | None = None


# -- internal records passed between the coordinator and the workers -------------------------


@dataclass(eq=False)
class _Task:
    """One job on its way through the schedule (all its attempts)."""

    job: Job
    est_tokens: int = 0
    est_cost: float = 0.0
    local_prompt: int = 0
    reserved: bool = False
    attempts: int = 0
    retry_ms: float = 0.0
    queue_ms: float = 0.0
    waiting_since: float | None = None
    permit: Permit | None = None
    completion: Completion | None = None  # set for cache hits / replay: judge only


@dataclass(eq=False)
class _Retry:
    task: _Task
    error: CallError
    attempt_ms: float


@dataclass(eq=False)
class _Done:
    task: _Task
    result: Result
    grader_cost: float
    grader_tokens: int


_WAKE = object()
_STOP = object()


class _Grader:
    """Model-graded checks' way to the network: the same client, limits, retries and cache as
    jobs. Runs on worker threads, so it blocks (the coordinator never does)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Completion:
        key = "judge:" + _digest({"model": model, "messages": messages, "params": params})
        return self._runner._blocking_call(model, "sync", messages, params, key)

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """Embeddings, cached like judge replies (so ``--replay`` re-scores ``similar``
        checks without a request); raises on failure, which the check reports."""
        runner = self._runner
        key = runner._namespaced("embed:" + _digest({"model": model, "input": texts}))
        hit = runner._cache_get(key)
        if hit is not None:
            return json.loads(hit.text)
        if runner.options.cache == "replay":
            raise RuntimeError("embedding not in the cache (--replay sends no request)")
        client = runner.client
        if client is None:
            raise RuntimeError("embedding needs a client")
        attempts = 0
        while True:
            attempts += 1
            permit = runner.limiter.acquire(model, sum(len(t) for t in texts), stop=runner._halt)
            if permit is None:
                raise RuntimeError("the run was stopped")
            try:
                vectors = client.embed(model, texts)
            except CallError as exc:
                runner.limiter.release(permit, None)
                runner._note_fatal(exc)
                if not exc.should_retry or attempts > runner.options.retries or runner._halt.is_set():
                    raise RuntimeError(str(exc.info)) from None
                runner._halt.wait(runner._backoff(attempts, exc.retry_after))
                continue
            runner.limiter.release(permit, None)
            runner._cache_put(key, model, Completion(text=json.dumps(vectors)))
            return vectors


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


class Runner:
    """Runs jobs into one stored run. One instance per :meth:`run` call; not reusable."""

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
        # Fixed for the run: the target decides it (local server, another endpoint, the API).
        self._namespace = self.options.cache_namespace or getattr(client, "cache_namespace", "") or ""
        self.on_result = on_result
        self.limiter = Limiter(self.options.concurrency, self.options.model_limits)
        self.budget = self.options.budget
        self._halt = threading.Event()  # no new attempts at all (Ctrl-C, fatal error, stop())
        self._no_new_jobs = False  # budget: no new jobs, in-flight jobs may still retry
        self._budget_hit = False
        self._budget_next: tuple[int, float] | None = None
        self._holding = 0  # tasks holding a budget reservation (in flight, retrying or about to start)
        self._interrupted = False
        self._abort: ErrorInfo | None = None
        self._reached = False
        self._store_lock = threading.Lock()
        self._rng = random.Random(self.options.seed)
        self._rng_lock = threading.Lock()
        self._out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Threads: one per call slot, plus a few for checks (judge calls, cache hits) so
        # grading never takes a slot from calls. Fewer threads means less GIL hand-off.
        self._max_threads = self.limiter.concurrency + max(2, self.limiter.concurrency // 4)
        self._completion_seen: dict[str, tuple[int, int]] = {}
        self._prompt_ratio: dict[str, tuple[int, int]] = {}
        self.grader = _Grader(self)
        # The schedule, owned by the coordinating thread alone.
        self._jobs: Iterator[Job] = iter(())
        self._exhausted = False
        self._queues: dict[str, deque[_Task]] = {}  # per model, in plan order
        self._next_in_line: dict[str, int] = {}
        self._models: list[str] = []
        self._judge_only: deque[_Task] = deque()  # cache hits and replays: checks only
        self._delayed: list[tuple[float, int, _Task]] = []  # retries: (due, seq, task) heap
        self._seq = itertools.count()
        self._rr = 0
        self._busy = 0  # tasks handed to workers and not reported back
        self._buffered = 0  # jobs read from the plan and not started
        self._dropped = 0  # jobs left without a result because the run stopped mid-retry
        self._lookahead = max(64, 4 * self.limiter.concurrency)

    def stop(self) -> None:
        """Take no new jobs and make no new attempts; in-flight calls finish."""
        self._interrupted = True
        self._halt.set()
        self._out.put(_WAKE)

    # -- cache ------------------------------------------------------------------------------

    def _namespaced(self, key: str) -> str:
        ns = self._namespace
        return key if not ns else hashlib.sha256(f"{ns}\x00{key}".encode()).hexdigest()

    def _cache_get(self, key: str) -> Completion | None:
        with self._store_lock:
            return self.store.cache_get(key)

    def _cache_put(self, key: str, model: str, completion: Completion) -> None:
        if completion.error is not None:
            return
        with self._store_lock:
            self.store.cache_put(key, model, completion)

    # -- before the run is stored -------------------------------------------------------------

    def preflight(self, jobs: list[Job]) -> list[str]:
        """Checks before anything is stored or sent; returns warning lines for the user.

        Raises :class:`GlmevalError` (one line, exit 2) when the run could do nothing useful:
        ``--replay`` with none of the jobs in the cache (an all-error run would otherwise be
        stored and become the next ``--baseline latest``), or a budget that cannot cover even
        the first job it would send.
        """
        if not jobs:
            return []
        warnings: list[str] = []
        mode = self.options.cache
        if mode == "replay":
            n = len(jobs)
            with self._store_lock:
                hits = self.store.cache_count([self._namespaced(job.cache_key) for job in jobs])
            if hits == 0:
                apart = (
                    "answers of runs without --local are cached apart" if self._namespace == "local"
                    else "answers of --local runs replay only with --local"
                )
                raise GlmevalError(
                    f"nothing to replay: none of the {n} job{'s' if n != 1 else ''} is in the cache for this target "
                    f"(run once without --replay first; {apart})"
                )
            if hits < n:
                warnings.append(
                    f"warning: replay: {n - hits} of {n} jobs are not in the cache; they are stored as errors (replay_miss)"
                )
            return warnings
        budget = self.budget
        if budget is not None and budget.limited and not (budget.spent_cost or budget.spent_tokens or budget.reserved_tokens):
            first = next(
                (job for job in jobs if mode != "use" or not self.store.cache_count([self._namespaced(job.cache_key)])),
                None,
            )
            if first is not None:
                tokens, _, cost = self._estimate(first)
                if budget.max_cost is not None and cost > budget.max_cost + 1e-12:
                    raise GlmevalError(
                        f"--max-cost {budget.max_cost:g} cannot cover one job of {first.model} (estimated ¥{cost:.4f})"
                    )
                if budget.max_tokens is not None and tokens > budget.max_tokens:
                    raise GlmevalError(
                        f"--max-tokens {budget.max_tokens:,} cannot cover one job of {first.model} (estimated {tokens:,} tokens)"
                    )
        return warnings

    # -- estimates --------------------------------------------------------------------------

    def _estimate(self, job: Job) -> tuple[int, int, float]:
        """Tokens and yuan a job will probably use: prompt counted locally (corrected by how
        this model's real prompt counts compared so far), completion from the mean of this
        model's answers so far plus a fifth (before any: :func:`prior_completion_tokens`)."""
        local = prompt = count_prompt_tokens(job.messages, job.tools)
        ratio = self._prompt_ratio.get(job.model)
        if ratio and ratio[1]:
            prompt = int(local * ratio[0] / ratio[1]) + 1
        cap = job.params.get("max_tokens")
        seen = self._completion_seen.get(job.model)
        if seen and seen[1]:
            completion = int(seen[0] / seen[1] * 1.2) + 1
            if isinstance(cap, int) and cap > 0:
                completion = min(completion, cap)
        else:
            completion = prior_completion_tokens(local, cap)
        cost = price_table.cost(job.model, prompt, completion, self.options.prices)
        return prompt + completion, local, cost

    # -- worker side ------------------------------------------------------------------------

    def _note_unreachable(self, info: ErrorInfo) -> None:
        """A connection error that outlived its retries before any call got through means the
        server cannot be reached at all: stop at once with one line instead of failing every
        job the same way."""
        if self._abort is None:
            where = self.client.base_url if self.client is not None else "the API"
            self._abort = ErrorInfo(
                "unreachable",
                f"cannot reach {where} ({info.message}); check --base-url / ZHIPUAI_BASE_URL and the network, "
                "or pass --local",
            )
        self._halt.set()
        self._out.put(_WAKE)

    def _note_fatal(self, exc: CallError) -> None:
        if exc.info.kind in FATAL_KINDS:
            if self._abort is None:
                self._abort = exc.info
            self._halt.set()
            self._out.put(_WAKE)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter, or the server's Retry-After when it gave one
        (plus a little jitter so a crowd of retries does not arrive in one instant)."""
        with self._rng_lock:
            if retry_after is not None:
                return min(retry_after, self.options.backoff_max) + self._rng.uniform(0, min(0.05, retry_after + 0.01))
            ceiling = min(self.options.backoff_base * 2 ** (attempt - 1), self.options.backoff_max)
            return self._rng.uniform(ceiling / 2, ceiling)

    def _worker(self) -> None:
        inbox = self._inbox
        while True:
            task = inbox.get()
            if task is _STOP:
                return
            try:
                self._out.put(self._work(task))
            except BaseException as exc:
                if task.permit is not None:
                    self.limiter.release(task.permit, None)
                    task.permit = None
                completion = Completion(error=ErrorInfo("unknown", f"internal error: {type(exc).__name__}: {exc}"))
                completion.attempts = task.attempts
                result = Result(job=task.job, completion=completion, checks=[], passed=False, score=0.0)
                self._out.put(_Done(task, result, 0.0, 0))

    def _work(self, task: _Task) -> _Done | _Retry:
        if task.completion is not None:  # a cache hit or a replay: judge only
            return self._judged(task, task.completion)
        job = task.job
        permit = task.permit
        assert permit is not None and self.client is not None
        if self._halt.is_set():
            # Queued just before a fatal error or a stop: send nothing; the job stays without a
            # result (like any job not reached), so --resume runs it.
            self.limiter.release(permit, None)
            task.permit = None
            task.attempts -= 1
            return _Retry(task, CallError(ErrorInfo("cancelled", "the run stopped before this call")), 0.0)
        started = time.perf_counter()
        try:
            completion = self.client.attempt(job.model, job.mode, job.messages, job.params)
        except CallError as exc:
            self._note_fatal(exc)  # before the slot frees, so no new call can slip in
            self.limiter.release(permit, None)
            task.permit = None
            if exc.should_retry and task.attempts <= self.options.retries:
                # The coordinator schedules the retry, or, when the run is stopping, leaves the
                # job without a result so --resume runs it (not an error the model caused).
                return _Retry(task, exc, (time.perf_counter() - started) * 1000)
            completion = Completion(error=exc.info)
            if exc.info.kind == "connection" and not self._reached:
                self._note_unreachable(exc.info)
        else:
            self._reached = True
            self.limiter.release(permit, completion.total_tokens)
            task.permit = None
        completion.attempts = task.attempts
        return self._judged(task, completion)

    def _judged(self, task: _Task, completion: Completion) -> _Done:
        # A cached answer keeps the latency it was measured with (reports leave it out of
        # latency statistics); queue and retry time are this run's, and it had none.
        completion.retry_ms = task.retry_ms
        completion.queue_ms = task.queue_ms
        result, grader_cost, grader_tokens = self._judge(task.job, completion)
        return _Done(task, result, grader_cost, grader_tokens)

    def _blocking_call(
        self, model: str, mode: str, messages: list[dict[str, Any]], params: dict[str, Any], key: str
    ) -> Completion:
        """A call from a worker thread (judge calls): blocks for its permit and backoffs.

        Judge replies are read from the cache in every mode: the key holds the rubric and
        the answer, so a hit is the same verdict on the same text, never a stale one.
        """
        key = self._namespaced(key)
        hit = self._cache_get(key)
        if hit is not None:
            hit.attempts = 0
            return hit
        if self.options.cache == "replay":
            return Completion(error=ErrorInfo("replay_miss", "judge reply not in the cache (--replay sends no request)"), attempts=0)
        if self.client is None:
            return Completion(error=ErrorInfo("unknown", "no client configured"), attempts=0)
        tokens = count_prompt_tokens(messages) + int(params.get("max_tokens") or 256)
        retry_ms = queue_ms = 0.0
        attempts = 0
        while True:
            attempts += 1
            waited = time.perf_counter()
            permit = self.limiter.acquire(model, tokens, stop=self._halt)
            queue_ms += (time.perf_counter() - waited) * 1000
            if permit is None:
                return Completion(error=ErrorInfo("cancelled", "the run was stopped"), attempts=attempts - 1)
            started = time.perf_counter()
            try:
                completion = self.client.attempt(model, mode, messages, params)
            except CallError as exc:
                self._note_fatal(exc)
                self.limiter.release(permit, None)
                if not exc.should_retry or attempts > self.options.retries or self._halt.is_set():
                    return Completion(error=exc.info, attempts=attempts, retry_ms=retry_ms, queue_ms=queue_ms)
                delay = self._backoff(attempts, exc.retry_after)
                retry_ms += (time.perf_counter() - started + delay) * 1000
                self._halt.wait(delay)
                continue
            self.limiter.release(permit, completion.total_tokens)
            completion.attempts, completion.retry_ms, completion.queue_ms = attempts, retry_ms, queue_ms
            self._cache_put(key, model, completion)
            return completion

    def _judge(self, job: Job, completion: Completion) -> tuple[Result, float, int]:
        cost = price_table.cost(job.model, completion.prompt_tokens, completion.completion_tokens, self.options.prices)
        ctx = CheckContext(
            job=job,
            suite_dir=self.options.suite_dir,
            prices=self.options.prices,
            grader=self.grader,
            judge_model=self.options.judge_model,
            embedding_model=self.options.embedding_model,
            cost=cost,
            registry=self.options.checks,
        )
        checks, passed, score = evaluate_all(completion, job.checks, ctx, job.min_score)
        grader_cost = sum(float(u.get("cost") or 0.0) for u in ctx.grader_usage)
        grader_tokens = sum(int(u.get("prompt_tokens") or 0) + int(u.get("completion_tokens") or 0) for u in ctx.grader_usage)
        result = Result(
            job=job, completion=completion, checks=checks, passed=passed, score=score, cost=cost,
            judge_tokens=grader_tokens, judge_cost=grader_cost,
        )
        return result, grader_cost, grader_tokens

    # -- the coordinator ----------------------------------------------------------------------

    def _submit(self, task: _Task) -> None:
        self._busy += 1
        if self._busy > len(self._threads) and len(self._threads) < self._max_threads:
            thread = threading.Thread(target=self._worker, name=f"glmeval-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()
        self._inbox.put(task)

    def _admit(self, job: Job) -> _Task:
        """A job read from the plan: answered from the cache, or queued for its model."""
        task = _Task(job)
        mode = self.options.cache
        if mode in ("use", "replay"):
            hit = self._cache_get(self._namespaced(job.cache_key))
            if hit is not None:
                hit.attempts = 0
                task.completion = hit
            elif mode == "replay":
                where = (
                    " from the local server" if self._namespace == "local" else " (answers of --local runs replay only with --local)"
                )
                task.completion = Completion(
                    error=ErrorInfo("replay_miss", f"no cached answer to this exact request{where}; --replay sends no request"),
                    attempts=0,
                )
        return task

    def _fill(self) -> None:
        """Read jobs from the plan until the look-ahead is full."""
        while not self._exhausted and self._buffered < self._lookahead:
            job = next(self._jobs, None)
            if job is None:
                self._exhausted = True
                return
            task = self._admit(job)
            if task.completion is not None:
                self._judge_only.append(task)
            else:
                q = self._queues.get(job.model)
                if q is None:
                    q = self._queues[job.model] = deque()
                    self._models.append(job.model)
                    cap = self.limiter.limit_for(job.model).concurrency
                    self._next_in_line[job.model] = min(cap or self.limiter.concurrency, self.limiter.concurrency)
                q.append(task)
                if len(q) <= self._next_in_line[job.model]:
                    task.waiting_since = time.perf_counter()
            self._buffered += 1

    def _start_call(self, task: _Task, permit: Permit, now: float) -> None:
        """Send ``task``'s next attempt. Its queue time is counted from the moment it became
        one of the next N jobs of its model to go (N = the model's concurrency), i.e. when
        only the limits kept it from starting, or from the end of its retry backoff."""
        if task.waiting_since is not None:
            task.queue_ms += (now - task.waiting_since) * 1000
            task.waiting_since = None
        task.permit = permit
        task.attempts += 1
        self._submit(task)

    def _dispatch(self) -> float | None:
        """Start every call the limits allow now. Returns seconds until a rate bucket or a
        backoff may allow more (``None``: only a finishing call can free something)."""
        wake: float | None = None
        now = time.perf_counter()
        if self._halt.is_set():
            return None
        # Cache hits and replays: no call, only checks.
        while self._judge_only and self._busy < self._max_threads:
            task = self._judge_only.popleft()
            self._buffered -= 1
            self._submit(task)
        # Retries whose backoff has passed, oldest first.
        if self._delayed:
            blocked: list[tuple[float, int, _Task]] = []
            while self._delayed and self._delayed[0][0] <= now and self._busy < self._max_threads:
                entry = heapq.heappop(self._delayed)
                task = entry[2]
                if task.waiting_since is None:
                    task.waiting_since = entry[0]  # waiting again since its backoff ended
                permit, wait = self.limiter.try_acquire(task.job.model, task.est_tokens)
                if permit is None:
                    blocked.append(entry)
                    if wait is not None:
                        wake = wait if wake is None else min(wake, wait)
                    continue
                self._start_call(task, permit, now)
            for entry in blocked:
                heapq.heappush(self._delayed, entry)
            if self._delayed and self._delayed[0][0] > now:
                due = self._delayed[0][0] - now
                wake = due if wake is None else min(wake, due)
        if self._no_new_jobs:
            return wake
        # New jobs, round-robin over models so one held-back model does not starve the rest.
        models = self._models
        n = len(models)
        if n:
            start = self._rr % n
            self._rr += 1
            for i in range(n):
                q = self._queues[models[(start + i) % n]]
                while q and self._busy < self._max_threads:
                    task = q[0]
                    if task.est_tokens == 0:
                        task.est_tokens, task.local_prompt, task.est_cost = self._estimate(task.job)
                    if self.budget is not None and self.budget.limited and not task.reserved:
                        if not self.budget.reserve(task.est_cost, task.est_tokens):
                            self._budget_next = (task.est_tokens, task.est_cost)
                            if self._holding:
                                # Jobs in flight hold estimates; once they settle with what they
                                # really used, this one may fit (estimated again by then).
                                task.est_tokens = 0
                                return wake
                            self._budget_stop()
                            return wake
                        task.reserved = True
                        self._holding += 1
                    permit, wait = self.limiter.try_acquire(task.job.model, task.est_tokens)
                    if permit is None:
                        if task.waiting_since is None:
                            task.waiting_since = now
                        if wait is not None:
                            wake = wait if wake is None else min(wake, wait)
                        break
                    q.popleft()
                    self._buffered -= 1
                    self._start_call(task, permit, now)
                    k = self._next_in_line[task.job.model]
                    if len(q) >= k and q[k - 1].waiting_since is None:
                        q[k - 1].waiting_since = now  # it just became one of the next to go
        return wake

    def _budget_stop(self) -> None:
        self._no_new_jobs = True
        self._budget_hit = True

    def _unreserve(self, task: _Task) -> None:
        if task.reserved and self.budget is not None:
            self.budget.settle(task.est_cost, task.est_tokens, 0.0, 0)
            task.reserved = False
            self._holding -= 1

    def _handle(self, item: Any) -> _Done | None:
        """Book-keeping for one worker report (slots, retries, budget); returns a finished job
        for :meth:`_record`, which the loop calls only after new calls were dispatched."""
        if item is _WAKE:
            return None
        self._busy -= 1
        if isinstance(item, _Retry):
            task = item.task
            if self._halt.is_set():
                self._unreserve(task)
                self._dropped += 1
                return None
            delay = self._backoff(task.attempts, item.error.retry_after)
            task.retry_ms += item.attempt_ms + delay * 1000
            heapq.heappush(self._delayed, (time.perf_counter() + delay, next(self._seq), task))
            return None
        task, result = item.task, item.result
        completion = result.completion
        fresh = not completion.cached and completion.error is None
        if self.budget is not None:
            spent_tokens = completion.total_tokens if not completion.cached else 0
            spent_cost = result.cost if not completion.cached else 0.0
            if task.reserved:
                self.budget.settle(task.est_cost, task.est_tokens, spent_cost, spent_tokens)
                task.reserved = False
                self._holding -= 1
            else:
                self.budget.add(spent_cost, spent_tokens)
            self.budget.add(item.grader_cost, item.grader_tokens)
            if self.budget.exhausted:
                self._budget_stop()
        if fresh:
            model = task.job.model
            seen = self._completion_seen.get(model, (0, 0))
            self._completion_seen[model] = (seen[0] + completion.completion_tokens, seen[1] + 1)
            if completion.prompt_tokens and task.local_prompt:
                ratio = self._prompt_ratio.get(model, (0, 0))
                self._prompt_ratio[model] = (ratio[0] + completion.prompt_tokens, ratio[1] + task.local_prompt)
        return item

    def _record(self, run_id: str, done: _Done, counts: RunCounts) -> None:
        """Write one finished job (and a fresh answer to the cache) and tell the progress."""
        result = done.result
        cache = not result.completion.cached and result.completion.error is None
        counts.grader_cost += done.grader_cost
        with self._store_lock:
            self.store.add_result(run_id, result)
            if cache:
                self.store.cache_put(self._namespaced(result.job.cache_key), result.job.model, result.completion)
        counts.add(result)
        if self.on_result is not None:
            self.on_result(result, counts)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        """First Ctrl-C: take no new jobs, let in-flight calls finish. Second: give up on them."""
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True
        self._halt.set()
        self._out.put(_WAKE)
        if self.options.notify is not None:
            self.options.notify(
                f"stopping: no new calls; waiting for {self.limiter.active} in flight (Ctrl-C again to abandon them)"
            )

    def run(self, jobs: Iterable[Job], run_id: str, total: int | None = None, counts: RunCounts | None = None) -> RunOutcome:
        """Run every job, writing each result to the store as it completes.

        Ctrl-C stops taking new jobs and lets in-flight calls finish (or time out); the run is
        stored as ``interrupted`` and every finished result is already in the store. A second
        Ctrl-C abandons the in-flight calls. ``counts`` continues the totals of a resumed run.
        """
        counts = counts or RunCounts(total=total or 0)
        self._jobs = iter(jobs)
        previous_handler: Any = None
        if self.options.handle_sigint and threading.current_thread() is threading.main_thread():
            previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        abandoned = False
        try:
            while True:
                if not self._halt.is_set() and not self._no_new_jobs:
                    self._fill()
                wake = self._dispatch()
                if self._busy == 0:
                    if self._halt.is_set():
                        break
                    if not self._delayed and not self._judge_only and (
                        self._no_new_jobs or (self._exhausted and self._buffered == 0)
                    ):
                        break
                timeout = 0.5 if wake is None else min(0.5, max(wake, 0.0005))
                try:
                    item = self._out.get(timeout=timeout)
                except queue.Empty:
                    continue
                finished: list[_Done] = []
                while True:  # take whatever else already arrived, too
                    done = self._handle(item)
                    if done is not None:
                        finished.append(done)
                    try:
                        item = self._out.get_nowait()
                    except queue.Empty:
                        break
                if finished:
                    # Refill the freed slots first, then write: the disk never delays a call.
                    if not self._halt.is_set() and not self._no_new_jobs:
                        self._fill()
                    self._dispatch()
                    for done in finished:
                        self._record(run_id, done, counts)
        except KeyboardInterrupt:
            abandoned = True
            self._interrupted = True
            self._halt.set()
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            for _ in self._threads:
                self._inbox.put(_STOP)
        not_run = self._count_not_run() if (self._halt.is_set() or self._no_new_jobs) else 0
        if self._abort is not None:
            status = "aborted"
        elif self._interrupted and (not_run or abandoned or self._dropped):
            status = "interrupted"
        elif self._budget_hit and (not_run or self._dropped):
            status = "budget"
        else:
            status = "complete"
        with self._store_lock:
            self.store.finish_run(run_id, status)
        budget_message = None
        if status == "budget" and self.budget is not None:
            nxt = ""
            if self._budget_next is not None:
                tokens, cost = self._budget_next
                nxt = f" (the next job was estimated at {tokens:,} tokens" + (f", ¥{cost:.4f})" if cost else ")")
            planned = counts.total or counts.done + not_run + self._dropped
            budget_message = (
                f"budget reached after {counts.done} of {planned} jobs: spent {self.budget.describe()}; "
                f"stopped before it would be exceeded{nxt}; {not_run + self._dropped} job(s) not run"
            )
        return RunOutcome(
            run_id=run_id,
            status=status,
            counts=counts,
            abort_reason=abort_message(self._abort) if self._abort else None,
            abort_kind=self._abort.kind if self._abort else None,
            not_run=not_run + self._dropped + (self._busy if abandoned else 0),
            budget_message=budget_message,
        )

    def _count_not_run(self) -> int:
        """Jobs that never got a result: still buffered, waiting to retry, or never read."""
        left = self._buffered + len(self._delayed)
        for _ in self._jobs:
            left += 1
        return left


def abort_message(info: ErrorInfo) -> str:
    """The one line a run stopped by a fatal error prints."""
    if info.kind == "auth":
        return f"authentication failed ({info}); check ZHIPUAI_API_KEY (or --base-url)"
    if info.kind == "balance":
        return f"the account has no balance left ({info}); recharge, or run with --local"
    if info.kind == "unreachable":
        return info.message
    return str(info)


__all__ = [
    "Runner",
    "RunOptions",
    "RunOutcome",
    "RunCounts",
    "RunAborted",
    "abort_message",
    "RETRYABLE_KINDS",
    "DEFAULT_COMPLETION_ESTIMATE",
    "estimate_job",
    "prior_completion_tokens",
]
