"""An answer written in an OpenAI-compatible host's dialect: the sync body and the stream plan.

The reply and its shaping (thinking, stop words, max_tokens) are the simulator's usual ones;
this module only decides the keys and chunks each host sends (zhipu-api-2026.md §2.3, §8):

* the reasoning field, ``reasoning_content`` or ``reasoning`` (:mod:`glmeval.catalogue.dialects`),
  with OpenRouter's ``reasoning_details`` beside it and ``content: ""`` on its reasoning deltas;
* OpenAI's chunk shape (``object: chat.completion.chunk``, ``choices[0].delta``,
  ``finish_reason`` null until the end) with each host's extras: OpenRouter's
  ``native_finish_reason``, top-level ``provider`` and ``: OPENROUTER PROCESSING`` comments
  (CAP-OR), the opening role-only delta of vLLM, SGLang and DashScope;
* where usage goes: on the finishing chunk (Zhipu, OpenRouter), or in a chunk of its own with
  ``choices: []`` and only when ``stream_options.include_usage`` asked (vLLM, SGLang, DashScope).

Zhipu's dialect on /v1 is its v4 wire, so it reuses :mod:`.bodies`' exact shapes. Stream pacing
follows :mod:`.sse`: reasoning one token per chunk, content grouped to ``max_chunks``, send
times spread between the first-token and the total latency.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from glmeval.catalogue.dialects import SPECS, Dialect, DialectSpec
from glmeval.catalogue.tokens import count_tokens, split_tokens

from .bodies import Outcome, chat_body, dumps, new_id, tool_calls_json, usage_for
from .protocol import ChatRequest
from .sse import Timeline

__all__ = ["OpenAIWire", "wire_for"]

_UPSTREAM: Final = "Z.AI"  # OpenRouter names the upstream provider on every chunk (CAP-OR)
_PROCESSING: Final = b": OPENROUTER PROCESSING\n\n"


def _ident(dialect: Dialect) -> str:
    """A completion id shaped like the host's: Zhipu's timestamp + hex, OpenRouter's ``gen-``, OpenAI's ``chatcmpl-``."""
    if dialect == "zhipu":
        return new_id()
    if dialect == "openrouter":
        return f"gen-{int(time.time())}-{secrets.token_urlsafe(15)[:20]}"
    return "chatcmpl-" + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class OpenAIWire:
    """How one /v1 request is answered: its dialect, the model name as sent (echoed back),
    whether the stream should carry usage, and the completion id."""

    dialect: Dialect
    model: str
    include_usage: bool
    ident: str

    @property
    def spec(self) -> DialectSpec:
        return SPECS[self.dialect]

    # ---------------------------------------------------------------- sync

    def body(self, request: ChatRequest, outcome: Outcome, created: int) -> dict[str, Any]:
        """The ``chat.completion`` object."""
        if self.dialect == "zhipu":
            native = chat_body(request, outcome, self.ident, created)
            native["model"] = self.model
            native.setdefault("object", "chat.completion")
            native["usage"] = self.usage(request, outcome.completion_tokens, outcome.reasoning_tokens)
            return native
        message: dict[str, Any] = {"role": "assistant", "content": None if outcome.tool_calls else outcome.content}
        if outcome.reasoning:
            message[self.spec.reasoning_field] = outcome.reasoning
            if self.spec.reasoning_details:
                message["reasoning_details"] = [self._detail(outcome.reasoning)]
        if outcome.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in outcome.tool_calls
            ]
        body: dict[str, Any] = {"id": self.ident, "object": "chat.completion", "created": created, "model": self.model}
        if self.dialect == "openrouter":
            body["provider"] = _UPSTREAM
        body["choices"] = [{"index": 0, "message": message, "finish_reason": outcome.finish_reason, "logprobs": None}]
        body["usage"] = self.usage(request, outcome.completion_tokens, outcome.reasoning_tokens)
        return body

    def usage(self, request: ChatRequest, completion: int, reasoning: int) -> dict[str, Any]:
        """OpenAI's usage object, reasoning tokens inside the completion tokens (Zhipu's key order for Zhipu)."""
        if self.dialect == "zhipu" and request.model.wire == "2026":
            return usage_for(request, completion, reasoning, order="stream")
        prompt = request.prompt_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": request.cached_tokens},
                "completion_tokens_details": {"reasoning_tokens": reasoning}}

    @staticmethod
    def _detail(text: str) -> dict[str, Any]:
        return {"type": "reasoning.text", "text": text, "format": "unknown", "index": 0}

    # ---------------------------------------------------------------- stream

    def _chunk(self, created: int, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        payload: dict[str, Any] = {"id": self.ident, "object": "chat.completion.chunk", "created": created,
                                   "model": self.model}
        if self.dialect == "openrouter":
            payload["provider"] = _UPSTREAM
        payload["choices"] = choices
        if usage is not None:
            payload["usage"] = usage
        return b"data: " + dumps(payload) + b"\n\n"

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if self.dialect != "zhipu" or finish is not None:
            choice["finish_reason"] = finish
        if self.dialect == "openrouter":
            choice["native_finish_reason"] = finish
        elif self.dialect in ("vllm", "sglang"):
            choice["logprobs"] = None
        return choice

    def _reasoning_delta(self, piece: str) -> dict[str, Any]:
        field = self.spec.reasoning_field
        if self.dialect == "zhipu":
            return {"role": "assistant", field: piece}
        if self.spec.reasoning_details:
            return {"content": "", "role": "assistant", field: piece, "reasoning_details": [self._detail(piece)]}
        return {field: piece}

    def _content_delta(self, piece: str) -> dict[str, Any]:
        if self.dialect in ("zhipu", "openrouter"):
            return {"role": "assistant", "content": piece}
        return {"content": piece}

    def _calls_delta(self, outcome: Outcome) -> dict[str, Any]:
        calls = tool_calls_json(outcome.tool_calls)
        return {"content": None, "role": "assistant", "tool_calls": calls} if self.dialect == "openrouter" else {"tool_calls": calls}

    def timeline(
        self,
        request: ChatRequest,
        outcome: Outcome,
        created: int,
        first_at: float,
        end_at: float,
        fault: str | None,
        max_chunks: int,
    ) -> tuple[Timeline, bool]:
        """The stream's events with their send times, and whether it completes (False: cut,
        no ``[DONE]``, the connection closes). ``content_filter`` stops halfway with the
        host's finish reason (Zhipu ``sensitive``, OpenAI's ``content_filter``)."""
        reasoning = split_tokens(outcome.reasoning or "")
        text = "\n\n" if outcome.tool_calls and self.dialect == "zhipu" and request.model.thinking else (
            "" if outcome.tool_calls else outcome.content or "")
        content = split_tokens(text)
        steps = len(reasoning) + len(content) + (1 if outcome.tool_calls else 0)
        span = end_at - first_at

        def at(position: int) -> float:
            return first_at + span * position / steps if steps else first_at

        plan: Timeline = []
        if self.spec.role_chunk:
            plan.append((first_at, self._chunk(created, [self._choice({"role": "assistant", "content": ""})]), 0))
        for i, piece in enumerate(reasoning):
            plan.append((at(i), self._chunk(created, [self._choice(self._reasoning_delta(piece))]), count_tokens(piece)))
        group = max(1, -(-len(content) // max_chunks)) if max_chunks > 0 else 1
        for start in range(0, len(content), group):
            piece = "".join(content[start:start + group])
            plan.append((at(len(reasoning) + start), self._chunk(created, [self._choice(self._content_delta(piece))]),
                         count_tokens(piece)))
        if outcome.tool_calls:
            plan.append((at(steps - 1), self._chunk(created, [self._choice(self._calls_delta(outcome))]), 0))
        finish, completion, thought = outcome.finish_reason, outcome.completion_tokens, outcome.reasoning_tokens
        if fault == "content_filter" and not outcome.tool_calls:
            plan = plan[: len(plan) // 2]
            completion = sum(tokens for _, _, tokens in plan)
            thought = min(completion, outcome.reasoning_tokens)
            finish = "sensitive" if self.dialect == "zhipu" else "content_filter"
            end_at = plan[-1][0] if plan else first_at
        plan += [(end_at, event, 0) for event in self._closing(request, created, finish, completion, thought)]
        if self.dialect == "openrouter":
            plan[0] = (plan[0][0], _PROCESSING + plan[0][1], plan[0][2])
        if fault == "cut_stream":
            return plan[: max(1, (len(plan) - 1) // 2)], False
        return plan, True

    def _closing(self, request: ChatRequest, created: int, finish: str, completion: int, thought: int) -> list[bytes]:
        """The finishing chunk(s): finish_reason, and usage where the dialect puts it."""
        usage = self.usage(request, completion, thought)
        if self.dialect == "zhipu":
            return [self._chunk(created, [self._choice({"role": "assistant", "content": ""}, finish)], usage)]
        if self.dialect == "openrouter":
            # CAP-OR: a finishing chunk, then the same finish again carrying the usage.
            return [self._chunk(created, [self._choice({"content": "", "role": "assistant", "reasoning": None}, finish)]),
                    self._chunk(created, [self._choice({"content": "", "role": "assistant"}, finish)], usage)]
        events = [self._chunk(created, [self._choice({"content": ""}, finish)])]
        if self.include_usage or not self.spec.usage_needs_include:
            events.append(self._chunk(created, [], usage))
        return events


def wire_for(body: Mapping[str, Any], dialect: Dialect) -> OpenAIWire:
    """The wire of one /v1 request, from its body as sent (before :func:`.openai_compat.to_zhipu_body`)."""
    options = body.get("stream_options")
    include = isinstance(options, Mapping) and options.get("include_usage") is True
    model = body.get("model")
    return OpenAIWire(dialect, model if isinstance(model, str) else "", include, _ident(dialect))
