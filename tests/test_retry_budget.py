"""Retries bounded by time, not a count; adaptive concurrency; error lines that say what happened.

Issue 16: at 20% 429 and 10% other faults, five attempts per job lost jobs. A job now retries
429s, 5xx and network errors for up to ``--retry-budget`` seconds (600 by default), with capped
exponential backoff and full jitter, or the server's ``Retry-After``; non-transient errors still
fail at once. A 429 halves the in-flight limit of its model and provider, successes grow it
back. A job that gives up says after how many attempts and how long, and the run's end names
the ``--resume`` command that finishes it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_runner import Clock, calls, make_jobs, rows, run

from glmeval.cli import main
from glmeval.records import ErrorInfo
from glmeval.run.client import CallError, GLMClient
from glmeval.run.ratelimit import Limiter, ModelLimit
from glmeval.run.retry import Backoff, RetryPolicy
from glmeval.run.runner import RunCounts
from glmeval.simulator import FaultConfig, LocalServer
from glmeval.store import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server() -> Any:
    with LocalServer(port=0, speed=0.0) as srv:
        yield srv


@pytest.fixture
def client(server: LocalServer) -> Any:
    glm = GLMClient(server.api_key, server.base_url, timeout=10)
    yield glm
    glm.close()


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "r.db")
    yield s
    s.close()


def _error(kind: str, retry_after: float | None = None) -> CallError:
    status = {"rate_limit": 429, "server": 500, "bad_request": 400}.get(kind)
    return CallError(ErrorInfo(kind, "x", status), retry_after)  # type: ignore[arg-type]


# -- backoff and the policy ---------------------------------------------------------------------


def test_backoff_is_full_jitter_under_a_cap_and_retry_after_is_a_floor() -> None:
    backoff = Backoff(base=0.5, ceiling=4.0, seed=3)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0), (200, 4.0)]:
        delays = [backoff.delay(attempt, None) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert min(delays) < ceiling * 0.1 and max(delays) > ceiling * 0.9  # the full range, not its upper half
    # Retry-After is honoured in full, even above the backoff cap, with a little jitter on top.
    assert all(30.0 <= backoff.delay(1, 30.0) <= 31.0 for _ in range(50))
    assert all(0.05 <= backoff.delay(5, 0.05) <= 0.07 for _ in range(50))


def test_policy_retries_transient_errors_within_the_budget_only() -> None:
    policy = RetryPolicy(Backoff(0.5, 20.0, seed=1), budget=60.0)
    for kind in ("rate_limit", "server", "timeout", "connection", "stream_cut"):
        assert policy.delay(_error(kind), attempts=25, elapsed=30.0) is not None  # far past five attempts
    for kind in ("bad_request", "content_filter", "auth", "balance"):
        assert policy.delay(_error(kind), attempts=1, elapsed=0.0) is None  # fails at once, as before
    assert policy.delay(_error("server"), attempts=3, elapsed=60.0) is None  # the budget is spent
    assert policy.delay(_error("server"), attempts=12, elapsed=59.9) == pytest.approx(0.1, abs=0.1)  # cut to what is left
    assert policy.delay(_error("rate_limit", 5.0), attempts=1, elapsed=50.0) == pytest.approx(5.0, abs=0.6)
    assert policy.delay(_error("rate_limit", 20.0), attempts=1, elapsed=50.0) is None  # Retry-After past the budget
    capped = RetryPolicy(Backoff(0.5, 20.0), budget=60.0, retries=2)
    assert capped.delay(_error("server"), 2, 1.0) is not None and capped.delay(_error("server"), 3, 1.0) is None
    # Nothing reached yet: a connection error is the endpoint being unreachable, reported soon.
    assert policy.delay(_error("connection"), attempts=5, elapsed=3.0, reached=False) is None


# -- the runner -----------------------------------------------------------------------------------


def test_retries_outlast_the_old_five_attempts(server: LocalServer, client: GLMClient, store: Store) -> None:
    server.faults = FaultConfig(fail_first=6, fail_kind="rate_limit", retry_after=0.01)  # six 429s, then 200
    _, outcome, run_id = run(store, client, make_jobs(3))
    assert outcome.status == "complete"
    assert [(r["status"], r["attempts"]) for r in rows(store, run_id)] == [("pass", 7)] * 3
    assert calls(server) == 21


def test_the_budget_ends_a_job_whose_endpoint_stays_broken(server: LocalServer, client: GLMClient, store: Store) -> None:
    server.faults = FaultConfig(server_error=1.0)
    started = time.monotonic()
    _, outcome, run_id = run(store, client, make_jobs(1), retry_budget=1.0, backoff_base=0.05, backoff_max=0.2)
    elapsed = time.monotonic() - started
    [row] = rows(store, run_id)
    assert row["status"] == "error" and row["error_kind"] == "server"
    assert 1.0 <= elapsed < 4.0
    assert row["attempts"] >= 4 and calls(server) == row["attempts"]
    match = re.search(r"gave up after (\d+) attempts in (\d+\.\d) s, retry budget 1\.0 s; glmeval run --resume runs it again", row["error_message"])
    assert match, row["error_message"]
    assert int(match[1]) == row["attempts"] and 1.0 <= float(match[2]) < 4.0
    assert outcome.counts.unanswered == 1


def test_an_outage_costs_the_run_one_budget_not_one_per_job(server: LocalServer, client: GLMClient, store: Store) -> None:
    """An endpoint that answers nothing but 500s: once no call of the run has got an answer for
    a budget's length, queued jobs stop retrying too, so 12 jobs two at a time end in about one
    budget instead of six budgets in turn."""
    server.faults = FaultConfig(server_error=1.0)
    started = time.monotonic()
    _, outcome, run_id = run(
        store, client, make_jobs(12), concurrency=2, retry_budget=1.0, backoff_base=0.05, backoff_max=0.2
    )
    elapsed = time.monotonic() - started
    found = rows(store, run_id)
    assert [r["status"] for r in found] == ["error"] * 12 and outcome.counts.unanswered == 12
    assert elapsed < 3.5, f"{elapsed:.1f} s: the outage was paid per job"
    # Each job ends by its own budget, or, one that started once the run had been silent for a
    # budget, at its first failure with the run's silence as the reason. Which jobs start that
    # late is timing (a job waiting to retry frees its slot for the next), so both are allowed.
    for r in found:
        message = r["error_message"]
        assert "glmeval run --resume runs it again" in message, message
        assert "no call of the run got an answer for" in message or "retry budget 1.0 s" in message, message


def test_a_job_started_into_a_silent_run_stops_at_its_first_failure() -> None:
    """The wording of a job that stops because the run has had no answer for a budget's length."""
    policy = RetryPolicy(Backoff(0.05, 0.2), budget=1.0)
    assert policy.delay(_error("server"), attempts=1, elapsed=0.01, silent=1.4) is None
    info = policy.final_error(_error("server"), attempts=1, elapsed=0.01, silent=1.4)
    assert "no call of the run got an answer for 1.4 s" in info.message
    assert "glmeval run --resume runs it again" in info.message
    assert policy.delay(_error("server"), attempts=1, elapsed=0.01, silent=0.5) is not None  # not silent long enough


