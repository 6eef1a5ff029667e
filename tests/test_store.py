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
        assert store.schema_version == SCHEMA_VERSION == 7
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        assert int(store.conn.execute("PRAGMA busy_timeout").fetchone()[0]) >= 5000
        assert {"baseline", "origin", "imported_at"} <= set(store.columns("runs"))
        assert "tags" in store.columns("results")


def test_every_version_has_a_migration() -> None:
    assert [m.number for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


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


# -- read-only databases ------------------------------------------------------------------------


def _stored_run(path: Path) -> str:
    with Store(path) as store:
        run = store.start_run("ro", variants=["glm-4"])
        store.add_result(run, make_result(make_job("hello", suite="ro"), True))
        store.finish_run(run, "complete")
    return run


def _open_everything_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a read-only mount or a write-protected file does to SQLite, for a test running as
    root (which ignores file permissions): every connection can only read."""
    real = sqlite3.connect

    def connect(database: object, *args: object, uri: bool = False, **kwargs: object) -> sqlite3.Connection:
        if not uri:
            database, uri = f"file:{database}?mode=ro", True
        elif "mode=ro" not in str(database):
            database = f"{database}{'&' if '?' in str(database) else '?'}mode=ro"
        return real(database, *args, uri=uri, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", connect)


def test_readonly_store_reads_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    run = _stored_run(path)
    with Store(path, readonly=True) as store:
        assert [r.id for r in store.list_runs()] == [run]
        assert [store.load_result(row).status for row in store.iter_results(run)] == ["pass"]
        with pytest.raises(sqlite3.OperationalError, match="readonly database"):
            store.conn.execute("DELETE FROM runs")
    with Store(path, create=False) as store:  # what runs/show/report/export/compare/history open
        assert store.readonly
        with pytest.raises(sqlite3.OperationalError, match="readonly database"):
            store.start_run("ro")


def test_readonly_error_classification(tmp_path: Path) -> None:
    from glmeval.store import is_readonly_error

    path = tmp_path / "x.db"
    _stored_run(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as readonly:
        conn.execute("INSERT INTO meta (key, value) VALUES ('a', 'b')")
    conn.close()
    assert str(readonly.value) == "attempt to write a readonly database"
    assert is_readonly_error(readonly.value, path)
    assert is_readonly_error(OSError(30, "Read-only file system"))

    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(sqlite3.DatabaseError) as corrupt:
        sqlite3.connect(junk).execute("SELECT * FROM sqlite_master")
    assert not is_readonly_error(corrupt.value, junk)  # that one really is "not usable"
    with pytest.raises(sqlite3.OperationalError) as missing:
        sqlite3.connect(tmp_path / "no" / "such" / "dir.db")
    assert not is_readonly_error(missing.value, tmp_path / "no" / "such" / "dir.db")  # writable, only missing


def test_run_against_a_read_only_database_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from glmeval.cli import main

    path = tmp_path / "ro.db"
    run = _stored_run(path)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: ro\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n", encoding="utf-8")
    _open_everything_read_only(monkeypatch)
    with pytest.raises(GlmevalError) as info:
        Store(path)
    assert str(info.value) == f"{path} is read-only; pass --db to write elsewhere (runs, show, report and export can still read it)"
    cli = CliRunner()
    result = cli.invoke(main, ["run", str(suite), "--local", "--db", str(path), "--no-report", "-q"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: {info.value}"]
    assert "move this one aside" not in result.output
    for args in (["runs"], ["show"], ["report", "latest"], ["export", "latest"], ["history", "ro"]):
        read = cli.invoke(main, [*args, "--db", str(path)])
        assert read.exit_code == 0, (args, read.output)
        assert run in read.output or "glm-4" in read.output, args


def test_read_only_database_that_needs_an_upgrade_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build_v1_db(tmp_path / "old.db")
    _open_everything_read_only(monkeypatch)
    with pytest.raises(GlmevalError, match="is read-only and needs a schema upgrade") as info:
        Store(path, create=False)
    assert "move this one aside" not in str(info.value)
    monkeypatch.undo()
    with Store(path, create=False) as store:  # writable after all: upgraded, then read
        assert store.schema_version == SCHEMA_VERSION


def test_history_on_a_read_only_mount(tmp_path: Path) -> None:
    """The real thing where the test may mount (root on Linux): a database copied to a tmpfs
    that is then remounted read-only, as CI mounts a history artefact."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("needs root on Linux to mount a read-only filesystem")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount here")
    try:
        run = _stored_run(tmp_path / "good.db")
        (mnt / "ro.db").write_bytes((tmp_path / "good.db").read_bytes())
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode == 0
        with Store(mnt / "ro.db", create=False) as store:  # a WAL database with no -shm file
            assert [r.id for r in store.list_runs()] == [run]
        with pytest.raises(GlmevalError) as info:
            Store(mnt / "ro.db")
        assert "is read-only; pass --db to write elsewhere" in str(info.value)
        with pytest.raises(GlmevalError, match=f"cannot create {mnt}/new.db: {mnt} is read-only; pass --db"):
            Store(mnt / "new.db")
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


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


def test_resolve_latest_prefix_and_errors(store_db: Path | str) -> None:
    with Store(store_db) as store:
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


def run_git(repo: Path, *args: str) -> str:
    """git in ``repo`` with an identity for commits, its output stripped."""
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.strip()


def test_run_records_the_git_facts_of_its_suites_checkout(tmp_path: Path) -> None:
    """``glmeval run`` asks git while the suite loads (``GitProbe``), not before the first
    call; the run's row holds the same commit, branch and dirty flag as asking at the start."""
    from click.testing import CliRunner

    from glmeval.cli import main

    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return run_git(repo, *args)

    git("init", "-q", "-b", "trunk")
    suite = repo / "suite.yaml"
    suite.write_text("name: g\nmodel: glm-4-flash\nmessages: [{role: user, content: hi}]\ncases: [{id: a}]\n")
    git("add", "suite.yaml")
    git("commit", "-q", "-m", "one")
    suite.write_text(suite.read_text() + "# edited\n")  # a tracked file changed: dirty
    db = tmp_path / "r.db"
    result = CliRunner().invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "-q", "--no-report", "--db", str(db)])
    assert result.exit_code == 0, result.output
    with Store(db) as store:
        (info,) = store.list_runs()
    assert (info.git_commit, info.git_branch, info.git_dirty) == (git("rev-parse", "HEAD"), "trunk", True)


def test_resolve_git_ref(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return run_git(repo, *args)

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


def test_two_processes_write_one_database_at_once(store_db: Path | str) -> None:
    Store(store_db).close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        ids = pool.map(_write_run, [(str(store_db), "alpha", 150), (str(store_db), "beta", 150)])
    with Store(store_db) as store:
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
