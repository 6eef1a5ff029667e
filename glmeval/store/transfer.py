"""Moving runs between databases (export/import) and out to other tools (CSV, JSONL).

CI machines are thrown away after each job, so a run travels as one JSON file: the main
branch's last run is uploaded as an artifact, and a pull request's job imports it as the
baseline. The JSON file holds every stored column of the run, its results and their checks,
so an imported run compares, reports and exports exactly like one recorded locally. Import is
idempotent: importing the same file twice leaves one copy.

A shard of a run split across machines (``glmeval run --shard K/N --run-id ID``) exports as
the run with its shard rows; importing the shards' files one after another merges them into
one run (results that are not there yet, the shard rows), whose status is settled from the
shards as on a shared server: ``running`` until all N are in.

CSV and JSONL are for analysis elsewhere: one row per result, parameters as columns (the
same tidy frame as ``glmeval.results()``); JSONL rows also carry their check results.
"""

from __future__ import annotations

import io
import json
import math
import platform
import sqlite3
import time
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

from glmeval.errors import GlmevalError
from glmeval.store.engine import Connection
from glmeval.store.migrations import SCHEMA_VERSION
from glmeval.store.protocols import StoreReader, StoreWriter
from glmeval.store.shards import SHARD_COLUMNS, settle, shard_rows
from glmeval.store.sqlite import ROWID, insert_sql, write_transaction
from glmeval.store.store import Store
from glmeval.version import __version__

FORMAT = "glmeval-run"
FORMAT_VERSION = 1

# Columns stored as JSON text; the export holds them as JSON values so the file is readable.
# An export made before a column existed simply lacks it; the import leaves it NULL.
_JSON_COLUMNS = {"runs": ("settings", "variants"), "results": ("variant", "tool_calls", "job", "tags", "web_search")}
_REQUIRED = {
    "runs": ("id", "suite", "started_at", "status"),
    "results": ("job_id", "case_id", "variant_id", "variant", "repeat", "model", "mode", "status", "passed", "job", "created_at"),
    "checks": ("idx", "type", "passed"),
}


def export_run(store: StoreReader, run: str) -> dict[str, Any]:
    """The whole run (run row, results, checks) as one JSON-ready dict."""
    run_id = store.resolve_run(run)
    # The stored columns by name (never ``SELECT *``: PostgreSQL's ``rowid`` is not data).
    cols = {table: ", ".join(store.columns(table)) for table in ("runs", "checks", "results")}
    run_row = dict(store.conn.execute(f"SELECT {cols['runs']} FROM runs WHERE id = ?", (run_id,)).fetchone())
    _decode(run_row, "runs")
    checks: dict[str, list[dict[str, Any]]] = {}
    for row in store.conn.execute(f"SELECT {cols['checks']} FROM checks WHERE run_id = ? ORDER BY job_id, idx", (run_id,)):
        item = dict(row)
        item.pop("run_id", None)
        checks.setdefault(item.pop("job_id"), []).append(item)
    results = []
    for row in store.conn.execute(f"SELECT {cols['results']} FROM results WHERE run_id = ? ORDER BY {ROWID}", (run_id,)):
        item = dict(row)
        item.pop("run_id", None)
        _decode(item, "results")
        item["checks"] = checks.get(item["job_id"], [])
        results.append(item)
    shards = [{k: v for k, v in row.__dict__.items() if k != "run_id"} for row in shard_rows(store.conn, run_id)]
    export: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "glmeval_version": __version__,
        "exported_at": time.time(),
        "exported_from": {"host": platform.node(), "db": str(store.path)},
        "run": run_row,
        "results": results,
    }
    if shards:
        export["shards"] = shards
    return export


def _decode(row: dict[str, Any], table: str) -> None:
    for col in _JSON_COLUMNS[table]:
        value = row.get(col)
        if isinstance(value, str):
            try:
                row[col] = json.loads(value)
            except ValueError:
                pass


def _encode(row: dict[str, Any], table: str) -> None:
    for col in _JSON_COLUMNS[table]:
        value = row.get(col)
        if value is not None and not isinstance(value, str):
            row[col] = json.dumps(value, ensure_ascii=False)


