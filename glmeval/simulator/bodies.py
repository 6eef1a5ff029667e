"""Response bodies: a rule's reply shaped by the request and written as Zhipu JSON.

Shaping applies what the API applies after the model speaks (response_format json_object,
stop words, max_tokens, thinking); the body helpers produce the exact key sets the real API
sends, so the zhipuai SDK parses them as it parses production answers: the 2024 shapes for the
models that never think, the 2026 ones (``"object"``, reasoning tokens in ``usage``) for the
others (``ModelSpec.wire``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from glmeval.catalogue.tokens import count_tokens, count_tool_call_tokens, truncate_to_tokens

from .conversation import Reply, ToolCall
from .models import ModelSpec
from .phrasing import reasoning_for
from .protocol import ChatRequest

__all__ = [
    "Outcome",
    "as_json_text",
    "chat_body",
    "chat_message",
    "dumps",
    "new_id",
    "shape",
    "tool_calls_json",
    "usage_for",
    "usage_json",
]


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON, Chinese kept as characters as the real API sends it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def new_id() -> str:
    """A completion or task id shaped like the real API's (timestamp plus random hex)."""
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A reply after response_format, stop and max_tokens were applied.

    ``completion_tokens`` includes ``reasoning_tokens``, as the API counts them (89 = 61 + 28, §2.2).
    """

    content: str | None
    reasoning: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    completion_tokens: int
    reasoning_tokens: int = 0


def as_json_text(content: str) -> str:
    """Honour response_format json_object: bare JSON object text, wrapping prose if needed."""
    text = content.strip()
    if text.startswith("```"):
        inner = text.split("\n", 1)[1] if "\n" in text else ""
        text = inner.rsplit("```", 1)[0].strip()
    else:
        start, end = text.find("{"), text.rfind("}")
        if start >= 0 and end > start:
            text = text[start:end + 1]
    try:
        if isinstance(json.loads(text), dict):
            return text
    except ValueError:
        pass
    return json.dumps({"response": content}, ensure_ascii=False)


def shape(request: ChatRequest, reply: Reply) -> Outcome:
    """Apply thinking, json_object, stop words and max_tokens to a rule's reply, and count its tokens.

    ``max_tokens`` bounds reasoning and answer together: reasoning first, the answer gets what
    is left (and ``finish_reason`` ``length`` when that is not enough).
    """
    reasoning = None
    if request.thinking:
        reasoning = reasoning_for(
            request.conversation, reply, effort=request.effort, pictures=len(request.pictures),
            searched=bool(request.search_results),
        )
        reasoning = truncate_to_tokens(reasoning, request.max_tokens)
    reasoning_tokens = count_tokens(reasoning) if reasoning else 0
    if reply.tool_calls:
        tokens = sum(count_tool_call_tokens(c.name, c.arguments) for c in reply.tool_calls)
        return Outcome(None, reasoning, reply.tool_calls, "tool_calls", tokens + reasoning_tokens, reasoning_tokens)
    content = reply.content or ""
    finish = reply.finish_reason
    if request.json_mode and content:
        content = as_json_text(content)
    if request.stop and finish == "stop":
        cut = min((i for i in (content.find(s) for s in request.stop) if i >= 0), default=-1)
        if cut >= 0:
            content = content[:cut]
    tokens = count_tokens(content)
    budget = request.max_tokens - reasoning_tokens
    if tokens > budget:
        content = truncate_to_tokens(content, budget)
        tokens = count_tokens(content)
        finish = "length"
    return Outcome(content, reasoning, (), finish, tokens + reasoning_tokens, reasoning_tokens)


def usage_json(prompt: int, completion: int, details: bool = True) -> dict[str, Any]:
    """The ``usage`` object; async results carry it without ``prompt_tokens_details``."""
    if details:
        return {
            "completion_tokens": completion,
            "prompt_tokens": prompt,
            "prompt_tokens_details": {"cached_tokens": 0},
            "total_tokens": prompt + completion,
        }
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def usage_for(request: ChatRequest, completion: int, reasoning: int, *, order: str = "sync") -> dict[str, Any]:
    """The ``usage`` of a 2026-wire model, with ``cached_tokens`` and ``reasoning_tokens``.

    ``order``: ``sync`` sorts keys as the sync capture does (§2.2); ``stream`` follows the final
    chunk of the stream capture (§2.3); ``async`` is the sync shape (no capture exists). A
    2024-wire model gets :func:`usage_json`, as it always has.
    """
    prompt = request.prompt_tokens
    if request.model.wire != "2026":
        return usage_json(prompt, completion, details=order != "async")
    cached = {"cached_tokens": request.cached_tokens}
    thought = {"reasoning_tokens": reasoning}
    if order == "stream":
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": cached, "completion_tokens_details": thought}
    return {"completion_tokens": completion, "completion_tokens_details": thought, "prompt_tokens": prompt,
            "prompt_tokens_details": cached, "total_tokens": prompt + completion}


def chat_body(request: ChatRequest, outcome: Outcome, ident: str, created: int) -> dict[str, Any]:
    """The sync response; keys sorted as the captures have them, ``object`` and ``web_search`` when due."""
    body: dict[str, Any] = {
        "choices": [{"finish_reason": outcome.finish_reason, "index": 0, "message": chat_message(request.model, outcome)}],
        "created": created,
        "id": ident,
        "model": request.model.name,
    }
    if request.model.wire == "2026":
        body["object"] = "chat.completion"
    body["request_id"] = request.request_id or ident
    body["usage"] = usage_for(request, outcome.completion_tokens, outcome.reasoning_tokens)
    if request.search_results:
        body["web_search"] = list(request.search_results)
    return body


def tool_calls_json(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """``tool_calls`` as the API lists them (with ``index``, which the SDK's stream parser needs)."""
    return [
        {"id": c.id, "index": i, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for i, c in enumerate(calls)
    ]


def chat_message(model: ModelSpec, outcome: Outcome, *, explicit_null_tools: bool = False) -> dict[str, Any]:
    """The assistant ``message``; thinking models send ``"\\n\\n"`` as content beside tool calls."""
    message: dict[str, Any] = {}
    if outcome.tool_calls:
        if model.thinking:
            message["content"] = "\n\n"
    else:
        message["content"] = outcome.content
    if outcome.reasoning:
        message["reasoning_content"] = outcome.reasoning
    message["role"] = "assistant"
    if outcome.tool_calls:
        message["tool_calls"] = tool_calls_json(outcome.tool_calls)
    elif explicit_null_tools:
        message["tool_calls"] = None
    return message
