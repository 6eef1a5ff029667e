"""The one wrapper around the official ``zhipuai`` SDK.

It makes a single attempt of a call in ``sync``, ``stream`` or ``async`` mode and turns
whatever happened into a :class:`Completion`: the answer with its usage and timing, or an
:class:`ErrorInfo` that the runner's retry policy can act on. The SDK's own retries are off
(``max_retries=0``): glmeval owns retries so it can count attempts, honour ``Retry-After`` and
stop at once on a bad key or an empty balance. The API key never appears in any message.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from glmeval.catalogue.tokens import count_tokens
from glmeval.errors import GlmevalError
from glmeval.records import Completion, ErrorInfo, ErrorKind, Mode, ToolCall

DEFAULT_BASE_URL = "https://open.bigmodel.cn/api/paas/v4"
KEY_VARS = ("ZHIPUAI_API_KEY", "ZHIPU_API_KEY")

# Retryable error kinds; everything else is final for the job (or the whole run: FATAL_KINDS).
RETRYABLE_KINDS: frozenset[ErrorKind] = frozenset({"rate_limit", "server", "timeout", "connection", "stream_cut"})
FATAL_KINDS: frozenset[ErrorKind] = frozenset({"auth", "balance"})


def find_api_key() -> str | None:
    """The key from the environment, surrounding whitespace removed (a key pasted from a file
    or a CI secret often ends in a line break, which an HTTP header cannot carry)."""
    for name in KEY_VARS:
        value = os.environ.get(name)
        if value and value.strip():
            return value.strip()
    return None


def endpoint_namespace(base_url: str | None) -> str:
    """The response-cache namespace of an endpoint: "" for the official API, else its URL."""
    url = (base_url or os.environ.get("ZHIPUAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return "" if url == DEFAULT_BASE_URL else f"url:{url}"


def check_api_key(key: str, where: str = "the API key") -> str:
    """The key, stripped; a GlmevalError (that never quotes the key) when it cannot be sent.

    httpx rejects a header with a control or non-ASCII character and puts the whole header,
    key included, into its error message; refusing such a key up front keeps it out of every
    message, log and stored error.
    """
    key = key.strip()
    if not key:
        raise GlmevalError(f"{where} is empty; set ZHIPUAI_API_KEY, or pass --local")
    bad = next((c for c in key if not (33 <= ord(c) <= 126)), None)
    if bad is not None:
        kind = "a space" if bad == " " else "a control character" if ord(bad) < 32 or ord(bad) == 127 else "a non-ASCII character"
        raise GlmevalError(
            f"{where} contains {kind}, which an HTTP header cannot carry; copy the key again (id.secret, ASCII only)"
        )
    return key


def redact(text: str, secret: str | None) -> str:
    """Remove the key (and its halves) from any text that may reach a user or the store,
    also where it appears escaped (as in a repr of the header bytes)."""
    if not secret:
        return text
    for part in sorted({secret, secret.strip(), *secret.strip().split(".")}, key=len, reverse=True):
        if len(part) >= 6:
            for form in (part, repr(part)[1:-1], part.encode("unicode_escape").decode("ascii", "replace")):
                text = text.replace(form, "***")
    return text


@dataclass
class CallError(Exception):
    """Raised inside one attempt; carries the classified error and the server's Retry-After.

    ``retryable`` overrides the kind's default (:data:`RETRYABLE_KINDS`) where the kind alone
    does not decide: an async task that failed on a server error is worth resubmitting, an
    async task that never finished within the poll timeout is not (it already waited long).
    """

    info: ErrorInfo
    retry_after: float | None = None
    retryable: bool | None = None

    @property
    def should_retry(self) -> bool:
        """Whether another attempt may succeed (fatal kinds never)."""
        if self.info.kind in FATAL_KINDS:
            return False
        return self.retryable if self.retryable is not None else self.info.kind in RETRYABLE_KINDS


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def classify(exc: BaseException, secret: str | None = None) -> CallError:
    """Map an SDK or httpx exception to an error kind the runner understands."""
    import zhipuai

    if isinstance(exc, CallError):
        return exc
    if isinstance(exc, zhipuai.APIStatusError):
        status = exc.status_code
        code = None
        message = ""
        try:
            body = exc.response.json()
            err = body.get("error", {}) if isinstance(body, dict) else {}
            code = str(err.get("code")) if err.get("code") is not None else None
            message = str(err.get("message", ""))
        except (ValueError, AttributeError):
            message = exc.response.text[:300] if exc.response is not None else str(exc)
        retry_after = _retry_after(exc.response.headers if exc.response is not None else None)
        kind: ErrorKind
        if status == 401:
            kind = "auth"
        elif status == 429 and code == "1113":
            kind = "balance"
        elif status == 429:
            kind = "rate_limit"
        elif status >= 500:
            kind = "server"
        elif code == "1301":
            kind = "content_filter"
        else:
            kind = "bad_request"
        return CallError(ErrorInfo(kind, redact(message or f"HTTP {status}", secret), status, code), retry_after)
    if isinstance(exc, zhipuai.APITimeoutError) or isinstance(exc, httpx.TimeoutException):
        return CallError(ErrorInfo("timeout", "the call timed out"))
    if isinstance(exc, zhipuai.APIConnectionError):
        return CallError(ErrorInfo("connection", redact(f"connection error: {exc.__cause__ or exc}", secret)))
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.NetworkError)):
        return CallError(ErrorInfo("stream_cut", redact(f"stream cut: {type(exc).__name__}: {exc}", secret)))
    if isinstance(exc, zhipuai.APIResponseError):
        data = getattr(exc, "json_data", None) or {}
        code = str(data.get("code")) if isinstance(data, dict) and data.get("code") is not None else None
        message = str(data.get("message")) if isinstance(data, dict) and data.get("message") else str(exc)
        return CallError(ErrorInfo("server", redact(f"error in stream: {message}", secret), None, code))
    if isinstance(exc, zhipuai.ZhipuAIError):
        return CallError(ErrorInfo("unknown", redact(str(exc), secret)))
    return CallError(ErrorInfo("unknown", redact(f"{type(exc).__name__}: {exc}", secret)))


def _task_failed(task_id: str, result: Any) -> CallError:
    """An async task that ended in FAIL: a content-filter refusal is final; a server-side
    failure (code 500 or no code) is worth a new task."""
    err = getattr(result, "error", None)
    if err is None and hasattr(result, "model_extra"):
        err = (result.model_extra or {}).get("error")
    code = message = None
    if isinstance(err, dict):
        code = str(err["code"]) if err.get("code") is not None else None
        message = str(err.get("message") or "") or None
    elif err is not None:
        code = str(getattr(err, "code", "") or "") or None
        message = str(getattr(err, "message", "") or "") or None
    text = f"async task {task_id} ended with FAIL" + (f": {message}" if message else "")
    if code == "1301":
        return CallError(ErrorInfo("content_filter", text, None, code))
    return CallError(ErrorInfo("task_failed", text, None, code), retryable=code in (None, "500"))


def _get(obj: Any, name: str) -> Any:
    """A field of an SDK object, of a plain dict, or one the SDK's type does not declare.

    The zhipuai types lag the API (the sync ``CompletionUsage`` has no ``*_details``, no type
    has the top-level ``web_search``); their pydantic models keep unknown fields in
    ``model_extra``, and nested unknown fields arrive there as plain dicts.
    """
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


def _text(obj: Any, *names: str) -> str:
    """The first of ``names`` that holds a non-empty string (``""`` if none does)."""
    for name in names:
        value = _get(obj, name)
        if isinstance(value, str) and value:
            return value
    return ""


# Where a thinking model's reasoning arrives: ``reasoning_content`` on Zhipu's endpoint;
# ``reasoning`` is OpenRouter's name for it (a --base-url may point there).
_REASONING_FIELDS = ("reasoning_content", "reasoning")


def _as_dict(item: Any) -> dict[str, Any] | None:
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    return dump() if callable(dump) else None


def _web_search(resp: Any) -> list[dict[str, Any]]:
    """The response's top-level ``web_search`` results, as plain dicts."""
    raw = _get(resp, "web_search")
    if not isinstance(raw, list):
        return []
    return [d for d in (_as_dict(item) for item in raw) if d is not None]


