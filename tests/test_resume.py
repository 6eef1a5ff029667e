"""Stored runs survive: kill -9 and resume, Ctrl-C and resume, budget stop and resume, and
``--replay`` re-scoring stored answers with changed checks without a single request.

The server is a LocalServer started here and reached with ``--base-url``, so the test can
count exactly which requests each ``glmeval run`` process made.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.simulator import LocalServer
from glmeval.store import Store

SUITE = """\
name: {name}
model: glm-4
repeat: {repeat}
params: {{max_tokens: 64}}
messages:
  - {{role: user, content: "{{{{ question }}}}"}}
cases:
  - id: capital
    vars: {{question: 中国的首都是哪里？}}
    checks:
      - contains: {city}
  - id: hello
    vars: {{question: 你好}}
    checks:
      - contains-any: [你好, 您好]
"""


def write_suite(path: Path, name: str = "durable", repeat: int = 60, city: str = "北京") -> Path:
    path.write_text(SUITE.format(name=name, repeat=repeat, city=city), encoding="utf-8")
    return path


@pytest.fixture
def slow_server() -> Iterator[LocalServer]:
    with LocalServer(fixed_latency_ms=100) as srv:
        yield srv


def chat_requests(srv: LocalServer) -> int:
    return srv.stats.by_path.get("/chat/completions", 0)


def count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=5)
    try:
        return conn.execute("SELECT COUNT(*) FROM results WHERE status != 'error'").fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return 0
    finally:
        conn.close()


def start(args: list[str], key: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ZHIPUAI_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "glmeval", "run", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_rows(db: Path, at_least: int, proc: subprocess.Popen[str], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = count_rows(db)
        if n >= at_least:
            return n
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"only {count_rows(db)} results after {timeout} s")


def test_sigkill_then_resume_calls_only_the_missing_jobs(tmp_path: Path, slow_server: LocalServer) -> None:
    suite = write_suite(tmp_path / "durable.yaml")  # 120 jobs, 100 ms each, 4 at a time: ~3 s
    db = tmp_path / "r.db"
    args = [str(suite), "--base-url", slow_server.base_url, "--db", str(db), "--no-report", "-q", "-j", "4"]
    proc = start(args, slow_server.api_key)
    wait_for_rows(db, 50, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    time.sleep(0.3)  # requests the dead process had in flight reach the server anyway

    store = Store(db)
    [run] = store.list_runs()
    assert run.status == "interrupted"  # killed outright: still 'running' in the table, its holder is gone
    finished = {r["job_id"]: r["created_at"] for r in store.iter_results(run.id)}
    assert 50 <= len(finished) < 120
    store.close()
    before = chat_requests(slow_server)

    resumed = subprocess.run(
        [sys.executable, "-m", "glmeval", "run", *args, "--resume"],
        env={**os.environ, "ZHIPUAI_API_KEY": slow_server.api_key},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr

    # Exactly the missing jobs were called, once each: no finished job was called again.
    assert chat_requests(slow_server) - before == 120 - len(finished)
    store = Store(db)
    [after] = store.list_runs()
    assert after.id == run.id and after.status == "complete"
    rows = {r["job_id"]: r["created_at"] for r in store.iter_results(run.id)}
    assert len(rows) == 120
    assert all(rows[job] == created for job, created in finished.items())  # untouched


def test_ctrl_c_finishes_in_flight_calls_and_says_how_to_resume(tmp_path: Path, slow_server: LocalServer) -> None:
    suite = write_suite(tmp_path / "durable.yaml")
    db = tmp_path / "r.db"
    args = [str(suite), "--base-url", slow_server.base_url, "--db", str(db), "--no-report", "-q", "-j", "4"]
    proc = start(args, slow_server.api_key)
    wait_for_rows(db, 30, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    store = Store(db)
    [run] = store.list_runs()
    assert run.status == "interrupted"
    assert f"glmeval run --resume {run.id}" in err
    done = len(list(store.iter_results(run.id)))
    # Every call that reached the server finished and was stored: nothing in flight was lost.
    assert done == chat_requests(slow_server)
    assert done < 120

    result = CliRunner().invoke(main, ["run", *args, "--resume", run.id], env={"ZHIPUAI_API_KEY": slow_server.api_key})
    assert result.exit_code == 0, result.output
    assert chat_requests(slow_server) == 120
    assert Store(db).get_run(run.id).status == "complete"  # type: ignore[union-attr]


def test_replay_rescores_stored_answers_without_a_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "r.db"
    with LocalServer(speed=0) as srv:
        suite = write_suite(tmp_path / "replay.yaml", name="replay", repeat=3)
        monkeypatch.setenv("ZHIPUAI_API_KEY", srv.api_key)
        common = ["--base-url", srv.base_url, "--db", str(db), "--no-report", "-q"]
        first = CliRunner().invoke(main, ["run", str(suite), *common])
        assert first.exit_code == 0, first.output
        sent = srv.stats.requests
        assert sent == 6

        # The checks change (北京 -> 上海); the requests do not. No key is needed to replay.
        write_suite(suite, name="replay", repeat=3, city="上海")
        monkeypatch.delenv("ZHIPUAI_API_KEY")
        replay = CliRunner().invoke(main, ["run", str(suite), *common, "--replay"])
        assert srv.stats.requests == sent  # not one request reached the server
    assert replay.exit_code == 1, replay.output  # the changed check now fails
    store = Store(db)
    newest = store.list_runs()[0]
    assert newest.replay
    rows = [dict(r) for r in store.iter_results(newest.id)]
    assert len(rows) == 6 and all(r["cached"] == 1 for r in rows)
    by_case = {(r["case_id"], r["status"]) for r in rows}
    assert by_case == {("capital", "fail"), ("hello", "pass")}


def test_replay_with_nothing_cached_stops_with_one_line(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "never.yaml", name="never-run", repeat=1)
    db = tmp_path / "r.db"
    result = CliRunner().invoke(main, ["run", str(suite), "--replay", "--db", str(db), "--no-report", "-q"], env={"ZHIPUAI_API_KEY": ""})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: nothing to replay: none of the 2 jobs is in the cache for this target "
        "(run once without --replay first; answers of --local runs replay only with --local)"
    ]
    assert Store(db).list_runs() == []  # no all-error run to become the next `--baseline latest`


def test_replay_with_some_misses_warns_and_runs(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "part.yaml", name="part", repeat=1)
    db = tmp_path / "r.db"
    common = ["--local", "--db", str(db), "--no-report", "-q"]
    assert CliRunner().invoke(main, ["run", str(suite), *common]).exit_code == 0
    write_suite(suite, name="part", repeat=2)  # repeat #2 of each case was never asked
    result = CliRunner().invoke(main, ["run", str(suite), *common, "--replay"])
    assert result.exit_code == 1
    assert "warning: replay: 2 of 4 jobs are not in the cache; they are stored as errors (replay_miss)" in result.stderr
    store = Store(db)
    newest = store.list_runs()[0]
    kinds = sorted(str(r["error_kind"]) for r in store.iter_results(newest.id))
    assert newest.replay and kinds == ["None", "None", "replay_miss", "replay_miss"]


def test_budget_that_cannot_cover_one_job_says_so(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "tiny.yaml", name="tiny", repeat=1)
    db = tmp_path / "r.db"
    common = [str(suite), "--local", "--db", str(db), "--no-report", "-q"]
    from glmeval.plan import build_plan
    from glmeval.run.runner import estimate_job
    from glmeval.suite import load_suite

    prompt, answer, yuan = estimate_job(build_plan(load_suite(suite)).jobs[0])
    assert answer == 64  # the suite's max_tokens: below 4 x prompt + 64
    cost = CliRunner().invoke(main, ["run", *common, "--max-cost", "0.0001"])
    assert cost.exit_code == 2
    assert cost.stderr.splitlines() == [f"error: --max-cost 0.0001 cannot cover one job of glm-4 (estimated ¥{yuan:.4f})"]
    tokens = CliRunner().invoke(main, ["run", *common, "--max-tokens", "20"])
    assert tokens.exit_code == 2
    assert tokens.stderr.splitlines() == [
        f"error: --max-tokens 20 cannot cover one job of glm-4 (estimated {prompt + answer} tokens)"
    ]
    assert Store(db).list_runs() == []


OPEN_SUITE = """\
name: open
model: glm-4
repeat: 4
messages:
  - {role: user, content: "{{ q }}"}
