"""The runner's scheduling, limits, retries, timing, cache policy and budget.

Every run here goes through the real stack: ``Runner`` -> ``GLMClient`` -> the ``zhipuai`` SDK
-> loopback HTTP -> a ``LocalServer`` started for the test. Faults are the server's own
(``FaultConfig``, including the exact ``fail_first`` schedule), attempts are counted as the
requests the server received, and concurrency is what the server saw in flight
(``stats.max_in_flight``). Small fixed latencies keep the file fast. Only the limiter and the
token bucket, plain data structures, are tested on a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.plan import cache_key, job_id
from glmeval.records import CheckSpec, Completion, Job
from glmeval.run.client import GLMClient
from glmeval.run.ratelimit import Budget, Limiter, ModelLimit, TokenBucket, parse_model_values
from glmeval.run.runner import Runner, RunOptions, RunOutcome
from glmeval.session import Target
from glmeval.simulator import DEFAULT_API_KEY, FaultConfig, LocalServer
from glmeval.store import Store

CHAT = "/chat/completions"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A fresh local server per test, instant unless the test sets a latency or faults."""
    # Strict about its key: the fatal-auth test sends another one (the default accepts any).
    with LocalServer(port=0, speed=0.0, api_key=DEFAULT_API_KEY) as srv:
        yield srv


@pytest.fixture
def client(server: LocalServer) -> Iterator[GLMClient]:
    glm = GLMClient(server.api_key, server.base_url, timeout=10)
    yield glm
    glm.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "r.db")
    yield s
    s.close()


def make_jobs(
    n: int,
    model: str = "glm-4",
    prefix: str = "你好",
    params: dict[str, Any] | None = None,
    mode: str = "sync",
    system: str | None = None,
) -> list[Job]:
    """``n`` jobs asking ``"{prefix} {i}"``; the simulator greets back, so they pass."""
    jobs = []
    for i in range(n):
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": f"{prefix} {i}"})
        case = f"{prefix}{i}"
        sent = dict(params or {})
        jobs.append(
            Job(
                id=job_id("t", case, model, 0),
                suite="t",
                case_id=case,
                variant_id=model,
                variant={"model": model},
                repeat=0,
                model=model,
                mode=mode,  # type: ignore[arg-type]
                messages=messages,
                params=sent,
                checks=[CheckSpec("contains", {"value": "你好"})],
                cache_key=cache_key(model, mode, messages, sent, 0),
            )
        )
    return jobs


def run(
    store: Store,
    client: GLMClient | None,
    jobs: list[Job],
    on_result: Callable[..., None] | None = None,
    **options: Any,
) -> tuple[Runner, RunOutcome, str]:
    options.setdefault("backoff_base", 0.01)
    options.setdefault("seed", 1)
    runner = Runner(client, store, RunOptions(**options), on_result=on_result)
    run_id = store.start_run("t", total_jobs=len(jobs))
    outcome = runner.run(jobs, run_id, total=len(jobs))
    return runner, outcome, run_id


def rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in store.iter_results(run_id)]


def calls(server: LocalServer) -> int:
    """Chat requests the server received: every attempt the runner made."""
    return server.stats.by_path.get(CHAT, 0)


def cache_rows(store: Store) -> int:
    return int(store.conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0])


# -- token bucket and limiter (fake clock) ------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_paces_at_the_stated_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)  # one per second, at most one at once
    assert bucket.wait_for(1) == 0
    bucket.take(1)
    assert bucket.wait_for(1) == pytest.approx(1.0)
    clock.now += 0.5
    assert bucket.wait_for(1) == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.wait_for(1) == 0


def test_token_bucket_lets_an_oversized_request_through_into_debt() -> None:
    clock = Clock()
    bucket = TokenBucket(6000, clock)  # 100 tokens/s, capacity 100
    assert bucket.wait_for(500) == 0  # a full bucket admits it...
    bucket.take(500)
    assert bucket.wait_for(10) == pytest.approx(4.1)  # ...and the debt delays the next
    bucket.give_back(400)  # the answer was smaller than estimated
    assert bucket.wait_for(10) == pytest.approx(0.1)


