"""The simulator's view of each model: the catalogue's limits and defaults, plus invented speed and style.

Limits, defaults and prices come from :mod:`glmeval.catalogue.models`, so the local server
refuses exactly what the planner and the suite loader warn about. Latency figures and reply
styles are the simulator's own invention, chosen so that models differ the way users observe
(glm-4 slow and thorough, glm-4-flash fastest).
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
    """One model as the simulator sees it: catalogue facts plus simulated speed and style."""

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


# (first-token ms, ms per prompt token, ms per completion token), reply style.
_SPEED: dict[str, tuple[tuple[float, float, float], Style]] = {
    "glm-4": ((600, 0.05, 25), "thorough"),
    "glm-4-0520": ((550, 0.05, 22), "thorough"),
    "glm-3-turbo": ((250, 0.02, 12), "terse"),
    "glm-4-plus": ((500, 0.04, 20), "thorough"),
    "glm-4-air": ((350, 0.03, 14), "balanced"),
    "glm-4-airx": ((200, 0.02, 8), "terse"),
    "glm-4-flash": ((120, 0.01, 6), "terse"),
    "glm-4-flashx": ((100, 0.01, 5), "terse"),
    "glm-4-long": ((900, 0.08, 22), "balanced"),
    "glm-4.5": ((700, 0.04, 18), "thorough"),
    "glm-4.5-air": ((400, 0.03, 12), "balanced"),
    "glm-4.6": ((750, 0.04, 18), "thorough"),
    "embedding-2": ((80, 0.01, 0), "balanced"),
    "embedding-3": ((100, 0.01, 0), "balanced"),
}
_DEFAULT_SPEED: tuple[tuple[float, float, float], Style] = ((500, 0.04, 18), "balanced")


def _spec(info: ModelInfo) -> ModelSpec:
    latency, style = _SPEED.get(info.name, _DEFAULT_SPEED)
    price = info.price or (info.tiers[0].price if info.tiers else (0.0, 0.0))
    return ModelSpec(
        name=info.name,
        kind=info.kind,
        context_window=info.context_window,
        max_output=info.max_output,
        default_max_tokens=info.default_max_tokens,
        base_ms=latency[0],
        per_prompt_token_ms=latency[1],
        per_completion_token_ms=latency[2],
        style=style,
        default_temperature=info.default_temperature,
        default_top_p=info.default_top_p,
        thinking=info.thinking,
        price_input_per_m=price[0],
        price_output_per_m=price[1],
        embedding_dimensions=info.embedding_dimensions,
    )


MODELS: dict[str, ModelSpec] = {name: _spec(info) for name, info in CATALOGUE.items()}


def chat_models() -> list[str]:
    """Names of the chat models, in table order."""
    return [name for name, spec in MODELS.items() if spec.kind == "chat"]


def embedding_models() -> list[str]:
    """Names of the embedding models, in table order."""
    return [name for name, spec in MODELS.items() if spec.kind == "embedding"]