cases:
  - {id: poem, vars: {q: 写一首关于春天的诗}, checks: [{min-chars: 5}]}
  - {id: hello, vars: {q: hello}, checks: [{icontains-any: [hello, hi]}]}
"""


def test_budget_estimate_matches_plan_and_lets_a_reasonable_budget_run(tmp_path: Path) -> None:
    """Without max_tokens the first jobs are estimated from their prompt, as `glmeval plan`
    shows, not at 1,024 answer tokens each: a budget of a few jobs runs a few jobs."""
    suite = tmp_path / "open.yaml"
    suite.write_text(OPEN_SUITE, encoding="utf-8")
    db = tmp_path / "r.db"
    plan = CliRunner().invoke(main, ["plan", str(suite)])
    assert plan.exit_code == 0, plan.output
    row = next(line.split() for line in plan.output.splitlines() if line.startswith("glm-4 "))
    assert row[:2] == ["glm-4", "8"]
    per_job = float(row[4].lstrip("¥")) / 8
    assert "answers estimated at min(max_tokens or 512, 4 x prompt + 64) tokens each" in plan.output

    budget = per_job * 4
    result = CliRunner().invoke(main, ["run", str(suite), "--local", "--db", str(db), "--no-report", "-j", "1", "--max-cost", f"{budget:.4f}"])
    assert result.exit_code == 1, result.output
    [run] = Store(db).list_runs()
    done = len(list(Store(db).iter_results(run.id)))
    assert run.status == "budget" and done >= 3, result.output
    assert f"budget reached after {done} of 8 jobs: spent ¥" in result.stderr
    assert f"{8 - done} job{'' if 8 - done == 1 else 's'} not run" in result.stderr


def test_budget_stop_then_resume(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "budget.yaml", name="budget", repeat=10)  # 20 jobs, ~60 tokens each
    db = tmp_path / "r.db"
    common = [str(suite), "--local", "--db", str(db), "--no-report", "-j", "2"]
    stopped = CliRunner().invoke(main, ["run", *common, "--max-tokens", "500"])
    assert stopped.exit_code == 1
    assert "budget reached after" in stopped.stderr and "of 20 jobs" in stopped.stderr and "--resume" in stopped.stderr
    store = Store(db)
    [run] = store.list_runs()
    assert run.status == "budget"
    rows = [dict(r) for r in store.iter_results(run.id)]
    assert 0 < len(rows) < 20 and sum(r["total_tokens"] for r in rows) <= 500

    resumed = CliRunner().invoke(main, ["run", "--resume", *common])  # `--resume SUITE`: latest run
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming run {run.id}" in resumed.stderr
    assert Store(db).get_run(run.id).status == "complete"  # type: ignore[union-attr]
    assert len(list(Store(db).iter_results(run.id))) == 20
