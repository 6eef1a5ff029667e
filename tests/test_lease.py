"""The run lease: one holder per run, a dead holder taken over atomically, a live one
refused with one line, and a killed run read as ``interrupted`` everywhere a person looks
(``runs``, ``show``, report.md, report.html) until ``glmeval run --resume RUN`` finishes it.

Holders here are real processes: a dead one is a child that exited (its pid is gone), a live
one is this test process.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.store import Store
from glmeval.store.lease import (
    STALE_S,
    Holder,
    LeaseHeld,
    RunLease,
    new_holder,
    pid_alive,
    read_holder,
    this_host,
    try_acquire,
)

SUITE = """\
name: leased
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


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    assert not pid_alive(proc.pid)
    return proc.pid


def a_run(store: Store) -> str:
    return store.start_run("leased", total_jobs=10)


def test_a_live_holder_is_refused_and_a_dead_one_taken_over(db_path: Path) -> None:
    store = Store(db_path)
    run_id = a_run(store)
    me = new_holder()
    assert try_acquire(store.conn, run_id, me).token == me.token
    other = new_holder()  # another process on this host: refused while my pid lives
    assert try_acquire(store.conn, run_id, other).token == me.token

    gone = Holder("dead-token", this_host(), dead_pid(), time.time(), time.time())
    store.conn.execute("UPDATE leases SET holder = ?, pid = ? WHERE run_id = ?", (gone.token, gone.pid, run_id))
    taken = try_acquire(store.conn, run_id, other)  # pid gone on this host: no need to wait for staleness
    assert (taken.token, taken.pid) == (other.token, os.getpid())


def test_a_holder_elsewhere_lives_by_its_heartbeat(db_path: Path) -> None:
    store = Store(db_path)
    run_id = a_run(store)
    now = time.time()
    remote = Holder("remote", "another-machine", 1, now - 100, now - 1)
    store.conn.execute(
        "INSERT INTO leases (run_id, holder, host, pid, since, heartbeat) VALUES (?, ?, ?, ?, ?, ?)",
        (run_id, remote.token, remote.host, remote.pid, remote.since, remote.heartbeat),
    )
    me = new_holder()
    assert try_acquire(store.conn, run_id, me).token == "remote"  # its pid means nothing here
    assert store.get_run(run_id).status == "running"  # type: ignore[union-attr]
    store.conn.execute("UPDATE leases SET heartbeat = ? WHERE run_id = ?", (now - STALE_S - 1, run_id))
    assert store.get_run(run_id).status == "interrupted"  # type: ignore[union-attr]
    assert try_acquire(store.conn, run_id, me).token == me.token


def test_a_shared_token_joins_and_keeps_since(db_path: Path) -> None:
    """xdist workers hand one holder around: the second joins instead of being refused."""
    store = Store(db_path)
    run_id = a_run(store)
    shared = new_holder(pid=os.getpid())
    first = try_acquire(store.conn, run_id, shared, now=1000.0 + time.time())
    joined = try_acquire(store.conn, run_id, Holder.decode(shared.encode()), now=1005.0 + time.time())  # type: ignore[arg-type]
    assert joined.token == shared.token and joined.since == first.since and joined.heartbeat > first.heartbeat
    assert Holder.decode("garbage") is None


def _race(
    path: str,
    run_id: str,
    barrier: multiprocessing.synchronize.Barrier,
    done: multiprocessing.synchronize.Barrier,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    store = Store(path)
    me = new_holder()
    barrier.wait(20)
    out.put(try_acquire(store.conn, run_id, me).token == me.token)
    # Stay alive until every racer has tried: a winner that exited would be a dead holder
    # (its pid gone on this host), and the next racer would rightly take the lease over.
    done.wait(30)
    store.close()


def test_racing_takers_of_a_dead_lease_exactly_one_wins(db_path: Path) -> None:
    store = Store(db_path)
    run_id = a_run(store)
    store.conn.execute(
        "INSERT INTO leases (run_id, holder, host, pid, since, heartbeat) VALUES (?, 'dead', ?, ?, ?, ?)",
        (run_id, this_host(), dead_pid(), time.time(), time.time()),
    )
    store.close()
    ctx = multiprocessing.get_context("fork")
    racers = 6
    barrier, done, out = ctx.Barrier(racers), ctx.Barrier(racers), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(db_path), run_id, barrier, done, out)) for _ in range(racers)]
    for p in procs:
        p.start()
    wins = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    assert sorted(wins) == [False] * (racers - 1) + [True]


