"""``mode: batch`` end to end through ``glmeval run``: the Batch API of the local server, driven by
the real zhipuai SDK; answers, checks, store and reports as for any run, at half the price;
partial failures and expiry mapped to job errors; 10,000 jobs; a kill -9 mid-batch and --resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.catalogue.models import BATCH_PRICE_FACTOR
from glmeval.cli import main
from glmeval.simulator import LocalServer
from glmeval.store import Store
from glmeval.store.batches import stored_batches

QUESTIONS = {"capital": ("中国的首都是哪里？", "北京"), "hello": ("你好", "好"), "sum": ("1+1等于几？", "2")}


def _suite(path: Path, *, models: tuple[str, ...] = ("glm-4-plus", "glm-4-air"), mode: str = "batch",
           repeat: int = 1, name: str = "batchy") -> Path:
    cases = "\n".join(
        f"  - id: {cid}\n    vars: {{question: \"{q}\"}}\n    checks:\n      - contains: \"{want}\""
        for cid, (q, want) in QUESTIONS.items()
    )
    path.write_text(
        f"""\
name: {name}
mode: {mode}
repeat: {repeat}
params: {{do_sample: false}}  # greedy: sampled replies vary call by call, and sync and batch answers are compared
grid:
  model: [{", ".join(models)}]
messages:
  - {{role: user, content: "{{{{ question }}}}"}}
