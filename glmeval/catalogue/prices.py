"""What a call costs, in yuan (CNY), from a per-model price table a suite can override.

Prices are yuan per 1M tokens, ``(input, output)``, read from the model catalogue
(:mod:`glmeval.catalogue.models`). They come from /work/shared/zhipu-api.md §5,
which states for each figure where and when it was seen:

- glm-4, glm-4-0520: 100 / 100 (0.1 元/千tokens), launch pricing of January 2024
  (pricing notes mirrored at wpsshop.cn; dify ``glm_4.yaml``; lobe-chat for glm-4-0520).
- glm-3-turbo: 5 / 5 (0.005 元/千tokens), launch pricing of January 2024; later cuts unconfirmed.
- glm-4-plus: 5 / 5, docs.bigmodel.cn/cn/guide/models/text/glm-4 (current page, 2025).
- glm-4-air(-250414): 0.5 / 0.5; glm-4-flash(-250414): free; glm-4-flashx-250414: 0.1 / 0.1;
  glm-4-long: 1 / 1 (lobehub/lobe-chat model-bank ``zhipu.ts``, citing bigmodel.cn/pricing, late 2025).
- glm-4.5 and glm-4.6 (tiered by request size): input < 32K tokens and output < 200 tokens 2 / 8,
  input < 32K and output >= 200 3 / 14, input >= 32K 4 / 16. glm-4.5-air: 0.8 / 2, 0.8 / 6, 1.2 / 8.
  Same lobe-chat snapshot (late 2025): a third-party transcription of bigmodel.cn/pricing.
- glm-4.5-flash: free (docs.z.ai pricing, 2025-26).

Check these against https://bigmodel.cn/pricing before relying on them, and override them in
the suite (``prices: {glm-4: [100, 100]}``) when yours differ. A model with no known price costs
0 and :func:`price_for` returns ``None`` for it, so a report can say "price unknown" instead of
pretending the call was free.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from glmeval.catalogue.models import MODELS, PRICE_ONLY, Price, Tier

PRICES: dict[str, Price] = {
    **{name: info.price for name, info in MODELS.items() if info.price is not None and info.kind == "chat"},
    **PRICE_ONLY,
}
TIERED: dict[str, tuple[Tier, ...]] = {name: info.tiers for name, info in MODELS.items() if info.tiers}

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
    names = _candidates(model)
    if overrides:
        lowered = {str(k).strip().lower(): v for k, v in overrides.items()}
        for name in names:
            if name in overrides:
                return _as_price(overrides[name])
            if name.lower() in lowered:
                return _as_price(lowered[name.lower()])
    for name in names:
        if name in TIERED:
            for tier in TIERED[name]:
                if (tier.max_prompt is None or prompt_tokens < tier.max_prompt) and (
                    tier.max_completion is None or completion_tokens < tier.max_completion
                ):
                    return tier.price
        if name in PRICES:
            return PRICES[name]
    return None


def cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    overrides: Mapping[str, Any] | None = None,
) -> float:
    """Yuan spent on one call; 0.0 for a model with no known price (never raises for that)."""
    price = price_for(model, overrides, prompt_tokens or 0, completion_tokens or 0)
    if price is None:
        return 0.0
    return ((prompt_tokens or 0) * price[0] + (completion_tokens or 0) * price[1]) / 1_000_000


def known_models() -> list[str]:
    """Every model the built-in table prices."""
    return sorted({*PRICES, *TIERED})
