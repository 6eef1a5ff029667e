"""The model catalogue: what glmeval knows of each GLM model, in one dated, sourced table.

Everyone reads it: the suite loader (limits, did-you-mean for model names), the planner
(default ``max_tokens``), the price table (yuan per 1M tokens, size tiers) and the local
server (it enforces the same limits the real API does). The simulator may import this
module; nothing here imports the simulator.

Sources: /work/shared/zhipu-api.md §5 (context windows and max output from docs.bigmodel.cn
and lobe-chat's model bank; CNY prices from third-party transcriptions of bigmodel.cn/pricing,
late 2025). Treat prices as indicative; suites override them with ``prices:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CATALOGUE_DATE", "MODELS", "ModelInfo", "Tier", "chat_models", "embedding_models", "lookup"]

CATALOGUE_DATE = "2025-12"

Kind = Literal["chat", "embedding"]
Status = Literal["current", "legacy"]
Price = tuple[float, float]


@dataclass(frozen=True)
class Tier:
    """One band of a size-tiered price: applies while prompt < ``max_prompt`` and
    completion < ``max_completion`` (``None`` = no upper bound)."""

    max_prompt: int | None
    max_completion: int | None
    price: Price


@dataclass(frozen=True)
class ModelInfo:
    """One model's limits, request defaults and list price (yuan per 1M tokens)."""

    name: str
    kind: Kind
    context_window: int
    max_output: int
    default_max_tokens: int
    default_temperature: float = 0.95
    default_top_p: float = 0.7
    thinking: bool = False
    price: Price | None = None
    tiers: tuple[Tier, ...] = ()
    embedding_dimensions: tuple[int, ...] = ()
    status: Status = "current"
    source: str = "zhipu-api.md §5"
    as_of: str = CATALOGUE_DATE
    aliases: tuple[str, ...] = field(default=())

    @property
    def default_dimensions(self) -> int:
        """Vector size when the request does not name one (embedding models only)."""
        return self.embedding_dimensions[-1] if self.embedding_dimensions else 0


_K128 = 131072

_GLM45_TIERS = (
    Tier(32_000, 200, (2.0, 8.0)),
    Tier(32_000, None, (3.0, 14.0)),
    Tier(None, None, (4.0, 16.0)),
)
_GLM45_AIR_TIERS = (
    Tier(32_000, 200, (0.8, 2.0)),
    Tier(32_000, None, (0.8, 6.0)),
    Tier(None, None, (1.2, 8.0)),
)


def _chat(
    name: str,
    context: int,
    max_output: int,
    price: Price | None,
    *,
    default_max_tokens: int = 1024,
    temperature: float = 0.95,
    top_p: float = 0.7,
    thinking: bool = False,
    tiers: tuple[Tier, ...] = (),
    status: Status = "current",
) -> ModelInfo:
    return ModelInfo(
        name=name,
        kind="chat",
        context_window=context,
        max_output=max_output,
        default_max_tokens=min(default_max_tokens, max_output),
        default_temperature=temperature,
        default_top_p=top_p,
        thinking=thinking,
        price=price,
        tiers=tiers,
        status=status,
    )


_THINKING = {"default_max_tokens": 65536, "top_p": 0.95, "thinking": True}

MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        _chat("glm-4", _K128, 4095, (100.0, 100.0), status="legacy"),
        _chat("glm-4-0520", _K128, 4095, (100.0, 100.0), status="legacy"),
        _chat("glm-3-turbo", _K128, 4095, (5.0, 5.0), status="legacy"),
        _chat("glm-4-plus", _K128, 4095, (5.0, 5.0)),
        _chat("glm-4-air", _K128, 16384, (0.5, 0.5)),
        _chat("glm-4-airx", 8192, 4095, (10.0, 10.0)),
        _chat("glm-4-flash", _K128, 32768, (0.0, 0.0)),
        _chat("glm-4-flashx", _K128, 16384, (0.1, 0.1)),
        _chat("glm-4-long", 1048576, 4095, (1.0, 1.0)),
        _chat("glm-4.5", _K128, 98304, None, temperature=0.6, tiers=_GLM45_TIERS, **_THINKING),  # type: ignore[arg-type]
        _chat("glm-4.5-air", _K128, 98304, None, temperature=0.6, tiers=_GLM45_AIR_TIERS, **_THINKING),  # type: ignore[arg-type]
        _chat("glm-4.6", 204800, 131072, None, temperature=1.0, tiers=_GLM45_TIERS, **_THINKING),  # type: ignore[arg-type]
        ModelInfo("embedding-2", "embedding", 512, 0, 0, price=(0.5, 0.0), embedding_dimensions=(1024,)),
        ModelInfo("embedding-3", "embedding", 3072, 0, 0, price=(0.5, 0.0), embedding_dimensions=(256, 512, 1024, 2048)),
    )
}

# Priced ids that are not separate entries above (dated snapshots, free tiers).
PRICE_ONLY: dict[str, Price] = {
    "glm-4-air-250414": (0.5, 0.5),
    "glm-4-flash-250414": (0.0, 0.0),
    "glm-4-flashx-250414": (0.1, 0.1),
    "glm-4.5-flash": (0.0, 0.0),
}


def lookup(name: str) -> ModelInfo | None:
    """The catalogue entry for ``name`` exactly as written, or None."""
    return MODELS.get(name) if isinstance(name, str) else None


def chat_models() -> list[str]:
    """Names of the chat models, in table order."""
    return [name for name, info in MODELS.items() if info.kind == "chat"]


def embedding_models() -> list[str]:
    """Names of the embedding models, in table order."""
    return [name for name, info in MODELS.items() if info.kind == "embedding"]
