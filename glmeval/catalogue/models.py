"""The model catalogue: what glmeval knows of each GLM model, in one dated, sourced table.

Everyone reads it: the suite loader (limits, did-you-mean for model names), the planner
(default ``max_tokens``), the price table (yuan per 1M tokens, size tiers, cache hits) and the
local server (it enforces the same limits the real API does). The simulator may import this
module; nothing here imports the simulator.

Sources: /work/shared/zhipu-api-2026.md §1-§2 (the lineup as of Dec 2026) and
/work/shared/zhipu-api.md §5 (the 2024-25 reference, key ``OLD-REF``). :data:`SOURCES` names
every key an entry's ``source`` cites. **Unknown is None, never 0**: where the doc gives no
value, marks it [unconfirmed] or "?", the field is None and its name is listed in the entry's
``unconfirmed`` (with what the doc does say in ``note``). Prices are indicative; suites
override them with ``prices:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BATCH_PRICE_FACTOR",
    "CATALOGUE_DATE",
    "EFFECTIVE_EFFORT",
    "MODELS",
    "REASONING_EFFORT_VALUES",
    "SOURCES",
    "Family",
    "ModelInfo",
    "Tier",
    "Usd",
    "chat_models",
    "embedding_models",
    "in_display_order",
    "lookup",
]

CATALOGUE_DATE = "2026-12"

Kind = Literal["chat", "embedding"]
Family = Literal["text", "thinking-hybrid", "reasoning", "vision", "embedding"]
"""The doc's "kind" column: plain text, text that can think (``thinking.type`` toggles it),
reasoning first (thinking always or effort levels), vision (accepts image parts), embedding."""
ThinkingMode = Literal["none", "hybrid", "always"]
"""``none``: never returns reasoning; ``hybrid``: ``thinking.type`` switches it; ``always``:
cannot be switched off."""
ThinkingDefault = Literal["enabled", "disabled", "auto"]
"""What a request without ``thinking`` gets; ``auto``: the model decides (glm-4.6, BM-THINK)."""
Status = Literal["current", "legacy"]
Price = tuple[float, float]

SOURCES: dict[str, str] = {
    "BM-THINK": "docs.bigmodel.cn/cn/guide/capabilities/thinking-mode (lists GLM-5.2/5.1/5/4.7), 2026",
    "ZAI-THINK": "docs.z.ai/guides/capabilities/thinking-mode, GLM-4.7-era snapshot",
    "BM-PRICE": "docs.bigmodel.cn/cn/guide/start/pricing.md, snapshot ~2026-08/09",
    "MDEV": "anomalyco/models.dev f3fc692 (2026-07-02), providers/{zai,zhipuai}/models/*.toml",
    "MDEV-PR1379": "models.dev PR #1379 (2026-04-08)",
    "CAP26": "charmbracelet/fantasy captures against api.z.ai, glm-4.7-flash, 2026-03-12/13",
    "ZSDK": "zai-sdk 0.2.3 wheel / zai-org/z-ai-sdk-python d8d898b (2026-04-08)",
    "ALI": "help.aliyun.com/zh/model-studio/glm (Feb 2026); a reseller's prices, not Zhipu's",
    "NOVITA": "novita.ai model page for GLM-5.3 (Nov 2026); a third-party host",
    "OPENROUTER": "openrouter.ai/~z-ai/glm-latest (2026)",
    "CLOUDBASE": "docs.cloudbase.net retirement notices (2026-10)",
    "DESIRECORE": "desirecore config-center price list (2026-04); marks some prices 待确认",
    "OLD-REF": "zhipu-api.md §5 (2024-25: launch prices, lobe-chat model-bank late 2025, docs.z.ai)",
    "OLD-REF-PARAMS": "zhipu-api.md §2 (defaults: glm-4 era 0.95/0.7/1024; GLM-4.5+ thinking enabled)",
    "TABLE-2026": "zhipu-api-2026.md §1 lineup table itself, where a row names no further source",
    "GLMEVAL-2024": "glmeval's own 2024 table; in neither reference (kept so behaviour does not change)",
    "BM-BATCH": "docs.bigmodel.cn/cn/guide/tools/batch and /cn/faq/batch-api-issues (zhipu-api-2026.md §6)",
}

BATCH_PRICE_FACTOR = 0.5
"""What a Batch API request costs against the same request sent on its own: "50% of standard;
GLM-4-Flash free" (BM-BATCH). A free model stays free (half of zero)."""

