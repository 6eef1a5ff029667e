"""The runner's scheduling, limits, retries, timing, cache policy and budget.

Most tests drive the runner with a scripted stand-in for GLMClient, so each behaviour is
isolated and timing is controlled; the end-to-end paths through the real SDK and the local
server are in test_resilience.py and test_resume.py. The limiter and the token bucket are
tested on a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterator

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.client import CallError
from glmeval.ratelimit import Budget, Limiter, ModelLimit, TokenBucket, parse_model_values
from glmeval.records import CheckSpec, Completion, ErrorInfo, Job
from glmeval.runner import RunOptions, Runner
from glmeval.store import Store

class FakeClient:
    """Stands in for GLMClient: records calls and concurrency; ``script(model, n)`` decides each
    attempt (``n`` counts this request's attempts, from 1)."""

    cache_namespace = ""

    def __init__(self, script: Callable[[str, int], Completion | CallError] | None = None, delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.lock = threading.Lock()
        self.calls: list[tuple[str, float]] = []
        self.active = 0
        self.max_active = 0
        self.active_by_model: dict[str, int] = defaultdict(int)
        self.max_by_model: dict[str, int] = defaultdict(int)
        self.seen: dict[str, int] = defaultdict(int)

    def attempt(self, model: str, mode: str, messages: list[dict], params: dict) -> Completion:  # type: ignore[type-arg]
        key = f"{model}|{messages[-1]['content']}"
        with self.lock:
            self.calls.append((model, time.perf_counter()))
            self.seen[key] += 1
            n = self.seen[key]
            self.active += 1
            self.active_by_model[model] += 1
            self.max_active = max(self.max_active, self.active)
            self.max_by_model[model] = max(self.max_by_model[model], self.active_by_model[model])
        started = time.perf_counter()
        try:
            if self.delay:
                time.sleep(self.delay)
            outcome = self.script(model, n) if self.script else _ok()
        finally:
            with self.lock:
                self.active -= 1
                self.active_by_model[model] -= 1
        if isinstance(outcome, CallError):
            raise outcome
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        return outcome


def _ok(text: str = "ok 好") -> Completion:
    return Completion(text=text, finish_reason="stop", prompt_tokens=10, completion_tokens=5, total_tokens=15)


def _err(kind: str, status: int | None = None, code: str | None = None, retry_after: float | None = None) -> CallError:
    return CallError(ErrorInfo(kind, f"{kind} (scripted)", status, code), retry_after)


def make_jobs(n: int, model: str = "glm-4", prefix: str = "q", params: dict | None = None) -> list[Job]:  # type: ignore[type-arg]
    return [
        Job(
            id=f"{model}-{prefix}{i}",
            suite="t",
            case_id=f"{prefix}{i}",
            variant_id=model,
            variant={"model": model},
            repeat=0,
            model=model,
            mode="sync",
            messages=[{"role": "user", "content": f"{prefix} {i}"}],
            params=dict(params or {}),
            checks=[CheckSpec("contains", {"value": "ok"})],
            cache_key=f"key-{model}-{prefix}{i}",
        )
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "r.db")
    yield s
    s.close()


def run(store: Store, client: FakeClient | None, jobs: list[Job], **options: object) -> tuple[Runner, object, str]:
    options.setdefault("backoff_base", 0.01)
    options.setdefault("seed", 1)
    runner = Runner(client, store, RunOptions(**options))  # type: ignore[arg-type]
    run_id = store.start_run("t", total_jobs=len(jobs))
    outcome = runner.run(jobs, run_id, total=len(jobs))
    return runner, outcome, run_id


def rows(store: Store, run_id: str) -> list[dict]:  # type: ignore[type-arg]
    return [dict(r) for r in store.iter_results(run_id)]


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


def test_blocking_acquire_goes_before_new_jobs() -> None:
    limiter = Limiter(1)
    held, _ = limiter.try_acquire("glm-4")
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire("glm-4", timeout=5)))
    waiter.start()
    time.sleep(0.05)
    limiter.release(held)  # type: ignore[arg-type]
    waiter.join(5)
    assert got and got[0] is not None
    assert limiter.try_acquire("glm-4") == (None, None)


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


def test_global_concurrency_is_respected_and_used(store: Store) -> None:
    client = FakeClient(delay=0.02)
    _, outcome, run_id = run(store, client, make_jobs(40), concurrency=4)
    assert outcome.status == "complete" and len(rows(store, run_id)) == 40  # type: ignore[attr-defined]
    assert client.max_active == 4


