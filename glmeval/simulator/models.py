"""The GLM model table: limits, simulated latency, reply style and list prices, in one place.

The local server validates requests against these limits exactly as the real API does, and
the rest of glmeval reuses the same table (context windows for planning, prices for cost), so
a model is described once.

Sources (see /work/shared/zhipu-api.md §5): context windows and max output from
docs.bigmodel.cn and lobe-chat's model bank; prices in CNY per 1M tokens from the same
third-party transcriptions, so treat them as indicative and check bigmodel.cn/pricing.
glm-4.5/glm-4.6 have tiered prices; the table holds the first tier (input < 32K tokens,
output < 200 tokens). Latency figures are the simulator's own invention, chosen so that
models differ the way users observe (glm-4 slow and thorough, glm-4-flash fastest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MODELS", "ModelSpec", "STYLES", "chat_models", "embedding_models"]

Style = Literal["thorough", "balanced", "terse"]
STYLES: tuple[str, ...] = ("thorough", "balanced", "terse")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model as the simulator (and glmeval's planner and cost report) sees it."""

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
    price_input_per_m: float = 0.0
    price_output_per_m: float = 0.0
    embedding_dimensions: tuple[int, ...] = ()

    @property
    def default_dimensions(self) -> int:
        """Vector size when the request does not name one (embedding models only)."""
        return self.embedding_dimensions[-1] if self.embedding_dimensions else 0

    def latency_ms(self, prompt_tokens: int, completion_tokens: int) -> tuple[float, float]:
        """(time to first token, total time) in ms at speed 1.0."""
        first = self.base_ms + prompt_tokens * self.per_prompt_token_ms
        return first, first + completion_tokens * self.per_completion_token_ms

    def cost_cny(self, prompt_tokens: int, completion_tokens: int) -> float:
        """List-price cost of one call in CNY."""
        return (prompt_tokens * self.price_input_per_m + completion_tokens * self.price_output_per_m) / 1e6


def _chat(
    name: str,
    context: int,
    max_output: int,
    latency: tuple[float, float, float],
    style: Style,
    price: tuple[float, float],
    *,
    default_max_tokens: int = 1024,
    temperature: float = 0.95,
    top_p: float = 0.7,
    thinking: bool = False,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        kind="chat",
        context_window=context,
        max_output=max_output,
        default_max_tokens=min(default_max_tokens, max_output),
        base_ms=latency[0],
        per_prompt_token_ms=latency[1],
        per_completion_token_ms=latency[2],
        style=style,
        default_temperature=temperature,
        default_top_p=top_p,
        thinking=thinking,
        price_input_per_m=price[0],
        price_output_per_m=price[1],
    )


_K128 = 131072

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _chat("glm-4", _K128, 4095, (600, 0.05, 25), "thorough", (100, 100)),
        _chat("glm-4-0520", _K128, 4095, (550, 0.05, 22), "thorough", (100, 100)),
        _chat("glm-3-turbo", _K128, 4095, (250, 0.02, 12), "terse", (5, 5)),
        _chat("glm-4-plus", _K128, 4095, (500, 0.04, 20), "thorough", (5, 5)),
        _chat("glm-4-air", _K128, 16384, (350, 0.03, 14), "balanced", (0.5, 0.5)),
        _chat("glm-4-airx", 8192, 4095, (200, 0.02, 8), "terse", (10, 10)),
        _chat("glm-4-flash", _K128, 32768, (120, 0.01, 6), "terse", (0, 0)),
        _chat("glm-4-flashx", _K128, 16384, (100, 0.01, 5), "terse", (0.1, 0.1)),
        _chat("glm-4-long", 1048576, 4095, (900, 0.08, 22), "balanced", (1, 1)),
        _chat("glm-4.5", _K128, 98304, (700, 0.04, 18), "thorough", (2, 8),
              default_max_tokens=65536, temperature=0.6, top_p=0.95, thinking=True),
        _chat("glm-4.5-air", _K128, 98304, (400, 0.03, 12), "balanced", (0.8, 2),
              default_max_tokens=65536, temperature=0.6, top_p=0.95, thinking=True),
        _chat("glm-4.6", 204800, 131072, (750, 0.04, 18), "thorough", (2, 8),
              default_max_tokens=65536, temperature=1.0, top_p=0.95, thinking=True),
        ModelSpec("embedding-2", "embedding", 512, 0, 0, 80, 0.01, 0,
                  price_input_per_m=0.5, embedding_dimensions=(1024,)),
        ModelSpec("embedding-3", "embedding", 3072, 0, 0, 100, 0.01, 0,
                  price_input_per_m=0.5, embedding_dimensions=(256, 512, 1024, 2048)),
    )
}


def chat_models() -> list[str]:
    """Names of the chat models, in table order."""
    return [name for name, spec in MODELS.items() if spec.kind == "chat"]


def embedding_models() -> list[str]:
    """Names of the embedding models, in table order."""
    return [name for name, spec in MODELS.items() if spec.kind == "embedding"]