def test_a_retry_after_past_the_budget_ends_the_job_at_once(server: LocalServer, client: GLMClient, store: Store) -> None:
    server.faults = FaultConfig(rate_limit=1.0, retry_after=30)
    started = time.monotonic()
    _, _, run_id = run(store, client, make_jobs(1), retry_budget=5.0)
    [row] = rows(store, run_id)
    assert time.monotonic() - started < 5
    assert row["attempts"] == 1 and row["error_kind"] == "rate_limit"
    assert "gave up after 1 attempt in" in row["error_message"]
    assert "the server asked to wait 30 s, past the 5.0 s retry budget" in row["error_message"]


def test_a_non_transient_error_is_not_dressed_up(server: LocalServer, client: GLMClient, store: Store) -> None:
    _, outcome, run_id = run(store, client, make_jobs(1, params={"max_tokens": 4096}))
    [row] = rows(store, run_id)
    assert row["attempts"] == 1 and row["error_kind"] == "bad_request"
    assert "attempt" not in row["error_message"] and "--resume" not in row["error_message"]
    assert outcome.counts.unanswered == 0


def test_429s_halve_the_in_flight_limit_and_the_progress_says_so(server: LocalServer, client: GLMClient, store: Store) -> None:
    server.fixed_latency_ms = 20
    server.faults = FaultConfig(fail_first=1, fail_kind="rate_limit", retry_after=0.05)  # every job: one 429 first
    paces: list[str] = []
    limits: list[int] = []
    holder: dict[str, Any] = {}

    def on_result(result: Any, counts: RunCounts) -> None:
        paces.append(counts.pace)
        limits.append(holder["runner"].limiter.lane("glm-4").limit)

    from glmeval.run.runner import Runner, RunOptions

    runner = Runner(client, store, RunOptions(concurrency=16, backoff_base=0.01, seed=1), on_result=on_result)
    holder["runner"] = runner
    run_id = store.start_run("t", total_jobs=120)
    outcome = runner.run(make_jobs(120), run_id, total=120)
    assert outcome.status == "complete" and outcome.counts.passed == 120
    assert server.stats.max_in_flight <= 16
    assert min(limits) < 8 and max(limits) <= 16
    assert any(re.fullmatch(r"glm-4: 16→\d+ in flight \(429s\)(, backing off \d+\.\ds)?", p) for p in paces), paces[-5:]


# -- the adaptive limit (fake clock) --------------------------------------------------------------