def test_limiter_global_and_per_model_concurrency() -> None:
    limiter = Limiter(3, {"a": ModelLimit(concurrency=1)})
    first, _ = limiter.try_acquire("a")
    assert first is not None
    assert limiter.try_acquire("a") == (None, None)  # a's own slot is taken
    b1, _ = limiter.try_acquire("b")
    b2, _ = limiter.try_acquire("b")
    assert b1 and b2
    assert limiter.try_acquire("b") == (None, None)  # global cap of 3
    limiter.release(first)
    assert limiter.try_acquire("a")[0] is not None


def test_limiter_rate_limit_reports_the_wait_and_settles_tokens() -> None:
    clock = Clock()
    limiter = Limiter(10, {"*": ModelLimit(rpm=60, tpm=600)}, clock=clock)
    permit, wait = limiter.try_acquire("glm-4", tokens=10)
    assert permit is not None and wait is None
    permit2, wait2 = limiter.try_acquire("glm-4", tokens=1)
    assert permit2 is None and wait2 == pytest.approx(1.0)  # the RPM bucket, not concurrency
    other, _ = limiter.try_acquire("glm-3-turbo", tokens=1)  # "*" gives each model its own buckets
    assert other is not None
    limiter.release(permit, actual_tokens=2)  # estimate 10, used 2: 8 come back


class WatchedClock(Clock):
    """A fake clock that also says when a given thread has read it: :meth:`Limiter.acquire`
    (without a timeout) first reads the clock inside its wait loop, after it registered as a
    waiter, so the test knows the waiter is queued without sleeping and hoping."""

    def __init__(self) -> None:
        super().__init__()
        self.watched: threading.Thread | None = None
        self.read = threading.Event()

    def __call__(self) -> float:
        if threading.current_thread() is self.watched:
            self.read.set()
        return self.now


def blocked_waiter(limiter: Limiter, clock: WatchedClock, model: str, tokens: int, stop: threading.Event) -> tuple[threading.Thread, list[object]]:
    """A thread blocked in ``limiter.acquire(model, tokens)`` (as a judge call is), once this returns."""
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire(model, tokens, stop=stop)), daemon=True)
    clock.watched = waiter
    waiter.start()
    assert clock.read.wait(5), "the waiter never reached acquire()'s wait loop"
    assert not got  # it is waiting, not served
    return waiter, got


def test_blocking_acquire_goes_before_new_jobs() -> None:
    """A blocked judge call goes before new jobs: while it waits, a new job gets neither a free
    global slot nor its model's turn. In each case the waiter is held back by a limit the new
    job is not (its model's cap; a larger token estimate), so the slot is free *for the new
    job* at the moment it asks: only the precedence rule can refuse it, and no race between
    the threads decides the outcome."""
    stop = threading.Event()
    try:
        # The global slot: 2 slots, model b capped at 1. a and b hold one each; the waiter wants b.
        clock = WatchedClock()
        limiter = Limiter(2, {"b": ModelLimit(concurrency=1)}, clock=clock)
        a_held, _ = limiter.try_acquire("a")
        b_held, _ = limiter.try_acquire("b")
        assert a_held is not None and b_held is not None
        waiter, got = blocked_waiter(limiter, clock, "b", 0, stop)
        limiter.release(a_held)  # a global slot frees; the waiter still cannot use it (b's cap)
        assert limiter.try_acquire("a") == (None, None)  # kept for the waiter, not given to a new job
        limiter.release(b_held)
        waiter.join(5)
        assert got and got[0] is not None  # the waiter got it

        # The model's turn: glm-4 at 10 tokens/s (bucket of 10), drained; the waiter needs 8 tokens.
        clock = WatchedClock()
        limiter = Limiter(4, {"glm-4": ModelLimit(tpm=600)}, clock=clock)
        drained, _ = limiter.try_acquire("glm-4", tokens=10)
        assert drained is not None
        waiter, got = blocked_waiter(limiter, clock, "glm-4", 8, stop)
        clock.now += 0.2  # 2 tokens back: enough for a new job of 1, not for the waiter
        assert limiter.try_acquire("glm-4", tokens=1) == (None, None)  # glm-4's turn is the waiter's
        assert limiter.try_acquire("other", tokens=1)[0] is not None  # other models are not held up
        clock.now += 1.0
        waiter.join(5)
        assert got and got[0] is not None
    finally:
        stop.set()