REASONING_EFFORT_VALUES: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
"""What zai-sdk 0.2.3 accepts for top-level ``reasoning_effort`` (ZSDK: "effective for glm-5.2 and above")."""
EFFECTIVE_EFFORT: dict[str, str | None] = {
    "none": None,
    "minimal": None,
    "low": "high",
    "medium": "high",
    "high": "high",
    "xhigh": "max",
    "max": "max",
}
"""The level a request value takes effect as (MDEV comment); None means no thinking."""


@dataclass(frozen=True)
class Tier:
    """One band of a size-tiered price: applies while prompt < ``max_prompt`` and
    completion < ``max_completion`` (``None`` = no upper bound). ``cache`` is the cache-hit
    input price in that band, None when unknown."""

    max_prompt: int | None
    max_completion: int | None
    price: Price
    cache: float | None = None


@dataclass(frozen=True)
class Usd:
    """The api.z.ai list price, USD per 1M tokens; ``cache`` is the cache-hit input price."""

    input: float
    output: float
    cache: float | None = None


@dataclass(frozen=True)
class ModelInfo:
    """One model's limits, thinking behaviour, request defaults and list prices.

    ``price`` is CNY per 1M tokens ``(input, output)`` on open.bigmodel.cn, ``cache_price`` the
    CNY cache-hit input price; ``usd`` the api.z.ai price. ``context_window``, ``max_output`` and
    every price are None when unknown. ``thinking`` is True for a model that can return
    ``reasoning_content`` (None: unknown); ``thinking_mode`` and ``thinking_default`` say how.
    ``reasoning_effort``: the model takes top-level ``reasoning_effort``; ``effort_levels`` are the
    levels that take effect and ``default_effort`` the one used when the request names none.
    """

    name: str
    kind: Kind
    context_window: int | None
    max_output: int | None
    default_max_tokens: int | None
    default_temperature: float | None = 0.95
    default_top_p: float | None = 0.7
    thinking: bool | None = False
    price: Price | None = None
    tiers: tuple[Tier, ...] = ()
    embedding_dimensions: tuple[int, ...] = ()
    status: Status | None = "current"
    source: str = "OLD-REF"
    as_of: str = CATALOGUE_DATE
    aliases: tuple[str, ...] = field(default=())
    family: Family = "text"
    thinking_mode: ThinkingMode | None = "none"
    thinking_default: ThinkingDefault | None = "disabled"
    reasoning_effort: bool | None = False
    effort_levels: tuple[str, ...] = ()
    default_effort: str | None = None
    cache_price: float | None = None
    usd: Usd | None = None
    released: str | None = None
    unconfirmed: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if self.thinking is False and (self.thinking_mode != "none" or self.thinking_default != "disabled"):
            raise ValueError(f"{self.name}: a model that never thinks has thinking_mode 'none', default 'disabled'")
        if self.thinking_mode in ("hybrid", "always") and self.thinking is not True:
            raise ValueError(f"{self.name}: thinking_mode {self.thinking_mode!r} needs thinking=True")
        if self.thinking_mode == "always" and self.thinking_default not in ("enabled", None):
            raise ValueError(f"{self.name}: an always-thinking model cannot default to {self.thinking_default!r}")
        if self.default_effort is not None and self.default_effort not in self.effort_levels:
            raise ValueError(f"{self.name}: default_effort {self.default_effort!r} is not one of {self.effort_levels}")

    @property
    def default_dimensions(self) -> int:
        """Vector size when the request does not name one (embedding models only)."""
        return self.embedding_dimensions[-1] if self.embedding_dimensions else 0

    @property
    def modality(self) -> Literal["text", "vision"]:
        """``vision`` for a model that accepts image parts; text models reject them with 400/1210."""
        return "vision" if self.family == "vision" else "text"

    @property
    def free(self) -> bool:
        """True when a source lists the model at 0 / 0 (in CNY, or in USD when the CNY price is unknown)."""
        if self.price is not None:
            return self.price == (0.0, 0.0) and not self.tiers
        return self.usd is not None and (self.usd.input, self.usd.output) == (0.0, 0.0)


