"""The catalogue as rows of text, in the order ``glmeval models`` shows it (current models first).

Kept apart from the data so the table stays plain facts and the command stays a loop over rows.
Unknown values show as ``?``, never as 0, so a reader can tell "free" from "not known".
"""

from __future__ import annotations

from dataclasses import dataclass

from glmeval.catalogue.models import ModelInfo, in_display_order

__all__ = ["HEADERS", "ModelRow", "display_rows"]

UNKNOWN = "?"
HEADERS: tuple[str, ...] = (
    "model", "family", "context", "max output", "thinking", "¥ in / out / cache per 1M", "$ in / out / cache per 1M",
    "status", "as of",
)


@dataclass(frozen=True)
class ModelRow:
    """One line of ``glmeval models``: display strings, in :data:`HEADERS` order by :meth:`cells`."""

    model: str
    family: str
    context: str
    max_output: str
    thinking: str
    cny: str
    usd: str
    status: str
    as_of: str

    def cells(self) -> list[str]:
        return [self.model, self.family, self.context, self.max_output, self.thinking, self.cny, self.usd,
                self.status, self.as_of]


def _tokens(n: int | None) -> str:
    if n is None:
        return UNKNOWN
    if n == 0:
        return "–"
    return f"{n:,}"


def _num(x: float | None) -> str:
    return UNKNOWN if x is None else f"{x:g}"


def _cny(info: ModelInfo) -> str:
    if info.tiers:
        low, high = info.tiers[0].price, info.tiers[-1].price
        return f"{low[0]:g}-{high[0]:g} / {low[1]:g}-{high[1]:g} (by size)"
    if info.price is None:
        return UNKNOWN
    if info.kind == "embedding":
        return f"{info.price[0]:g}"
    if info.free:
        return "free"
    return f"{info.price[0]:g} / {info.price[1]:g} / {_num(info.cache_price)}"


def _usd(info: ModelInfo) -> str:
    if info.usd is None:
        return UNKNOWN if info.kind == "chat" else "–"
    if (info.usd.input, info.usd.output) == (0.0, 0.0):
        return "free"
    return f"{info.usd.input:g} / {info.usd.output:g} / {_num(info.usd.cache)}"


def _thinking(info: ModelInfo) -> str:
    if info.kind == "embedding" or info.thinking is False:
        return "–"
    if info.thinking is None:
        return UNKNOWN
    mode = info.thinking_mode or UNKNOWN
    default = {"enabled": "on", "disabled": "off", "auto": "auto"}.get(info.thinking_default or "", UNKNOWN)
    text = f"{mode}, default {default}"
    if info.effort_levels:
        text += f", effort {'|'.join(info.effort_levels)}"
    elif info.reasoning_effort:
        text += ", effort"
    return text


def display_rows() -> list[ModelRow]:
    """Every catalogue entry as display strings, current chat models first (see :func:`in_display_order`)."""
    return [
        ModelRow(
            model=info.name + (f" ({', '.join(info.aliases)})" if info.aliases else ""),
            family=info.family,
            context=_tokens(info.context_window),
            max_output=_tokens(info.max_output),
            thinking=_thinking(info),
            cny=_cny(info),
            usd=_usd(info),
            status=info.status or UNKNOWN,
            as_of=info.as_of,
        )
        for info in in_display_order()
    ]
