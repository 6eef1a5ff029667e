"""pytest-xdist workers of one session share one lease: the controller's holder (its host and
pid, which live as long as the session), joined by every worker under one token, so the
workers never refuse each other; the row is gone once the session has finished the run."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

import glmeval.pytest_plugin.fixture  # noqa: F401  (loaded once here, as tests/test_pytest_plugin.py explains)

SUITE = """\
name: shared
model: glm-4
repeat: 4
params: {max_tokens: 16}
messages:
  - {role: user, content: "{{ q }}"}
cases:
""" + "".join(
    f"  - {{id: c{i}, vars: {{q: 你好{i}}}, checks: [{{contains-any: [你好, 您好]}}]}}\n" for i in range(6)
)

CONFTEST = """\
import os

def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        (config.rootpath / "controller.pid").write_text(str(os.getpid()))
"""


def test_xdist_workers_share_the_controllers_lease(pytester: pytest.Pytester) -> None:
    pytester.makefile(".glmeval.yaml", shared=SUITE)
    pytester.makeconftest(CONFTEST)
    db = pytester.path / "ci.db"
    seen: set[tuple[str, str, int]] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                conn = sqlite3.connect(db, timeout=1)
                try:
                    seen.update((r[0], r[1], int(r[2])) for r in conn.execute("SELECT run_id, holder, pid FROM leases"))
                finally:
                    conn.close()
            except sqlite3.Error:  # not created yet
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-p", "no:benchmark", "--glmeval-local", "--glmeval-local-speed", "1",
            "-n", "2", f"--glmeval-db={db}", timeout=120,
        )
    finally:
        stop.set()
        watcher.join(5)
    result.assert_outcomes(passed=6)
    controller = int((pytester.path / "controller.pid").read_text())
    conn = sqlite3.connect(db)
    [(run_id, status, results)] = conn.execute(
        "SELECT id, status, (SELECT COUNT(*) FROM results WHERE run_id = runs.id) FROM runs"
    ).fetchall()
    left = conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0]
    conn.close()
    assert (status, results, left) == ("complete", 24, 0)
    assert len(seen) == 1, seen  # one holder, never one per worker
    [(held_run, _, pid)] = seen
    assert (held_run, pid) == (run_id, controller)
    result.stdout.fnmatch_lines([f"run {run_id} (complete): 24 jobs from 2 workers stored in *ci.db"])
