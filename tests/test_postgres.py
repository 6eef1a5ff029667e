"""One shared history in PostgreSQL: a real server (``pgcluster``), real ``glmeval`` processes.

Every test here needs a server: ``GLMEVAL_TEST_PG`` (``.ci/run`` starts one), or a throwaway
cluster the fixture starts from the server binaries; without either they skip saying why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.errors import GlmevalError
from glmeval.store import Store
from glmeval.store.copy import RUN_TABLES, SHARED_TABLES, table_rows
from glmeval.store.location import redact_url
from glmeval.store.migrations import MIGRATIONS_TABLE

SUITE = textwrap.dedent(
    """\
    name: {name}
    mode: sync
    grid:
      model: [glm-4, glm-3-turbo]
    repeat: 2
    messages:
      - {{role: user, content: "{{{{ question }}}}"}}
    cases:
      - id: hello
        vars: {{question: 你好}}
        checks:
          - contains-any: [你好, 您好]
      - id: capital
        vars: {{question: 中国的首都是哪里？}}
        checks:
          - contains: 北京
      - id: capital-wrong
        vars: {{question: 你好}}
        checks:
          - contains: 北京
    """
)
JOBS = 12  # 3 cases x 2 models x 2 repeats
CACHED = 8  # hello and capital-wrong ask the same question: one cache entry serves both


def glmeval_proc(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "glmeval", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GLMEVAL_DB": ""},
    )


def write_suite(folder: Path, name: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SUITE.format(name=name), encoding="utf-8")
    return path


def password_of(url: str) -> str:
    return urllib.parse.urlsplit(url).password or "no-password"


# -- connecting ---------------------------------------------------------------------------------


def test_a_bad_password_a_missing_database_and_no_server_are_one_line_each(pg_url: str, tmp_path: Path) -> None:
    parts = urllib.parse.urlsplit(pg_url)
    wrong = pg_url.replace(f":{parts.password}@", ":not-the-password@")
    missing = pg_url.rsplit("/", 1)[0] + "/no_such_db"
    unreachable = f"postgresql://{parts.username}:s3cret-pw@127.0.0.1:9/glmeval"
    cases = {
        wrong: "PostgreSQL refused the password for user",
        missing: "the server has no database 'no_such_db'; create it",
        unreachable: "cannot reach the PostgreSQL server",
    }
    suite = str(write_suite(tmp_path, "s"))
    for url, expected in cases.items():
        for args in (["runs"], ["run", suite, "--local", "-q"]) if url == wrong else (["show"],):
            result = subprocess.run(
                [sys.executable, "-m", "glmeval", *args, "--db", url], cwd=tmp_path, capture_output=True, text=True, timeout=60,
            )
            assert result.returncode == 2, (args, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"error: {redact_url(url)}: "), lines
            assert expected in lines[0]
            assert "Traceback" not in result.stderr
            for secret in ("not-the-password", "s3cret-pw", parts.password or "x"):
                assert secret not in result.stderr + result.stdout


def test_the_password_never_reaches_a_message_a_report_or_an_export(pg_url: str, tmp_path: Path) -> None:
    secret = password_of(pg_url)
    suite = write_suite(tmp_path, "quiet")
    run = subprocess.run(
        [sys.executable, "-m", "glmeval", "run", str(suite), "--local", "--local-speed", "0", "--out", str(tmp_path / "r")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, "GLMEVAL_DB": pg_url},
    )
    assert run.returncode == 1, run.stderr  # capital-wrong fails by design
    exported = CliRunner().invoke(main, ["export", "latest", "--db", pg_url, "-o", str(tmp_path / "run.json")])
    assert exported.exit_code == 0, exported.output
    data = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert data["exported_from"]["db"] == redact_url(pg_url) and "***" in data["exported_from"]["db"]
    texts = [run.stdout, run.stderr, exported.output] + [p.read_text(errors="replace") for p in (tmp_path / "r").rglob("*.*")]
    texts.append((tmp_path / "run.json").read_text(encoding="utf-8"))
    with Store(pg_url) as store:
        texts += [json.dumps(table_rows(store, t), default=str) for t in ("runs", "results", "meta")]
    assert texts and all(secret not in text for text in texts)


def test_reading_an_empty_database_says_so_and_creates_nothing(pg_url: str) -> None:
    with pytest.raises(GlmevalError, match="no glmeval history in postgresql://.*:\\*\\*\\*@.* yet; run a suite first"):
        Store(pg_url, create=False)
    with Store(pg_url) as store:
        assert store.list_runs() == [] and store.engine == "postgresql"


def test_sqlite_spelling_translates_and_lease_style_upserts_run_on_both(store_db: Path | str) -> None:
    """The statements other modules write (``?``, ``%`` in literals, ``INSERT OR REPLACE``,
    ``ON CONFLICT ... DO UPDATE ... WHERE``, booleans) mean the same on both engines."""
    with Store(store_db) as store:
        conn = store.conn
        row = conn.execute("SELECT '?' AS q, ? || '%' AS p, ? AS b", ("50", True)).fetchone()
        assert (row["q"], row["p"], row["b"]) == ("?", "50%", 1) and tuple(row) == ("?", "50%", 1)
        rid = store.start_run("s", run_id="r1")
        assert store.start_run("s", run_id="r1") == rid  # INSERT OR IGNORE: the first start wins
        upsert = (
            "INSERT INTO shards (run_id, shard, shard_count, status, jobs, host, started_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, shard) DO UPDATE SET status = excluded.status WHERE shards.status = 'running'"
        )
        conn.execute(upsert, (rid, 1, 2, "running", 3, "h", 1.5))
        conn.execute(upsert, (rid, 1, 2, "complete", 3, "h", 1.5))
        conn.execute(upsert, (rid, 1, 2, "running", 3, "h", 1.5))  # the WHERE keeps the ended shard ended
        assert [tuple(r) for r in conn.execute("SELECT status, started_at FROM shards WHERE run_id = ?", (rid,))] == [("complete", 1.5)]
        counts = store.run_counts([rid])
        assert counts == {}  # no results: no row
        assert store.columns("shards")[:2] == ["run_id", "shard"]


# -- many writers --------------------------------------------------------------------------------


def test_two_concurrent_cli_runs_share_one_history_and_every_command_reads_it(pg_url: str, tmp_path: Path) -> None:
    """The issue's "done when": two `glmeval run --local --db postgresql://…` processes at once;
    nothing lost or doubled; runs, show, compare, history, report and --fail-on read it."""
    procs = [
        glmeval_proc(["run", str(write_suite(tmp_path, "shared")), "--local", "--local-speed", "0", "--db", pg_url,
                      "--no-report", "-q", "--concurrency", "4"], tmp_path)
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 1, out + err  # capital-wrong fails: the ordinary exit code
    with Store(pg_url, create=False) as store:
        runs = store.list_runs()
        assert len(runs) == 2 and len({r.id for r in runs}) == 2
        for run in runs:
            assert run.status == "complete" and run.total_jobs == JOBS
            assert store.run_counts([run.id])[run.id]["results"] == JOBS
        total, distinct = store.conn.execute("SELECT COUNT(*), COUNT(DISTINCT run_id || job_id) FROM results").fetchone()
        assert total == distinct == 2 * JOBS
        checks = store.conn.execute("SELECT COUNT(*) FROM checks").fetchone()[0]
        assert checks == 2 * JOBS  # one check per job
        older, newer = runs[1].id, runs[0].id
    cli = CliRunner()
    listed = cli.invoke(main, ["runs", "--db", pg_url])
    assert listed.exit_code == 0 and older in listed.output and newer in listed.output
    assert "8/12" in listed.output  # hello and capital pass on both models, capital-wrong never
    shown = cli.invoke(main, ["show", newer, "--db", pg_url])
    assert shown.exit_code == 0 and "capital-wrong" in shown.output and "complete" in shown.output
    compared = cli.invoke(main, ["compare", older, newer, "--db", pg_url, "--fail-on", "regression"])
    assert compared.exit_code == 0, compared.output
    gated = cli.invoke(main, ["compare", older, newer, "--db", pg_url, "--fail-on", "pass-rate<0.9"])
    assert gated.exit_code == 1 and "pass-rate" in gated.stderr
    history = cli.invoke(main, ["history", "shared", "--db", pg_url])
    assert history.exit_code == 0 and history.output.count(older[:15]) >= 1
    report = cli.invoke(main, ["report", newer, "--db", pg_url, "--format", "md", "--out", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    md = next((tmp_path / "rep").rglob("*.md")).read_text(encoding="utf-8")
    assert "capital-wrong" in md and "67%" in md
    gate_run = cli.invoke(main, ["run", str(tmp_path / "shared.yaml"), "--local", "--local-speed", "0", "--db", pg_url,
                                 "--no-report", "-q", "--baseline", "latest", "--fail-on", "regression"])
    assert gate_run.exit_code == 0, gate_run.output  # nothing regressed against the previous shared run


def test_resume_and_the_cache_work_on_postgres(pg_url: str, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, "resumable")
    cli = CliRunner()
    first = cli.invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", pg_url, "--no-report", "-q", "--cache"])
    assert first.exit_code == 1, first.output
    with Store(pg_url) as store:
        run_id = store.list_runs()[0].id
        store.conn.execute("DELETE FROM checks WHERE run_id = ? AND job_id IN (SELECT job_id FROM results WHERE case_id = 'hello')", (run_id,))
        store.conn.execute("DELETE FROM results WHERE run_id = ? AND case_id = 'hello'", (run_id,))
        cached = store.conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
    assert cached == CACHED
    resumed = cli.invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", pg_url, "--no-report", "-q",
                                "--resume", run_id, "--replay"])
    assert resumed.exit_code == 1, resumed.output
    with Store(pg_url) as store:
        assert store.run_counts([run_id])[run_id]["results"] == JOBS
        assert store.require_run(run_id).status == "complete"
        assert store.conn.execute("SELECT SUM(cached) FROM results WHERE case_id = 'hello'").fetchone()[0] == 4


# -- migrate -------------------------------------------------------------------------------------


def _sqlite_history(tmp_path: Path) -> Path:
    """A SQLite history with two runs (one cached), a sharded run and its shard rows."""
    db = tmp_path / "laptop.db"
    suite = write_suite(tmp_path, "moved")
    cli = CliRunner()
    for extra in ([], ["--cache"]):
        done = cli.invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--no-report", "-q", *extra])
        assert done.exit_code == 1, done.output
    for k in (1, 2):
        done = cli.invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "-q",
                                 "--shard", f"{k}/2", "--run-id", "split-1"])
        assert done.exit_code in (0, 1), done.output
    return db


def _every_table(location: Path | str) -> dict[str, list[tuple[object, ...]]]:
    with Store(location, create=False) as store:
        return {t: table_rows(store, t) for t in (*RUN_TABLES[:4], *SHARED_TABLES, MIGRATIONS_TABLE, "meta")}


def test_migrate_moves_a_sqlite_history_row_for_row_and_back(pg_url: str, tmp_path: Path) -> None:
    db = _sqlite_history(tmp_path)
    before = _every_table(db)
    assert len(before["runs"]) == 3 and len(before["shards"]) == 2 and len(before["cache"]) == CACHED
    cli = CliRunner()
    moved = cli.invoke(main, ["migrate", "--db", str(db), "--to", pg_url, "-q"])
    assert moved.exit_code == 0, moved.output
    assert re.search(rf"copied 3 run\(s\) \({3 * JOBS} results, {3 * JOBS} checks, 2 shards, (0 leases, )?{CACHED} cache\)", moved.output)
    assert password_of(pg_url) not in moved.output
    assert _every_table(pg_url) == before  # every row of every table, the migration dates too
    assert _every_table(db) == before  # the source is unchanged
    again = cli.invoke(main, ["migrate", "--db", str(db), "--to", pg_url, "-q"])
    assert again.exit_code == 0 and "copied 0 run(s)" in again.output and "skipped 3 run(s) already there" in again.output
    assert _every_table(pg_url) == before  # nothing doubled
    back = tmp_path / "back.db"
    returned = cli.invoke(main, ["migrate", "--db", pg_url, "--to", str(back), "-q"])
    assert returned.exit_code == 0, returned.output
    assert _every_table(back) == before
    # The copy reads exactly like the file: the same runs, in the same order, the same comparison.
    for args in (["runs"], ["show", "split-1"], ["compare", "latest~2", "latest~1"]):
        assert cli.invoke(main, [*args, "--db", str(db)]).output == cli.invoke(main, [*args, "--db", pg_url]).output.replace(
            redact_url(pg_url), str(db)
        ), args


def test_export_and_import_work_both_ways(pg_url: str, tmp_path: Path) -> None:
    db = _sqlite_history(tmp_path)
    cli = CliRunner()
    with Store(db, create=False) as store:
        plain = store.resolve_run("latest~2")
    for run in (plain, "split-1"):
        out = tmp_path / f"{run}.json"
        assert cli.invoke(main, ["export", run, "--db", str(db), "-o", str(out)]).exit_code == 0
        imported = cli.invoke(main, ["import", str(out), "--db", pg_url])
        assert imported.exit_code == 0 and "imported" in imported.output, imported.output
        back = tmp_path / f"{run}-back.json"
        assert cli.invoke(main, ["export", run, "--db", pg_url, "-o", str(back)]).exit_code == 0
        a, b = (json.loads(p.read_text(encoding="utf-8")) for p in (out, back))
        for data in (a, b):
            data.pop("exported_at")
            data.pop("exported_from")
            data["run"].pop("origin")
            data["run"].pop("imported_at")
        assert a == b, run
        again = cli.invoke(main, ["import", str(out), "--db", pg_url])
        assert again.exit_code == 0 and "already present" in again.output
    with Store(pg_url, create=False) as store:
        assert store.require_run("split-1").status == "complete"
        assert store.run_counts(["split-1"])["split-1"]["results"] == JOBS


def test_without_a_server_the_tests_say_why_they_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    import pgcluster

    monkeypatch.setattr(pgcluster.shutil, "which", lambda name: None)
    monkeypatch.setattr(pgcluster.glob, "glob", lambda pattern: [])
    with pytest.raises(RuntimeError, match="GLMEVAL_TEST_PG is not set and no PostgreSQL server binaries"):
        pgcluster.start()