def test_per_model_limit_does_not_starve_other_models(store: Store) -> None:
    client = FakeClient(delay=0.02)
    jobs = [j for pair in zip(make_jobs(20, "slow-model"), make_jobs(20, "glm-4")) for j in pair]
    _, outcome, run_id = run(store, client, jobs, concurrency=6, model_limits={"slow-model": ModelLimit(concurrency=1)})
    assert outcome.status == "complete"  # type: ignore[attr-defined]
    assert client.max_by_model["slow-model"] == 1
    assert client.max_by_model["glm-4"] >= 4  # the held-back model does not hold up the other
    last = {m: max(t for model, t in client.calls if model == m) for m in ("slow-model", "glm-4")}
    assert last["glm-4"] < last["slow-model"]


def test_rate_limit_time_is_queue_time_not_latency(store: Store) -> None:
    """Honest timing: waiting for the RPM bucket goes to queue_ms, latency stays the call's own."""
    client = FakeClient()
    started = time.perf_counter()
    _, outcome, run_id = run(store, client, make_jobs(30), concurrency=30, model_limits={"glm-4": ModelLimit(rpm=1200)})
    elapsed = time.perf_counter() - started
    assert outcome.status == "complete"  # type: ignore[attr-defined]
    assert elapsed >= 0.4  # 20 at once (one second's worth), then 20/s
    stored = rows(store, run_id)
    assert max(r["queue_ms"] for r in stored) >= 300
    assert max(r["latency_ms"] for r in stored) < 100


def test_tokens_per_minute_paces_by_actual_usage(store: Store) -> None:
    big = Completion(text="ok", finish_reason="stop", prompt_tokens=500, completion_tokens=1000, total_tokens=1500)
    client = FakeClient(lambda model, n: Completion(**{**big.__dict__}))
    started = time.perf_counter()
    # 3,000 tokens per second, 1,500 used per call: 4 calls need about one second.
    _, outcome, _ = run(store, client, make_jobs(4), concurrency=4, model_limits={"glm-4": ModelLimit(tpm=60 * 3000)})
    assert outcome.status == "complete"  # type: ignore[attr-defined]
    assert time.perf_counter() - started >= 0.6


def test_plan_is_read_lazily(store: Store) -> None:
    """Memory stays flat: the runner never pulls more than its look-ahead from the plan."""
    read = 0
    most_ahead = 0

    def jobs() -> Iterator[Job]:
        nonlocal read
        for job in make_jobs(2000):
            read += 1
            yield job

    def on_result(result: object, counts: object) -> None:
        nonlocal most_ahead
        most_ahead = max(most_ahead, read - counts.done)  # type: ignore[attr-defined]

    runner = Runner(FakeClient(), store, RunOptions(concurrency=4), on_result=on_result)
    run_id = store.start_run("t")
    assert runner.run(jobs(), run_id).status == "complete"
    assert most_ahead <= 64 + 2 * 4 + 1


# -- retries --------------------------------------------------------------------------------------


def test_retry_after_is_honoured_and_timing_split(store: Store) -> None:
    client = FakeClient(lambda model, n: _err("rate_limit", 429, "1302", retry_after=0.1) if n <= 2 else _ok())
    _, outcome, run_id = run(store, client, make_jobs(1), backoff_base=5.0)  # Retry-After wins over backoff
    [row] = rows(store, run_id)
    assert row["status"] == "pass" and row["attempts"] == 3
    assert 200 <= row["retry_ms"] < 1500
    assert row["latency_ms"] < 50  # only the attempt that answered


def test_retryable_kinds_retry_until_the_limit(store: Store) -> None:
    for kind in ("server", "timeout", "connection", "stream_cut"):
        client = FakeClient(lambda model, n, kind=kind: _err(kind))
        _, outcome, run_id = run(store, client, make_jobs(1, prefix=kind), retries=2)
        [row] = rows(store, run_id)
        assert row["status"] == "error" and row["error_kind"] == kind and row["attempts"] == 3


def test_bad_request_and_content_filter_are_not_retried(store: Store) -> None:
    for kind, status, code in (("bad_request", 400, "1210"), ("content_filter", 400, "1301")):
        client = FakeClient(lambda model, n, k=kind, s=status, c=code: _err(k, s, c))
        _, outcome, run_id = run(store, client, make_jobs(1, prefix=kind))
        [row] = rows(store, run_id)
        assert row["attempts"] == 1 and row["error_kind"] == kind and row["error_code"] == code
        assert len(client.calls) == 1


@pytest.mark.parametrize("kind, status, code, words", [("auth", 401, "1000", "authentication failed"), ("balance", 429, "1113", "no balance")])
def test_fatal_errors_stop_the_whole_run(store: Store, kind: str, status: int, code: str, words: str) -> None:
    client = FakeClient(lambda model, n: _err(kind, status, code), delay=0.01)
    _, outcome, run_id = run(store, client, make_jobs(200), concurrency=4)
    assert outcome.status == "aborted"  # type: ignore[attr-defined]
    assert words in outcome.abort_reason  # type: ignore[attr-defined]
    assert len(client.calls) <= 8  # stopped at once: only what was already in flight
    assert store.get_run(run_id).status == "aborted"  # type: ignore[union-attr]