cases:
{cases}
""",
        encoding="utf-8",
    )
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["run", *args, "--no-report"], catch_exceptions=False)
    return result.exit_code, result.output


def _latest(db: Path) -> str:
    return max(Store(db).list_runs(), key=lambda r: r.started_at).id


def _rows(db: Path, run_id: str) -> list[dict[str, object]]:
    return [dict(r) for r in Store(db).iter_results(run_id)]


def test_a_batch_mode_suite_answers_and_passes_at_half_the_sync_price(tmp_path: Path) -> None:
    suite, db = _suite(tmp_path / "s.yaml", repeat=2), tmp_path / "r.db"
    code, out = _run(str(suite), "--local", "--db", str(db), "--mode", "sync")
    assert code == 0, out
    code, out = _run(str(suite), "--local", "--db", str(db))
    assert code == 0, out
    assert "12 passed, 0 failed, 0 errors of 12 jobs" in out
    assert "(glm-4-plus): submitted 6 requests" in out and "(glm-4-air): completed, 6/6 done, 0 failed" in out
    runs = {str(_rows(db, r.id)[0]["mode"]): r.id for r in Store(db).list_runs()}
    assert sorted(runs) == ["batch", "sync"]
    sync_run, batch_run = runs["sync"], runs["batch"]
    sync, batch = _rows(db, sync_run), _rows(db, batch_run)
    assert {r["mode"] for r in sync} == {"sync"} and {r["mode"] for r in batch} == {"batch"}
    assert all(r["status"] == "pass" and r["request_id"] for r in batch)
    by_job = {(r["case_id"], r["model"], r["repeat"]): r for r in sync}
    for row in batch:
        twin = by_job[(row["case_id"], row["model"], row["repeat"])]
        assert (row["output"], row["prompt_tokens"], row["completion_tokens"]) == (
            twin["output"], twin["prompt_tokens"], twin["completion_tokens"])
        assert row["cost"] == pytest.approx(BATCH_PRICE_FACTOR * float(twin["cost"]))  # type: ignore[arg-type]
    sync_cost = sum(float(r["cost"]) for r in sync)  # type: ignore[arg-type]
    batch_cost = sum(float(r["cost"]) for r in batch)  # type: ignore[arg-type]
    assert sync_cost > 0 and batch_cost == pytest.approx(sync_cost / 2)
    rows = stored_batches(Store(db), batch_run)
    assert [(b.model, b.status, b.collected, len(b.job_ids)) for b in rows] == [
        ("glm-4-plus", "completed", True, 6), ("glm-4-air", "completed", True, 6)]
    # Reports read it like any run: the summary's cost is the batch price.
    report = CliRunner().invoke(main, ["report", batch_run, "--db", str(db), "--format", "json", "--out", "-"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["totals"]["cost"] == pytest.approx(batch_cost)


def test_partial_failures_become_job_errors_and_resume_sends_only_the_unanswered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite, db = _suite(tmp_path / "s.yaml", models=("glm-4-plus", "glm-4-nope"), repeat=10), tmp_path / "r.db"
    with LocalServer(speed=0) as server:
        monkeypatch.setenv("ZHIPUAI_API_KEY", server.api_key)
        from glmeval.simulator import FaultConfig

        server.faults = FaultConfig(server_error=0.2, seed=3)
        code, out = _run(str(suite), "--base-url", server.base_url, "--db", str(db))
        run_id = _latest(db)
        rows = _rows(db, run_id)
        assert len(rows) == 60 and len({r["job_id"] for r in rows}) == 60
        unknown = [r for r in rows if r["model"] == "glm-4-nope"]
        assert {(r["status"], r["error_kind"], r["error_status"], r["error_code"]) for r in unknown} == {("error", "bad_request", 400, "1211")}
        faulted = [r for r in rows if r["model"] == "glm-4-plus" and r["status"] == "error"]
        assert faulted and {(r["error_kind"], r["error_code"]) for r in faulted} == {("server", "500")}
        assert all(r["status"] == "pass" for r in rows if r["model"] == "glm-4-plus" and r["status"] != "error")
        assert f"{len(faulted)} jobs ended without an answer" in out and "--resume" in out

        server.faults = None
        created, lines = server.stats.batches_created, sum(server.stats.batch_lines.values())
        code, out = _run(str(suite), "--base-url", server.base_url, "--db", str(db), "--resume", run_id)
        assert code in (0, 1), out  # the unknown model's jobs stay errors
        # One new batch, holding only the 5xx lines: the unknown model's refusals are final.
        assert server.stats.batches_created == created + 1
        assert sum(server.stats.batch_lines.values()) == lines + len(faulted)
    rows = _rows(db, run_id)
    assert len(rows) == 60
    assert all(r["status"] == "pass" for r in rows if r["model"] == "glm-4-plus")


def test_an_expired_batch_leaves_timeouts_that_resume_answers_in_a_new_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite, db = _suite(tmp_path / "s.yaml", models=("glm-4-plus",), repeat=10), tmp_path / "r.db"
    with LocalServer(fixed_latency_ms=50) as server:
        monkeypatch.setenv("ZHIPUAI_API_KEY", server.api_key)
        server.batch.workers = 1
        server.batch.expire_after_s = 0.6  # ~12 of the 30 lines fit
        code, out = _run(str(suite), "--base-url", server.base_url, "--db", str(db))
        run_id = _latest(db)
        rows = _rows(db, run_id)
        expired = [r for r in rows if r["status"] == "error"]
        assert len(rows) == 30 and 0 < len(expired) < 30, out
        assert {r["error_kind"] for r in expired} == {"timeout"}
        assert all("expired" in str(r["error_message"]) for r in expired)
        assert "expired" in out
        assert stored_batches(Store(db), run_id)[0].status == "expired"
        answered = sum(server.stats.batch_lines.values())
        assert answered == 30 - len(expired)

        server.batch.expire_after_s = None
        code, out = _run(str(suite), "--base-url", server.base_url, "--db", str(db), "--resume", run_id)
        assert code == 0, out
        assert server.stats.batches_created == 2 and sum(server.stats.batch_lines.values()) == 30
    rows = _rows(db, run_id)
    assert len(rows) == 30 and all(r["status"] == "pass" for r in rows)


def test_ten_thousand_jobs_in_batch_mode_complete_through_run_local(tmp_path: Path) -> None:
    questions = ["你好", "中国的首都是哪里？", "1+1等于几？", "写一首关于春天的诗", "hello", "今天天气怎么样？", "推荐一本书",
                 "讲个笑话", "什么是机器学习？", "再见"]
    cases = "\n".join(f"  - {{id: q{i}, vars: {{question: \"{q}\"}}}}" for i, q in enumerate(questions))
    suite, db = tmp_path / "big.yaml", tmp_path / "r.db"
    suite.write_text(
        "name: big\nmodel: glm-4-plus\nmode: batch\nrepeat: 1000\nmessages:\n  - {role: user, content: \"{{ question }}\"}\n"
        f"checks:\n  - {{type: max-chars, value: 10000}}\ncases:\n{cases}\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    code, out = _run(str(suite), "--local", "--db", str(db), "-q")
    elapsed = time.monotonic() - started
    print(f"\n10,000 batch-mode jobs through glmeval run --local: {elapsed:.1f} s")
    assert code == 0, out[-2000:]
    assert "10000 passed, 0 failed, 0 errors of 10,000 jobs" in out
    run_id = _latest(db)
    rows = Store(db).conn.execute("SELECT COUNT(DISTINCT job_id), SUM(mode = 'batch'), SUM(cost) FROM results WHERE run_id = ?",
                                  (run_id,)).fetchone()
    assert rows[0] == rows[1] == 10_000 and rows[2] > 0
    assert [len(b.job_ids) for b in stored_batches(Store(db), run_id)] == [10_000]
    assert elapsed < 120


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("kill_at", ["first batch collected", "first batch created"])
def test_kill_9_mid_batch_then_resume_submits_no_batch_again(tmp_path: Path, kill_at: str) -> None:
    suite = _suite(tmp_path / "s.yaml", models=("glm-4-plus", "glm-4-air", "glm-4-flash"), repeat=70)  # 210 a model
    db = tmp_path / "r.db"
    with LocalServer(fixed_latency_ms=100) as server:
        server.batch.workers = 40  # 2.5 ms a line: ~0.5 s a batch
        server.batch.parallel = 1  # one batch at a time: the others wait, as behind a queue cap
        env = {**os.environ, "ZHIPUAI_API_KEY": server.api_key}
        command = [sys.executable, "-m", "glmeval", "run", str(suite), "--base-url", server.base_url, "--db", str(db),
                   "--no-report", "-q"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                created, stored = server.stats.batches_created, _count(db)
                if (kill_at == "first batch created" and created >= 1) or (kill_at == "first batch collected" and stored >= 210):
                    break
                assert proc.poll() is None, proc.communicate()[0].decode()
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        at_kill = _count(db)
        assert at_kill < 630, "the run ended before it was killed"
        created_before = server.stats.batches_created

        resumed = subprocess.run([*command, "--resume", "latest"], env=env, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        # No batch submitted twice: one per model in all, and not one request answered twice.
        assert server.stats.batches_created == 3
        assert created_before <= 3
        assert sum(server.stats.batch_lines.values()) == 630
    store = Store(db)
    run = store.require_run(_latest(db))
    assert run.status == "complete"
    rows = _rows(db, run.id)
    assert len(rows) == 630 and len({r["job_id"] for r in rows}) == 630
    assert all(r["status"] == "pass" for r in rows)
    assert sorted(b.model for b in stored_batches(store, run.id)) == ["glm-4-air", "glm-4-flash", "glm-4-plus"]
    assert all(b.collected and b.status == "completed" for b in stored_batches(store, run.id))


def test_mode_batch_refuses_record_with_one_line(tmp_path: Path) -> None:
    suite, db = _suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    code, out = _run(str(suite), "--local", "--db", str(db), "--record", str(tmp_path / "c.yaml"))
    assert code == 2
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert lines == [f"error: {suite}: mode batch goes through the Batch API, which --record cannot record or replay; "
                     "run it without that flag, or pass --mode sync"]
    assert "Traceback" not in out and not (tmp_path / "c.yaml").exists()
    assert not db.exists() or not Store(db).list_runs()


def test_a_misspelt_mode_names_batch(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "s.yaml", mode="bach")
    code, out = _run(str(suite), "--local", "--db", str(tmp_path / "r.db"))
    assert code == 2 and "did you mean 'batch'" in out and "Traceback" not in out


def test_a_batch_whose_id_was_never_stored_is_found_by_its_file_not_submitted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill between ``batches.create`` and storing its id: the row has the uploaded file only.
    --resume finds the batch by ``input_file_id`` in ``batches.list`` and collects it."""
    suite, db = _suite(tmp_path / "s.yaml", models=("glm-4-plus",), repeat=5), tmp_path / "r.db"
    with LocalServer(speed=0) as server:
        monkeypatch.setenv("ZHIPUAI_API_KEY", server.api_key)
        for _ in range(3):  # other batches on the account, newer than ours: the lookup pages past them
            code, out = _run(str(suite), "--base-url", server.base_url, "--db", str(tmp_path / "other.db"))
        code, out = _run(str(suite), "--base-url", server.base_url, "--db", str(db))
        assert code == 0, out
        run_id = _latest(db)
        store = Store(db)
        (row,) = stored_batches(store, run_id)
        # As the killed process left it: file uploaded, batch id not stored, no results.
        store.conn.execute("UPDATE batches SET batch_id = NULL, status = 'uploaded', collected = 0")
        store.conn.execute("DELETE FROM checks WHERE run_id = ?", (run_id,))
        store.conn.execute("DELETE FROM results WHERE run_id = ?", (run_id,))
        store.conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))
        for _ in range(120):  # and more batches created since, by someone else
            server._sim.batches.create({"input_file_id": server._sim.batches.files.add("x.jsonl", "batch", b"{}").id,
                                        "endpoint": "/v4/chat/completions"})
        created = server.stats.batches_created
        code, out = _run(str(suite), "--base-url", server.base_url, "--db", str(db), "--resume", run_id)
        assert code == 0, out
        assert server.stats.batches_created == created
    (again,) = stored_batches(Store(db), run_id)
    assert again.batch_id == row.batch_id and again.collected
    rows = _rows(db, run_id)
    assert len(rows) == 15 and all(r["status"] == "pass" for r in rows)