def test_lane_halves_once_per_burst_never_below_one_and_grows_back_to_its_ceiling() -> None:
    clock = Clock()
    limiter = Limiter(8, {"glm-4": ModelLimit(concurrency=6)}, clock=clock)
    held = [limiter.try_acquire("glm-4")[0] for _ in range(6)]
    assert all(held) and limiter.try_acquire("glm-4") == (None, None)  # the model's cap of 6
    clock.now += 1
    for permit in held:  # a burst of six 429s from calls granted before the cut: one halving
        assert permit is not None
        limiter.release(permit, None, rate_limited=True)
    assert (limiter.lane("glm-4").ceiling, limiter.lane("glm-4").limit) == (6, 3)
    got = [limiter.try_acquire("glm-4")[0] for _ in range(4)]
    assert got[3] is None  # three in flight now, not six
    clock.now += 1
    for permit in got[:2]:  # granted after the cut: each 429 halves again, down to 1 and no lower
        assert permit is not None
        limiter.release(permit, None, rate_limited=True)
        clock.now += 1
    assert limiter.lane("glm-4").limit == 1
    assert got[2] is not None
    limiter.release(got[2], None, rate_limited=True)
    assert limiter.lane("glm-4").limit == 1
    # Other providers of the same model, and other models, have lanes of their own.
    assert limiter.lane("glm-4", "openrouter").limit == 6 and limiter.lane("glm-4-flash").limit == 8
    # Growing back: one step after a run of successes as long as the limit, up to the ceiling.
    steps = []
    for _ in range(40):
        permit, _ = limiter.try_acquire("glm-4")
        assert permit is not None
        limiter.release(permit, 10)
        steps.append(limiter.lane("glm-4").limit)
    assert steps[:6] == [2, 2, 3, 3, 3, 4]
    assert max(steps) == 6 and steps[-1] == 6
    assert limiter.cut_lanes() == []


def test_a_cut_lane_is_what_the_progress_line_reports() -> None:
    from glmeval.run.outcome import pace_line

    clock = Clock()
    limiter = Limiter(8, clock=clock)
    permit, _ = limiter.try_acquire("glm-4")
    other, _ = limiter.try_acquire("glm-4", provider="openrouter")
    assert permit is not None and other is not None
    limiter.release(permit, None, rate_limited=True)
    limiter.release(other, 5)
    due = {("glm-4", "zhipu"): 13.2, ("glm-4-flash", "zhipu"): 10.5, ("glm-4", "vllm"): 10.01}
    assert pace_line(limiter.cut_lanes(), due, now=10.0) == "glm-4: 8→4 in flight (429s), backing off 3.2s; glm-4-flash: backing off 0.5s"
    assert ("glm-4", "vllm") not in due  # as good as due: dropped


# -- what the command line shows --------------------------------------------------------------------


def test_the_run_says_how_to_finish_it_and_resume_does(tmp_path: Path) -> None:
    suite = ROOT / "suites" / "greeting.yaml"
    args = ["--db", str(tmp_path / "r.db"), "--no-report", "--local", "--local-speed", "0"]
    first = CliRunner().invoke(main, ["run", str(suite), *args, "--fault", "server_error=1", "--retry-budget", "0.3"])
    assert first.exit_code == 1, first.output
    assert re.search(r"gave up after \d+ attempts? in \d\.\d s, retry budget 0\.3 s; glmeval run --resume runs it again", first.output)
    run = Store(tmp_path / "r.db").list_runs()[-1]
    line = f"{run.total_jobs} jobs ended without an answer (429, 5xx or network errors outlasted the retries); "
    command = f"glmeval run --resume {run.id} {suite}"
    assert line + f"finish the run with `{command}`" in first.stderr
    again = CliRunner().invoke(main, [*command.split()[1:], *args])
    assert again.exit_code == 0, again.output
    assert "without an answer" not in again.output
    assert Store(tmp_path / "r.db").list_runs()[-1].id == run.id


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_retry_budget_is_one_line_exit_2(value: str) -> None:
    result = CliRunner().invoke(main, ["run", str(ROOT / "suites" / "greeting.yaml"), "--local", "--retry-budget", value])
    assert result.exit_code == 2
    assert "--retry-budget" in result.output and "Traceback" not in result.output


def test_the_plugin_takes_a_retry_budget(pytester: pytest.Pytester) -> None:
    pytester.makefile(".glmeval.yaml", greeting=(ROOT / "suites" / "greeting.yaml").read_text(encoding="utf-8"))
    base = ["-p", "no:cacheprovider", "-p", "no:benchmark", "--glmeval-local", "--glmeval-local-speed", "0"]
    bad = pytester.runpytest(*base, "--glmeval-retry-budget", "0")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "'0' is not a positive number of seconds" in bad.stderr.str()
    good = pytester.runpytest(*base, "--glmeval-retry-budget", "30", f"--glmeval-db={pytester.path / 'r.db'}")
    assert good.ret == pytest.ExitCode.OK