def test_heartbeat_refreshes_release_deletes_and_a_lost_lease_stops(db_path: Path) -> None:
    store = Store(db_path)
    run_id = a_run(store)
    lost: list[bool] = []
    lease = RunLease(store, run_id, heartbeat_s=0.05, on_lost=lambda: lost.append(True)).acquire()
    first = read_holder(store.conn, run_id)
    assert first is not None
    deadline = time.monotonic() + 10
    while (now := read_holder(store.conn, run_id)) is not None and now.heartbeat == first.heartbeat:
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.02)
    with pytest.raises(LeaseHeld) as held:
        RunLease(store, run_id, new_holder(pid=os.getpid())).acquire()
    assert str(held.value).startswith(f"run {run_id} is being run by pid {os.getpid()} on {this_host()} since ")
    lease.release()
    assert read_holder(store.conn, run_id) is None

    lease = RunLease(store, run_id, heartbeat_s=0.05, on_lost=lambda: lost.append(True)).acquire()
    store.conn.execute("UPDATE leases SET holder = 'someone-else' WHERE run_id = ?", (run_id,))  # taken over
    deadline = time.monotonic() + 10
    while not lost:
        assert time.monotonic() < deadline, "the loss was never noticed"
        time.sleep(0.02)
    assert lease.lost
    lease.release()  # leaves the new holder's row alone
    assert read_holder(store.conn, run_id).token == "someone-else"  # type: ignore[union-attr]


def test_a_just_started_run_without_a_row_is_running_an_old_one_interrupted(db_path: Path) -> None:
    store = Store(db_path)
    fresh = a_run(store)
    old = a_run(store)
    store.conn.execute("UPDATE runs SET started_at = ? WHERE id = ?", (time.time() - STALE_S - 5, old))
    status = {r.id: r.status for r in store.list_runs()}
    assert status == {fresh: "running", old: "interrupted"}


def test_resume_of_a_live_run_is_refused_with_the_holder(tmp_path: Path) -> None:
    suite = tmp_path / "leased.yaml"
    suite.write_text(SUITE.format(repeat=2), encoding="utf-8")
    db = tmp_path / "r.db"
    common = ["--local", "--db", str(db), "--no-report", "-q"]
    assert CliRunner().invoke(main, ["run", str(suite), *common]).exit_code == 0
    store = Store(db)
    [run] = store.list_runs()
    with RunLease(store, run.id, new_holder(host=this_host(), pid=os.getpid())):  # this process "is running it"
        refused = CliRunner().invoke(main, ["run", str(suite), *common, "--resume", run.id])
    assert refused.exit_code == 2
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"error: run {run.id} is being run by pid {os.getpid()} on {this_host()} since ")
    assert line.endswith(f"wait for it to finish (or stop that process), then glmeval run --resume {run.id}")
    assert read_holder(store.conn, run.id) is None
    again = CliRunner().invoke(main, ["run", str(suite), *common, "--resume", run.id])  # free again: nothing left
    assert again.exit_code == 0, again.output
    assert "8 of 4" not in again.stderr and store.get_run(run.id).status == "complete"  # type: ignore[union-attr]


def count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def test_a_killed_run_reads_interrupted_until_resumed(tmp_path: Path) -> None:
    suite = tmp_path / "leased.yaml"
    suite.write_text(SUITE.format(repeat=100), encoding="utf-8")  # 200 jobs
    db = tmp_path / "r.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "glmeval", "run", str(suite), "--local", "--local-speed", "1", "-j", "4",
         "--db", str(db), "--no-report", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while count_rows(db) < 10:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    stored = count_rows(db)
    assert 10 <= stored < 200
    line = f"interrupted: {200 - stored} of 200 jobs have no result: glmeval run --resume "

    runs = CliRunner().invoke(main, ["runs", "--db", str(db)])
    assert runs.exit_code == 0, runs.output
    assert " interrupted " in runs.output.splitlines()[2]
    run_id = runs.output.splitlines()[2].split()[0]
    assert runs.output.splitlines()[-1] == line + run_id

    show = CliRunner().invoke(main, ["show", run_id, "--db", str(db)])
    assert show.exit_code == 0, show.output
    assert "   status  interrupted\n" in show.output
    assert f"     jobs  {line}{run_id}\n" in show.output

    out = tmp_path / "reports"
    report = CliRunner().invoke(main, ["report", run_id, "--db", str(db), "--out", str(out), "--format", "md", "--format", "html"])
    assert report.exit_code == 0, report.output
    md = next(out.rglob("report.md")).read_text(encoding="utf-8")
    assert "all passed" not in md and "status **interrupted**" in md
    assert f"**{line}{run_id}** ⚠️" in md
    html = next(out.rglob("report.html")).read_text(encoding="utf-8")
    assert f"{line}{run_id}" in html and 's-interrupted' in html

    # The line's own advice finishes it (no suite given: the run's own file).
    resumed = CliRunner().invoke(main, ["run", "--resume", run_id, "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-q"])
    assert resumed.exit_code == 0, resumed.output
    store = Store(db)
    info = store.require_run(run_id)
    assert info.status == "complete" and count_rows(db) == 200
    assert read_holder(store.conn, run_id) is None
    runs = CliRunner().invoke(main, ["runs", "--db", str(db)])
    assert "have no result" not in runs.output and " complete " in runs.output
