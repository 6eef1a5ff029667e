"""Cassette misses as the harness reports them: one line per case and variant that asked.

The replay server only sees a request; the run knows which job sent it. A miss comes back as
an HTTP 404 with :data:`~glmeval.cassette.replay.CASSETTE_MISS_CODE`, which the client keeps
on the job's error (or, for a judge or embedding call, in the check's reason); this log
collects them from the results as they arrive and words them after the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .labels import job_label
from .replay import CASSETTE_MISS_CODE

if TYPE_CHECKING:
    from glmeval.records import Result

__all__ = ["MissLog"]

C = TypeVar("C")


class MissLog:
    """Misses of one ``glmeval run --cassette FILE``, in the order the jobs finished."""

    def __init__(self, cassette: Path) -> None:
        self.cassette = cassette
        self._lines: dict[str, None] = {}
        self._lock = threading.Lock()

    def note(self, result: Result) -> None:
        error = result.completion.error
        label = job_label(result.job)
        found: list[str] = []
        if error is not None and error.code == CASSETTE_MISS_CODE:
            # Its checks then fail for want of an answer, not for a call of their own.
            found.append(f"{label}: not in cassette {self.cassette} (record it with --record)")
        for check in result.checks if not found else []:
            if CASSETTE_MISS_CODE in (check.reason or ""):
                found.append(f"{label}: the {check.type} check's call is not in cassette {self.cassette} (record it with --record)")
        if found:
            with self._lock:
                self._lines.update(dict.fromkeys(found))

    def wrap(self, on_result: Callable[[Result, C], None] | None) -> Callable[[Result, C], None]:
        """``on_result`` with every result noted first."""

        def noted(result: Result, counts: C) -> None:
            self.note(result)
            if on_result is not None:
                on_result(result, counts)

        return noted

    def __bool__(self) -> bool:
        return bool(self._lines)

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def message(self) -> str:
        """Every miss on its own line, then what to do (a GlmevalError's text: exit 2)."""
        lines = self.lines()
        return "\n".join([*lines, f"{len(lines)} request(s) not in cassette {self.cassette}: re-record it with "
                          f"`glmeval run SUITE --record {self.cassette}` (needs a key), or pass --cassette-miss rules"])
