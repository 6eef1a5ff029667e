"""Against a baseline: the rows and case lists every renderer shows from a
:class:`~glmeval.analysis.compare.Comparison`.

The comparison itself is made by :mod:`glmeval.analysis.compare` (the same one ``glmeval
compare`` and the gate use), so a report never disagrees with them; this module only lays it
out the way the reports list it.
"""

from __future__ import annotations

from typing import Any

from glmeval.analysis.compare import Comparison


def delta_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per variant: each metric as (base, head, delta), the p-value and the verdict."""
    return [
        {
            "variant": vc.variant,
            "metrics": dict(vc.metrics),
            "p_value": vc.p_value,
            "verdict": vc.verdict,
            "regressed": list(vc.regressed),
            "fixed": list(vc.fixed),
            "changed": list(vc.changed),
            "base_n": vc.base_n,
            "head_n": vc.head_n,
        }
        for vc in comparison.variants
    ]


def regression_pairs(comparison: Comparison) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(variant, case) pairs that regressed and that were fixed, in variant order."""
    regressed = [(vc.variant, c) for vc in comparison.variants for c in vc.regressed]
    fixed = [(vc.variant, c) for vc in comparison.variants for c in vc.fixed]
    return regressed, fixed


__all__ = ["delta_rows", "regression_pairs"]
