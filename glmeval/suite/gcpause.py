"""The cyclic garbage collector paused while a suite is read and planned.

Loading a 100,000-case suite allocates millions of small containers that stay alive (the
cases, their origins, the plan's per-case data) and almost none that form cycles. Python
runs a collection every 700 allocations and, as the heap grows, full ones that walk every
live object again: a third to a half of the time of ``validate``. Reference counting still
frees what becomes garbage; whatever cycles the pass leaves are collected once it ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block; nested blocks leave it to the outermost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
