"""Did-you-mean hints: one ranking for every near miss glmeval points out.

A suite key, a check type, a check argument, a model name or a rule field all get their hint
from here, so one typo gets the same suggestion wherever it is made.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean", "edit_distance", "typo_of"]


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def closest(word: object, options: Iterable[object], n: int = 1) -> list[str]:
    """Up to ``n`` options ``word`` most likely stands for, best first.

    difflib finds the candidates; among them the fewest edits wins, counting a swap of two
    neighbouring letters as one edit, so ``modle`` suggests ``model`` rather than ``mode``.
    """
    text = str(word)
    close = difflib.get_close_matches(text, [str(o) for o in options], n=max(3, n), cutoff=0.6)
    close.sort(key=lambda option: (edit_distance(text, option), abs(len(option) - len(text))))
    return close[:n]


def did_you_mean(word: object, options: Iterable[object]) -> str:
    """`` (did you mean 'value'?)`` for a near miss among ``options``, else ''."""
    best = closest(word, options)
    return f" (did you mean {best[0]!r}?)" if best else ""


@functools.lru_cache(maxsize=1024)
def typo_of(word: str, options: tuple[str, ...]) -> str | None:
    """The option ``word`` is a likely misspelling of (at most two edits away), if any.

    Stricter than :func:`did_you_mean`: where a name that is not reserved is legitimate (a
    case-file column is a variable), only near misses like ``tgas`` or ``chekcs`` deserve a warning.
    """
    for option in options:
        distance = edit_distance(word.lower(), option)
        if word != option and distance <= (1 if len(option) <= 4 else 2):
            return option
    return None
