"""How a reply is worded: which phrasing a call gets, placeholders, the fallback reply.

Sampling varies like a real model's, and is still reproducible. A greedy request
(``do_sample: false`` or temperature <= 0.01) always gets a rule's first phrasing. Otherwise
each call draws from a :class:`Sampler`, from the server seed, the request and ``n``, how
often this exact request (model, conversation, sampling) was seen before, so the 8 repeats
of one case get 8 different draws, a restarted server with the same ``--seed``
gives the same sequence, and concurrency cannot change which answers a run gets (only which
of several identical requests gets which). A request that sends its own ``seed`` gets one
fixed draw for that seed. Nothing uses Python's randomised ``hash()``.

The draw picks a phrasing with probabilities like a sampled token's: phrasing ``i`` has
weight ``exp(-0.15 * i / temperature)`` (the first is the most likely, and a higher
temperature flattens the spread), then nucleus ``top_p`` keeps the smallest set of the most
likely phrasings whose probability reaches ``top_p``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections.abc import Mapping
from typing import Any

from .conversation import Conversation, Instructions, Reply, Sampling
from .models import ModelSpec

__all__ = [
    "CJK",
    "Sampler",
    "choice_index",
    "phrasing_weights",
    "digest",
    "fallback_reply",
    "first_sentence",
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


_SPREAD = 0.15
_TWO64 = float(2**64)


def phrasing_weights(count: int, sampling: Sampling) -> list[float]:
    """The probability of each of ``count`` phrasings under ``sampling`` (after ``top_p``)."""
    if count <= 1 or sampling.greedy:
        return [1.0] + [0.0] * max(0, count - 1)
    temperature = min(1.0, max(0.01, sampling.temperature))
    raw = [math.exp(-_SPREAD * i / temperature) for i in range(count)]
    total = sum(raw)
    probabilities = [w / total for w in raw]
    top_p = min(1.0, max(0.0, sampling.top_p))
    kept, mass = 0, 0.0
    while kept < count and (kept == 0 or mass < top_p - 1e-9):
        mass += probabilities[kept]
        kept += 1
    return [p / mass if i < kept else 0.0 for i, p in enumerate(probabilities)]


def choice_index(count: int, sampling: Sampling, draw: int) -> int:
    """Which of ``count`` phrasings the 64-bit ``draw`` picks (greedy requests: always 0)."""
    weights = phrasing_weights(count, sampling)
    u = draw / _TWO64
    cumulative = 0.0
    for index, weight in enumerate(weights):
        cumulative += weight
        if u < cumulative:
            return index
    return max(i for i, w in enumerate(weights) if w > 0)


_GOLDEN = int(0.6180339887498949 * 2**64)


class Sampler:
    """The seeded generator behind every sampled reply: one draw per call.

    The ``n``-th sighting of a request draws ``start + n * golden ratio`` (mod 1), ``start``
    a hash of the seed and the request: a low-discrepancy sequence, so repeats spread over the
    phrasings in proportion to their probability (8 calls reach every phrasing of probability
    >= 0.15, where independent draws would miss one now and then), and a run is reproducible
    from the seed however its calls interleave.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._seen: dict[int, int] = {}
        self._lock = threading.Lock()

    def draw(self, model: str, sampling: Sampling, text: str, counter: str = "") -> int:
        """The draw for this call; a request ``seed`` fixes it (same seed, same answer).

        ``counter`` (the call mode, thinking...) keeps a separate sighting count per kind of
        call, on the same sequence: the first sync and the first stream call of a prompt
        answer alike, as the real API's modes do.
        """
        key = (model, sampling.do_sample, sampling.temperature, sampling.top_p, text)
        if sampling.seed is not None:
            return digest("request-seed", sampling.seed, *key)
        start = digest("call", self.seed, *key)
        ident = digest(start, counter)
        with self._lock:
            nth = self._seen.get(ident, 0)
            self._seen[ident] = nth + 1
        return (start + nth * _GOLDEN) % 2**64

    def reset(self) -> None:
        """Forget the sightings: the next calls draw as after a restart."""
        with self._lock:
            self._seen.clear()


LANGUAGE_KEYS: dict[str, str] = {"en": "english", "zh": "chinese"}
"""The reply-table key a language instruction selects ("answer in English" → ``english``)."""
_LENGTH_STYLES = {"short": "terse", "long": "thorough"}
_SENTENCE = re.compile(r"^(.+?(?:[。！？!?]|\.(?=\s|$)))(?=\s*\S)", re.S)


def phrasings_for(
    table: Mapping[str, tuple[str, ...]], model: ModelSpec, instructions: Instructions | None = None
) -> tuple[str, ...]:
    """The phrasings for ``model`` under the prompt's instructions.

    The language asked for (``english`` / ``chinese``) wins, then the model's own name, then
    the style the length asks for (short: ``terse``, long: ``thorough``), then the model's
    style, then ``default``, then any.
    """
    keys: list[str] = []
    if instructions is not None and instructions.language is not None:
        keys.append(LANGUAGE_KEYS[instructions.language])
    keys.append(model.name)
    if instructions is not None and instructions.length is not None:
        keys.append(_LENGTH_STYLES[instructions.length])
    keys += [model.style, "default"]
    for key in keys:
        found = table.get(key)
        if found:
            return found
    for found in table.values():
        return found
    return ()


def first_sentence(text: str) -> str:
    """The first sentence of a prose reply ("in one sentence"); code and JSON stay whole."""
    if "```" in text or text.lstrip()[:1] in "{[":
        return text
    found = _SENTENCE.match(text.strip())
    return found.group(1) if found else text


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


_FALLBACK_VARIANTS = 6


def fallback_reply(conv: Conversation, model: ModelSpec, sampling: Sampling, draw: int = 0) -> str:
    """The reply for unmatched requests, marked as simulated, differing by model.

    Its sentences come from one of :data:`_FALLBACK_VARIANTS` orders, chosen by ``draw`` like
    a rule's phrasings (variant 0 for a greedy request).
    """
    snippet = " ".join(conv.last_user.split())[:20]
    english = CJK.search(conv.last_user) is None and bool(snippet)
    if conv.instructions.language is not None:
        english = conv.instructions.language == "en"
    pool = _FALLBACK_EN if english else _FALLBACK_ZH
    key: tuple[object, ...] = (model.name, conv.text)
    variant = choice_index(_FALLBACK_VARIANTS, sampling, draw)
    if variant:
        key += (variant,)
    h = digest(*key)
    chosen: list[str] = []
    order = list(range(len(pool)))
    sentences = 1 if conv.instructions.length == "short" else _SENTENCES_BY_STYLE.get(model.style, 2)
    if conv.instructions.length == "long":
        sentences = 3
    for _ in range(sentences):
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