def test_budget_reserves_and_settles() -> None:
    budget = Budget(max_cost=1.0, max_tokens=100)
    assert budget.reserve(0.4, 40)
    assert budget.reserve(0.4, 40)
    assert not budget.reserve(0.4, 10)  # cost would pass 1.0
    budget.settle(0.4, 40, 0.1, 10)
    assert budget.reserve(0.4, 10)
    assert not budget.exhausted
    budget.add(2.0, 0)
    assert budget.exhausted
    assert "¥" in budget.describe() and "tokens" in budget.describe()


def test_parse_model_values() -> None:
    assert parse_model_values(("glm-4=4", "8"), "--x", integer=True) == {"glm-4": 4, "*": 8}
    assert parse_model_values(("glm-4=0.5,glm-3-turbo=60",), "--rpm") == {"glm-4": 0.5, "glm-3-turbo": 60.0}
    for bad in ("glm-4=", "glm-4=-1", "=3", "glm-4=x"):
        with pytest.raises(ValueError, match="--x"):
            parse_model_values((bad,), "--x")
    with pytest.raises(ValueError):
        parse_model_values(("glm-4=1.5",), "--x", integer=True)


# -- scheduling ---------------------------------------------------------------------------------


def test_global_concurrency_is_respected_and_used(server: LocalServer, client: GLMClient, store: Store) -> None:
    server.fixed_latency_ms = 20
    _, outcome, run_id = run(store, client, make_jobs(40), concurrency=4)
    assert outcome.status == "complete" and len(rows(store, run_id)) == 40
    assert all(r["status"] == "pass" for r in rows(store, run_id))
    assert calls(server) == 40
    assert server.stats.max_in_flight == 4  # never more, and the slots were all used


def test_per_model_limit_does_not_starve_other_models(server: LocalServer, client: GLMClient, store: Store) -> None:
    server.fixed_latency_ms = 20
    order: list[str] = []
    jobs = [j for pair in zip(make_jobs(20, "glm-4"), make_jobs(20, "glm-4-flash")) for j in pair]
    _, outcome, _ = run(
        store, client, jobs, on_result=lambda result, counts: order.append(result.job.model),
        concurrency=6, model_limits={"glm-4": ModelLimit(concurrency=1)},
    )
    assert outcome.status == "complete" and len(order) == 40
    assert server.stats.by_model == {"glm-4": 20, "glm-4-flash": 20}
    seen = server.stats.max_in_flight_by_model
    assert seen["glm-4"] == 1
    assert seen["glm-4-flash"] >= 4  # the held-back model does not hold up the other
    last = {m: max(i for i, model in enumerate(order) if model == m) for m in ("glm-4", "glm-4-flash")}
    assert last["glm-4-flash"] < last["glm-4"]


def test_rate_limit_time_is_queue_time_not_latency(server: LocalServer, client: GLMClient, store: Store) -> None:
    """Honest timing: waiting for the RPM bucket goes to queue_ms, latency stays the call's own.

    No bound depends on how fast this machine is (under ``pytest -n 2`` on two busy cores one
    loopback call can take hundreds of ms): latency is measured against the server's configured
    latency, and against when each result arrived. A job's wait and its call are disjoint
    stretches between the run's start and its result, so they fit in that span; a latency that
    also counted the wait would count the wait twice, and the jobs held back by the bucket
    (half a second, whatever the load) would not fit.
    """
    server.fixed_latency_ms = latency = 30.0
    arrived: dict[str, float] = {}

    def on_result(result: Any, counts: Any) -> None:
        arrived[result.job.id] = time.perf_counter()

    started = time.perf_counter()
    _, outcome, run_id = run(
        store, client, make_jobs(30), on_result, concurrency=30, model_limits={"glm-4": ModelLimit(rpm=1200)}
    )
    elapsed = time.perf_counter() - started
    assert outcome.status == "complete"
    assert calls(server) == 30
    assert elapsed >= 0.4  # 20 at once (one second's worth), then 20/s
    stored = rows(store, run_id)
    assert max(r["queue_ms"] for r in stored) >= 300  # the last ones waited ~0.5 s for the bucket
    for r in stored:
        assert r["retry_ms"] == 0
        assert r["latency_ms"] >= latency, r  # the call itself, the server's time included
        span_ms = (arrived[r["job_id"]] - started) * 1000
        assert r["queue_ms"] + r["latency_ms"] <= span_ms, r  # the wait is not in the latency


