"""Races: kill -9 at random points and resume, two resumers at once, a resume while the run
still runs, two runs on one database. Nothing is lost and nothing is sent twice.

Every ``glmeval run`` here is a real process talking to a LocalServer this test started
(``--base-url``), so the server counts exactly the requests each process sent. A request a
killed process had in flight is paid for but its answer is never stored; such calls are the
only requests allowed beyond one per job. Each kill catches at most ``-j`` calls in flight,
plus at most ``-j`` answered but not yet written: the runner refills the freed slots before it
writes the answers it just took (the disk never delays a call), so one batch of answers can be
on its way to the store while a full ``-j`` of new calls is out.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from glmeval.simulator import LocalServer
from glmeval.store import Store
from glmeval.store.lease import read_holder

SUITE = """\
name: {name}
model: glm-4
repeat: {repeat}
params: {{max_tokens: 32}}
messages:
  - {{role: user, content: "{{{{ q }}}}"}}
cases:
  - id: capital
    vars: {{q: 中国的首都是哪里？}}
    checks: [{{contains: 北京}}]
  - id: hello
    vars: {{q: 你好}}
    checks: [{{contains-any: [你好, 您好]}}]
"""
JOBS = 300
CONCURRENCY = 8
LIMIT_S = 60.0


def write_suite(folder: Path, name: str = "races", jobs: int = JOBS) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SUITE.format(name=name, repeat=jobs // 2), encoding="utf-8")
    return path


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(fixed_latency_ms=40) as srv:
        yield srv


def sent(srv: LocalServer) -> int:
    return srv.stats.by_path.get("/chat/completions", 0)


def drain(srv: LocalServer) -> int:
    """Wait until the server has answered everything it received (a killed client's calls
    finish at the server anyway); returns how many were in flight when called."""
    now = srv.stats.in_flight
    deadline = time.monotonic() + 10
    while srv.stats.in_flight:
        assert time.monotonic() < deadline, "the server never drained"
        time.sleep(0.01)
    return now


def rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM results WHERE status != 'error'").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def glmeval_run(args: list[str], key: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ZHIPUAI_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "glmeval", "run", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_rows(db: Path, at_least: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + LIMIT_S
    while rows(db) < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"only {rows(db)} results after {LIMIT_S} s"
        time.sleep(0.005)


def finished(db: Path, run_id: str) -> tuple[str, int, int, bool]:
    """The run's status, its answered jobs, its distinct job ids, and whether a lease is left."""
    store = Store(db)
    try:
        info = store.require_run(run_id)
        ids = [r["job_id"] for r in store.iter_results(run_id) if r["status"] != "error"]
        return info.status, len(ids), len(set(ids)), read_holder(store.conn, run_id) is not None
    finally:
        store.close()


def only_run(db: Path) -> str:
    store = Store(db)
    try:
        [run] = store.list_runs()
        return run.id
    finally:
        store.close()


