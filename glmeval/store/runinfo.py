"""What a stored run is (:class:`RunInfo`), how runs are named, and where the database lives
by default: the plain values every reader of the store shares, free of any SQL engine."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

DEFAULT_DB = Path(".glmeval") / "results.db"


def default_db_path() -> Path:
    return Path(os.environ.get("GLMEVAL_DB") or DEFAULT_DB)


def new_run_id() -> str:
    """``20250101-120000-1a2b3c``: sorts by start time, unique across machines."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class RunInfo:
    id: str
    suite: str
    started_at: float
    ended_at: float | None
    status: str
    local: bool
    replay: bool
    total_jobs: int | None
    variants: list[str]
    settings: dict[str, Any]
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    suite_hash: str | None = None
    suite_path: str | None = None
    version: str | None = None
    host: str | None = None
    baseline: str | None = None
    origin: str | None = None
    imported_at: float | None = None
    holder: str | None = None  # who is running it now (read from its lease), for ``show``

    @property
    def short_commit(self) -> str:
        """``1a2b3c4d5e`` or ``1a2b3c4d5e+`` for a dirty checkout; empty outside git."""
        if not self.git_commit:
            return ""
        return self.git_commit[:10] + ("+" if self.git_dirty else "")


class Row(Protocol):
    """A row by column name, as ``sqlite3.Row`` (or a dict) gives it."""

    def keys(self) -> Iterable[str]: ...

    def __getitem__(self, key: str, /) -> Any: ...


def run_info(row: Row) -> RunInfo:
    """A :class:`RunInfo` from a ``runs`` row; columns newer than the row's schema are None."""
    keys = set(row.keys())
    return RunInfo(
        id=row["id"],
        suite=row["suite"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=row["status"],
        local=bool(row["local"]),
        replay=bool(row["replay"]),
        total_jobs=row["total_jobs"],
        variants=json.loads(row["variants"] or "[]"),
        settings=json.loads(row["settings"] or "{}"),
        git_commit=row["git_commit"],
        git_branch=row["git_branch"],
        git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
        suite_hash=row["suite_hash"],
        suite_path=row["suite_path"],
        version=row["version"],
        host=row["host"],
        baseline=row["baseline"] if "baseline" in keys else None,
        origin=row["origin"] if "origin" in keys else None,
        imported_at=row["imported_at"] if "imported_at" in keys else None,
    )


__all__ = ["DEFAULT_DB", "Row", "RunInfo", "default_db_path", "new_run_id", "run_info"]
