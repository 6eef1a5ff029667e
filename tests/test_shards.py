"""One run split across machines: ``glmeval run SUITE --shard K/N --run-id ID``.

The slice is checked as a function (a partition, deterministic, repeats together, the same in
another process); the rest with real ``glmeval`` processes: four shards at once into one
PostgreSQL history, and four SQLite files merged by ``glmeval import``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.errors import GlmevalError
from glmeval.plan import build_plan
from glmeval.shard import Shard, shard_of
from glmeval.store import Store
from glmeval.store.shards import run_shards
from glmeval.suite import load_suite

SUITE = textwrap.dedent(
    """\
    name: sharded
    mode: sync
    grid:
      model: [glm-4, glm-3-turbo]
    repeat: 3
    threshold: 0.6
    messages:
      - {role: user, content: "{{ question }}"}
    cases:
    """
)
CASES = [("hello", "你好", "contains-any: [你好, 您好]"), ("capital", "中国的首都是哪里？", "contains: 北京"),
         ("wrong", "你好", "contains: 北京")] + [(f"c{i}", f"第{i}个问题：中国的首都是哪里？", "contains: 北京") for i in range(7)]
JOBS = len(CASES) * 2 * 3


def write_suite(folder: Path) -> Path:
    text = SUITE + "".join(
        f"  - id: {cid}\n    vars: {{question: \"{q}\"}}\n    checks:\n      - {check}\n" for cid, q, check in CASES
    )
    path = folder / "sharded.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def shard_proc(suite: Path, k: int, n: int, db: Path | str, run_id: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "glmeval", "run", str(suite), "--local", "--local-speed", "0", "--shard", f"{k}/{n}",
         "--run-id", run_id, "--db", str(db), "-q", "--concurrency", "4"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "GLMEVAL_DB": ""},
    )


def wait(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=240)
        out.append((proc.returncode, stdout + stderr))
    return out


# -- the slice ------------------------------------------------------------------------------------


def test_shards_partition_the_plan_deterministically_with_repeats_together(tmp_path: Path) -> None:
    plan = build_plan(load_suite(write_suite(tmp_path)))
    assert len(plan.jobs) == JOBS
    for n in (1, 2, 3, 4, 7):
        slices = [Shard(k, n).select(plan.jobs) for k in range(1, n + 1)]
        ids = [job.id for part in slices for job in part]
        assert sorted(ids) == sorted(job.id for job in plan.jobs) and len(set(ids)) == len(ids)  # each job once
        for part in slices:
            for job in part:  # every repeat of a case and variant lands in the same shard
                assert all(other in part for other in plan.jobs if (other.case_id, other.variant_id) == (job.case_id, job.variant_id))
    assert [len(Shard(k, 4).select(plan.jobs)) for k in range(1, 5)] == [len(Shard(k, 4).select(plan.jobs)) for k in range(1, 5)]
    # Another process (another hash seed) computes the same shards.
    script = (
        "import sys, json; from glmeval.plan import build_plan; from glmeval.suite import load_suite; "
        "from glmeval.shard import shard_of; "
        "print(json.dumps({j.id: shard_of(j, 4) for j in build_plan(load_suite(sys.argv[1])).jobs}))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "sharded.yaml")], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONHASHSEED": "12345"}, check=True,
    )
    assert json.loads(other.stdout) == {job.id: shard_of(job, 4) for job in plan.jobs}


@pytest.mark.parametrize(
    ("text", "message"),
    [("3", "give K/N"), ("0/4", "K must be 1 to 4"), ("5/4", "K must be 1 to 4"), ("1/0", "N must be 1 to"), ("a/b", "give K/N")],
)
def test_bad_shard_values_are_one_line(text: str, message: str) -> None:
    with pytest.raises(GlmevalError, match=message):
        Shard.parse(text)


def test_shard_flags_that_cannot_go_together_stop_before_anything_runs(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    db = tmp_path / "h.db"
    cli = CliRunner()
    cases = {
        ("--shard", "1/2"): "--shard needs --run-id ID",
        ("--shard", "1/2", "--run-id", "r", "--fail-on", "regression"): "glmeval compare BASE r --fail-on RULE",
        ("--shard", "1/2", "--run-id", "bad id"): "--run-id 'bad id': use 1-100 letters",
        ("--shard", "9/2", "--run-id", "r"): "K must be 1 to 2",
    }
    for args, message in cases.items():
        result = cli.invoke(main, ["run", str(suite), "--local", "--db", str(db), "-q", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not db.exists() or Store(db, create=False).list_runs() == []


# -- many machines, one PostgreSQL history ---------------------------------------------------------


def test_four_shards_in_four_processes_make_one_complete_run(pg_url: str, tmp_path: Path) -> None:
    """The issue's "done when": four shards of one run written by four processes at once;
    nothing lost or doubled; the run is `running` until the last shard ends, then `complete`,
    and show, report, compare and --fail-on read it as one run."""
    suite = write_suite(tmp_path)
    cli = CliRunner()
    base = cli.invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", pg_url, "--no-report", "-q"])
    assert base.exit_code == 1, base.output  # the case "wrong" fails by design
    first = wait([shard_proc(suite, k, 4, pg_url, "ci-42", tmp_path) for k in (1, 2, 3)])
    for code, output in first:
        assert code in (0, 1), output
        assert "of run ci-42" in output
    with Store(pg_url, create=False) as store:
        assert store.require_run("ci-42").status == "running"
        shards = run_shards(store.conn, "ci-42")
        assert shards is not None and (shards.count, shards.ended, shards.missing) == (4, 3, [4])
    shown = cli.invoke(main, ["show", "ci-42", "--db", pg_url])
    assert shown.exit_code == 0 and "running" in shown.output and "3 of 4 done, waiting for 4" in shown.output
    # The fourth shard, and a CI retry of shard 2 at the same time: nothing is doubled.
    last = wait([shard_proc(suite, 4, 4, pg_url, "ci-42", tmp_path), shard_proc(suite, 2, 4, pg_url, "ci-42", tmp_path)])
    assert all(code in (0, 1) for code, _ in last), last
    assert any("4 of 4 shards done: the run is complete" in output for _, output in last), last
    with Store(pg_url, create=False) as store:
        run = store.require_run("ci-42")
        assert run.status == "complete" and run.total_jobs == JOBS and run.ended_at is not None
        total, distinct = store.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT job_id) FROM results WHERE run_id = ?", ("ci-42",)
        ).fetchone()
        assert total == distinct == JOBS
        plan = build_plan(load_suite(suite))
        assert store.done_job_ids("ci-42") | {
            r[0] for r in store.conn.execute("SELECT job_id FROM results WHERE run_id = ? AND status = 'error'", ("ci-42",))
        } == {job.id for job in plan.jobs}
        rows = run_shards(store.conn, "ci-42")
        assert rows is not None and [(r.shard, r.status) for r in rows.rows] == [(k, "complete") for k in range(1, 5)]
        assert sum(r.jobs for r in rows.rows) == JOBS
        base_id = store.resolve_run("latest~1")
    compared = cli.invoke(main, ["compare", base_id, "ci-42", "--db", pg_url, "--fail-on", "regression"])
    assert compared.exit_code == 0, compared.output  # the same answers as the unsharded run: one run to compare
    gated = cli.invoke(main, ["compare", base_id, "ci-42", "--db", pg_url, "--fail-on", "pass-rate<0.95"])
    assert gated.exit_code == 1 and "pass-rate" in gated.stderr
    report = cli.invoke(main, ["report", "ci-42", "--db", pg_url, "--format", "json", "--out", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    data = json.loads(next((tmp_path / "rep").rglob("*.json")).read_text(encoding="utf-8"))
    assert data["run"]["id"] == "ci-42" and data["run"]["status"] == "complete"
    assert sum(v["jobs"] for v in data["summary"]) == JOBS


def test_a_shard_of_another_shard_count_or_suite_version_is_refused(pg_url: str, tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    cli = CliRunner()
    args = ["run", str(suite), "--local", "--local-speed", "0", "--db", pg_url, "-q", "--run-id", "split"]
    assert cli.invoke(main, [*args, "--shard", "1/2"]).exit_code in (0, 1)
    other = cli.invoke(main, [*args, "--shard", "1/3"])
    assert other.exit_code == 2 and "split into 2 shards, not 3" in other.stderr
    suite.write_text(suite.read_text(encoding="utf-8").replace("repeat: 3", "repeat: 2"), encoding="utf-8")
    changed = cli.invoke(main, [*args, "--shard", "2/2"])
    assert changed.exit_code == 2 and "different version" in changed.stderr
    plain = cli.invoke(main, ["run", str(suite), "--local", "--db", pg_url, "-q", "--run-id", "split"])
    assert plain.exit_code == 2 and "already in" in plain.stderr


# -- SQLite: one file per machine, merged by import -------------------------------------------------


def test_sqlite_shards_merge_through_import(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    files = [tmp_path / f"shard-{k}.db" for k in range(1, 5)]
    results = wait([shard_proc(suite, k, 4, files[k - 1], "ci-7", tmp_path) for k in range(1, 5)])
    assert all(code in (0, 1) for code, _ in results), results
    cli = CliRunner()
    exports = []
    for k, db in enumerate(files, 1):
        with Store(db, create=False) as store:
            assert store.require_run("ci-7").status == "running"  # one shard of four, on its own
        out = tmp_path / f"shard-{k}.json"
        assert cli.invoke(main, ["export", "ci-7", "--db", str(db), "-o", str(out)]).exit_code == 0
        exports.append(out)
    merged = tmp_path / "merged.db"
    partial = cli.invoke(main, ["import", *map(str, exports[:3]), "--db", str(merged)])
    assert partial.exit_code == 0, partial.output
    assert "merged shard 3 of 4" in partial.output and "3 of 4 shards done" in partial.output
    with Store(merged, create=False) as store:
        assert store.require_run("ci-7").status == "running"
    rest = cli.invoke(main, ["import", *map(str, exports), "--db", str(merged)])
    assert rest.exit_code == 0, rest.output
    assert rest.output.count("already present") == 3 and "4 of 4 shards done" in rest.output
    with Store(merged, create=False) as store:
        run = store.require_run("ci-7")
        assert run.status == "complete" and store.run_counts(["ci-7"])["ci-7"]["results"] == JOBS
        total, distinct = store.conn.execute("SELECT COUNT(*), COUNT(DISTINCT job_id) FROM results").fetchone()
        assert total == distinct == JOBS
    report = cli.invoke(main, ["report", "ci-7", "--db", str(merged), "--format", "md", "--out", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    shown = cli.invoke(main, ["show", "ci-7", "--db", str(merged)])
    assert shown.exit_code == 0 and "complete" in shown.output and "wrong" in shown.output
