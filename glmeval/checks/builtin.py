"""The built-in check types and entry-point plugins: the process-wide bottom layer of every registry."""

from __future__ import annotations

import threading

from glmeval.checks import custom, graded, metrics, reasoning, search, structured, text
from glmeval.checks.registry import BUILTIN, CheckRegistry, load_entry_points

__all__ = ["BUILTIN_MODULES", "load_builtin"]

# Importing these modules registered their checks in BUILTIN.
BUILTIN_MODULES = (text, structured, metrics, reasoning, search, custom, graded)

_loaded = False
_lock = threading.Lock()


def load_builtin() -> CheckRegistry:
    """The built-in layer, with entry-point plugins loaded into it once.

    Guarded by a lock because the runner's worker threads may be the first to ask, and none
    of them may see a half-filled registry.
    """
    global _loaded
    if _loaded:
        return BUILTIN
    with _lock:
        if not _loaded:
            load_entry_points(BUILTIN)
            _loaded = True
    return BUILTIN
