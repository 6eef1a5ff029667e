"""What the rest of glmeval needs from a store, as Protocols.

Analysis (frames, compare, gate), the reports and the history commands only read; the runner
and the session also write. Typing those seams against :class:`StoreReader` and
:class:`StoreWriter` instead of the concrete :class:`~glmeval.store.Store` (or ``Any``) says
what each part relies on, and it is the list a second engine has to provide.

``conn`` is the store's one execute path (:class:`~glmeval.store.engine.Connection`: a
``sqlite3.Connection``, or the PostgreSQL connection that takes the same SQL): frames and
reports run a few SELECTs of their own through it, written once for both engines. ``path`` is
the database file, or for PostgreSQL its URL with the password redacted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from glmeval.records import Completion, Result
from glmeval.store.engine import Connection
from glmeval.store.runinfo import Row, RunInfo


class StoreReader(Protocol):
    """Reading the history: runs, their results, references to them."""

    @property
    def path(self) -> Path | str: ...

    @property
    def conn(self) -> Connection: ...

    def close(self) -> None: ...

    def get_run(self, run_id: str) -> RunInfo | None: ...

    def require_run(self, run_id: str) -> RunInfo: ...

    def resolve_run(
        self,
        ref: str,
        suite: str | None = None,
        *,
        before: float | None = None,
        exclude: str | None = None,
        cwd: Path | None = None,
    ) -> str: ...

    def list_runs(
        self,
        suite: str | None = None,
        limit: int | None = 20,
        *,
        before: float | None = None,
        status: str | None = None,
        exclude: str | None = None,
        oldest_first: bool = False,
    ) -> list[RunInfo]: ...

    def run_counts(self, run_ids: list[str]) -> dict[str, dict[str, float]]: ...

    def suites(self) -> list[str]: ...

    def columns(self, table: str) -> list[str]: ...

    def iter_results(self, run_id: str) -> Iterator[Row]: ...

    def load_result(self, row: Row) -> Result: ...

    def done_job_ids(self, run_id: str, include_errors: bool = False) -> set[str]: ...


class StoreWriter(StoreReader, Protocol):
    """Recording runs: what the runner, the session, the gate and import write."""

    def start_run(
        self,
        suite: str,
        *,
        suite_hash: str | None = None,
        suite_path: str | None = None,
        settings: dict[str, Any] | None = None,
        local: bool = False,
        replay: bool = False,
        total_jobs: int | None = None,
        variants: list[str] | None = None,
        run_id: str | None = None,
        cwd: Path | None = None,
        git: Mapping[str, Any] | None = None,
    ) -> str: ...

    def finish_run(self, run_id: str, status: str) -> None: ...

    def set_baseline(self, run_id: str, baseline_id: str | None) -> None: ...

    def delete_run(self, run_id: str) -> None: ...

    def add_result(self, run_id: str, result: Result) -> None: ...

    def add_results(
        self, run_id: str, results: Sequence[Result], cache: Sequence[tuple[str, str, Completion]] = ...
    ) -> None: ...

    def cache_get(self, key: str) -> Completion | None: ...

    def cache_count(self, keys: list[str]) -> int: ...

    def cache_put(self, key: str, model: str, completion: Completion) -> None: ...


__all__ = ["StoreReader", "StoreWriter"]