def common(srv: LocalServer, suite: Path, db: Path, jobs: int = CONCURRENCY) -> list[str]:
    return [str(suite), "--base-url", srv.base_url, "--db", str(db), "--no-report", "-q", "-j", str(jobs)]


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_kill_9_at_random_points_then_resume_loses_nothing(tmp_path: Path, server: LocalServer) -> None:
    rng = random.Random(16)
    points = sorted(rng.sample(range(15, JOBS * 3 // 4), 3))
    suite, db = write_suite(tmp_path), tmp_path / "r.db"
    args = common(server, suite, db)
    lost: list[int] = []
    for i, point in enumerate(points):
        before, stored_before = sent(server), rows(db)
        proc = glmeval_run(args + (["--resume"] if i else []), server.api_key)
        wait_rows(db, point, proc)
        time.sleep(rng.uniform(0, 0.04))  # a random moment of the call cycle, not just after a write
        kill(proc)
        in_flight_at_kill = drain(server)
        calls, stored = sent(server) - before, rows(db) - stored_before
        # Paid for and never stored: the calls the kill caught in flight (at most -j) and the
        # answers it caught on their way to the store (at most one batch of -j).
        assert in_flight_at_kill <= CONCURRENCY, (point, in_flight_at_kill)
        assert in_flight_at_kill <= calls - stored <= 2 * CONCURRENCY, (point, in_flight_at_kill, calls, stored)
        lost.append(calls - stored)
    run_id = only_run(db)
    before, missing = sent(server), JOBS - rows(db)
    last = subprocess.run(
        [sys.executable, "-m", "glmeval", "run", *args, "--resume", run_id],
        env={**os.environ, "ZHIPUAI_API_KEY": server.api_key}, capture_output=True, text=True, timeout=LIMIT_S,
    )
    assert last.returncode == 0, last.stderr
    assert sent(server) - before == missing  # exactly the jobs without a result, once each
    assert finished(db, run_id) == ("complete", JOBS, JOBS, False)
    assert sent(server) == JOBS + sum(lost)


def test_two_resumes_of_a_killed_run_send_no_job_twice(tmp_path: Path, server: LocalServer) -> None:
    suite, db = write_suite(tmp_path), tmp_path / "r.db"
    args = common(server, suite, db, jobs=4)
    proc = glmeval_run(args, server.api_key)
    wait_rows(db, 60, proc)
    kill(proc)
    drain(server)
    run_id, before, missing = only_run(db), sent(server), JOBS - rows(db)

    both = [glmeval_run([*args, "--resume", run_id], server.api_key) for _ in range(2)]
    outs = [p.communicate(timeout=LIMIT_S) for p in both]
    codes = [p.returncode for p in both]
    assert sorted(codes) in ([0, 0], [0, 2]), outs
    for proc, (_, err), code in zip(both, outs, codes):
        if code == 2:  # lost the race: one line naming the winner, nothing sent
            [other] = [p for p in both if p is not proc]
            [line] = err.splitlines()
            assert re.fullmatch(
                rf"error: run {run_id} is being run by pid {other.pid} on \S+ since [\d: -]+; wait for it to finish "
                rf"\(or stop that process\), then glmeval run --resume {run_id}",
                line,
            ), line
    assert sent(server) - before == missing  # every remaining job sent once, by one of them
    assert finished(db, run_id) == ("complete", JOBS, JOBS, False)


def test_a_resume_while_the_run_still_runs_is_refused(tmp_path: Path) -> None:
    with LocalServer(fixed_latency_ms=250) as server:
        suite, db = write_suite(tmp_path), tmp_path / "r.db"
        args = common(server, suite, db, jobs=4)  # 300 jobs at 4 x 250 ms: ~19 s, time for a second process to start
        first = glmeval_run(args, server.api_key)
        wait_rows(db, 8, first)
        run_id = only_run(db)
        second = subprocess.run(
            [sys.executable, "-m", "glmeval", "run", *args, "--resume"],
            env={**os.environ, "ZHIPUAI_API_KEY": server.api_key}, capture_output=True, text=True, timeout=LIMIT_S,
        )
        assert first.poll() is None, "the first run ended before the resume could race it"
        assert second.returncode == 2, second.stderr
        assert second.stderr.splitlines() == [
            line for line in second.stderr.splitlines() if line.startswith(f"error: run {run_id} is being run by pid {first.pid} on ")
        ] and len(second.stderr.splitlines()) == 1
        server.fixed_latency_ms = 1  # the point is made: let the first run finish quickly
        _, err = first.communicate(timeout=LIMIT_S)
        assert first.returncode == 0, err
        assert sent(server) == JOBS
    assert finished(db, run_id) == ("complete", JOBS, JOBS, False)


def test_two_runs_on_one_database_both_complete(tmp_path: Path, server: LocalServer) -> None:
    db = tmp_path / "r.db"
    suites = [write_suite(tmp_path, name, 150) for name in ("left", "right")]
    procs = [glmeval_run(common(server, s, db), server.api_key) for s in suites]
    for p in procs:
        _, err = p.communicate(timeout=LIMIT_S)
        assert p.returncode == 0, err
    store = Store(db)
    runs = {r.suite: r.id for r in store.list_runs()}
    store.close()
    assert set(runs) == {"left", "right"}
    for run_id in runs.values():
        assert finished(db, run_id) == ("complete", 150, 150, False)
    assert sent(server) == 300
