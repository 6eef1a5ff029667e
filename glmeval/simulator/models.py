"""The simulator's view of each model: the catalogue's limits and defaults, plus invented speed and style.

Limits, defaults and prices come from :mod:`glmeval.catalogue.models`, so the local server
refuses exactly what the planner and the suite loader warn about. Latency figures and reply
styles are the simulator's own invention, chosen so that models differ the way users observe
(glm-4 slow and thorough, the flash models fastest); for the 2025-26 models they follow the
measured first-token delays and tokens/s in zhipu-api-2026.md §9.

Where the catalogue says a value is unknown (None), the simulator still needs one to enforce;
:data:`_GUESSED_LIMITS` and the fallbacks in :func:`_spec` pick it, conservatively (the low end
of the doc's range, or a sibling model's figure), and say so here rather than in the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from glmeval.catalogue.models import MODELS as CATALOGUE
from glmeval.catalogue.models import ModelInfo

__all__ = ["MODELS", "ModelSpec", "STYLES", "chat_models", "embedding_models"]

Style = Literal["thorough", "balanced", "terse"]
STYLES: tuple[str, ...] = ("thorough", "balanced", "terse")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model as the simulator sees it: catalogue facts plus simulated speed and style.

    ``thinking``: the model can reason (a request with ``thinking.type: enabled`` gets
    ``reasoning_content``). ``thinking_default``: it reasons when the request says nothing;
    ``thinking_always``: ``thinking.type: disabled`` does not stop it. ``reasoning_effort``: it
    takes top-level ``reasoning_effort`` (``effort_levels``, default ``default_effort``).
    ``vision``: it accepts image parts. Prices are None when the catalogue does not know them
    (0 / 0 for the models it lists as free).

    ``wire``: which captures the server's JSON follows. ``"2026"`` (every model that can think):
    ``"object"`` keys, ``completion_tokens_details.reasoning_tokens``, a cache-hit estimate, and
    the 2026 stream order (zhipu-api-2026.md §2.3). ``"2024"`` (the models that never think:
    glm-4, glm-3-turbo, glm-4-plus...): byte for byte what this server has always sent for them
    (zhipu-api.md §1.3-§1.5), so suites and tests written against them see no change.
    """

    name: str
    kind: Literal["chat", "embedding"]
    context_window: int
    max_output: int
    default_max_tokens: int
    base_ms: float
    per_prompt_token_ms: float
    per_completion_token_ms: float
    style: Style = "balanced"
    default_temperature: float = 0.95
    default_top_p: float = 0.7
    thinking: bool = False
    price_input_per_m: float | None = None
    price_output_per_m: float | None = None
    embedding_dimensions: tuple[int, ...] = ()
    thinking_default: bool = False
    thinking_always: bool = False
    reasoning_effort: bool = False
    effort_levels: tuple[str, ...] = ()
    default_effort: str | None = None
    vision: bool = False
    wire: Literal["2024", "2026"] = "2024"

    @property
    def default_dimensions(self) -> int:
        """Vector size when the request does not name one (embedding models only)."""
        return self.embedding_dimensions[-1] if self.embedding_dimensions else 0

    def latency_ms(self, prompt_tokens: int, completion_tokens: int) -> tuple[float, float]:
        """(time to first token, total time) in ms at speed 1.0."""
        first = self.base_ms + prompt_tokens * self.per_prompt_token_ms
        return first, first + completion_tokens * self.per_completion_token_ms

    def cost_cny(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """List-price cost of one call in CNY, or None when the price is unknown."""
        if self.price_input_per_m is None or self.price_output_per_m is None:
            return None
        return (prompt_tokens * self.price_input_per_m + completion_tokens * self.price_output_per_m) / 1e6


# (first-token ms, ms per prompt token, ms per completion token), reply style.
# Checked against zhipu-api-2026.md §9 (Dec 2026). Where a measurement of Zhipu's own API
# exists it wins (ZenMux's Z.AI provider, newmen.ai via Z.AI), else the Vercel AI Gateway
# multi-provider p50 or Novita; ms per token = 1000 / tok/s. A stream sends its first token
# after the first-token delay, then one token per chunk at that pace. Rows without a comment
# have no public measurement and are invented to fit their family (flash fastest, glm-4 slow).
_SPEED: dict[str, tuple[tuple[float, float, float], Style]] = {
    "glm-5.3": ((1670, 0.04, 14), "thorough"),  # Novita: TTFT p50 1.67 s, TPOT 14 ms
    "glm-5.3-flash": ((400, 0.01, 8), "terse"),
    "glm-5.2": ((1500, 0.04, 15), "thorough"),  # no measurement: between glm-5.1 and glm-5.3
    "glm-5.1": ((1000, 0.04, 17), "thorough"),  # Vercel: 1.0 s / 59 tok/s
    "glm-5-turbo": ((900, 0.03, 14), "balanced"),  # Vercel: 0.9 s / 72 tok/s
    "glm-5": ((400, 0.03, 13.5), "thorough"),  # Vercel: 0.4 s / 74 tok/s
    "glm-5v-turbo": ((900, 0.04, 14), "balanced"),
    "glm-4.7": ((500, 0.03, 12), "thorough"),  # only Cerebras-class hosts measured (0.1 s / ~500 tok/s): not Zhipu
    "glm-4.7-flash": ((400, 0.01, 8), "terse"),  # Vercel (Bedrock): 0.4 s / 122 tok/s
    "glm-4.7-flashx": ((300, 0.01, 7), "terse"),
    "glm-4.6": ((3800, 0.04, 16), "thorough"),  # ZenMux, Z.AI provider: first token 3.8 s avg, 62 tok/s
    "glm-4.5": ((700, 0.04, 18), "thorough"),
    "glm-4.5-air": ((2500, 0.03, 28.6), "balanced"),  # newmen.ai via Z.AI: p50 latency 2.5 s, 35 tok/s
    "glm-4.5-x": ((300, 0.02, 8), "thorough"),
    "glm-4.5-airx": ((250, 0.02, 7), "balanced"),
    "glm-4.5-flash": ((200, 0.01, 8), "terse"),
    "glm-4.5v": ((700, 0.04, 16), "balanced"),
    "glm-4.6v": ((600, 0.04, 14), "balanced"),
    "glm-4.6v-flash": ((300, 0.02, 8), "terse"),
    "glm-4-plus": ((500, 0.04, 20), "thorough"),
    "glm-4-air-250414": ((350, 0.03, 14), "balanced"),
    "glm-4-airx": ((200, 0.02, 8), "terse"),
    "glm-4-flash-250414": ((120, 0.01, 6), "terse"),
    "glm-4-flashx-250414": ((100, 0.01, 5), "terse"),
    "glm-4-long": ((900, 0.08, 22), "balanced"),
    "glm-4-32b-0414-128k": ((300, 0.02, 10), "balanced"),
    "glm-z1-air": ((600, 0.03, 12), "thorough"),
    "glm-z1-airx": ((300, 0.02, 5.5), "thorough"),  # vendor claim (besthub.dev): 150-200 tok/s
    "glm-z1-flash": ((300, 0.01, 8), "balanced"),
    "glm-z1-flashx": ((250, 0.01, 7), "balanced"),
    "glm-4v-plus": ((600, 0.05, 20), "balanced"),
    "glm-4v-flash": ((250, 0.02, 8), "terse"),
    "charglm-4": ((400, 0.03, 14), "balanced"),
    "glm-4": ((600, 0.05, 25), "thorough"),
    "glm-4-0520": ((550, 0.05, 22), "thorough"),
    "glm-3-turbo": ((250, 0.02, 12), "terse"),
    "glm-4-air": ((350, 0.03, 14), "balanced"),
    "glm-4-flash": ((120, 0.01, 6), "terse"),
    "glm-4-flashx": ((100, 0.01, 5), "terse"),
    "embedding-2": ((80, 0.01, 0), "balanced"),
    "embedding-3": ((100, 0.01, 0), "balanced"),
}
_DEFAULT_SPEED: tuple[tuple[float, float, float], Style] = ((500, 0.04, 18), "balanced")

# (context window, max output) where the catalogue has None: the low end of the doc's range,
# or the figure of the sibling model.
_GUESSED_LIMITS: dict[str, tuple[int, int]] = {
    "glm-5.3-flash": (1_000_000, 131072),  # as glm-5.3
    "glm-4-flashx-250414": (131072, 16384),  # as glm-4-flash-250414
    "glm-4-32b-0414-128k": (131072, 4095),
    "glm-z1-air": (32768, 32768),  # context "32K-128K"
    "glm-z1-airx": (32768, 32768),
    "glm-z1-flash": (32768, 32768),
    "glm-z1-flashx": (32768, 32768),
    "glm-4v-plus": (8192, 1024),  # context "8K-16K"
    "glm-4v-flash": (8192, 1024),
    "charglm-4": (8192, 4095),
}

# glm-4.6's default is "auto" (the model decides whether to think); the simulator decides not to,
# so it reasons only when asked. Every other model follows the catalogue's thinking_default.
_THINK_WHEN_ASKED = frozenset({"glm-4.6"})
# Thinking the catalogue does not know (glm-5.3-flash): simulated like its glm-5.x siblings.
_ASSUMED_THINKING = frozenset({"glm-5.3-flash"})
_ASSUMED_EFFORT: dict[str, tuple[tuple[str, ...], str]] = {"glm-5.3": (("high", "max"), "max")}  # as glm-5.2


def _thinking(info: ModelInfo) -> tuple[bool, bool, bool]:
    """(can think, thinks by default, cannot be switched off) as the simulator plays the model."""
    thinks = bool(info.thinking) or info.name in _ASSUMED_THINKING
    if not thinks or info.name in _THINK_WHEN_ASKED:
        return thinks, False, False
    by_default = info.thinking_default != "disabled"
    return True, by_default, info.thinking_mode == "always"


def _spec(info: ModelInfo, name: str | None = None) -> ModelSpec:
    latency, style = _SPEED.get(info.name, _DEFAULT_SPEED)
    price = info.price or (info.tiers[0].price if info.tiers else None) or ((0.0, 0.0) if info.free else None)
    guess = _GUESSED_LIMITS.get(info.name)
    context = info.context_window if info.context_window is not None else (guess[0] if guess else 8192)
    max_output = info.max_output if info.max_output is not None else (guess[1] if guess else 4095)
    thinks, by_default, always = _thinking(info)
    effort = (info.effort_levels, info.default_effort) if info.effort_levels else _ASSUMED_EFFORT.get(info.name, ((), None))
    default_max_tokens = info.default_max_tokens
    if default_max_tokens is None:
        default_max_tokens = min(65536, max_output) if thinks else min(1024, max_output)
    return ModelSpec(
        name=name or info.name,
        kind=info.kind,
        context_window=context,
        max_output=max_output,
        default_max_tokens=default_max_tokens,
        base_ms=latency[0],
        per_prompt_token_ms=latency[1],
        per_completion_token_ms=latency[2],
        style=style,
        default_temperature=info.default_temperature if info.default_temperature is not None else (1.0 if thinks else 0.95),
        default_top_p=info.default_top_p if info.default_top_p is not None else (0.95 if thinks else 0.7),
        thinking=thinks,
        price_input_per_m=price[0] if price else None,
        price_output_per_m=price[1] if price else None,
        embedding_dimensions=info.embedding_dimensions,
        thinking_default=by_default,
        thinking_always=always,
        reasoning_effort=bool(info.reasoning_effort),
        effort_levels=effort[0],
        default_effort=effort[1],
        vision=info.modality == "vision",
        wire="2026" if thinks else "2024",
    )


MODELS: dict[str, ModelSpec] = {
    **{name: _spec(info) for name, info in CATALOGUE.items()},
    **{alias: _spec(info, alias) for info in CATALOGUE.values() for alias in info.aliases},
}


def chat_models() -> list[str]:
    """Names of the chat models, in table order."""
    return [name for name, spec in MODELS.items() if spec.kind == "chat"]


def embedding_models() -> list[str]:
    """Names of the embedding models, in table order."""
    return [name for name, spec in MODELS.items() if spec.kind == "embedding"]
