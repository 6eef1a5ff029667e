"""The price table behind max-cost and the run's cost column."""

from __future__ import annotations

import pytest

from glmeval.catalogue.prices import PRICES, cost, known_models, price_for


def test_flat_prices_from_the_table() -> None:
    assert price_for("glm-4") == (100.0, 100.0)
    assert cost("glm-4", 1000, 1000) == pytest.approx(0.2)
    assert cost("glm-3-turbo", 1_000_000, 0) == pytest.approx(5.0)
    assert cost("glm-4-flash", 50_000, 50_000) == 0.0


def test_names_are_matched_loosely() -> None:
    assert price_for("GLM-4") == PRICES["glm-4"]
    assert price_for(" glm-4-plus-0111 ") == PRICES["glm-4-plus"]
    assert price_for("glm-4-air-250414") == PRICES["glm-4-air-250414"]


def test_unknown_models_cost_nothing_and_say_so() -> None:
    assert price_for("my-finetune") is None
    assert cost("my-finetune", 10_000, 10_000) == 0.0
    assert cost("", 10, 10) == 0.0


@pytest.mark.parametrize(
    "prompt,completion,price",
    [(1000, 100, (2.0, 8.0)), (1000, 500, (3.0, 14.0)), (40_000, 100, (4.0, 16.0)), (0, 0, (2.0, 8.0))],
)
def test_tiered_models_pick_the_band_by_size(prompt: int, completion: int, price: tuple[float, float]) -> None:
    assert price_for("glm-4.5", None, prompt, completion) == price
    assert price_for("glm-4.6", None, prompt, completion) == price
    assert cost("glm-4.5", prompt, completion) == pytest.approx((prompt * price[0] + completion * price[1]) / 1e6)


def test_glm45_air_bands() -> None:
    assert price_for("glm-4.5-air", None, 100, 10) == (0.8, 2.0)
    assert price_for("glm-4.5-air", None, 100, 300) == (0.8, 6.0)
    assert price_for("glm-4.5-air", None, 33_000, 10) == (1.2, 8.0)


@pytest.mark.parametrize(
    "override,expected",
    [([1, 2], (1.0, 2.0)), ({"input": 1, "output": 2}, (1.0, 2.0)), ({"in": 1, "out": 2}, (1.0, 2.0)), (3, (3.0, 3.0))],
)
def test_suite_overrides_win(override: object, expected: tuple[float, float]) -> None:
    assert price_for("glm-4", {"GLM-4": override}) == expected
    assert price_for("my-model", {"my-model": override}) == expected
    assert cost("glm-4", 1_000_000, 1_000_000, {"glm-4": override}) == pytest.approx(sum(expected))


def test_bad_override_is_reported() -> None:
    with pytest.raises(ValueError, match=r"\[input, output\] yuan per 1M tokens"):
        price_for("glm-4", {"glm-4": "cheap"})
    with pytest.raises(ValueError, match="'input' and 'output'"):
        price_for("glm-4", {"glm-4": {"prompt_price": 1}})


def test_known_models_lists_flat_and_tiered() -> None:
    names = known_models()
    assert "glm-4" in names and "glm-4.5" in names and names == sorted(names)
