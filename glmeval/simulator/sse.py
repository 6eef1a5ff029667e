"""SSE streaming: a chat answer as timed ``data:`` events, built before anything is sent.

The handler only writes what this module plans: each event carries its send time (monotonic
seconds) so the stream keeps the model's latency shape (first token at ``first_at``, then one
token per chunk at the model's pace until ``end_at``), and the stream faults
(``content_filter`` halfway, a ``cut_stream`` connection drop, a ``cut_json`` frame cut
mid-JSON) are decided here as edits to the plan.

The 2026 wire (thinking models, zhipu-api-2026.md §2.3) is strict about order and keys: every
reasoning delta first (``role`` + ``reasoning_content`` only, one token each, paced at the
model's speed so the first reasoning token arrives before the first answer token), then the
content deltas (``role`` + ``content`` only), then one ``tool_calls`` delta without ``role``,
then the final chunk ``delta: {role, content: ""}`` with ``finish_reason`` and ``usage``; every
chunk has ``"object": "chat.completion.chunk"``. The 2024 wire keeps its old shape (no
``object``; a tool call's chunk carries ``finish_reason``, zhipu-api.md §1.5).

Content goes one token per chunk by default (``max_chunks`` 0), as the real API (733 chunks
for 734 tokens in a 2026 capture, §9). A load test may group content into at most
``max_chunks`` chunks: the zhipuai SDK spends ~2 ms of CPU per chunk, which would make
thousands of SDK-driven streams CPU-bound on the client. Reasoning always goes one token per
chunk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from glmeval.catalogue.tokens import count_tokens, split_tokens

from .bodies import Outcome, tool_calls_json, usage_for
from .protocol import ChatRequest

__all__ = ["Timeline", "stream_timeline"]

Timeline = list[tuple[float, bytes, int]]
"""(send at, event bytes, content tokens in it) in send order."""

DeltaFn = Callable[[str, str], bytes]


class _Events:
    """Builds the ``data:`` lines of one stream; the first one built carries the ``web_search`` array."""

    def __init__(self, request: ChatRequest, ident: str, created: int) -> None:
        modern = request.model.wire == "2026"
        self.modern = modern
        obj = ',"object":"chat.completion.chunk"' if modern else ""
        self.prefix = '{"id":%s,"created":%d%s,"model":%s,"choices":[{"index":0,' % (
            json.dumps(ident), created, obj, json.dumps(request.model.name, ensure_ascii=False)
        )
        # Where the real API puts web_search in a stream is not in any capture [unconfirmed]:
        # on the first chunk, where a client reading the stream sees it before the answer.
        self.search = _compact(list(request.search_results)) if request.search_results else None

    def event(self, choice: str, usage: dict[str, Any] | None = None) -> bytes:
        tail = "}]"
        if usage is not None:
            tail += ',"usage":' + (_compact(usage) if self.modern else json.dumps(usage))
        if self.search is not None:
            tail += ',"web_search":' + self.search
            self.search = None
        return ("data: " + self.prefix + choice + tail + "}\n\n").encode("utf-8")

    def delta(self, field: str, text: str) -> bytes:
        return self.event('"delta":{"role":"assistant","%s":%s}' % (field, json.dumps(text, ensure_ascii=False)))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
    events = _Events(request, ident, created)

    def final(reason: str, tokens: int, reasoning: int) -> bytes:
        return events.event(
            '"finish_reason":"%s","delta":{"role":"assistant","content":""}' % reason,
            usage_for(request, tokens, reasoning, order="stream"),
        )

    if events.modern:
        timeline = _timeline_2026(request, outcome, events, first_at, end_at, max_chunks)
    else:
        timeline = _timeline_2024(outcome, events, first_at, end_at, max_chunks)
    if outcome.tool_calls:
        timeline.append((end_at, final("tool_calls", outcome.completion_tokens, outcome.reasoning_tokens), 0))
    elif fault == "content_filter":
        timeline = timeline[: len(timeline) // 2]
        sent = sum(tokens for _, _, tokens in timeline)
        at = timeline[-1][0] if timeline else first_at
        timeline.append((at, final("sensitive", sent, min(sent, outcome.reasoning_tokens)), 0))
    else:
        timeline.append((end_at, final(outcome.finish_reason, outcome.completion_tokens, outcome.reasoning_tokens), 0))
    if fault == "cut_stream":
        return timeline[: max(1, (len(timeline) - 1) // 2)], False
    if fault == "cut_json":
        return _cut_mid_json(timeline), False
    return timeline, True


def _cut_mid_json(timeline: Timeline) -> Timeline:
    """The 2026 api.z.ai defect (zhipu-api-2026.md §5): halfway through, one chunk's JSON
    stops mid-object and the next ``data:`` frame follows on the same line
    (``{"id":…,"object":"chat.cdata: {"id":…``); nothing after it (the connection closes)."""
    half = max(0, (len(timeline) - 1) // 2)
    at, event, _ = timeline[half]
    text = event.decode("utf-8")
    json_start = len("data: ")
    cut = json_start + max(1, (len(text.rstrip()) - json_start) // 2)
    following = timeline[half + 1][1] if half + 1 < len(timeline) else event
    return timeline[:half] + [(at, text[:cut].encode("utf-8") + following, 0)]


def _timeline_2024(outcome: Outcome, events: _Events, first_at: float, end_at: float, max_chunks: int) -> Timeline:
    """Content spread evenly to ``end_at``; a tool call whole, with ``finish_reason``, at the first token."""
    if outcome.tool_calls:
        calls = json.dumps(tool_calls_json(outcome.tool_calls), ensure_ascii=False)
        pieces = [("reasoning_content", p) for p in split_tokens(outcome.reasoning or "")]
        timeline = _chunks(pieces, first_at, first_at, events.delta, max_chunks)
        timeline.append((first_at, events.event('"finish_reason":"tool_calls","delta":{"tool_calls":%s}' % calls), 0))
        return timeline
    pieces = [("reasoning_content", p) for p in split_tokens(outcome.reasoning or "")]
    pieces += [("content", p) for p in split_tokens(outcome.content or "")]
    return _chunks(pieces, first_at, end_at, events.delta, max_chunks)


def _timeline_2026(
    request: ChatRequest, outcome: Outcome, events: _Events, first_at: float, end_at: float, max_chunks: int
) -> Timeline:
    """Reasoning one token per chunk, then content (grouped to ``max_chunks``), then the tool call.

    Send times follow token positions between ``first_at`` and ``end_at`` (the sync latency),
    so the first answer token lands ``reasoning_tokens`` token-times after the first reasoning one.
    """
    reasoning = split_tokens(outcome.reasoning or "")
    # Beside a tool call a thinking model's content is "\n\n" (the sync message has it too).
    content = split_tokens("\n\n" if outcome.tool_calls else outcome.content or "")
    steps = len(reasoning) + len(content) + (1 if outcome.tool_calls else 0)
    span = end_at - first_at

    def at(position: int) -> float:
        return first_at + span * position / steps if steps else first_at

    timeline: Timeline = [
        (at(i), events.delta("reasoning_content", piece), count_tokens(piece)) for i, piece in enumerate(reasoning)
    ]
    group = max(1, -(-len(content) // max_chunks)) if max_chunks > 0 else 1
    for start in range(0, len(content), group):
        text = "".join(content[start:start + group])
        timeline.append((at(len(reasoning) + start), events.delta("content", text), count_tokens(text)))
    if outcome.tool_calls:
        calls = _compact(tool_calls_json(outcome.tool_calls))
        timeline.append((at(steps - 1), events.event('"delta":{"tool_calls":%s}' % calls), 0))
    return timeline


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
    group = max(1, -(-len(pieces) // max_chunks)) if max_chunks > 0 else 1
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
