"""What every transport shares: reading a response or a stream into a :class:`Completion`.

The SDKs' response types differ and lag the wire (zhipuai's sync usage has no ``*_details``,
openai's types know no ``reasoning_content``), so fields are read by name from the SDK object,
its ``model_extra`` or a plain dict, and the reasoning from whichever field the host sends:
``reasoning_content`` (Zhipu, DashScope, SGLang), ``reasoning`` (vLLM, OpenRouter), or
OpenRouter's ``reasoning_details`` when neither is there. Every provider's answer thus lands
in the same Completion fields.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from glmeval.catalogue.tokens import count_tokens
from glmeval.records import Completion, ErrorInfo, ToolCall
from glmeval.run.callerrors import CallError

__all__ = ["call_args", "from_response", "raw_args", "read_stream", "reasoning_of", "response_body", "sync_call"]

RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
"""The switch zhipuai, zai-sdk and openai share (openai's ``with_raw_response`` sets it): the
SDK still builds, sends and checks the call and raises its own errors for a bad status, but
hands back the HTTP response instead of building its pydantic model of the body. That model
costs about a tenth of a run's CPU (zhipuai makes a ``TypeAdapter`` per optional field per
response) and lags the wire anyway; :func:`from_response` reads the JSON the server sent."""

REASONING_FIELDS = ("reasoning_content", "reasoning")


def get(obj: Any, name: str) -> Any:
    """A field of an SDK object, of a plain dict, or one the SDK's type does not declare."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "model_extra", None)
        if isinstance(extra, Mapping):
            value = extra.get(name)
    return value


def text_of(obj: Any, *names: str) -> str:
    """The first of ``names`` that holds a non-empty string (``""`` if none does)."""
    for name in names:
        value = get(obj, name)
        if isinstance(value, str) and value:
            return value
    return ""


def reasoning_of(obj: Any) -> str:
    """A message's or delta's reasoning: the plain field, else the text of OpenRouter's
    ``reasoning_details`` entries (``reasoning.text`` / ``reasoning.summary``)."""
    plain = text_of(obj, *REASONING_FIELDS)
    if plain:
        return plain
    details = get(obj, "reasoning_details")
    if not isinstance(details, list):
        return ""
    parts = []
    for item in details:
        for key in ("text", "summary"):
            value = get(item, key)
            if isinstance(value, str) and value:
                parts.append(value)
                break
    return "".join(parts)


def _as_dict(item: Any) -> dict[str, Any] | None:
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    return dump() if callable(dump) else None


def web_search(resp: Any) -> list[dict[str, Any]]:
    """The response's top-level ``web_search`` results, as plain dicts."""
    raw = get(resp, "web_search")
    if not isinstance(raw, list):
        return []
    return [d for d in (_as_dict(item) for item in raw) if d is not None]


def tool_calls(raw: Any) -> list[ToolCall]:
    calls = []
    for call in raw or []:
        fn = get(call, "function")
        if fn is None:
            continue
        args = get(fn, "arguments")
        if not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        calls.append(ToolCall(name=get(fn, "name"), arguments=args, id=get(call, "id"), type=get(call, "type") or "function"))
    return calls


def stream_tool_calls(calls: list[ToolCall], by_index: dict[int, ToolCall], raw: Any) -> bool:
    """Add one delta's tool calls to ``calls``; True when the delta carried any.

    Without ``tool_stream`` each call arrives whole in one delta. With it (and on OpenAI-style
    hosts), a call's later deltas carry only its ``index`` and a fragment of the arguments (no
    name, no new id): those are appended to the call opened at that index.
    """
    seen = False
    for call in raw or []:
        fn = get(call, "function")
        if fn is None:
            continue
        seen = True
        index = get(call, "index")
        call_id = get(call, "id")
        name = get(fn, "name")
        args = get(fn, "arguments")
        if args is not None and not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        open_call = by_index.get(index) if index is not None else None
        if open_call is not None and not name and call_id in (None, open_call.id):
            open_call.arguments += args or ""
            continue
        made = ToolCall(name=name or "", arguments=args or "", id=call_id, type=get(call, "type") or "function")
        calls.append(made)
        if index is not None:
            by_index[index] = made
    return seen