def _tool_calls(raw: Any) -> list[ToolCall]:
    calls = []
    for call in raw or []:
        fn = getattr(call, "function", None)
        if fn is None:
            continue
        args = fn.arguments
        if not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        calls.append(ToolCall(name=fn.name, arguments=args, id=getattr(call, "id", None), type=getattr(call, "type", "function") or "function"))
    return calls


def _stream_tool_calls(calls: list[ToolCall], by_index: dict[int, ToolCall], raw: Any) -> bool:
    """Add one delta's tool calls to ``calls``; True when the delta carried any.

    Without ``tool_stream`` each call arrives whole in one delta. With it, a call's later
    deltas carry only its ``index`` and a fragment of the arguments (no name, no new id):
    those are appended to the call opened at that index instead of becoming calls of their own.
    """
    seen = False
    for call in raw or []:
        fn = getattr(call, "function", None)
        if fn is None:
            continue
        seen = True
        index = getattr(call, "index", None)
        call_id = getattr(call, "id", None)
        name = getattr(fn, "name", None)
        args = fn.arguments
        if args is not None and not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        open_call = by_index.get(index) if index is not None else None
        if open_call is not None and not name and call_id in (None, open_call.id):
            open_call.arguments += args or ""
            continue
        made = ToolCall(name=name or "", arguments=args or "", id=call_id, type=getattr(call, "type", None) or "function")
        calls.append(made)
        if index is not None:
            by_index[index] = made
    return seen


