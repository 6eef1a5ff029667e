"""Small, exact statistics for deciding whether a difference between two runs is real.

LLM answers vary from call to call and prompt suites are small (tens of cases), so a raw
"pass rate went from 85% to 80%" is mostly noise. These helpers put a number on that:

* :func:`wilson_interval`: a 95% interval for a pass rate that behaves at 0%, 100% and tiny n
  (the textbook normal interval does not).
* :func:`mcnemar_exact`: the exact McNemar test for paired pass/fail outcomes. Only the cases
  that changed (passed in one, failed in the other) carry information; under "no real
  difference" each change is equally likely to go either way, so it is a two-sided binomial
  test with p = 1/2.
* :func:`paired_bootstrap`: a paired bootstrap for continuous scores (check scores in [0, 1]).

They are written here rather than imported from scipy to keep glmeval's dependencies small;
each is a few lines and tested against known values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_EXACT_PAIRS = 1_000  # McNemar in exact integers up to this many discordant pairs, in logarithms beyond
_BLOCK_DRAWS = 1_000_000  # bootstrap draws resampled at a time


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``n`` (95% with the default ``z``).

    With no observations nothing is known, so the interval is the whole of [0, 1].
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n ({n}); got {successes}")
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    # Exact endpoints when the rate sits on a boundary (rounding would otherwise give 1e-17).
    if successes == 0:
        lo = 0.0
    if successes == n:
        hi = 1.0
    return (lo, hi)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs.

    ``b``: pairs that passed in the first and failed in the second; ``c``: the reverse. Pairs
    that agree carry no information about which side is better. With no discordant pairs the
    two sides are indistinguishable and p = 1. Up to 1,000 pairs integer arithmetic keeps it
    exact; beyond, the same binomial tail is summed in logarithms (big integers took 28 s at
    20,000 pairs, and a 100,000-case comparison can have more), good to about 1e-12.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts cannot be negative")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    if n <= _EXACT_PAIRS:
        tail = sum(math.comb(n, i) for i in range(k + 1))
        return min(1.0, 2 * tail / 2**n)
    logs = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]) - n * math.log(2)
    top = float(logs.max())
    return min(1.0, 2 * math.exp(top + math.log(float(np.exp(logs - top).sum()))))




def paired_bootstrap(
    a_scores: Sequence[float], b_scores: Sequence[float], n: int = 2000, seed: int = 0
) -> tuple[float, float, float, float]:
    """Mean paired difference ``b - a`` with a 95% percentile interval and a two-sided p-value.

    ``a_scores[i]`` and ``b_scores[i]`` must be the same case. Resampling cases (not answers)
    keeps the pairing, which is what makes small suites informative: a case that is hard for
    both sides does not add noise to the difference. The p-value is the share of bootstrap
    means at least as far from the observed mean as the observed mean is from zero (the
    bootstrap distribution shifted to the null), with the usual +1 correction so it is never 0.
    Seeded, so the same data always gives the same answer.
    """
    a = np.asarray(list(a_scores), dtype=float)
    b = np.asarray(list(b_scores), dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need equal lengths; got {len(a)} and {len(b)}")
    if len(a) == 0:
        return (0.0, 0.0, 0.0, 1.0)
    diff = b - a
    mean = float(diff.mean())
    rng = np.random.default_rng(seed)
    # Resampled in blocks of about a million draws: all n x len(diff) at once is 3 GB for a
    # 100,000-case run. The generator yields the same stream either way, so the answer is too.
    block = max(1, _BLOCK_DRAWS // len(diff))
    means = np.concatenate([
        diff[rng.integers(0, len(diff), size=(min(block, n - done), len(diff)))].mean(axis=1) for done in range(0, n, block)
    ])
    lo, hi = (float(x) for x in np.percentile(means, [2.5, 97.5]))
    extreme = int(np.sum(np.abs(means - mean) >= abs(mean) - 1e-12))
    p = min(1.0, (extreme + 1) / (n + 1))
    return (mean, lo, hi, p)


def describe_p(p: float | None, alpha: float = 0.05) -> str:
    """``p = 0.02 (significant)`` / ``p = 0.45 (could be chance)``, for people, not statisticians."""
    if p is None:
        return "no paired cases"
    shown = "< 0.001" if p < 0.001 else f"= {p:.2f}" if p >= 0.01 else f"= {p:.3f}"
    return f"p {shown} ({'significant' if p < alpha else 'could be chance'})"


__all__ = ["wilson_interval", "mcnemar_exact", "paired_bootstrap", "describe_p"]
