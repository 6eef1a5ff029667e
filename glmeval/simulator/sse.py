"""SSE streaming: a chat answer as timed ``data:`` events, built before anything is sent.

The handler only writes what this module plans: each event carries its send time (monotonic
seconds) so the stream keeps the model's latency shape (first token at ``first_at``, the last
content just before ``end_at``), and the stream faults (``content_filter`` halfway, a
``cut_stream`` connection drop) are decided here as edits to the plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from glmeval.catalogue.tokens import count_tokens, split_tokens

from .bodies import Outcome, tool_calls_json, usage_json
from .protocol import ChatRequest

__all__ = ["Timeline", "stream_timeline"]

Timeline = list[tuple[float, bytes, int]]
"""(send at, event bytes, content tokens in it) in send order."""

DeltaFn = Callable[[str, str], bytes]


def stream_timeline(
    request: ChatRequest,
    outcome: Outcome,
    ident: str,
    created: int,
    first_at: float,
    end_at: float,
    fault: str | None,
    max_chunks: int,
) -> tuple[Timeline, bool]:
    """The events of one stream and whether it completes (False: cut, no ``[DONE]``, connection closes)."""
    prefix = '{"id":%s,"created":%d,"model":%s,"choices":[{"index":0,' % (
        json.dumps(ident), created, json.dumps(request.model.name, ensure_ascii=False)
    )

    def event(choice: str, usage: dict[str, Any] | None = None) -> bytes:
        tail = "}]" + (',"usage":' + json.dumps(usage) if usage is not None else "") + "}"
        return ("data: " + prefix + choice + tail + "\n\n").encode("utf-8")

    def delta(field: str, text: str) -> bytes:
        return event('"delta":{"role":"assistant","%s":%s}' % (field, json.dumps(text, ensure_ascii=False)))

    def final(reason: str, tokens: int) -> bytes:
        return event(
            '"finish_reason":"%s","delta":{"role":"assistant","content":""}' % reason,
            usage_json(request.prompt_tokens, tokens),
        )

    timeline: Timeline
    if outcome.tool_calls:
        calls = json.dumps(tool_calls_json(outcome.tool_calls), ensure_ascii=False)
        pieces = [("reasoning_content", p) for p in split_tokens(outcome.reasoning or "")]
        timeline = _chunks(pieces, first_at, first_at, delta, max_chunks)
        timeline.append((first_at, event('"finish_reason":"tool_calls","delta":{"tool_calls":%s}' % calls), 0))
        timeline.append((end_at, final("tool_calls", outcome.completion_tokens), 0))
    else:
        pieces = [("reasoning_content", p) for p in split_tokens(outcome.reasoning or "")]
        pieces += [("content", p) for p in split_tokens(outcome.content or "")]
        timeline = _chunks(pieces, first_at, end_at, delta, max_chunks)
        if fault == "content_filter":
            timeline = timeline[: len(timeline) // 2]
            sent = sum(tokens for _, _, tokens in timeline)
            timeline.append((timeline[-1][0] if timeline else first_at, final("sensitive", sent), 0))
        else:
            timeline.append((end_at, final(outcome.finish_reason, outcome.completion_tokens), 0))
    if fault == "cut_stream":
        return timeline[: max(1, (len(timeline) - 1) // 2)], False
    return timeline, True


def _chunks(
    pieces: list[tuple[str, str]],
    first_at: float,
    end_at: float,
    delta: DeltaFn,
    max_chunks: int,
) -> Timeline:
    """Group token pieces into chunks and give each its send time.

    The first chunk goes out at ``first_at``; later ones are spaced by the tokens before
    them so the last content arrives just before ``end_at``, the sync latency.
    """
    if not pieces:
        return []
    group = max(1, -(-len(pieces) // max(1, max_chunks)))
    span = end_at - first_at
    timeline: Timeline = []
    for start in range(0, len(pieces), group):
        batch = pieces[start:start + group]
        at = first_at + span * start / len(pieces)
        field = batch[0][0]
        text = ""
        for kind, piece in batch:
            if kind != field:
                timeline.append((at, delta(field, text), count_tokens(text)))
                field, text = kind, ""
            text += piece
        timeline.append((at, delta(field, text), count_tokens(text)))
    return timeline