def _usage(completion: Completion, usage: Any) -> None:
    """Token counts from a ``usage`` block, with its reasoning and cache-hit details.

    ``completion_tokens`` *includes* ``completion_tokens_details.reasoning_tokens`` on the
    wire (89 = 61 reasoning + 28 visible in the 2026 captures), which is how cost counts
    reasoning as output. A block whose reasoning tokens exceed its completion tokens cannot
    include them; such a count (never seen) gets them added, once, so completion_tokens means
    the same thing everywhere and cost neither drops nor double counts them.
    """
    if usage is None:
        return
    completion.prompt_tokens = int(_get(usage, "prompt_tokens") or 0)
    completion.completion_tokens = int(_get(usage, "completion_tokens") or 0)
    total = int(_get(usage, "total_tokens") or 0)
    reasoning = _get(_get(usage, "completion_tokens_details"), "reasoning_tokens")
    if reasoning is not None:
        completion.reasoning_tokens = int(reasoning)
        completion.reasoning_estimated = False
        if completion.reasoning_tokens > completion.completion_tokens:
            if total == completion.prompt_tokens + completion.completion_tokens:
                total += completion.reasoning_tokens
            completion.completion_tokens += completion.reasoning_tokens
    cached = _get(_get(usage, "prompt_tokens_details"), "cached_tokens")
    if cached is not None:
        completion.cached_tokens = int(cached)
    completion.total_tokens = total or (completion.prompt_tokens + completion.completion_tokens)


def _settle_reasoning(completion: Completion) -> None:
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


@functools.lru_cache(maxsize=8)
def _keywords(create: Callable[..., Any]) -> frozenset[str]:
    """The keyword arguments an SDK ``create()`` takes (besides model, messages, extra_body)."""
    return frozenset(inspect.signature(create).parameters) - {"self", "model", "messages", "extra_body"}