def read_export(path: Path) -> dict[str, Any]:
    """Load and sanity-check an export file; every problem is one clear line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GlmevalError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GlmevalError(f"{path}: cannot read ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise GlmevalError(f"{path}: not JSON ({exc}); expected a file made by `glmeval export RUN`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GlmevalError(f"{path}: not a glmeval run export (made by `glmeval export RUN --format json`)")
    try:
        version = int(data.get("format_version") or 0)
    except (TypeError, ValueError):
        raise GlmevalError(f"{path}: format_version {data.get('format_version')!r} is not a number") from None
    if version > FORMAT_VERSION:
        raise GlmevalError(f"{path}: export format {data.get('format_version')} is newer than this glmeval reads; upgrade glmeval")
    if not isinstance(data.get("run"), dict) or not isinstance(data.get("results"), list):
        raise GlmevalError(f"{path}: a glmeval export without its run or results")
    return data


def import_run(store: StoreWriter, data: dict[str, Any], replace: bool = False, source: str | None = None) -> tuple[str, str]:
    """Insert an exported run; returns ``(run_id, what happened)``.

    Idempotent: a run already in the database (same id) is left alone and reported as
    ``already present``, unless ``replace`` asks to overwrite it. Columns the export has and
    this database does not (a newer glmeval) are dropped; columns this database has and the
    export lacks (an older glmeval) stay NULL. The whole run goes in one transaction, so a
    concurrent reader never sees half of it.
    """
    run_row = dict(data["run"])
    for col in _REQUIRED["runs"]:
        if run_row.get(col) in (None, ""):
            raise GlmevalError(f"{source or 'export'}: the run has no {col!r}")
    run_id = str(run_row["id"])
    existing = store.get_run(run_id)
    exists = existing is not None
    shards = _shards(data, source)
    if exists and not replace:
        if shards and shard_rows(store.conn, run_id):
            return merge_shard(store, data, shards, source)
        return run_id, "already present"
    origin = data.get("exported_from") or {}
    run_row["origin"] = run_row.get("origin") or (
        f"{origin.get('host', '?')}:{origin.get('db', '?')}" if isinstance(origin, dict) else str(origin)
    )
    run_row["imported_at"] = time.time()
    _encode(run_row, "runs")
    run_cols = set(store.columns("runs"))
    result_cols = set(store.columns("results"))
    check_cols = set(store.columns("checks"))
    conn = store.conn
    try:
        with write_transaction(conn):
            if exists:
                for table in ("checks", "results"):
                    conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            _insert(conn, "runs", {k: v for k, v in run_row.items() if k in run_cols})
            for n, item in enumerate(data["results"]):
                _insert_result(conn, n, item, run_id, result_cols, check_cols, source)
            if shards:
                conn.execute("DELETE FROM shards WHERE run_id = ?", (run_id,))
                _insert_shards(conn, run_id, shards)
    except sqlite3.Error as exc:
        raise GlmevalError(f"{source or 'export'}: cannot import this run ({exc}); nothing was imported") from None
    return run_id, "replaced" if exists else "imported"


def _shards(data: dict[str, Any], source: str | None) -> list[dict[str, Any]]:
    """The export's shard rows (none for a run that was not split), each checked."""
    shards = data.get("shards") or []
    if not isinstance(shards, list) or not all(
        isinstance(s, dict) and isinstance(s.get("shard"), int) and isinstance(s.get("shard_count"), int) for s in shards
    ):
        raise GlmevalError(f"{source or 'export'}: 'shards' is not a list of shard rows with shard and shard_count")
    return shards


def _insert_shards(conn: Connection, run_id: str, shards: list[dict[str, Any]]) -> None:
    """Add or update shard rows (an ended one is never put back to running), then settle the run."""
    for row in shards:
        current = conn.execute(
            "SELECT status FROM shards WHERE run_id = ? AND shard = ?", (run_id, row["shard"])
        ).fetchone()
        if current is not None and (current[0] != "running" or row.get("status") == "running"):
            continue
        values = {**{c: row.get(c) for c in SHARD_COLUMNS}, "run_id": run_id}
        values["started_at"] = values["started_at"] or 0.0
        values["jobs"] = values["jobs"] or 0
        values["status"] = values["status"] or "running"
        conn.execute(insert_sql("shards", SHARD_COLUMNS, "replace"), [values[c] for c in SHARD_COLUMNS])
    settle(conn, run_id)


