"""The statistics behind "is the difference real?": Wilson, exact McNemar, paired bootstrap."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glmeval.analysis.stats import describe_p, mcnemar_exact, paired_bootstrap, wilson_interval

# -- Wilson -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (81, 263, 0.2553, 0.3662),  # Wilson (1927) / Newcombe (1998) worked example
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_known_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4)
    assert got[1] == pytest.approx(hi, abs=1e-4)


def test_wilson_with_no_observations_is_everything() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


@given(st.integers(min_value=1, max_value=2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_rate_and_stays_in_unit_interval(kn: tuple[int, int]) -> None:
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    # Symmetry: the interval of the failures mirrors the interval of the passes.
    flo, fhi = wilson_interval(n - k, n)
    assert flo == pytest.approx(1 - hi, abs=1e-12) and fhi == pytest.approx(1 - lo, abs=1e-12)


def test_wilson_narrows_with_more_data() -> None:
    small = wilson_interval(8, 10)
    large = wilson_interval(800, 1000)
    assert large[1] - large[0] < small[1] - small[0]


# -- McNemar ----------------------------------------------------------------------------------


def _binomial_two_sided(b: int, c: int) -> float:
    """Brute force: sum the probabilities of outcomes at most as likely as the observed one."""
    n = b + c
    probs = [math.comb(n, i) / 2**n for i in range(n + 1)]
    observed = probs[b]
    return min(1.0, sum(p for p in probs if p <= observed * (1 + 1e-9)))


@pytest.mark.parametrize(("b", "c", "p"), [(0, 0, 1.0), (0, 7, 0.015625), (1, 8, 0.0390625), (3, 3, 1.0), (0, 1, 1.0), (0, 5, 0.0625)])
def test_mcnemar_known_values(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p)


@given(st.integers(0, 60), st.integers(0, 60))
def test_mcnemar_matches_brute_force_and_is_symmetric(b: int, c: int) -> None:
    p = mcnemar_exact(b, c)
    assert 0.0 < p <= 1.0
    assert p == mcnemar_exact(c, b)
    assert p == pytest.approx(_binomial_two_sided(b, c), rel=1e-9)


def test_mcnemar_handles_large_counts_without_overflow() -> None:
    p = mcnemar_exact(5000, 5400)
    assert 0.0 < p < 0.01


@pytest.mark.parametrize(("b", "c"), [(500, 501), (480, 560), (1200, 1320), (20, 2500), (1500, 1500)])
def test_mcnemar_beyond_the_exact_limit_matches_integer_arithmetic(b: int, c: int) -> None:
    """Above 1,000 pairs the tail is summed in logarithms; it must agree with the integers."""
    n = b + c
    exact = min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n)
    assert mcnemar_exact(b, c) == pytest.approx(exact, rel=1e-9)


def test_mcnemar_of_a_hundred_thousand_pairs() -> None:
    """A 100,000-case comparison (integer arithmetic took hours at this size)."""
    p = mcnemar_exact(49_000, 51_000)
    assert 2.5e-10 < p < 2.7e-10  # z = 6.32, two-sided


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


# -- paired bootstrap -------------------------------------------------------------------------


def test_bootstrap_no_difference_is_p_one() -> None:
    mean, lo, hi, p = paired_bootstrap([0.5, 1.0, 0.0, 0.25], [0.5, 1.0, 0.0, 0.25])
    assert (mean, lo, hi, p) == (0.0, 0.0, 0.0, 1.0)


def test_bootstrap_clear_improvement_is_significant() -> None:
    a = [0.2, 0.3, 0.25, 0.1, 0.4, 0.3, 0.2, 0.35, 0.3, 0.2] * 3
    b = [x + 0.3 for x in a]
    mean, lo, hi, p = paired_bootstrap(a, b)
    assert mean == pytest.approx(0.3)
    assert lo <= mean <= hi
    assert p < 0.01


def test_bootstrap_noise_is_not_significant() -> None:
    a = [0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 1.0, 0.0]
    b = [1.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0]
    mean, lo, hi, p = paired_bootstrap(a, b)
    assert mean == 0.0
    assert lo < 0 < hi
    assert p > 0.5


def test_bootstrap_is_seeded_and_checks_pairing() -> None:
    a, b = [0.1, 0.5, 0.9, 0.3], [0.2, 0.4, 1.0, 0.6]
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 0.0])
    assert paired_bootstrap([], []) == (0.0, 0.0, 0.0, 1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
def test_bootstrap_interval_brackets_the_mean(pairs: list[tuple[float, float]]) -> None:
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    mean, lo, hi, p = paired_bootstrap(a, b, n=300)
    assert lo - 1e-9 <= mean <= hi + 1e-9
    assert 0.0 < p <= 1.0


def test_describe_p_speaks_plainly() -> None:
    assert describe_p(0.02) == "p = 0.02 (significant)"
    assert describe_p(0.5) == "p = 0.50 (could be chance)"
    assert describe_p(0.0004) == "p < 0.001 (significant)"
    assert describe_p(None) == "no paired cases"


def test_bootstrap_in_blocks_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resampling in blocks (so 100,000 cases do not take 3 GB) must not change the result."""
    import glmeval.analysis.stats as stats

    a = [((i * 37) % 11) / 10 for i in range(300)]
    b = [((i * 53) % 13) / 12 for i in range(300)]
    whole = paired_bootstrap(a, b)
    monkeypatch.setattr(stats, "_BLOCK_DRAWS", 1000)  # 3 resamples a block, 667 blocks
    assert paired_bootstrap(a, b) == whole
