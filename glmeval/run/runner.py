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
  per-model requests- and tokens-per-minute buckets; an optional budget in yuan and tokens
  (:mod:`glmeval.run.budget`).
- **Timing is honest**: ``latency_ms`` is the attempt that produced the answer; time waiting
  for a slot or a rate bucket is ``queue_ms``; failed attempts plus backoff are ``retry_ms``.
- **Retries** (:mod:`glmeval.run.retry`; the SDK's own are off): 429, 5xx, timeouts, connection
  errors and cut streams, within a per-job budget of wall time, with capped exponential backoff
  and full jitter, or the server's ``Retry-After``; a 429 also halves the in-flight limit of
  its model and provider (``Lane``; ``RunCounts.pace`` tells the progress line). A bad key
  (401) or an empty balance (429 code 1113) stops the whole run at once.
- **Cache** (:mod:`glmeval.run.cache`): every fresh successful answer is written; reading it
  is opt-in (``--cache``, ``--replay``).
- **Grading** (:mod:`glmeval.run.grader`): model-graded checks call through the same client,
  limits, retries and cache.

The records it takes and gives back live in :mod:`glmeval.run.options` and
:mod:`glmeval.run.outcome`; they are re-exported here.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import FrameType

from glmeval.catalogue import prices as price_table
from glmeval.checks import CheckContext, evaluate_all
from glmeval.errors import RunAborted
from glmeval.records import Completion, ErrorInfo, Job, Result, RunStatus
from glmeval.redact import redact_url
from glmeval.run.budget import (
    DEFAULT_COMPLETION_ESTIMATE,
    BudgetAccount,
    Estimator,
    estimate_job,
    preflight_budget,
    prior_completion_tokens,
)
from glmeval.run.cache import ResponseCache
from glmeval.run.client import FATAL_KINDS, RETRYABLE_KINDS, CallError, GLMClient
from glmeval.run.grader import RunGrader
from glmeval.run.options import RunOptions
from glmeval.run.outcome import RunCounts, RunOutcome, abort_message, pace_line
from glmeval.run.ratelimit import DEFAULT_PROVIDER, Limiter, Permit
from glmeval.run.retry import Backoff, RetryPolicy
from glmeval.store import Store

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
    first_sent: float = 0.0  # when the first attempt began: the retry budget counts from it
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
    delay: float = 0.0  # seconds of backoff before the next attempt


@dataclass(eq=False)
class _Done:
    task: _Task
    result: Result
    grader_cost: float
    grader_tokens: int


class _Signal:
    """A queue item that carries no work: wake the coordinator, or stop a worker."""


_WAKE = _Signal()
_STOP = _Signal()


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
        self.on_result = on_result
        self.limiter = Limiter(self.options.concurrency, self.options.model_limits)
        self.budget = self.options.budget
        self._store_lock = threading.Lock()
        # The namespace is fixed for the run: the target decides it (local server, another
        # endpoint, the API).
        namespace = self.options.cache_namespace or getattr(client, "cache_namespace", "") or ""
        self.cache = ResponseCache(store, self._store_lock, namespace, self.options.cache)
        self._account = BudgetAccount(self.budget)
        self._estimator = Estimator(self.options.prices, self.options.provider_prices)
        self._backoff = Backoff(self.options.backoff_base, self.options.backoff_max, self.options.seed)
        self._policy = RetryPolicy(self._backoff, self.options.retry_budget, self.options.retries)
        self._halt = threading.Event()  # no new attempts at all (Ctrl-C, fatal error, stop())
        self._no_new_jobs = False  # budget: no new jobs, in-flight jobs may still retry
        self._interrupted = False
        self._abort: ErrorInfo | None = None
        self._reached = False
        self._answered_at: float | None = None  # the last call that got an answer (or the first sent)
        self._out: queue.SimpleQueue[_Done | _Retry | _Signal] = queue.SimpleQueue()
        self._inbox: queue.SimpleQueue[_Task | _Signal] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Threads: one per call slot, plus a few for checks (judge calls, cache hits) so
        # grading never takes a slot from calls. Fewer threads means less GIL hand-off.
        self._max_threads = self.limiter.concurrency + max(2, self.limiter.concurrency // 4)
        self.grader = RunGrader(
            client, self.limiter, self.cache, self._policy, self._halt, self._note_fatal
        )
        # The schedule, owned by the coordinating thread alone.
        self._jobs: Iterator[Job] = iter(())
        self._exhausted = False
        # Per Job.limit_key (the model, and the provider's name for one other than zhipu: each
        # host has its own limits), in plan order.
        self._queues: dict[str, deque[_Task]] = {}
        self._next_in_line: dict[str, int] = {}
        self._needs_estimate: dict[str, bool] = {}
        self._models: list[str] = []
        self._judge_only: deque[_Task] = deque()  # cache hits and replays: checks only
        self._delayed: list[tuple[float, int, _Task]] = []  # retries: (due, seq, task) heap
        self._seq = itertools.count()
        self._rr = 0
        self._busy = 0  # tasks handed to workers and not reported back
        self._buffered = 0  # jobs read from the plan and not started
        self._dropped = 0  # jobs left without a result because the run stopped mid-retry
        self._lookahead = max(64, 4 * self.limiter.concurrency)
        self._backing_off: dict[tuple[str, str], float] = {}  # lane → when its last retry is due
        self._pace_at = 0.0

    def stop(self) -> None:
        """Take no new jobs and make no new attempts; in-flight calls finish."""
        self._interrupted = True
        self._halt.set()
        self._out.put(_WAKE)

    @property
    def halted(self) -> bool:
        """Whether the run is stopping (Ctrl-C, a fatal error, :meth:`stop`): no new work."""
        return self._halt.is_set()

    def record_answer(self, run_id: str, job: Job, completion: Completion, counts: RunCounts) -> Result:
        """Judge and store an answer obtained outside the schedule (a Batch API result line),
        exactly as a call's answer is: checks, cost, store, cache, progress."""
        result, grader_cost, grader_tokens = self._judge(job, completion)
        self._record(run_id, [_Done(_Task(job), result, grader_cost, grader_tokens)], counts)
        return result

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
        if self.options.cache == "replay":
            return self.cache.preflight_replay(jobs)
        use = self.options.cache == "use"
        preflight_budget(self.budget, jobs, self._estimator.estimate, lambda job: use and self.cache.has(job))
        return []

    # -- worker side ------------------------------------------------------------------------

    def _note_unreachable(self, info: ErrorInfo, provider: str = "zhipu") -> None:
        """A connection error that outlived its retries before any call got through means the
        server cannot be reached at all: stop at once with one line instead of failing every
        job the same way."""
        if self._abort is None:
            where = redact_url(self.client.base_url_of(provider)) if self.client is not None else "the API"
            fix = "--base-url / ZHIPUAI_BASE_URL" if provider == "zhipu" else f"the base_url of provider {provider}"
            self._abort = ErrorInfo(
                "unreachable", f"cannot reach {where} ({info.message}); check {fix} and the network, or pass --local"
            )
        self._halt.set()
        self._out.put(_WAKE)

    def _note_fatal(self, exc: CallError) -> None:
        if exc.info.kind in FATAL_KINDS:
            if self._abort is None:
                self._abort = exc.info
            self._halt.set()
            self._out.put(_WAKE)

    def _worker(self) -> None:
        inbox = self._inbox
        while True:
            task = inbox.get()
            if isinstance(task, _Signal):
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
        if task.attempts == 1:
            task.first_sent = started
        if self._answered_at is None:
            self._answered_at = started
        try:
            completion = self.client.attempt(job.model, job.mode, job.messages, job.params, job.provider)
        except CallError as exc:
            self._note_fatal(exc)  # before the slot frees, so no new call can slip in
            self.limiter.release(permit, None, rate_limited=exc.info.kind == "rate_limit")
            task.permit = None
            ended = time.perf_counter()
            silent = ended - (self._answered_at or ended)
            delay = self._policy.delay(exc, task.attempts, ended - task.first_sent, self._reached, silent)
            if delay is not None:
                # The coordinator schedules the retry, or, when the run is stopping, leaves the
                # job without a result so --resume runs it (not an error the model caused).
                return _Retry(task, exc, (ended - started) * 1000, delay)
            completion = Completion(error=self._policy.final_error(exc, task.attempts, ended - task.first_sent, silent))
            if exc.info.kind == "connection" and not self._reached:
                self._note_unreachable(exc.info, job.provider)
        else:
            self._reached = True
            self._answered_at = time.perf_counter()
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

    def _judge(self, job: Job, completion: Completion) -> tuple[Result, float, int]:
        prices = self.options.prices_for(job.provider)
        cost = price_table.known_cost(
            job.model, completion.prompt_tokens, completion.completion_tokens, prices, batch=job.mode == "batch"
        )
        ctx = CheckContext(
            job=job,
            suite_dir=self.options.suite_dir,
            prices=prices,
            grader=self.grader,
            judge_model=self.options.judge_model,
            embedding_model=self.options.embedding_model,
            cost=cost or 0.0,
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

    def _fill(self) -> None:
        """Read jobs from the plan until the look-ahead is full; a job the cache answers (or a
        replay miss) only needs its checks, the rest queue for their model."""
        while not self._exhausted and self._buffered < self._lookahead:
            job = next(self._jobs, None)
            if job is None:
                self._exhausted = True
                return
            task = _Task(job, completion=self.cache.answer(job))
            if task.completion is not None:
                self._judge_only.append(task)
            else:
                q = self._queues.get(job.limit_key)
                if q is None:
                    q = self._queues[job.limit_key] = deque()
                    self._models.append(job.limit_key)
                    cap = self.limiter.limit_for(job.limit_key).concurrency
                    self._next_in_line[job.limit_key] = min(cap or self.limiter.concurrency, self.limiter.concurrency)
                q.append(task)
                if len(q) <= self._next_in_line[job.limit_key]:
                    task.waiting_since = time.perf_counter()
            self._buffered += 1

    def _start_call(self, task: _Task, permit: Permit) -> None:
        """Send ``task``'s next attempt. Its queue time is counted from the moment it became
        one of the next N jobs of its model to go (N = the model's concurrency), i.e. when
        only the limits kept it from starting, or from the end of its retry backoff, up to
        now: the clock is read here, not when the dispatch round began, because starting the
        calls before it (and their threads) takes time that this call spent waiting."""
        if task.waiting_since is not None:
            task.queue_ms += (time.perf_counter() - task.waiting_since) * 1000
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
                permit, wait = self.limiter.try_acquire(task.job.limit_key, task.est_tokens)
                if permit is None:
                    blocked.append(entry)
                    if wait is not None:
                        wake = wait if wake is None else min(wake, wait)
                    continue
                self._start_call(task, permit)
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
                lane = models[(start + i) % n]
                q = self._queues[lane]
                while q and self._busy < self._max_threads:
                    task = q[0]
                    if task.est_tokens == 0 and self._estimates(lane):
                        task.est_tokens, task.local_prompt, task.est_cost = self._estimator.estimate(task.job)
                    if self._account.limited and not task.reserved:
                        if not self._account.reserve(task.est_tokens, task.est_cost):
                            if self._account.holding:
                                # Jobs in flight hold estimates; once they settle with what they
                                # really used, this one may fit (estimated again by then).
                                task.est_tokens = 0
                                return wake
                            self._budget_stop()
                            return wake
                        task.reserved = True
                    permit, wait = self.limiter.try_acquire(task.job.limit_key, task.est_tokens)
                    if permit is None:
                        if task.waiting_since is None:
                            task.waiting_since = now
                        if wait is not None:
                            wake = wait if wake is None else min(wake, wait)
                        # Estimate and reserve again when it can go: the jobs ahead of it may
                        # have taught the estimator their answers' length and grading cost.
                        self._unreserve(task)
                        task.est_tokens = 0
                        break
                    q.popleft()
                    self._buffered -= 1
                    self._start_call(task, permit)
                    k = self._next_in_line[task.job.limit_key]
                    if len(q) >= k and q[k - 1].waiting_since is None:
                        q[k - 1].waiting_since = now  # it just became one of the next to go
        return wake

    def _estimates(self, lane: str) -> bool:
        """Whether jobs of ``lane`` need a token and cost estimate before they go: only a
        budget or a tokens-per-minute limit reads one (counting a prompt's tokens is the
        coordinator's largest cost per job, so it is skipped when nothing would read it)."""
        needed = self._needs_estimate.get(lane)
        if needed is None:
            needed = self._needs_estimate[lane] = bool(self._account.limited) or self.limiter.limit_for(lane).tpm is not None
        return needed

    def _budget_stop(self) -> None:
        self._no_new_jobs = True
        self._account.hit = True

    def _unreserve(self, task: _Task) -> None:
        if task.reserved:
            self._account.unreserve(task.est_tokens, task.est_cost)
            task.reserved = False

    def _handle(self, item: _Done | _Retry | _Signal) -> _Done | None:
        """Book-keeping for one worker report (slots, retries, budget); returns a finished job
        for :meth:`_record`, which the loop calls only after new calls were dispatched."""
        if isinstance(item, _Signal):
            return None
        self._busy -= 1
        if isinstance(item, _Retry):
            task = item.task
            if self._halt.is_set():
                self._unreserve(task)
                self._dropped += 1
                return None
            delay = item.delay
            task.retry_ms += item.attempt_ms + delay * 1000
            due = time.perf_counter() + delay
            heapq.heappush(self._delayed, (due, next(self._seq), task))
            lane = (task.job.limit_key, DEFAULT_PROVIDER)  # the limiter's lane of that limit key
            if due > self._backing_off.get(lane, 0.0):
                self._backing_off[lane] = due
            return None
        task, result = item.task, item.result
        completion = result.completion
        if self._account.budget is not None:
            cached = completion.cached
            self._account.settle(
                (task.est_tokens, task.est_cost) if task.reserved else None,
                completion.total_tokens if not cached else 0,
                (result.cost or 0.0) if not cached else 0.0,
                item.grader_tokens,
                item.grader_cost,
            )
            task.reserved = False
            if self._account.exhausted:
                self._budget_stop()
        if not completion.cached and completion.error is None:
            self._estimator.learn(task.job.model, completion, task.local_prompt)
        if completion.error is None:
            self._estimator.learn_grading(task.job, item.grader_tokens, item.grader_cost)
        return item

    def _record(self, run_id: str, finished: list[_Done], counts: RunCounts) -> None:
        """Write the jobs that finished together (and their fresh answers to the cache) in one
        transaction, then tell the progress about each."""
        cache = [
            (self.cache.key(d.result.job.cache_key), d.result.job.model, d.result.completion)
            for d in finished
            if not d.result.completion.cached and d.result.completion.error is None
        ]
        with self._store_lock:
            self.store.add_results(run_id, [d.result for d in finished], cache)
        for done in finished:
            result = done.result
            counts.grader_cost += done.grader_cost
            counts.add(result)
            if self.on_result is not None:
                now = time.perf_counter()
                if (self._backing_off or counts.pace) and now - self._pace_at >= 0.2:  # what holds the run back
                    self._pace_at = now
                    counts.pace = pace_line(self.limiter.cut_lanes(), self._backing_off, now)
                self.on_result(result, counts)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
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
        previous_handler: Callable[[int, FrameType | None], object] | int | None = None
        if self.options.handle_sigint and threading.current_thread() is threading.main_thread():
            previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        abandoned = False
        try:
            self._loop(run_id, counts)
        except KeyboardInterrupt:
            abandoned = True
            self._interrupted = True
            self._halt.set()
        finally:
            if previous_handler is not None:  # None: not installed from Python, nothing to restore
                signal.signal(signal.SIGINT, previous_handler)
            for _ in self._threads:
                self._inbox.put(_STOP)
        not_run = self._count_not_run() if (self._halt.is_set() or self._no_new_jobs) else 0
        status = self._status(not_run, abandoned)
        with self._store_lock:
            self.store.finish_run(run_id, status)
        budget_message = None
        if status == "budget":
            planned = counts.total or counts.done + not_run + self._dropped
            budget_message = self._account.message(counts.done, planned, not_run + self._dropped)
        return RunOutcome(
            run_id=run_id,
            status=status,
            counts=counts,
            abort_reason=abort_message(self._abort) if self._abort else None,
            abort_kind=self._abort.kind if self._abort else None,
            not_run=not_run + self._dropped + (self._busy if abandoned else 0),
            budget_message=budget_message,
        )

    def _loop(self, run_id: str, counts: RunCounts) -> None:
        """Schedule, hand out and record until every job has a result or the run stops."""
        while True:
            if not self._halt.is_set() and not self._no_new_jobs:
                self._fill()
            wake = self._dispatch()
            if self._busy == 0:
                if self._halt.is_set():
                    return
                if not self._delayed and not self._judge_only and (
                    self._no_new_jobs or (self._exhausted and self._buffered == 0)
                ):
                    return
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
                self._record(run_id, finished, counts)

    def _status(self, not_run: int, abandoned: bool) -> RunStatus:
        if self._abort is not None:
            return "aborted"
        if self._interrupted and (not_run or abandoned or self._dropped):
            return "interrupted"
        if self._account.hit and (not_run or self._dropped):
            return "budget"
        return "complete"

    def _count_not_run(self) -> int:
        """Jobs that never got a result: still buffered, waiting to retry, or never read."""
        left = self._buffered + len(self._delayed)
        for _ in self._jobs:
            left += 1
        return left


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
