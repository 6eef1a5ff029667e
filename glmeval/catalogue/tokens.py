"""Approximate GLM token counting, shared by the local server and the rest of glmeval.

The real GLM tokenizer is not available offline. glmeval needs counts that are close to the
real ones (the local server bills with them, ``max_tokens`` truncates with them, the planner
and the budget estimate cost with them) and identical wherever they are computed.

The rules were fitted to every real capture with known text and known usage: the CAP-ZAI
(glm-4.5, 2025) and CAP26 (glm-4.7-flash, 2026) recordings and the OpenRouter glm-5-turbo
one cited in zhipu-api.md §1.3-§1.5 and zhipu-api-2026.md §2, §4 and §9, the real glm-4
answer to 你好 (7 prompt / 32 completion tokens, issue 14) and the DOC-OLD tool call (31
completion tokens). Every one of them is within ±15% (``tests/test_fidelity_tokens.py`` holds
the table). A text is cut into *pieces*, one token each (joining the pieces gives back the
text, which is what lets a stream send one token per chunk):

- a run of Latin letters is one token per 10 letters (most English words are one token, as
  the captures stream them: ``" weather"``, ``" Florence"``); a single space before it rides along;
- digits, three to a token; ASCII punctuation, two to a token (``{"``, ``":``, ``**``);
- Chinese characters, 1.6 to a token (BM-PRICE: Token:汉字 ≈ 1:1.6), rounded per run;
- every other visible character (CJK punctuation, kana, emoji...) one token;
- a line break (with the indentation after it) or a run of spaces, one token; a single space,
  combining marks, variation selectors, zero-width joiners and skin-tone modifiers, none.

A chat prompt costs :data:`PROMPT_BASE_TOKENS`, plus :data:`MESSAGE_OVERHEAD_TOKENS` and the
content (and passed-back ``reasoning_content`` and tool calls) of each message, plus, when the
request offers tools, :data:`TOOLS_OVERHEAD_TOKENS` (the chat template's tool preamble) and the
tool definitions serialised as JSON (see :func:`count_prompt_tokens`). A function call costs its
name, its arguments and :data:`TOOL_CALL_OVERHEAD_TOKENS`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "CHINESE_CHARS_PER_TOKEN",
    "MESSAGE_OVERHEAD_TOKENS",
    "PROMPT_BASE_TOKENS",
    "TOOLS_OVERHEAD_TOKENS",
    "TOOL_CALL_OVERHEAD_TOKENS",
    "content_text",
    "count_prompt_tokens",
    "count_tokens",
    "count_tool_call_tokens",
    "split_tokens",
    "truncate_to_tokens",
]

MESSAGE_OVERHEAD_TOKENS = 1
PROMPT_BASE_TOKENS = 5
TOOLS_OVERHEAD_TOKENS = 80
TOOL_CALL_OVERHEAD_TOKENS = 2
CHINESE_CHARS_PER_TOKEN = 1.6

_LETTERS = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_PUNCT = re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_ATTACHED = "\u0300-\u036f\u200b-\u200d\ufe0e\ufe0f\U0001f3fb-\U0001f3ff"
_UNIT = (
    rf"(?P<han>[{_HAN}]+)|(?P<word> ?[{_LETTERS}]+)|(?P<digits> ?[0-9]+)|(?P<punct> ?[{_PUNCT}]+)"
    rf"|(?P<space>[ \t]*[\r\n][\s]*|[ \t]{{2,}}(?=\S|\Z)|[ \t]+\Z|\s)|(?P<other> ?.)"
)
_TRAILING = rf"[{_ATTACHED}]+"


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled on first count, not on import: a run that never estimates tokens
    before it sends (no budget, no TPM limit) does not wait for these classes to compile."""
    return re.compile(pattern, re.S)


