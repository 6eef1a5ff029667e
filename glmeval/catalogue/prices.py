"""What a call costs, in yuan (CNY), from a per-model price table a suite can override.

Prices are yuan per 1M tokens, ``(input, output)``, read from the model catalogue
(:mod:`glmeval.catalogue.models`), where each entry names its source and date (``source``,
``as_of``; the keys are listed in ``models.SOURCES``). In short:

- glm-4, glm-4-0520: 100 / 100, glm-3-turbo: 5 / 5 (launch pricing of January 2024, zhipu-api.md §5).
- glm-4-plus 5 / 5; glm-4-air(-250414) 0.5 / 0.5; glm-4-flash(-250414) and glm-4.5-flash free;
  glm-4-flashx(-250414) 0.1 / 0.1; glm-4-long 1 / 1 (zhipu-api.md §5, late 2025).
- glm-4.5 and glm-4.6 (tiered by request size): input < 32K tokens and output < 200 tokens 2 / 8,
  input < 32K and output >= 200 3 / 14, input >= 32K 4 / 16. glm-4.5-air: 0.8 / 2, 0.8 / 6, 1.2 / 8
  (cache hits 0.16 / 0.24). Same source: a third-party transcription of bigmodel.cn/pricing.
- glm-5.3 8 / 28 (cache hit 2), glm-5.3-flash 0.8 / 2.8 (0.23) from docs.bigmodel.cn pricing (~Sep 2026);
  glm-5.1 6 / 24 (1.3) and glm-5v-turbo 5 / 22 (1.2) from models.dev (2026).

A request sent through the Batch API costs half of all that (``BATCH_PRICE_FACTOR``, source BM-BATCH).

glm-4.7, glm-5, glm-5.2, glm-5-turbo and the vision models have no confirmed CNY price (zhipu-api-2026.md
§1 gives only USD for them): they are unknown here, not free. Check these against
https://bigmodel.cn/pricing before relying on them, and override them in the suite
(``prices: {glm-4: [100, 100]}``, or ``{input: 4, output: 18, cached: 1}``) when yours differ. A model
with no known price costs 0 and :func:`price_for` returns ``None`` for it, so a report can say
"price unknown" instead of pretending the call was free.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from glmeval.catalogue.models import BATCH_PRICE_FACTOR, MODELS, Price, Tier, Usd

# A model free in USD with no CNY price known (glm-4.7-flash) is free here too: zero is zero.
PRICES: dict[str, Price] = {
    name: info.price if info.price is not None else (0.0, 0.0)
    for name, info in MODELS.items()
    if info.kind == "chat" and (info.price is not None or info.free)
}
TIERED: dict[str, tuple[Tier, ...]] = {name: info.tiers for name, info in MODELS.items() if info.tiers}
CACHE_PRICES: dict[str, float] = {name: info.cache_price for name, info in MODELS.items() if info.cache_price is not None}
USD_PRICES: dict[str, Usd] = {name: info.usd for name, info in MODELS.items() if info.usd is not None}
_CACHE_KEYS = ("cached", "cache", "cache_hit")

_DATE_SUFFIX = re.compile(r"-(\d{4}|\d{6}|\d{8})$")


def _candidates(model: str) -> list[str]:
    """The names to look a model up under: as given, lower-cased, then without a date suffix
    (``glm-4-plus-0111`` is priced like ``glm-4-plus`` unless listed itself)."""
    name = model.strip()
    out = [name, name.lower()]
    stripped = _DATE_SUFFIX.sub("", name.lower())
    if stripped != name.lower():
        out.append(stripped)
    return out


def _as_price(value: Any) -> Price:
    """Accept the shapes a suite may write: ``[in, out]``, one number for both, or a mapping
    with ``input``/``output`` (also ``in``/``out``, ``prompt``/``completion``); both prices must
    be finite and not negative, or budgets and cost totals go wrong."""
    price = _parse_price(value)
    if not all(math.isfinite(p) and p >= 0 for p in price):
        raise ValueError(f"prices must be numbers >= 0 yuan per 1M tokens, got {value!r}")
    return price


def _parse_price(value: Any) -> Price:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), float(value)
    if isinstance(value, Mapping):
        for a, b in (("input", "output"), ("in", "out"), ("prompt", "completion")):
            if a in value or b in value:
                return float(value.get(a, 0.0)), float(value.get(b, 0.0))
        raise ValueError(f"price mapping needs 'input' and 'output' keys, got {sorted(value)}")
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[0]), float(value[1])
    raise ValueError(f"a price is [input, output] yuan per 1M tokens, got {value!r}")


def price_for(
    model: str,
    overrides: Mapping[str, Any] | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> Price | None:
    """The ``(input, output)`` yuan per 1M tokens for ``model``, or ``None`` when unknown.

    A suite's override wins over the built-in table. For size-tiered models the token counts
    pick the band; without them the cheapest band is returned.
    """
    if not model:
        return None
    overridden, value = _override(model, overrides)
    if overridden:
        return _as_price(value)
    for name in _candidates(model):
        tier = _tier(name, prompt_tokens, completion_tokens)
        if tier is not None:
            return tier.price
        if name in PRICES:
            return PRICES[name]
    return None


def _tier(name: str, prompt_tokens: int, completion_tokens: int) -> Tier | None:
    for tier in TIERED.get(name, ()):
        if (tier.max_prompt is None or prompt_tokens < tier.max_prompt) and (
            tier.max_completion is None or completion_tokens < tier.max_completion
        ):
            return tier
    return None


def _override(model: str, overrides: Mapping[str, Any] | None) -> tuple[bool, Any]:
    """Whether the suite overrides ``model``'s price, and the value it gives."""
    if not overrides:
        return False, None
    lowered = {str(k).strip().lower(): v for k, v in overrides.items()}
    for name in _candidates(model):
        if name in overrides:
            return True, overrides[name]
        if name.lower() in lowered:
            return True, lowered[name.lower()]
    return False, None