_K128 = 131072
_OLD_REF_DATE = "2025-12"  # zhipu-api.md §5: launch prices of 2024, lobe-chat's snapshot of late 2025
_M = 1_000_000
_GLM45_TIERS = (
    Tier(32_000, 200, (2.0, 8.0)),
    Tier(32_000, None, (3.0, 14.0)),
    Tier(None, None, (4.0, 16.0)),
)
_GLM45_AIR_TIERS = (
    Tier(32_000, 200, (0.8, 2.0), cache=0.16),
    Tier(32_000, None, (0.8, 6.0), cache=0.16),
    Tier(None, None, (1.2, 8.0), cache=0.24),
)
_USD_46 = Usd(0.60, 2.20, 0.11)
_USD_51 = Usd(1.40, 4.40, 0.26)
_USD_TURBO = Usd(1.20, 4.00, 0.24)


def _hybrid(default: ThinkingDefault | None = "enabled") -> dict[str, object]:
    """A model whose thinking ``thinking.type`` switches, defaulting to ``default``."""
    return {"thinking": True, "thinking_mode": "hybrid", "thinking_default": default}


# A 2024-table thinking model: request defaults glmeval has always used (OLD-REF-PARAMS gives
# top_p 0.95 for GLM-4.5/4.6; default_max_tokens 65536 is GLMEVAL-2024).
_OLD_THINKING: dict[str, object] = {"default_max_tokens": 65536, "default_top_p": 0.95, "family": "thinking-hybrid"}
# A 2025-26 model: the references give no sampling or max_tokens defaults.
_NO_DEFAULTS: dict[str, object] = {"default_max_tokens": None, "default_temperature": None, "default_top_p": None}


def _chat(name: str, context: int | None, max_output: int | None, price: Price | None, **extra: object) -> ModelInfo:
    """A chat entry; a 2024-style model's default max_tokens is 1024 (glm-4 docs), capped at its max output."""
    extra.setdefault("default_max_tokens", min(1024, max_output) if max_output else None)
    extra.setdefault("as_of", _OLD_REF_DATE)
    return ModelInfo(name, "chat", context, max_output, price=price, **extra)  # type: ignore[arg-type]


def _new(name: str, context: int | None, max_output: int | None, price: Price | None, **extra: object) -> ModelInfo:
    """A 2025-26 chat entry: no documented request defaults; dated by the 2026 reference unless told."""
    return _chat(name, context, max_output, price, **{**_NO_DEFAULTS, "as_of": CATALOGUE_DATE, **extra})