def test_tokens_per_minute_paces_by_actual_usage(server: LocalServer, client: GLMClient, store: Store) -> None:
    # A long system prompt: about 1,500 tokens per call as the server counts them.
    poem = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。" * 90  # 16 tokens each (1.6 characters a token)
    started = time.perf_counter()
    # 3,000 tokens per second, ~1,500 used per call: 4 calls need about one second.
    _, outcome, run_id = run(
        store, client, make_jobs(4, system=poem), concurrency=4, model_limits={"glm-4": ModelLimit(tpm=60 * 3000)}
    )
    elapsed = time.perf_counter() - started
    assert outcome.status == "complete"
    used = [r["total_tokens"] for r in rows(store, run_id)]
    assert all(1400 <= t <= 1600 for t in used), used
    assert calls(server) == 4
    assert elapsed >= 0.6


def test_plan_is_read_lazily(client: GLMClient, store: Store) -> None:
    """Memory stays flat: the runner never pulls more than its look-ahead from the plan."""
    read = 0
    most_ahead = 0

    def jobs() -> Iterator[Job]:
        nonlocal read
        for job in make_jobs(400):
            read += 1
            yield job

    def on_result(result: object, counts: Any) -> None:
        nonlocal most_ahead
        most_ahead = max(most_ahead, read - counts.done)

    runner = Runner(client, store, RunOptions(concurrency=4), on_result=on_result)
    run_id = store.start_run("t")
    assert runner.run(jobs(), run_id).status == "complete"
    assert read == 400 and len(rows(store, run_id)) == 400
    assert most_ahead <= 64 + 2 * 4 + 1


# -- retries --------------------------------------------------------------------------------------


def test_retry_after_is_honoured_and_timing_split(server: LocalServer, client: GLMClient, store: Store) -> None:
    server.faults = FaultConfig(fail_first=2, fail_kind="rate_limit", retry_after=0.1)  # 429, 429, then 200
    _, outcome, run_id = run(store, client, make_jobs(1), backoff_base=5.0)  # Retry-After wins over backoff
    [row] = rows(store, run_id)
    assert row["status"] == "pass" and row["attempts"] == 3
    assert server.stats.by_status == {429: 2, 200: 1}
    assert 200 <= row["retry_ms"] < 1500
    assert row["latency_ms"] < 50  # only the attempt that answered


@pytest.mark.parametrize(
    "kind, faults, mode, timeout",
    [
        ("server", FaultConfig(server_error=1.0), "sync", 10.0),
        ("timeout", FaultConfig(slow=1.0, slow_ms=400), "sync", 0.1),
        ("connection", FaultConfig(reset=1.0), "sync", 10.0),
        ("stream_cut", FaultConfig(cut_stream=1.0), "stream", 10.0),
    ],
)
def test_retryable_kinds_retry_until_the_limit(
    server: LocalServer, store: Store, kind: str, faults: FaultConfig, mode: str, timeout: float
) -> None:
    server.faults = faults
    glm = GLMClient(server.api_key, server.base_url, timeout=timeout)
    try:
        _, _, run_id = run(store, glm, make_jobs(1, mode=mode), retries=2)
    finally:
        glm.close()
    [row] = rows(store, run_id)
    assert row["status"] == "error" and row["error_kind"] == kind and row["attempts"] == 3
    assert calls(server) == 3


@pytest.mark.parametrize(
    "kind, code, faults, params",
    [
        ("bad_request", "1210", None, {"max_tokens": 4096}),  # glm-4 allows at most 4095
        ("content_filter", "1301", FaultConfig(content_filter=1.0), {}),
    ],
)
def test_bad_request_and_content_filter_are_not_retried(
    server: LocalServer, client: GLMClient, store: Store, kind: str, code: str, faults: FaultConfig | None, params: dict[str, Any]
) -> None:
    server.faults = faults
    _, _, run_id = run(store, client, make_jobs(1, params=params))
    [row] = rows(store, run_id)
    assert row["attempts"] == 1 and row["error_kind"] == kind and row["error_code"] == code
    assert calls(server) == 1 and server.stats.by_status == {400: 1}