# -- cache ---------------------------------------------------------------------------------------


def test_cache_is_written_always_but_read_only_when_asked(store: Store) -> None:
    jobs = make_jobs(5)
    first = FakeClient()
    run(store, first, jobs)  # default: cache "off"
    assert store.conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == 5
    again = FakeClient()
    run(store, again, jobs)  # still off: calls again
    assert len(again.calls) == 5
    cached = FakeClient()
    _, outcome, run_id = run(store, cached, jobs, cache="use")
    assert len(cached.calls) == 0
    assert all(r["cached"] == 1 and r["attempts"] == 0 and r["status"] == "pass" for r in rows(store, run_id))
    assert outcome.counts.cached == 5  # type: ignore[attr-defined]


def test_errors_are_never_cached(store: Store) -> None:
    run(store, FakeClient(lambda m, n: _err("bad_request", 400, "1210")), make_jobs(3))
    assert store.conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == 0


def test_replay_answers_only_from_the_cache(store: Store) -> None:
    run(store, FakeClient(), make_jobs(3))
    _, outcome, run_id = run(store, None, make_jobs(4), cache="replay")  # no client at all
    stored = {r["case_id"]: r for r in rows(store, run_id)}
    assert [stored[f"q{i}"]["cached"] for i in range(3)] == [1, 1, 1]
    assert stored["q3"]["error_kind"] == "replay_miss"
    assert outcome.status == "complete"  # type: ignore[attr-defined]


def test_local_answers_do_not_answer_for_the_real_api(store: Store) -> None:
    local = FakeClient()
    local.cache_namespace = "local"
    run(store, local, make_jobs(2))
    _, _, run_id = run(store, None, make_jobs(2), cache="replay")
    assert {r["error_kind"] for r in rows(store, run_id)} == {"replay_miss"}
    _, _, run_id = run(store, None, make_jobs(2), cache="replay", cache_namespace="local")
    assert {r["cached"] for r in rows(store, run_id)} == {1}


# -- budget and stopping ----------------------------------------------------------------------------


def test_max_tokens_stops_before_it_would_be_exceeded(store: Store) -> None:
    client = FakeClient(delay=0.005)
    budget = Budget(max_tokens=200)
    jobs = make_jobs(50, params={"max_tokens": 10})  # ~14 tokens estimated, 15 used each
    _, outcome, run_id = run(store, client, jobs, concurrency=2, budget=budget)
    stored = rows(store, run_id)
    assert outcome.status == "budget"  # type: ignore[attr-defined]
    assert 0 < len(stored) < 50 and outcome.not_run == 50 - len(stored)  # type: ignore[attr-defined]
    assert sum(r["total_tokens"] for r in stored) <= 200
    assert "budget reached" in outcome.budget_message  # type: ignore[attr-defined]
    assert store.get_run(run_id).status == "budget"  # type: ignore[union-attr]


def test_max_cost_counts_real_prices(store: Store) -> None:
    budget = Budget(max_cost=0.01)  # glm-4 costs 100 yuan per 1M tokens: 15 tokens = 0.0015
    _, outcome, run_id = run(store, FakeClient(), make_jobs(20, params={"max_tokens": 5}), concurrency=1, budget=budget)
    assert outcome.status == "budget"  # type: ignore[attr-defined]
    assert sum(r["cost"] for r in rows(store, run_id)) <= 0.01


def test_stop_lets_in_flight_calls_finish(store: Store) -> None:
    client = FakeClient(delay=0.05)
    runner = Runner(client, store, RunOptions(concurrency=4))
    runner.on_result = lambda result, counts: runner.stop() if counts.done == 2 else None
    run_id = store.start_run("t")
    outcome = runner.run(make_jobs(100), run_id, total=100)
    assert outcome.status == "interrupted"
    stored = rows(store, run_id)
    assert len(stored) == len(client.calls)  # every call that started has its result stored
    assert len(stored) < 20 and outcome.not_run == 100 - len(stored)
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
    from glmeval.runner import RunCounts

    out = io.StringIO()
    start = RunCounts(total=10, done=4, passed=4, tokens=100, cost=0.01)
    job = make_jobs(1)[0]
    with Progress(10, "suite", stream=out, start=start, every=0.0) as progress:
        counts = RunCounts(total=10, done=5, passed=4, failed=1, retried=2, tokens=130, cost=0.013)
        progress.update(Result(job, _ok(), [], False, 0.0), counts)
    line = out.getvalue().strip()
    assert line.startswith("[suite] 5/10 pass 4 fail 1 err 0 retried 2 tok 130 ¥0.0130 eta ")
    assert "\x1b" not in line  # no terminal escapes in CI logs