def _cut(text: str, size: int) -> list[str]:
    """``text`` in pieces of ``size`` characters, a leading space kept with the first."""
    lead = 1 if text[:1] == " " and len(text) > 1 else 0
    body = [text[i:i + size] for i in range(lead, len(text), size)]
    if lead and body:
        body[0] = " " + body[0]
    return body


def _han(run: str) -> list[str]:
    """A run of Chinese characters as ``len / 1.6`` (rounded, at least 1) pieces of one or two
    characters, so that each piece counts as one token on its own too (你好 is one)."""
    tokens = max(1, int(len(run) / CHINESE_CHARS_PER_TOKEN + 0.5))
    bounds = [round(k * len(run) / tokens) for k in range(tokens + 1)]
    return [run[a:b] for a, b in zip(bounds, bounds[1:])]


def _pieces(text: str) -> list[tuple[str, int]]:
    """(piece, tokens in it: 0 or 1) covering ``text`` exactly, in order."""
    out: list[tuple[str, int]] = []
    position = 0
    unit, trailing = _compiled(_UNIT), _compiled(_TRAILING)
    while position < len(text):
        attached = trailing.match(text, position)
        if attached is not None:
            # Marks and modifiers belong to the token before them.
            if out:
                piece, cost = out[-1]
                out[-1] = (piece + attached.group(0), cost)
            else:
                out.append((attached.group(0), 0))
            position = attached.end()
            continue
        match = unit.match(text, position)
        assert match is not None  # `other` matches any character
        kind, value = match.lastgroup, match.group(0)
        position = match.end()
        if kind == "han":
            out.extend((piece, 1) for piece in _han(value))
        elif kind == "word":
            out.extend((piece, 1) for piece in _cut(value, 10))
        elif kind == "digits":
            out.extend((piece, 1) for piece in _cut(value, 3))
        elif kind == "punct":
            out.extend((piece, 1) for piece in _cut(value, 2))
        elif kind == "space":
            out.append((value, 0 if value in (" ", "\t") else 1))
        else:
            out.append((value, 1))
    return out


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` under the rules in the module docstring."""
    if not text:
        return 0
    return sum(cost for _, cost in _pieces(text))


def split_tokens(text: str) -> list[str]:
    """Cut ``text`` into pieces of one token each (a lone space or a mark may be a piece of 0).

    ``"".join(split_tokens(t)) == t`` always holds, which is what lets a streamed reply be
    rebuilt exactly from its chunks.
    """
    if not text:
        return []
    pieces: list[str] = []
    for piece, cost in _pieces(text):
        if cost == 0 and pieces:
            pieces[-1] += piece  # a free space rides with the token before it
        else:
            pieces.append(piece)
    return pieces


def truncate_to_tokens(text: str, n: int) -> str:
    """The longest prefix of ``text`` that holds at most ``n`` tokens.

    A text that already fits comes back unchanged; a cut one loses its trailing whitespace.
    """
    if not text or count_tokens(text) <= n:
        return text
    if n <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for piece, cost in _pieces(text):
        if cost:
            if used >= n:
                break
            used += cost
        kept.append(piece)
    return "".join(kept).rstrip()


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a vision-style list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return str(content)


def count_tool_call_tokens(name: str, arguments: Any) -> int:
    """Tokens of one function call (its name, its JSON arguments and the call's own markers),
    in a reply or a prompt."""
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return TOOL_CALL_OVERHEAD_TOKENS + count_tokens(name) + count_tokens(arguments)


def count_prompt_tokens(
    messages: Iterable[Mapping[str, Any]],
    tools: Sequence[Any] | None = None,
) -> int:
    """Prompt tokens of a chat request (the module docstring says how)."""
    total = PROMPT_BASE_TOKENS
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + count_tokens(content_text(message.get("content")))
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str):
            total += count_tokens(reasoning)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping):
                    total += count_tool_call_tokens(str(function.get("name") or ""), function.get("arguments"))
    if tools:
        total += TOOLS_OVERHEAD_TOKENS + count_tokens(json.dumps(tools, ensure_ascii=False))
    return total