@pytest.mark.parametrize("kind, words", [("auth", "authentication failed"), ("balance", "no balance")])
def test_fatal_errors_stop_the_whole_run(server: LocalServer, store: Store, kind: str, words: str) -> None:
    server.fixed_latency_ms = 10
    if kind == "balance":
        server.faults = FaultConfig(balance=1.0)
        key = server.api_key
    else:
        key = "not.the-right-key"
    glm = GLMClient(key, server.base_url, timeout=10)
    try:
        _, outcome, run_id = run(store, glm, make_jobs(200), concurrency=4)
    finally:
        glm.close()
    assert outcome.status == "aborted"
    assert outcome.abort_reason and words in outcome.abort_reason
    assert outcome.abort_kind == kind
    assert calls(server) <= 8  # stopped at once: only what was already in flight
    assert store.get_run(run_id).status == "aborted"  # type: ignore[union-attr]


# -- cache ---------------------------------------------------------------------------------------


def test_cache_is_written_always_but_read_only_when_asked(server: LocalServer, client: GLMClient, store: Store) -> None:
    jobs = make_jobs(5)
    run(store, client, jobs)  # default: cache "off"
    assert calls(server) == 5 and cache_rows(store) == 5
    run(store, client, jobs)  # still off: calls again
    assert calls(server) == 10
    _, outcome, run_id = run(store, client, jobs, cache="use")
    assert calls(server) == 10  # not one request
    assert all(r["cached"] == 1 and r["attempts"] == 0 and r["status"] == "pass" for r in rows(store, run_id))
    assert outcome.counts.cached == 5


def test_errors_are_never_cached(server: LocalServer, client: GLMClient, store: Store) -> None:
    _, _, run_id = run(store, client, make_jobs(3, params={"max_tokens": 4096}))
    assert {r["error_kind"] for r in rows(store, run_id)} == {"bad_request"}
    assert cache_rows(store) == 0


def test_replay_answers_only_from_the_cache(server: LocalServer, client: GLMClient, store: Store) -> None:
    run(store, client, make_jobs(3))
    assert calls(server) == 3
    _, outcome, run_id = run(store, client, make_jobs(4), cache="replay")
    assert server.stats.requests == 3  # replay sends nothing, not even the miss
    stored = {r["case_id"]: r for r in rows(store, run_id)}
    assert [stored[f"你好{i}"]["cached"] for i in range(3)] == [1, 1, 1]
    assert stored["你好3"]["error_kind"] == "replay_miss"
    assert outcome.status == "complete"
    # Replay needs no client at all (no key): the same answers, from the same endpoint's namespace.
    _, _, run_id = run(store, None, make_jobs(3), cache="replay", cache_namespace=client.cache_namespace)
    assert {r["cached"] for r in rows(store, run_id)} == {1}


def test_local_answers_do_not_answer_for_the_real_api(server: LocalServer, client: GLMClient, store: Store) -> None:
    with Target(local=True, speed=0.0) as local:  # glmeval run --local: its own server
        assert local.client is not None and local.client.cache_namespace == "local"
        run(store, local.client, make_jobs(2))
        assert calls(local.server) == 2
    assert client.cache_namespace == f"url:{server.base_url}"  # another endpoint: its own namespace
    _, _, run_id = run(store, client, make_jobs(2), cache="replay")
    assert {r["error_kind"] for r in rows(store, run_id)} == {"replay_miss"}
    _, _, run_id = run(store, client, make_jobs(2), cache="replay", cache_namespace="local")
    assert {r["cached"] for r in rows(store, run_id)} == {1}
    assert server.stats.requests == 0


# -- budget and stopping ----------------------------------------------------------------------------


def test_max_tokens_stops_before_it_would_be_exceeded(server: LocalServer, client: GLMClient, store: Store) -> None:
    server.fixed_latency_ms = 5
    budget = Budget(max_tokens=200)
    jobs = make_jobs(50, params={"max_tokens": 10})  # ~7 prompt + 10 completion tokens each
    _, outcome, run_id = run(store, client, jobs, concurrency=2, budget=budget)
    stored = rows(store, run_id)
    assert outcome.status == "budget"
    assert 0 < len(stored) < 50 and outcome.not_run == 50 - len(stored)
    assert calls(server) == len(stored)  # nothing sent beyond what was stored
    assert sum(r["total_tokens"] for r in stored) <= 200
    assert outcome.budget_message and "budget reached" in outcome.budget_message
    assert store.get_run(run_id).status == "budget"  # type: ignore[union-attr]


