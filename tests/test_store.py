"""The SQLite history: schema, migrations, run references, concurrency, corrupt files."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import glmeval
from glmeval.errors import GlmevalError
from glmeval.records import CheckResult, CheckSpec, Completion, ErrorInfo, Job, Result
from glmeval.store import MIGRATIONS, SCHEMA_VERSION, Store

DATA = Path(__file__).resolve().parent / "data"
V1_RUN = "20250101-120000-v1abcd"


def make_job(case: str, variant: str = "glm-4", repeat: int = 0, suite: str = "s", **extra: object) -> Job:
    model = variant.split()[0]
    return Job(
        id=f"{suite}-{case}-{variant}-{repeat}",
        suite=suite,
        case_id=case,
        variant_id=variant,
        variant={"model": model, **({"temperature": 0.9} if "t=0.9" in variant else {})},
        repeat=repeat,
        model=model,
        mode="sync",
        messages=[{"role": "user", "content": case}],
        params={"max_tokens": 64},
        checks=[CheckSpec("contains", {"value": "x"})],
        **extra,  # type: ignore[arg-type]
    )


def make_result(job: Job, passed: bool, text: str = "answer", error: str | None = None, latency: float = 100.0) -> Result:
    completion = Completion(
        text="" if error else text,
        prompt_tokens=5,
        completion_tokens=10,
        total_tokens=15,
        latency_ms=latency,
        error=ErrorInfo(error, "boom") if error else None,
    )
    checks = [] if error else [CheckResult("contains", passed, 1.0 if passed else 0.0, "ok" if passed else "missing", label="contains x")]
    return Result(job, completion, checks, passed and not error, 1.0 if passed else 0.0, cost=0.001)


def build_v1_db(path: Path) -> Path:
    """A database exactly as the version-1 Store wrote it (see tests/data/make_v1_db.py)."""
    conn = sqlite3.connect(path)
    conn.executescript((DATA / "schema_v1.sql").read_text(encoding="utf-8"))
    conn.close()
    return path


# -- schema and migrations ----------------------------------------------------------------------


def test_new_database_is_current_and_in_wal_mode(db_path: Path) -> None:
    with Store(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        assert int(store.conn.execute("PRAGMA busy_timeout").fetchone()[0]) >= 5000
        assert {"baseline", "origin", "imported_at"} <= set(store.columns("runs"))
        assert "tags" in store.columns("results")


def test_every_version_has_a_migration() -> None:
    assert set(MIGRATIONS) == set(range(2, SCHEMA_VERSION + 1))


def test_v1_database_opens_after_migration(tmp_path: Path) -> None:
    path = build_v1_db(tmp_path / "old.db")
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    assert "baseline" not in [r[1] for r in raw.execute("PRAGMA table_info(runs)")]
    raw.close()

    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        runs = store.list_runs()
        assert [r.id for r in runs] == [V1_RUN]
        run = runs[0]
        assert (run.suite, run.status, run.host, run.version, run.local) == ("legacy", "complete", "old-host", "0.0.9", True)
        assert run.variants == ["glm-4"] and run.settings == {"concurrency": 2}
        assert run.baseline is None and run.imported_at is None
        assert store.resolve_run("latest") == V1_RUN
        # Old rows read back as records, and the migration back-filled the new tags column.
        loaded = [store.load_result(row) for row in store.iter_results(V1_RUN)]
        assert [r.status for r in loaded] == ["pass", "fail", "error"]
        assert loaded[0].checks[0].label == "contains 你好"
        tags = dict(store.conn.execute("SELECT case_id, tags FROM results WHERE run_id = ?", (V1_RUN,)).fetchall())
        assert tags["hello"] == '["smoke"]'
        # A migrated database takes new runs.
        new = store.start_run("legacy", variants=["glm-4"])
        store.add_result(new, make_result(make_job("hello", suite="legacy"), True))
        store.finish_run(new, "complete")
        store.set_baseline(new, V1_RUN)
        assert store.require_run(new).baseline == V1_RUN

    frame = glmeval.results(db=str(path), run=V1_RUN)
    assert list(frame["case_id"]) == ["hello", "capital", "weather"]
    assert list(frame["temperature"]) == [0.2, 0.2, 0.2]
    assert list(frame["tags"]) == ["smoke", "", ""]
    # Opening again is a no-op.
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION


def _open_store(path: str) -> int:
    with Store(path) as store:
        return store.schema_version


def test_two_processes_migrating_one_old_database_at_once(tmp_path: Path) -> None:
    path = build_v1_db(tmp_path / "old.db")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        versions = pool.map(_open_store, [str(path)] * 2)
    assert versions == [SCHEMA_VERSION, SCHEMA_VERSION]
    with Store(path) as store:
        assert [r.id for r in store.list_runs()] == [V1_RUN]


def test_newer_schema_is_refused(db_path: Path) -> None:
    Store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(GlmevalError, match="newer than this glmeval"):
        Store(db_path)


def test_corrupt_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(GlmevalError, match="not a usable glmeval database") as info:
        Store(path)
    assert "\n" not in str(info.value)


def test_someone_elses_sqlite_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(GlmevalError, match="not a glmeval one"):
        Store(path)
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"customers"}


def test_reading_a_missing_database_does_not_create_it(tmp_path: Path) -> None:
    with pytest.raises(GlmevalError, match="no results database"):
        Store(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_default_location_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GLMEVAL_DB", raising=False)
    with Store() as store:
        assert store.path == Path(".glmeval") / "results.db"
    assert (tmp_path / ".glmeval" / "results.db").exists()
    monkeypatch.setenv("GLMEVAL_DB", str(tmp_path / "env.db"))
    with Store() as store:
        assert store.path == tmp_path / "env.db"


# -- run references -------------------------------------------------------------------------


def _runs(store: Store, n: int, suite: str = "s") -> list[str]:
    ids = []
    for i in range(n):
        rid = store.start_run(suite, run_id=f"2025010{i}-000000-{suite}{i:04d}")
        store.conn.execute("UPDATE runs SET started_at = ? WHERE id = ?", (1000.0 + i, rid))
        ids.append(rid)
    return ids


def test_resolve_latest_prefix_and_errors(db_path: Path) -> None:
    with Store(db_path) as store:
        ids = _runs(store, 3)
        other = _runs(store, 1, suite="t")[0]
        store.conn.execute("UPDATE runs SET started_at = 999 WHERE id = ?", (other,))
        assert store.resolve_run("latest") == ids[2]
        assert store.resolve_run("latest~1") == ids[1]
        assert store.resolve_run("latest~2") == ids[0]
        assert store.resolve_run("latest", suite="t") == other
        assert store.resolve_run("latest", suite="s", before=1002.0) == ids[1]
        assert store.resolve_run("latest", suite="s", exclude=ids[2]) == ids[1]
        assert store.resolve_run(ids[1]) == ids[1]
        assert store.resolve_run(ids[1][:9]) == ids[1]  # unique prefix
        with pytest.raises(GlmevalError, match="ambiguous"):
            store.resolve_run("2025010")
        with pytest.raises(GlmevalError, match="only 3 runs"):
            store.resolve_run("latest~5", suite="s")
        with pytest.raises(GlmevalError, match="latest~N"):
            store.resolve_run("latest~x")
        with pytest.raises(GlmevalError, match="glmeval runs"):
            store.resolve_run("nothing-like-this")
        with pytest.raises(GlmevalError, match="no run"):
            store.resolve_run("%")  # not a LIKE wildcard: matches no id rather than every id


def test_resolve_git_ref(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
            cwd=repo, check=True, capture_output=True, text=True,
        ).stdout.strip()

    git("init", "-q")
    (repo / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    first = git("rev-parse", "HEAD")
    with Store(tmp_path / "r.db") as store:
        old = store.start_run("s", cwd=repo)
        (repo / "a.txt").write_text("2")
        git("commit", "-q", "-am", "two")
        new = store.start_run("s", cwd=repo)
        assert store.get_run(old).git_commit == first  # type: ignore[union-attr]
        assert store.resolve_run("HEAD", cwd=repo) == new
        assert store.resolve_run("HEAD~1", cwd=repo) == old
        assert store.resolve_run(first[:8], cwd=tmp_path) == old  # stored sha prefix, git not needed
        git("tag", "v1", first)
        assert store.resolve_run("v1", cwd=repo) == old


# -- concurrency ----------------------------------------------------------------------------


def _write_run(args: tuple[str, str, int]) -> str:
    path, name, n = args
    with Store(path) as store:
        rid = store.start_run(name, total_jobs=n)
        for i in range(n):
            store.add_result(rid, make_result(make_job(f"case{i}", suite=name), i % 3 != 0))
            store.cache_put(f"{name}-{i}", "glm-4", Completion(text="x"))
        store.finish_run(rid, "complete")
        return rid


def test_two_processes_write_one_database_at_once(db_path: Path) -> None:
    Store(db_path).close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        ids = pool.map(_write_run, [(str(db_path), "alpha", 150), (str(db_path), "beta", 150)])
    with Store(db_path) as store:
        for rid in ids:
            run = store.require_run(rid)
            assert run.status == "complete"
            assert store.run_counts([rid])[rid]["results"] == 150
        assert store.conn.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == 300


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
    """
)


def test_two_cli_runs_write_one_database_at_once(tmp_path: Path) -> None:
    """The issue's "done when": two `glmeval run` processes, one database, both runs complete."""
    db = tmp_path / "same.db"
    procs = []
    for name in ("first", "second"):
        suite = tmp_path / f"{name}.yaml"
        suite.write_text(SUITE.format(name=name), encoding="utf-8")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "glmeval", "run", str(suite), "--local", "--local-speed", "0",
                 "--db", str(db), "--no-report", "-q"],
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        )
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
    with Store(db) as store:
        runs = store.list_runs()
        assert sorted(r.suite for r in runs) == ["first", "second"]
        for run in runs:
            assert run.status == "complete"
            assert run.total_jobs == 8
            assert store.run_counts([run.id])[run.id]["results"] == 8
