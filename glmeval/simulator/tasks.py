"""The async task store: results of ``/async/chat/completions`` waiting to be polled.

A task's answer is computed when it is created and released by ``/async-result`` once its
simulated latency has passed. The store is bounded (oldest tasks are forgotten first) so a
benchmark pushing many async requests through one server cannot grow it without limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_TASKS", "Task", "TaskStore"]

MAX_TASKS = 200_000


@dataclass(slots=True)
class Task:
    """One async request: its ids, when it is ready (monotonic seconds) and the final body."""

    id: str
    request_id: str
    model: str
    ready_at: float
    result: dict[str, Any]


class TaskStore:
    """Thread-safe task id -> :class:`Task`, keeping at most ``limit`` tasks."""

    def __init__(self, limit: int = MAX_TASKS) -> None:
        self._limit = limit
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, task: Task) -> None:
        """Store ``task``, forgetting the oldest ones beyond the limit."""
        with self._lock:
            self._tasks[task.id] = task
            while len(self._tasks) > self._limit:
                self._tasks.popitem(last=False)

    def get(self, task_id: str) -> Task | None:
        """The task with this id, or None when unknown or already forgotten."""
        with self._lock:
            return self._tasks.get(task_id)