def test_resume_with_local_submits_again_what_the_gone_server_held(tmp_path: Path) -> None:
    """--local starts a new server each run: a batch of the killed run is unknown to it, so its
    jobs (never answered) go into a new batch, with one line saying so."""
    suite, db = _suite(tmp_path / "s.yaml", models=("glm-4-plus",), repeat=2), tmp_path / "r.db"
    code, out = _run(str(suite), "--local", "--db", str(db))
    assert code == 0, out
    run_id = _latest(db)
    store = Store(db)
    (row,) = stored_batches(store, run_id)
    store.conn.execute("UPDATE batches SET status = 'in_progress', collected = 0")
    store.conn.execute("DELETE FROM checks WHERE run_id = ?", (run_id,))
    store.conn.execute("DELETE FROM results WHERE run_id = ?", (run_id,))
    code, out = _run(str(suite), "--local", "--db", str(db), "--resume", run_id)
    assert code == 0, out
    assert f"batch {row.batch_id} is unknown to http://127.0.0.1:" in out and "its jobs go into a new batch" in out
    rows = stored_batches(Store(db), run_id)
    assert [(b.status, b.collected) for b in rows] == [("lost", True), ("completed", True)]
    assert rows[1].job_ids == row.job_ids
    assert len(_rows(db, run_id)) == 6 and all(r["status"] == "pass" for r in _rows(db, run_id))


def test_mode_batch_refuses_a_budget_with_one_line(tmp_path: Path) -> None:
    suite, db = _suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    code, out = _run(str(suite), "--local", "--db", str(db), "--max-cost", "1")
    assert code == 2 and "Traceback" not in out
    assert [line for line in out.splitlines() if line.startswith("error:")] == [
        f"error: {suite}: mode batch submits whole files at once, so --max-cost / --max-tokens cannot stop it midway; "
        "drop the budget, or pass --mode sync"]
    assert not db.exists() or not Store(db).list_runs()
