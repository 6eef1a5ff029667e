"""Named migrations: an old database, migrated, is the same database a fresh one is.

The fixtures are real old databases (``tests/data/schema_v1.sql`` from the first Store,
``schema_v3.sql`` from the last one that counted versions), not imitations, so these tests
prove the upgrade path users' files take.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from glmeval.errors import GlmevalError
from glmeval.store import MIGRATIONS, SCHEMA_VERSION, Store, migrate
from glmeval.store.migrations import LEGACY_SCHEMA_VERSION, MIGRATIONS_TABLE, applied_migrations, schema_state

DATA = Path(__file__).resolve().parent / "data"
NAMES = [m.name for m in MIGRATIONS]


def build(path: Path, fixture: str) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript((DATA / fixture).read_text(encoding="utf-8"))
    conn.close()
    return path


def fresh(path: Path) -> Path:
    Store(path).close()
    return path


def shape(path: Path) -> dict[str, Any]:
    """Every table's columns (name, type, notnull, default, pk) and indexes (name, unique,
    origin, partial, columns), as PRAGMA reports them: what two databases must share."""
    conn = sqlite3.connect(path)
    try:
        tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        out: dict[str, Any] = {}
        for table in tables:
            columns = [tuple(r[1:6]) for r in conn.execute(f"PRAGMA table_info({table})")]
            indexes = sorted(
                (r[1], r[2], r[3], r[4], tuple(c[2] for c in conn.execute(f"PRAGMA index_info({r[1]!r})")))
                for r in conn.execute(f"PRAGMA index_list({table})")
            )
            out[table] = {"columns": columns, "indexes": indexes}
        return out
    finally:
        conn.close()


def rows(path: Path, table: str, columns: list[str] | None = None) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        cols = ", ".join(columns) if columns else "*"
        return [tuple(r) for r in conn.execute(f"SELECT {cols} FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_names_are_numbered_in_order_and_unique() -> None:
    assert len(set(NAMES)) == len(NAMES) == SCHEMA_VERSION
    assert all(name.startswith(f"m{i:03d}_") for i, name in enumerate(NAMES, 1))
    assert NAMES[:3] == ["m001_initial", "m002_baseline_origin_tags", "m003_judge_usage"]
    assert LEGACY_SCHEMA_VERSION <= SCHEMA_VERSION


def test_fresh_database_records_every_migration(tmp_path: Path) -> None:
    path = fresh(tmp_path / "new.db")
    conn = sqlite3.connect(path)
    applied = applied_migrations(conn)
    assert [name for name, _ in applied] == NAMES
    assert all(isinstance(at, float) for _, at in applied)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    conn.close()
    assert set(shape(path)) == {"meta", "runs", "results", "checks", "cache", "leases", "shards", "batches", MIGRATIONS_TABLE}


def test_v1_database_migrated_equals_a_fresh_one(tmp_path: Path) -> None:
    old = build(tmp_path / "v1.db", "schema_v1.sql")
    v1_columns = {t: [c[0] for c in spec["columns"]] for t, spec in shape(old).items()}
    before = {t: rows(old, t) for t in ("runs", "results", "checks", "cache")}
    assert "baseline" not in v1_columns["runs"] and MIGRATIONS_TABLE not in v1_columns

    with Store(old) as store:
        assert store.schema_version == SCHEMA_VERSION
    new = fresh(tmp_path / "fresh.db")
    assert shape(old) == shape(new)

    # The old rows survive, every old column unchanged; new columns hold their defaults or the back-fill.
    for table in ("runs", "results", "checks", "cache"):
        assert rows(old, table, v1_columns[table]) == before[table], table
    assert rows(old, "runs", ["baseline", "origin", "imported_at"]) == [(None, None, None)]
    assert rows(old, "results", ["case_id", "tags", "judge_tokens", "judge_cost"]) == [
        ("hello", '["smoke"]', 0, 0),
        ("capital", "[]", 0, 0),
        ("weather", "[]", 0, 0),
    ]
    conn = sqlite3.connect(old)
    applied = applied_migrations(conn)
    conn.close()
    # m001 ran under the version-counting Store, at a time nobody recorded; the rest ran now.
    assert [name for name, _ in applied] == NAMES
    assert applied[0][1] is None and all(isinstance(at, float) for _, at in applied[1:])


def test_v3_database_is_read_as_having_run_the_first_three(tmp_path: Path) -> None:
    old = build(tmp_path / "v3.db", "schema_v3.sql")
    before = {t: rows(old, t) for t in ("runs", "results", "checks", "cache")}

    # Version 3 without a names table reads as the first three migrations, so only the later
    # ones are pending (running m001..m003 again would fail on ALTER TABLE).
    conn = sqlite3.connect(old)
    state = schema_state(conn, old)
    conn.close()
    assert (state.version, state.applied, state.recorded) == (3, tuple(NAMES[:3]), False)
    assert [m.name for m in state.pending] == NAMES[3:]
    assert MIGRATIONS_TABLE not in shape(old)

    # Opening records the names and runs only the pending migrations.
    with Store(old) as store:
        assert store.require_run("20250302-120000-v3bbbb").baseline == "20250301-120000-v3aaaa"
        loaded = [store.load_result(row) for row in store.iter_results("20250301-120000-v3aaaa")]
        assert [(r.status, r.judge_tokens) for r in loaded] == [("pass", 30), ("fail", 0)]
    conn = sqlite3.connect(old)
    applied = applied_migrations(conn)
    conn.close()
    assert [name for name, _ in applied] == NAMES
    assert all(at is None for _, at in applied[:3]) and all(isinstance(at, float) for _, at in applied[3:])
    assert shape(old) == shape(fresh(tmp_path / "fresh.db"))
    v3_columns = {t: [c[0] for c in spec["columns"]] for t, spec in shape(build(tmp_path / "v3-again.db", "schema_v3.sql")).items()}
    for table, old_rows in before.items():
        assert rows(old, table, v3_columns[table]) == old_rows, table

    # Now current: a read-only open reads it as it is and writes nothing.
    once = dump(old)
    with Store(old, create=False) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [r.id for r in store.list_runs()] == ["20250302-120000-v3bbbb", "20250301-120000-v3aaaa"]
    assert dump(old) == once


@pytest.mark.parametrize("version", range(1, LEGACY_SCHEMA_VERSION + 1))
def test_every_legacy_version_upgrades_to_the_fresh_schema(tmp_path: Path, version: int) -> None:
    """A database at each counted version, as the first ``version`` migrations leave it and
    without the names table, becomes the fresh schema."""
    path = tmp_path / f"v{version}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:version]:
        step.apply(conn)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(version),))
    conn.close()
    Store(path).close()
    assert shape(path) == shape(fresh(tmp_path / "fresh.db"))
    conn = sqlite3.connect(path)
    assert [name for name, _ in applied_migrations(conn)] == NAMES
    conn.close()


@pytest.mark.parametrize("fixture", [None, "schema_v1.sql", "schema_v3.sql"])
def test_migrating_twice_changes_nothing(tmp_path: Path, fixture: str | None) -> None:
    path = build(tmp_path / "db.db", fixture) if fixture else tmp_path / "db.db"
    Store(path).close()
    once = dump(path)
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, path) == []
    conn.close()
    Store(path).close()
    assert dump(path) == once


def test_unknown_migration_means_a_newer_glmeval(tmp_path: Path) -> None:
    path = fresh(tmp_path / "db.db")
    conn = sqlite3.connect(path)
    conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES ('m999_from_the_future', 0)")
    conn.commit()
    conn.close()
    for kwargs in ({}, {"create": False}):
        with pytest.raises(GlmevalError, match="m999_from_the_future.*newer than this glmeval"):
            Store(path, **kwargs)  # type: ignore[arg-type]