def test_max_cost_counts_real_prices(server: LocalServer, client: GLMClient, store: Store) -> None:
    budget = Budget(max_cost=0.01)  # glm-4 costs 100 yuan per 1M tokens: ~12 tokens = 0.0012
    _, outcome, run_id = run(store, client, make_jobs(20, params={"max_tokens": 5}), concurrency=1, budget=budget)
    stored = rows(store, run_id)
    assert outcome.status == "budget"
    assert 0 < len(stored) < 20 and calls(server) == len(stored)
    assert sum(r["cost"] for r in stored) <= 0.01


def test_stop_lets_in_flight_calls_finish(server: LocalServer, client: GLMClient, store: Store) -> None:
    server.fixed_latency_ms = 50
    runner = Runner(client, store, RunOptions(concurrency=4))
    runner.on_result = lambda result, counts: runner.stop() if counts.done == 2 else None
    run_id = store.start_run("t")
    outcome = runner.run(make_jobs(100), run_id, total=100)
    assert outcome.status == "interrupted"
    stored = rows(store, run_id)
    assert len(stored) == calls(server)  # every call that started has its result stored
    assert all(r["status"] == "pass" for r in stored)  # finished, not cut off
    assert len(stored) < 20 and outcome.not_run == 100 - len(stored)
    assert server.stats.in_flight == 0
    assert store.get_run(run_id).status == "interrupted"  # type: ignore[union-attr]


# -- the CLI's one-line stop on a bad key or an empty balance ----------------------------------------


SUITE = """\
name: stops
model: glm-4
repeat: 20
messages:
  - {role: user, content: 你好}
cases:
  - id: hello
    checks:
      - contains: 你好
"""


def test_bad_key_stops_the_run_with_one_line(tmp_path: Path, local_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    monkeypatch.setenv("ZHIPUAI_API_KEY", "not.the-right-key")
    before = local_server.stats.requests
    result = CliRunner().invoke(
        main, ["run", str(suite), "--base-url", local_server.base_url, "--db", str(tmp_path / "r.db"), "-q", "--no-report", "-j", "2"]
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: run stopped: authentication failed"), lines
    assert "right-key" not in result.stderr
    assert local_server.stats.requests - before <= 2


def test_empty_balance_stops_the_run_with_one_line(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["run", str(suite), "--local", "--fault", "balance=1", "--db", str(tmp_path / "r.db"), "-q", "--no-report"],
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no balance left" in lines[0] and "1113" in lines[0], lines
    assert Store(tmp_path / "r.db").list_runs()[0].status == "aborted"


def test_fault_flags_need_local(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(suite), "--fault", "rate_limit=0.1", "--db", str(tmp_path / "r.db")])
    assert result.exit_code == 2 and "--local" in result.stderr
    result = CliRunner().invoke(main, ["run", str(suite), "--local", "--fault", "bogus=1", "--db", str(tmp_path / "r.db")])
    assert result.exit_code == 2 and "bogus" in result.stderr


def test_progress_prints_plain_lines_when_not_a_terminal() -> None:
    import io

    from glmeval.cli.run import Progress
    from glmeval.records import Result
    from glmeval.run.runner import RunCounts

    out = io.StringIO()
    start = RunCounts(total=10, done=4, passed=4, tokens=100, cost=0.01)
    job = make_jobs(1)[0]
    with Progress(10, "suite", stream=out, start=start, every=0.0) as progress:
        counts = RunCounts(total=10, done=5, passed=4, failed=1, retried=2, tokens=130, cost=0.013)
        answer = Completion(text="你好", finish_reason="stop", prompt_tokens=10, completion_tokens=5, total_tokens=15)
        progress.update(Result(job, answer, [], False, 0.0), counts)
    line = out.getvalue().strip()
    assert line.startswith("[suite] 5/10 pass 4 fail 1 err 0 retried 2 tok 130 ¥0.0130 eta ")
    assert "\x1b" not in line  # no terminal escapes in CI logs