def cache_price_for(
    model: str,
    overrides: Mapping[str, Any] | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> float | None:
    """Yuan per 1M cache-hit input tokens for ``model``, or ``None`` when unknown.

    A suite override replaces the whole price, so only its own ``cached`` key counts then; a
    catalogue cache price would not match the overridden input price.
    """
    if not model:
        return None
    overridden, value = _override(model, overrides)
    if overridden:
        if isinstance(value, Mapping):
            for key in _CACHE_KEYS:
                if key in value:
                    cached = float(value[key])
                    if not (math.isfinite(cached) and cached >= 0):
                        raise ValueError(f"a cache price must be a number >= 0 yuan per 1M tokens, got {value[key]!r}")
                    return cached
        return None
    for name in _candidates(model):
        tier = _tier(name, prompt_tokens, completion_tokens)
        if tier is not None:
            return tier.cache
        if name in PRICES or name in CACHE_PRICES:
            return CACHE_PRICES.get(name)
    return None


def cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    overrides: Mapping[str, Any] | None = None,
    *,
    cached_tokens: int = 0,
    batch: bool = False,
) -> float:
    """Yuan spent on one call; 0.0 for a model with no known price (budgets and estimates
    need a number). :func:`known_cost` says ``None`` instead, for what a result records."""
    spent = known_cost(model, prompt_tokens, completion_tokens, overrides, cached_tokens=cached_tokens, batch=batch)
    return 0.0 if spent is None else spent


def known_cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    overrides: Mapping[str, Any] | None = None,
    *,
    cached_tokens: int = 0,
    batch: bool = False,
) -> float | None:
    """Yuan spent on one call, or ``None`` when the model's price is unknown (one price lookup).

    ``cached_tokens`` are the part of ``prompt_tokens`` the API served from its cache
    (``usage.prompt_tokens_details.cached_tokens``); they are billed at the cache-hit price where
    one is known, else at the input price, which is what every call cost before caching counted.
    ``batch``: the request went through the Batch API, billed at ``BATCH_PRICE_FACTOR`` of that
    (a suite's own price override is a standard price too, and gets the same discount).
    """
    prompt, completion = prompt_tokens or 0, completion_tokens or 0
    price = price_for(model, overrides, prompt, completion)
    if price is None:
        return None
    factor = BATCH_PRICE_FACTOR if batch else 1.0
    cached = min(max(cached_tokens or 0, 0), prompt)
    cache_price = cache_price_for(model, overrides, prompt, completion) if cached else None
    if cache_price is None:
        return factor * (prompt * price[0] + completion * price[1]) / 1_000_000
    return factor * ((prompt - cached) * price[0] + cached * cache_price + completion * price[1]) / 1_000_000


def usd_price_for(model: str) -> Usd | None:
    """The api.z.ai list price in USD per 1M tokens (for display; costs are in yuan), or ``None``."""
    for name in _candidates(model) if model else []:
        if name in USD_PRICES:
            return USD_PRICES[name]
    return None


def known_models() -> list[str]:
    """Every model the built-in table prices."""
    return sorted({*PRICES, *TIERED})
