"""Rates as percentages that never round to a claim the counts do not make (a leaf: analysis/,
report/ and cli/ all show rates).

``f"{0.997:.0%}"`` is "100%": a headline that says everything passed when three answers
failed. Every pass rate a report, the terminal or a chart shows goes through
:func:`percent`, which shows more decimals only when plain rounding would reach 100% or 0%
(or the other bound of an interval) without the rate being exactly that.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MAX_DECIMALS", "percent", "plural"]

MAX_DECIMALS = 3
"""Decimals shown at most; a rate closer to 100% (or 0%) than that reads ``>99.999%`` (``<0.001%``)."""


def percent(value: Any, digits: int = 0, missing: str = "–") -> str:
    """``value`` (a share, 0..1) as a percentage with ``digits`` decimals, or more when
    rounding would show 100% or 0% for a rate that is not exactly that; ``missing`` for
    None or NaN."""
    if value is None:
        return missing
    try:
        share = float(value)
    except (TypeError, ValueError):
        return missing
    if math.isnan(share):
        return missing
    if share >= 1.0 or share <= 0.0:
        return f"{share * 100:.{digits}f}%"
    for decimals in range(digits, MAX_DECIMALS + 1):
        text = f"{share * 100:.{decimals}f}"
        if float(text) not in (0.0, 100.0):
            return f"{text}%"
    bound = 10.0**-MAX_DECIMALS
    return f">{100 - bound:.{MAX_DECIMALS}f}%" if share > 0.5 else f"<{bound:.{MAX_DECIMALS}f}%"


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``1 variant``, ``2 variants``, ``0 errors`` (``many``: an irregular plural): counts read
    alike in reports and on the terminal, which prints them before any report module loads."""
    return f"{n:,} {noun if n == 1 else many or noun + 's'}"
