"""How a reply is worded: deterministic phrasing choice, placeholders, the fallback reply.

Determinism: nothing here uses Python's randomised ``hash()`` or a random generator. Every
choice is a BLAKE2 hash of (model, temperature, top_p, seed, conversation text), so the same
request always gets the same words and CI stays stable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from .conversation import Conversation, Reply, Sampling
from .models import ModelSpec

__all__ = [
    "CJK",
    "choice_index",
    "digest",
    "fallback_reply",
    "phrasings_for",
    "reasoning_for",
    "render_tool_result",
    "substitute",
    "substitute_data",
]

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def digest(*parts: object) -> int:
    """A stable 64-bit hash of ``parts`` (BLAKE2, unlike ``hash()`` the same in every process)."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big")


def choice_index(count: int, model: str, sampling: Sampling, text: str) -> int:
    """Which of ``count`` phrasings to use.

    Greedy requests always get 0. Otherwise the candidates are the first
    ``1 + round(reach * (count - 1))`` phrasings, ``reach = temperature * (0.4 + 0.6 * top_p)``,
    and a hash of the request picks one, so higher temperature reaches further down the list
    while the same request always gets the same phrasing.
    """
    if count <= 1 or sampling.greedy:
        return 0
    reach = min(1.0, sampling.temperature) * (0.4 + 0.6 * min(1.0, sampling.top_p))
    span = 1 + round(reach * (count - 1))
    if span <= 1:
        return 0
    return digest(model, sampling.temperature, sampling.top_p, sampling.seed, text) % span


def phrasings_for(table: Mapping[str, tuple[str, ...]], model: ModelSpec) -> tuple[str, ...]:
    """The phrasings for ``model``: its own name, then its style, then ``default``, then any."""
    for key in (model.name, model.style, "default"):
        found = table.get(key)
        if found:
            return found
    for found in table.values():
        return found
    return ()


def render_tool_result(raw: str) -> str:
    """Tool output as prose: JSON objects become their values joined by '，'."""
    text = raw.strip()
    if text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            return text
        values = data.values() if isinstance(data, dict) else data if isinstance(data, list) else [data]
        rendered = [str(v) for v in values if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
        if rendered:
            return "，".join(rendered)
    return text


def substitute(template: str, match: re.Match[str] | None, context: Mapping[str, str]) -> str:
    """Replace ``{1}``, ``{name}`` (regex groups) and ``{tool_result}``-style context names.

    Unknown names are left as written, so literal braces (JSON examples) survive.
    """
    if "{" not in template:
        return template

    def replace(m: re.Match[str]) -> str:
        key = m.group(1)
        if match is not None:
            if key.isdigit():
                number = int(key)
                if number <= (match.re.groups or 0):
                    return match.group(number) or ""
            elif key in match.re.groupindex:
                return match.group(key) or ""
        value = context.get(key)
        return value if value is not None else m.group(0)

    return _PLACEHOLDER.sub(replace, template)


def substitute_data(value: Any, match: re.Match[str] | None, context: Mapping[str, str]) -> Any:
    """:func:`substitute` through the strings of nested mappings and lists (tool-call arguments)."""
    if isinstance(value, str):
        return substitute(value, match, context)
    if isinstance(value, Mapping):
        return {k: substitute_data(v, match, context) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_data(v, match, context) for v in value]
    return value


_FALLBACK_ZH = (
    "这是一个很好的问题。",
    "从多个角度来看，这个问题需要结合具体情况分析。",
    "一般来说，可以先明确目标，再把问题拆解成几个小步骤。",
    "如果你能提供更多背景信息，我可以给出更具体的建议。",
    "总的来说，保持耐心并持续实践是关键。",
    "我会尽量给出准确且有帮助的回答。",
    "不同的场景下，最合适的做法可能并不相同。",
)
_FALLBACK_EN = (
    "That is a good question.",
    "It depends on the details of your situation.",
    "A good first step is to state the goal clearly and break the problem into smaller parts.",
    "If you share more context, I can give a more specific answer.",
    "In short, steady practice is the key.",
    "I will try to give an accurate and helpful answer.",
    "The best approach can differ from one case to another.",
)
_SENTENCES_BY_STYLE = {"thorough": 3, "balanced": 2, "terse": 1}


def fallback_reply(conv: Conversation, model: ModelSpec, sampling: Sampling) -> str:
    """A deterministic reply for unmatched requests, marked as simulated, differing by model."""
    snippet = " ".join(conv.last_user.split())[:20]
    english = CJK.search(conv.last_user) is None and bool(snippet)
    pool = _FALLBACK_EN if english else _FALLBACK_ZH
    key: tuple[object, ...] = (model.name, conv.text)
    if not sampling.greedy:
        key += (sampling.temperature, sampling.top_p, sampling.seed)
    h = digest(*key)
    chosen: list[str] = []
    order = list(range(len(pool)))
    for _ in range(_SENTENCES_BY_STYLE.get(model.style, 2)):
        chosen.append(pool[order.pop(h % len(order))])
        h //= 7
    if english:
        return f"(simulated reply) About \u201c{snippet}\u201d: " + " ".join(chosen)
    return f"（模拟回复）关于“{snippet}”：" + "".join(chosen)


def reasoning_for(
    conv: Conversation, reply: Reply, *, effort: str | None = None, pictures: int = 0, searched: bool = False
) -> str:
    """The ``reasoning_content`` a thinking model shows before answering.

    Deterministic and short; it never repeats the answer, so a check can tell the two apart.
    It names what the model works from (pictures, search results, a tool) and, at effort
    ``max``, adds a checking step, so higher effort costs more reasoning tokens.
    """
    snippet = " ".join(conv.last_user.split())[:30]
    english = bool(snippet) and CJK.search(conv.last_user) is None
    if english:
        parts = [f"The user asks: \u201c{snippet}\u201d."]
        if pictures:
            parts.append(f"There {'is one picture' if pictures == 1 else f'are {pictures} pictures'}; "
                         "I look at the size and the main colour first.")
        if searched:
            parts.append("I read the web search results and will cite the ones I use.")
        if reply.tool_calls:
            names = ", ".join(call.name for call in reply.tool_calls)
            parts.append(f"I need to call {names} before I can answer.")
        else:
            parts.append("I should understand the question, then give an accurate, concise and helpful answer.")
        if effort == "max":
            parts.append("Before answering I go over each step once more to make sure nothing is missing.")
        return " ".join(parts)
    parts = [f"用户的问题是“{snippet}”。"]
    if pictures:
        parts.append(f"用户附上了{pictures}张图片，我先看图片的尺寸和主色调。")
    if searched:
        parts.append("我先阅读联网搜索的结果，回答时标注引用的来源。")
    if reply.tool_calls:
        names = "、".join(call.name for call in reply.tool_calls)
        parts.append(f"我需要调用工具 {names} 获取信息后再回答。")
    else:
        parts.append("我需要理解问题，然后给出准确、简洁、有帮助的回答。")
    if effort == "max":
        parts.append("回答之前，我再逐步检查一遍推理，确认没有遗漏。")
    return "".join(parts)