# In zhipu-api-2026.md §1 order: newest first, the 2024 table after.
_ENTRIES: tuple[ModelInfo, ...] = (
    _new("glm-5.3", _M, 131072, (8.0, 28.0), cache_price=2.0, family="reasoning", thinking=True,
         thinking_mode=None, thinking_default=None, reasoning_effort=True, released="2026-08-19",
         source="limits NOVITA (context OPENROUTER); CNY BM-PRICE; reasoning_effort ZSDK", as_of="2026-11",
         unconfirmed=("thinking_mode", "thinking_default", "effort_levels", "default_effort", "usd"),
         note="current flagship. Novita: thinking always on, effort low/high/max, default max [unconfirmed on Zhipu]. "
              "USD 1.40 / 4.40 / 0.26 via OpenRouter and Novita; Z.ai direct [unconfirmed]. "
              "CNY cache storage free for a limited time."),
    _new("glm-5.3-flash", _M, None, (0.8, 2.8), cache_price=0.23, family="vision", thinking=None,
         thinking_mode=None, thinking_default=None, reasoning_effort=None, released="2026-08-19",
         source="CNY BM-PRICE", as_of="2026-09",
         unconfirmed=("max_output", "thinking", "thinking_mode", "thinking_default", "reasoning_effort", "usd"),
         note="multimodal (text, image, video, file). CNY list price; promotion 0.4 / 1.4 / 0.115 ended 2026-09-09."),
    _new("glm-5.2", _M, 131072, None, family="reasoning", **_hybrid(), reasoning_effort=True,
         effort_levels=("high", "max"), default_effort="max", usd=_USD_51, released="2026-06-13",
         source="limits, effort, USD MDEV; thinking BM-THINK", as_of="2026-07", unconfirmed=("price",),
         note="reasoning_effort none/minimal skip thinking, low/medium act as high, xhigh as max (MDEV)."),
    _new("glm-5.1", 200_000, 131072, (6.0, 24.0), cache_price=1.3, family="thinking-hybrid", **_hybrid(),
         usd=_USD_51, released="2026-03-27", source="limits, USD MDEV; thinking BM-THINK; CNY MDEV-PR1379",
         as_of="2026-07", unconfirmed=("tiers",),
         note="CNY tier unconfirmed (input <32K and >=32K are billed differently); DESIRECORE lists cache 1.2. "
              "CloudBase retired its own copy 2026-10-09."),
    _new("glm-5-turbo", 200_000, 131072, None, family="thinking-hybrid", **_hybrid(), usd=_USD_TURBO,
         released="2026-03-16", source="limits, thinking toggle, USD MDEV; default MDEV provider.toml",
         as_of="2026-07", unconfirmed=("price",), note="still current after Oct 2026 [unconfirmed]."),
    _new("glm-5", 204_800, 131072, None, family="thinking-hybrid", **_hybrid(), usd=Usd(1.00, 3.20, 0.20),
         released="2026-02-11", source="limits, USD MDEV; thinking BM-THINK", as_of="2026-07", unconfirmed=("price",),
         note="DESIRECORE lists CNY 4 / 18 marked 待确认; ALI resells at 6 / 22 / 1.2 for the 32K-200K input tier."),
    _new("glm-5v-turbo", 200_000, 131072, (5.0, 22.0), cache_price=1.2, family="vision", **_hybrid(),
         usd=_USD_TURBO, released="2026-04-01", status=None, source="limits, thinking, CNY, USD MDEV",
         as_of="2026-07", unconfirmed=("status",),
         note="image, video and PDF input. CloudBase retired it 2026-10-30 for glm-5.3-flash; Zhipu status unconfirmed."),
    _new("glm-4.7", 204_800, 131072, None, family="thinking-hybrid", **_hybrid(), usd=_USD_46,
         released="2025-12-22", source="limits, USD MDEV; thinking BM-THINK, ZAI-THINK", as_of="2026-07",
         unconfirmed=("price",)),
    _new("glm-4.7-flash", 200_000, 131072, None, family="thinking-hybrid", **_hybrid(), usd=Usd(0.0, 0.0),
         released="2026-01-19", source="limits, USD MDEV; thinking CAP26", as_of="2026-07", unconfirmed=("price",),
         note="free on api.z.ai; free on bigmodel too [unconfirmed CNY]."),
    _new("glm-4.7-flashx", 200_000, 131072, None, family="thinking-hybrid", **_hybrid(), usd=Usd(0.07, 0.40, 0.01),
         source="limits, thinking toggle, USD MDEV; default MDEV provider.toml", as_of="2026-07", unconfirmed=("price",)),
    _chat("glm-4.6", 204800, 131072, None, default_temperature=1.0, tiers=_GLM45_TIERS, **_OLD_THINKING,
          **_hybrid("auto"), usd=_USD_46, status="legacy", released="2025-09-30",
          source="limits, CNY tiers OLD-REF; thinking BM-THINK; USD MDEV", as_of="2026-07",
          note="Baseten retired its copy 2026-05-01."),
    _chat("glm-4.5", _K128, 98304, None, default_temperature=0.6, tiers=_GLM45_TIERS, **_OLD_THINKING, **_hybrid(),
          usd=_USD_46, status="legacy", released="2025-07-28", source="limits, CNY tiers, thinking OLD-REF; USD MDEV",
          as_of="2026-07", note="CNY cache hits 0.4-0.8 by tier (OLD-REF), not mapped to bands."),
    _chat("glm-4.5-air", _K128, 98304, None, default_temperature=0.6, tiers=_GLM45_AIR_TIERS, **_OLD_THINKING,
          **_hybrid(), usd=Usd(0.20, 1.10, 0.03), status="legacy", released="2025-07-28",
          source="limits, CNY tiers, thinking OLD-REF; USD MDEV", as_of="2026-07", note="still on the Coding Plan (MDEV)."),
    _new("glm-4.5-x", _K128, 98304, None, family="thinking-hybrid", **_hybrid(), status=None,
         source="limits TABLE-2026; default OLD-REF-PARAMS", unconfirmed=("price", "usd", "status"),
         note="high-speed glm-4.5. USD recalled as 2.2 / 8.9 / 0.45 [unconfirmed]; legacy [unconfirmed]."),
    _new("glm-4.5-airx", _K128, 98304, None, family="thinking-hybrid", **_hybrid(), status=None,
         source="limits TABLE-2026; default OLD-REF-PARAMS", unconfirmed=("price", "usd", "status"),
         note="high-speed glm-4.5-air. USD recalled as 1.1 / 4.5 / 0.22 [unconfirmed]; legacy [unconfirmed]."),
    _new("glm-4.5-flash", _K128, 98304, (0.0, 0.0), family="thinking-hybrid", **_hybrid(), usd=Usd(0.0, 0.0),
         status="legacy", source="limits TABLE-2026; free OLD-REF; USD MDEV; default OLD-REF-PARAMS", as_of="2026-07"),
    _new("glm-4.5v", 65_536, 16_384, None, family="vision", **_hybrid(), usd=Usd(0.60, 1.80), status="legacy",
         source="limits, thinking toggle, USD MDEV; default OLD-REF-PARAMS", as_of="2026-07", unconfirmed=("price",),
         note="image and video input."),
    _new("glm-4.6v", 128_000, 32_768, None, family="vision", **_hybrid(), usd=Usd(0.30, 0.90),
         released="2025-12-08", source="limits, thinking toggle, USD MDEV; default OLD-REF-PARAMS; ZSDK test",
         as_of="2026-07", unconfirmed=("price",), note="image, video and file input."),
    _new("glm-4.6v-flash", 128_000, 32_768, None, family="vision", **_hybrid(),
         source="limits, thinking toggle MDEV (listed with glm-4.6v); default OLD-REF-PARAMS", as_of="2026-07",
         unconfirmed=("price", "usd"), note="the 2026 table gives one USD price (0.30 / 0.90) for the glm-4.6v row."),
    _chat("glm-4-plus", _K128, 4095, (5.0, 5.0), source="limits, CNY OLD-REF (docs.bigmodel.cn glm-4 page); status TABLE-2026"),
    _chat("glm-4-air-250414", _K128, 16384, (0.5, 0.5), as_of=CATALOGUE_DATE, source="limits TABLE-2026; CNY OLD-REF"),
    _chat("glm-4-airx", 8192, 4095, None, source="limits GLMEVAL-2024", unconfirmed=("price",),
          note="high-speed Air. 2026 §1 groups it with glm-4-air-250414 (128K / 16K); glmeval keeps the 8K / 4095 "
               "of its 2024 table. Price [unconfirmed] (the 2024 table's 10 / 10 had no source)."),
    _chat("glm-4-flash-250414", _K128, 16384, (0.0, 0.0), as_of=CATALOGUE_DATE, source="limits TABLE-2026; free OLD-REF",
          note="OLD-REF gives 32K max output for glm-4-flash / -250414; the 2026 table 16K."),
    _chat("glm-4-flashx-250414", _K128, None, (0.1, 0.1), as_of=CATALOGUE_DATE, source="context TABLE-2026; CNY OLD-REF",
          unconfirmed=("max_output",)),
    _chat("glm-4-long", 1048576, 4095, (1.0, 1.0), status=None, source="limits, CNY OLD-REF",
          unconfirmed=("status",), note="listed in the Batch FAQ; current [unconfirmed]."),
    _chat("glm-4-32b-0414-128k", _K128, None, None, usd=Usd(0.10, 0.10), status="legacy",
          source="context, USD OLD-REF", unconfirmed=("max_output",), note="a z.ai legacy model."),
    *(
        _chat(name, None, None, None, **_NO_DEFAULTS, family="reasoning", thinking=True, thinking_mode="always",
              thinking_default="enabled", status=None, source="TABLE-2026", as_of=CATALOGUE_DATE,
              unconfirmed=("context_window", "max_output", "price", "status"),
              note="reasoning-only; context 32K-128K [unconfirmed]; legacy: on the old open.bigmodel.cn menu, "
                   "not in the 2026 docs [unconfirmed]." + (" AirX advertised at 150-200 tok/s." if name.endswith("airx") else ""))
        for name in ("glm-z1-air", "glm-z1-airx", "glm-z1-flash", "glm-z1-flashx")
    ),
    _new("glm-4v-plus", None, None, None, family="vision", status="legacy", aliases=("glm-4v-plus-0111",),
         source="TABLE-2026", unconfirmed=("context_window", "max_output", "price"),
         note="older vision model; context 8K-16K [unconfirmed]; still called in Aug 2026."),
    _new("glm-4v-flash", None, None, None, family="vision", status="legacy", source="TABLE-2026",
         unconfirmed=("context_window", "max_output", "price"),
         note="older vision model; context 8K-16K [unconfirmed]; free [unconfirmed]; an image-only message gives 400/1213."),
    _new("charglm-4", None, None, None, status=None, source="TABLE-2026",
         unconfirmed=("context_window", "max_output", "price", "status"), note="role-play; takes the meta parameter."),
    _chat("glm-4", _K128, 4095, (100.0, 100.0), status="legacy", released="2024-01-16",
          source="limits, CNY OLD-REF; defaults OLD-REF-PARAMS", note="launch price, Jan 2024; only in the Batch FAQ now."),
    _chat("glm-4-0520", _K128, 4095, (100.0, 100.0), status="legacy", released="2024-06-05",
          source="limits, CNY OLD-REF; defaults OLD-REF-PARAMS", note="only in the Batch FAQ now."),
    _chat("glm-3-turbo", _K128, 4095, (5.0, 5.0), status="legacy", source="limits, CNY OLD-REF; defaults OLD-REF-PARAMS",
          note="launch price, Jan 2024; later cuts [unconfirmed]; only in the Batch FAQ now."),
    _chat("glm-4-air", _K128, 16384, (0.5, 0.5), status=None, source="limits, CNY OLD-REF", unconfirmed=("status",),
          note="the current glm-4 page lists the dated glm-4-air-250414."),
    _chat("glm-4-flash", _K128, 32768, (0.0, 0.0), status=None, source="limits, free OLD-REF", unconfirmed=("status",),
          note="the current glm-4 page lists the dated glm-4-flash-250414."),
    _chat("glm-4-flashx", _K128, 16384, (0.1, 0.1), status=None, source="limits GLMEVAL-2024; CNY OLD-REF (-250414)",
          unconfirmed=("status",), note="priced like glm-4-flashx-250414."),
    ModelInfo("embedding-2", "embedding", 512, 0, 0, price=(0.5, 0.0), embedding_dimensions=(1024,),
              family="embedding", source="GLMEVAL-2024", as_of=_OLD_REF_DATE),
    ModelInfo("embedding-3", "embedding", 3072, 0, 0, price=(0.5, 0.0), embedding_dimensions=(256, 512, 1024, 2048),
              family="embedding", source="GLMEVAL-2024", as_of=_OLD_REF_DATE),
)

MODELS: dict[str, ModelInfo] = {info.name: info for info in _ENTRIES}
_ALIASES: dict[str, str] = {alias: info.name for info in _ENTRIES for alias in info.aliases}


def lookup(name: str) -> ModelInfo | None:
    """The catalogue entry for ``name`` exactly as written (or one of its aliases), or None."""
    if not isinstance(name, str):
        return None
    return MODELS.get(name) or MODELS.get(_ALIASES.get(name, ""))


def chat_models() -> list[str]:
    """Names of the chat models, in table order."""
    return [name for name, info in MODELS.items() if info.kind == "chat"]


def embedding_models() -> list[str]:
    """Names of the embedding models, in table order."""
    return [name for name, info in MODELS.items() if info.kind == "embedding"]


_STATUS_RANK = {"current": 0, None: 1, "legacy": 2}


def in_display_order() -> list[ModelInfo]:
    """Every entry as ``glmeval models`` should list it: chat models that are current first, then
    those whose status is unknown, then legacy ones, then embeddings; newest first within each."""
    return sorted(_ENTRIES, key=lambda info: (info.kind == "embedding", _STATUS_RANK[info.status]))