def usage_into(completion: Completion, usage: Any) -> None:
    """Token counts from a ``usage`` block, with its reasoning and cache-hit details.

    ``completion_tokens`` *includes* ``completion_tokens_details.reasoning_tokens`` on the
    wire (89 = 61 reasoning + 28 visible in the 2026 captures), which is how cost counts
    reasoning as output. A block whose reasoning tokens exceed its completion tokens cannot
    include them; such a count (never seen) gets them added, once, so completion_tokens means
    the same thing everywhere and cost neither drops nor double counts them.
    """
    if usage is None:
        return
    completion.prompt_tokens = int(get(usage, "prompt_tokens") or 0)
    completion.completion_tokens = int(get(usage, "completion_tokens") or 0)
    total = int(get(usage, "total_tokens") or 0)
    reasoning = get(get(usage, "completion_tokens_details"), "reasoning_tokens")
    if reasoning is not None:
        completion.reasoning_tokens = int(reasoning)
        completion.reasoning_estimated = False
        if completion.reasoning_tokens > completion.completion_tokens:
            if total == completion.prompt_tokens + completion.completion_tokens:
                total += completion.reasoning_tokens
            completion.completion_tokens += completion.reasoning_tokens
    cached = get(get(usage, "prompt_tokens_details"), "cached_tokens")
    if cached is not None:
        completion.cached_tokens = int(cached)
    completion.total_tokens = total or (completion.prompt_tokens + completion.completion_tokens)


def settle_reasoning(completion: Completion) -> None:
    """``reasoning_tokens`` once the whole answer is read: the API's count, else an estimate
    from the reasoning text (marked ``reasoning_estimated``; never more than the completion
    tokens it is part of), else 0: there was no reasoning."""
    if completion.reasoning_tokens is not None:
        return
    if not completion.reasoning:
        completion.reasoning_tokens = 0
        return
    estimate = count_tokens(completion.reasoning)
    if completion.completion_tokens > 0:
        estimate = min(estimate, completion.completion_tokens)
    completion.reasoning_tokens = estimate
    completion.reasoning_estimated = True


@functools.lru_cache(maxsize=16)
def _keywords(create: Callable[..., Any]) -> frozenset[str]:
    """The keyword arguments an SDK ``create()`` takes (besides model, messages, extra_body)."""
    return frozenset(inspect.signature(create).parameters) - {"self", "model", "messages", "extra_body"}