def merge_shard(store: StoreWriter, data: dict[str, Any], shards: list[dict[str, Any]], source: str | None) -> tuple[str, str]:
    """Merge one shard's export into the run the other shards' exports already made: its
    results that are not there yet (with their checks) and its shard rows."""
    run_row = data["run"]
    run_id = str(run_row["id"])
    have = shard_rows(store.conn, run_id)
    where = source or "export"
    count = shards[0]["shard_count"]
    if have[0].shard_count != count:
        raise GlmevalError(f"{where}: run {run_id} here is split into {have[0].shard_count} shards, this export into {count}")
    info = store.require_run(run_id)
    if info.suite != run_row.get("suite") or (info.suite_hash and run_row.get("suite_hash") and info.suite_hash != run_row["suite_hash"]):
        raise GlmevalError(f"{where}: a shard of run {run_id} from another suite or suite version; nothing was imported")
    result_cols = set(store.columns("results"))
    check_cols = set(store.columns("checks"))
    conn = store.conn
    added = 0
    try:
        with write_transaction(conn):
            present = store.done_job_ids(run_id, include_errors=True)
            for n, item in enumerate(data["results"]):
                if isinstance(item, dict) and item.get("job_id") in present:
                    continue
                _insert_result(conn, n, item, run_id, result_cols, check_cols, source)
                added += 1
            started = run_row.get("started_at")
            if isinstance(started, (int, float)):
                conn.execute("UPDATE runs SET started_at = ? WHERE id = ? AND started_at > ?", (started, run_id, started))
            _insert_shards(conn, run_id, shards)
    except sqlite3.Error as exc:
        raise GlmevalError(f"{where}: cannot merge this shard ({exc}); nothing was imported") from None
    now = shard_rows(conn, run_id)
    ended = sum(1 for r in now if r.status != "running")
    names = ", ".join(str(s["shard"]) for s in shards)
    if not added and [r.__dict__ for r in now] == [r.__dict__ for r in have]:
        return run_id, f"already present (shard {names} of {count})"
    return run_id, f"merged shard {names} of {count}: {added} results added, {ended} of {count} shards done"


def _insert_result(
    conn: Connection, n: int, item: Any, run_id: str, result_cols: set[str], check_cols: set[str], source: str | None
) -> None:
    """Insert the export's result number ``n`` and its checks, refusing one that lacks what
    every stored result has."""
    if not isinstance(item, dict):
        raise GlmevalError(f"{source or 'export'}: result {n} is not an object")
    item = dict(item)
    checks = item.pop("checks", []) or []
    missing = [c for c in _REQUIRED["results"] if item.get(c) is None]
    if missing:
        raise GlmevalError(f"{source or 'export'}: result {n} lacks {', '.join(missing)}")
    _encode(item, "results")
    item["run_id"] = run_id
    _insert(conn, "results", {k: v for k, v in item.items() if k in result_cols})
    for check in checks if isinstance(checks, list) else [checks]:
        if not isinstance(check, dict) or any(check.get(c) is None for c in _REQUIRED["checks"]):
            raise GlmevalError(
                f"{source or 'export'}: result {n} has a check that is not an object with "
                f"{', '.join(_REQUIRED['checks'])}"
            )
        check = dict(check)
        check.update(run_id=run_id, job_id=item["job_id"])
        _insert(conn, "checks", {k: v for k, v in check.items() if k in check_cols})


def _insert(conn: Connection, table: str, row: dict[str, Any]) -> None:
    cols = list(row)
    conn.execute(insert_sql(table, cols), [row[c] for c in cols])


def results_table_text(store: Store, run: str, fmt: str) -> str:
    """The run's results as CSV or JSONL text (one row per result, parameters as columns)."""
    from glmeval.analysis.frames import checks_frame, results_frame

    run_id = store.resolve_run(run)
    frame = results_frame(store, run_id)
    if fmt == "csv":
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        return buf.getvalue()
    if fmt != "jsonl":
        raise GlmevalError(f"unknown export format {fmt!r}; use json, csv or jsonl")
    checks = checks_frame(store, run_id)
    by_job: dict[str, list[dict[str, Any]]] = {}
    for rec in checks.drop(columns=["run_id", "case_id", "variant_id", "repeat", "model"]).to_dict("records"):
        by_job.setdefault(rec.pop("job_id"), []).append(_clean(rec))
    lines = []
    for raw in frame.to_dict("records"):
        rec = _clean(raw)
        for column in ("tool_calls", "web_search"):
            if rec.get(column):
                try:
                    rec[column] = json.loads(rec[column])
                except (TypeError, ValueError):
                    pass
        rec["checks"] = by_job.get(rec["job_id"], [])
        lines.append(json.dumps(rec, ensure_ascii=False, default=str))
    return "\n".join(lines) + ("\n" if lines else "")


def _clean(rec: Mapping[Hashable, Any]) -> dict[str, Any]:
    """NaN -> None and numpy scalars -> Python, so JSON is valid and plain."""
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            try:
                value = value.item()
            except (ValueError, AttributeError):
                pass
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[str(key)] = value
    return out


__all__ = ["export_run", "import_run", "read_export", "results_table_text", "FORMAT", "FORMAT_VERSION"]
