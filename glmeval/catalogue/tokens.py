"""Approximate GLM token counting, shared by the local server and the rest of glmeval.

The real GLM tokenizer is not available offline, and glmeval only needs counts that behave
like the real ones (Chinese text costs roughly one token per character, English roughly one
token per four letters) and that are identical everywhere they are computed: the local
server bills with these numbers, and reports compare them across runs.

The rules, applied to a text split into *pieces* (every character belongs to exactly one piece,
so joining the pieces gives back the text):

- a run of Latin letters or digits (ASCII and Latin-1/Latin Extended letters) is cut into
  pieces of at most 4 characters, each one token: ``"hello"`` = 2, ``"2024"`` = 1;
- every other visible character is one token on its own: each CJK character, each CJK or
  ASCII punctuation mark, each emoji;
- whitespace, combining marks, variation selectors, zero-width joiners and skin-tone
  modifiers cost nothing; they ride along with the next (or previous) token.

A chat prompt costs the tokens of every message content, plus 4 per message, plus the tokens
of the tool definitions serialised as JSON (see :func:`count_prompt_tokens`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "MESSAGE_OVERHEAD_TOKENS",
    "content_text",
    "count_prompt_tokens",
    "count_tokens",
    "split_tokens",
    "truncate_to_tokens",
]

MESSAGE_OVERHEAD_TOKENS = 4

_LATIN = "0-9A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_FREE = "\\s\u0300-\u036f\u200b-\u200d\ufe0e\ufe0f\U0001f3fb-\U0001f3ff"
_TOKEN = re.compile(rf"[{_LATIN}]{{1,4}}|[^{_LATIN}{_FREE}]")
_PIECE = re.compile(rf"[{_FREE}]*(?:[{_LATIN}]{{1,4}}|[^{_LATIN}{_FREE}])[{_FREE[2:]}]*|[{_FREE}]+")


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` under the rules in the module docstring."""
    if not text:
        return 0
    return len(_TOKEN.findall(text))


def split_tokens(text: str) -> list[str]:
    """Cut ``text`` into pieces of one token each (a trailing whitespace piece costs 0).

    ``"".join(split_tokens(t)) == t`` always holds, which is what lets a streamed reply be
    rebuilt exactly from its chunks.
    """
    if not text:
        return []
    return _PIECE.findall(text)


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
    for piece in _PIECE.findall(text):
        if _TOKEN.search(piece) is not None:
            if used >= n:
                break
            used += 1
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


def count_prompt_tokens(
    messages: Iterable[Mapping[str, Any]],
    tools: Sequence[Any] | None = None,
) -> int:
    """Prompt tokens of a chat request: contents + tool-call arguments + 4 per message + tools."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + count_tokens(content_text(message.get("content")))
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                function = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(function, Mapping):
                    total += count_tokens(str(function.get("name") or ""))
                    arguments = function.get("arguments")
                    if not isinstance(arguments, str):
                        arguments = json.dumps(arguments, ensure_ascii=False)
                    total += count_tokens(arguments)
    if tools:
        total += count_tokens(json.dumps(tools, ensure_ascii=False))
    return total