def call_args(create: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as keyword arguments for ``create``: what its signature takes goes as is,
    the rest (``reasoning_effort``, ``tool_stream``, ``thinking`` for openai...: parameters an
    SDK's ``create()`` has no argument for and would refuse with a TypeError) goes in
    ``extra_body``, merged into the request body. ``stream`` is left out: the call mode decides it."""
    known = _keywords(getattr(create, "__func__", create))
    args: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or key == "stream":
            continue
        if key == "extra_body" and isinstance(value, Mapping):
            extra.update(value)
        elif key in known:
            args[key] = value
        else:
            extra[key] = value
    if extra:
        args["extra_body"] = extra
    return args


def raw_args(args: dict[str, Any]) -> dict[str, Any]:
    """``create()`` keyword arguments asking for the raw response (:data:`RAW_RESPONSE_HEADER`)."""
    headers = args.get("extra_headers")
    args["extra_headers"] = {**(headers if isinstance(headers, Mapping) else {}), RAW_RESPONSE_HEADER: "true"}
    return args


def response_body(resp: Any) -> Any:
    """The JSON body of a raw response (its text when it is not JSON); an SDK object as it came
    when the SDK parsed it anyway (one that does not know the switch)."""
    http = getattr(resp, "http_response", None)
    if http is None:
        return resp
    try:
        return http.json()
    except ValueError:
        return http.text


def sync_call(create: Callable[..., Any], model: str, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> Completion:
    """One sync ``create()`` of any SDK, asked for the raw response, read into a Completion."""
    return from_response(response_body(create(model=model, messages=messages, **raw_args(call_args(create, params)))))


def from_response(resp: Any) -> Completion:
    """A whole (sync or async-result) response as a Completion."""
    if isinstance(resp, str):
        raise CallError(ErrorInfo("server", f"unexpected non-JSON response: {resp[:200]}"))
    completion = Completion(request_id=get(resp, "request_id") or get(resp, "id"), model=get(resp, "model"))
    choices = get(resp, "choices") or []
    if choices:
        choice = choices[0]
        message = get(choice, "message")
        completion.text = text_of(message, "content")
        completion.reasoning = reasoning_of(message)
        completion.tool_calls = tool_calls(get(message, "tool_calls"))
        completion.finish_reason = get(choice, "finish_reason")
    usage_into(completion, get(resp, "usage"))
    completion.web_search = web_search(resp)
    settle_reasoning(completion)
    return completion


def _frames(stream: Iterable[Any]) -> Iterator[Any]:
    """The stream's chunks; a frame cut mid-JSON (the connection dropped inside an event, as
    api.z.ai does under load: zhipu-api-2026.md §5) is a cut stream, retried like one, not an
    unknown error the SDK's decoder happened to raise."""
    frames = iter(stream)
    while True:
        try:
            chunk = next(frames)
        except StopIteration:
            return
        except json.JSONDecodeError as exc:
            raise CallError(ErrorInfo("stream_cut", f"stream cut inside an event ({exc.msg})")) from None
        yield chunk


def read_stream(stream: Iterable[Any], start: float, timeout: float) -> Completion:
    """Assemble a stream: answer and reasoning deltas apart, and when each began.

    ``ttft_ms`` is the first *answer* delta (content or a tool call), ``ttfr_ms`` the first
    reasoning delta; a thinking model sends all its reasoning first, so its TTFT includes
    the thinking. A stream with neither (an empty answer) keeps TTFT at its first chunk, as
    it always was for models that do not think. A usage-only chunk with no choices (DashScope,
    OpenAI's ``include_usage``) may follow the one with the finish reason.
    """
    completion = Completion()
    parts: list[str] = []
    thoughts: list[str] = []
    by_index: dict[int, ToolCall] = {}
    first_chunk: float | None = None
    deadline = start + timeout
    for chunk in _frames(stream):
        now = time.perf_counter()
        if now > deadline:
            # httpx's read timeout bounds each read, not the whole stream: a server that
            # trickles chunks forever would otherwise never time out.
            raise CallError(ErrorInfo("timeout", f"the stream ran past the {timeout:g} s call timeout"))
        first_chunk = first_chunk if first_chunk is not None else now
        completion.request_id = completion.request_id or get(chunk, "id")
        completion.model = completion.model or get(chunk, "model")
        for choice in get(chunk, "choices") or []:
            delta = get(choice, "delta")
            if delta is not None:
                thought = reasoning_of(delta)
                if thought:
                    thoughts.append(thought)
                    if completion.ttfr_ms is None:
                        completion.ttfr_ms = (now - start) * 1000
                content = text_of(delta, "content")
                if content:
                    parts.append(content)
                called = stream_tool_calls(completion.tool_calls, by_index, get(delta, "tool_calls"))
                if (content or called) and completion.ttft_ms is None:
                    completion.ttft_ms = (now - start) * 1000
            if get(choice, "finish_reason"):
                completion.finish_reason = get(choice, "finish_reason")
        usage_into(completion, get(chunk, "usage"))
        if not completion.web_search:
            completion.web_search = web_search(chunk)
    if first_chunk is None:
        raise CallError(ErrorInfo("server", "the stream ended without any chunk"))
    if completion.finish_reason is None:
        raise CallError(ErrorInfo("stream_cut", "the stream ended before its final chunk (no finish_reason)"))
    if completion.ttft_ms is None and completion.ttfr_ms is None:
        completion.ttft_ms = (first_chunk - start) * 1000
    completion.text = "".join(parts)
    completion.reasoning = "".join(thoughts)
    settle_reasoning(completion)
    return completion