def _call_args(create: Callable[..., Any], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as keyword arguments for ``create``: what its signature takes goes as is,
    the rest (``reasoning_effort``, ``tool_stream``... which zhipuai's ``create()`` has no
    argument for and would refuse with a TypeError) goes in ``extra_body``, merged into the
    request body. ``stream`` is left out: the call mode decides it."""
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


class GLMClient:
    """A configured SDK client plus the three ways of calling it.

    One instance is shared by all worker threads: the SDK's httpx client is thread-safe and
    keeps a connection pool, which is what makes high concurrency cheap.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 60.0,
        poll_timeout: float = 300.0,
        poll_interval: float = 0.05,
        max_connections: int = 64,
    ) -> None:
        import zhipuai

        self.base_url = base_url or os.environ.get("ZHIPUAI_BASE_URL") or DEFAULT_BASE_URL
        self.timeout = timeout
        # Answers are cached per endpoint: the official API shares one namespace, any other
        # base URL (a proxy, `glmeval serve`) gets its own, and the session sets "local" for
        # --local, so a simulated answer is never replayed as a real one.
        self.cache_namespace = endpoint_namespace(self.base_url)
        # True once any response carried the local server's X-Glmeval-Simulator header, so a
        # run sent to `glmeval serve` by --base-url is marked simulated like a --local one.
        self.simulated = False
        self.poll_timeout = poll_timeout
        self.poll_interval = poll_interval
        api_key = check_api_key(api_key)
        self._secret = api_key
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.Client(
            limits=limits,
            timeout=httpx.Timeout(timeout, connect=min(8.0, timeout)),
            event_hooks={"response": [self._note_simulator]},
        )
        try:
            self.sdk = zhipuai.ZhipuAI(
                api_key=api_key,
                base_url=self.base_url,
                max_retries=0,
                timeout=httpx.Timeout(timeout, connect=min(8.0, timeout)),
                http_client=self._http,
            )
        except Exception as exc:
            raise GlmevalError(f"cannot create the zhipuai client: {redact(str(exc), api_key)}") from None

    def _note_simulator(self, response: httpx.Response) -> None:
        if not self.simulated and response.headers.get("x-glmeval-simulator") == "1":
            self.simulated = True

    def close(self) -> None:
        self._http.close()

    def attempt(self, model: str, mode: Mode, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        """One attempt. Returns a Completion on success; raises CallError otherwise."""
        start = time.perf_counter()
        try:
            if mode == "stream":
                completion = self._stream(model, messages, params, start)
            elif mode == "async":
                completion = self._async(model, messages, params, start)
            else:
                completion = self._sync(model, messages, params)
        except CallError:
            raise
        except Exception as exc:
            raise classify(exc, self._secret) from None
        completion.latency_ms = (time.perf_counter() - start) * 1000
        completion.model = completion.model or model
        return completion

    def _sync(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        create = self.sdk.chat.completions.create
        resp = create(model=model, messages=messages, **_call_args(create, params))
        return self._from_response(resp)

    def from_body(self, body: Mapping[str, Any]) -> Completion:
        """A chat completion body read from elsewhere (a Batch API output line) as a Completion,
        through the SDK's own response type, exactly as a sync answer is read."""
        from zhipuai.types.chat.chat_completion import Completion as SdkCompletion

        return self._from_response(SdkCompletion.model_validate(dict(body)))

    def _from_response(self, resp: Any) -> Completion:
        if isinstance(resp, str):
            raise CallError(ErrorInfo("server", f"unexpected non-JSON response: {resp[:200]}"))
        completion = Completion(request_id=getattr(resp, "request_id", None) or getattr(resp, "id", None), model=getattr(resp, "model", None))
        choices = getattr(resp, "choices", None) or []
        if choices:
            choice = choices[0]
            message = choice.message
            completion.text = _text(message, "content")
            completion.reasoning = _text(message, *_REASONING_FIELDS)
            completion.tool_calls = _tool_calls(getattr(message, "tool_calls", None))
            completion.finish_reason = choice.finish_reason
        _usage(completion, getattr(resp, "usage", None))
        completion.web_search = _web_search(resp)
        _settle_reasoning(completion)
        return completion

    def _stream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], start: float) -> Completion:
        create = self.sdk.chat.completions.create
        stream = create(model=model, messages=messages, stream=True, **_call_args(create, params))
        try:
            return self._read_stream(stream, start)
        finally:
            # The SDK stops reading at [DONE] and never closes the response; closing it here
            # hands the connection back to the pool at once (and drops a cut one).
            response = getattr(stream, "response", None)
            if response is not None:
                response.close()

    def _read_stream(self, stream: Any, start: float) -> Completion:
        """Assemble a stream: answer and reasoning deltas apart, and when each began.

        ``ttft_ms`` is the first *answer* delta (content or a tool call), ``ttfr_ms`` the first
        reasoning delta; a thinking model sends all its reasoning first, so its TTFT includes
        the thinking. A stream with neither (an empty answer) keeps TTFT at its first chunk, as
        it always was for models that do not think.
        """
        completion = Completion()
        parts: list[str] = []
        thoughts: list[str] = []
        by_index: dict[int, ToolCall] = {}
        first_chunk: float | None = None
        deadline = start + self.timeout
        for chunk in stream:
            now = time.perf_counter()
            if now > deadline:
                # httpx's read timeout bounds each read, not the whole stream: a server that
                # trickles chunks forever would otherwise never time out.
                raise CallError(ErrorInfo("timeout", f"the stream ran past the {self.timeout:g} s call timeout"))
            first_chunk = first_chunk if first_chunk is not None else now
            completion.request_id = completion.request_id or getattr(chunk, "id", None)
            completion.model = completion.model or getattr(chunk, "model", None)
            for choice in getattr(chunk, "choices", None) or []:
                delta = choice.delta
                if delta is not None:
                    thought = _text(delta, *_REASONING_FIELDS)
                    if thought:
                        thoughts.append(thought)
                        if completion.ttfr_ms is None:
                            completion.ttfr_ms = (now - start) * 1000
                    content = _text(delta, "content")
                    if content:
                        parts.append(content)
                    called = _stream_tool_calls(completion.tool_calls, by_index, _get(delta, "tool_calls"))
                    if (content or called) and completion.ttft_ms is None:
                        completion.ttft_ms = (now - start) * 1000
                if getattr(choice, "finish_reason", None):
                    completion.finish_reason = choice.finish_reason
            _usage(completion, getattr(chunk, "usage", None))
            if not completion.web_search:
                completion.web_search = _web_search(chunk)
        if first_chunk is None:
            raise CallError(ErrorInfo("server", "the stream ended without any chunk"))
        if completion.finish_reason is None:
            raise CallError(ErrorInfo("stream_cut", "the stream ended before its final chunk (no finish_reason)"))
        if completion.ttft_ms is None and completion.ttfr_ms is None:
            completion.ttft_ms = (first_chunk - start) * 1000
        completion.text = "".join(parts)
        completion.reasoning = "".join(thoughts)
        _settle_reasoning(completion)
        return completion

    def _async(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], start: float) -> Completion:
        create = self.sdk.chat.asyncCompletions.create
        task = create(model=model, messages=messages, **_call_args(create, params))
        task_id = task.id
        deadline = start + self.poll_timeout
        delay = self.poll_interval
        poll_failures = 0
        while True:
            try:
                result = self.sdk.chat.asyncCompletions.retrieve_completion_result(id=task_id)
            except Exception as exc:
                # A failed poll does not mean a failed task: poll again rather than resubmit
                # (a new task would be paid for again). Give up after a few in a row.
                err = classify(exc, self._secret)
                poll_failures += 1
                if not err.should_retry or poll_failures > 5 or time.perf_counter() + delay > deadline:
                    raise err from None
                time.sleep(max(delay, err.retry_after or 0.0))
                delay = min(delay * 1.5, 2.0)
                continue
            poll_failures = 0
            status = getattr(result, "task_status", None)
            if status == "SUCCESS":
                completion = self._from_response(result)
                completion.request_id = completion.request_id or task_id
                return completion
            if status == "FAIL":
                raise _task_failed(task_id, result)
            if time.perf_counter() + delay > deadline:
                raise CallError(
                    ErrorInfo("timeout", f"async task {task_id} still {status} after {self.poll_timeout:g} s (poll timeout)"),
                    retryable=False,
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        try:
            resp = self.sdk.embeddings.create(model=model, input=texts)
        except Exception as exc:
            raise classify(exc, self._secret) from None
        return [list(item.embedding) for item in sorted(resp.data, key=lambda d: d.index)]
