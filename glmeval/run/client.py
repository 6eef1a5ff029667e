"""The one wrapper around the official ``zhipuai`` SDK.

It makes a single attempt of a call in ``sync``, ``stream`` or ``async`` mode and turns
whatever happened into a :class:`Completion`: the answer with its usage and timing, or an
:class:`ErrorInfo` that the runner's retry policy can act on. The SDK's own retries are off
(``max_retries=0``): glmeval owns retries so it can count attempts, honour ``Retry-After`` and
stop at once on a bad key or an empty balance. The API key never appears in any message.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx

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


def _usage(completion: Completion, usage: Any) -> None:
    if usage is None:
        return
    completion.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    completion.total_tokens = int(getattr(usage, "total_tokens", 0) or 0) or (
        completion.prompt_tokens + completion.completion_tokens
    )


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

    def _args(self, params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if v is not None}

    def _sync(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion:
        resp = self.sdk.chat.completions.create(model=model, messages=messages, **self._args(params))
        return self._from_response(resp)

    def _from_response(self, resp: Any) -> Completion:
        if isinstance(resp, str):
            raise CallError(ErrorInfo("server", f"unexpected non-JSON response: {resp[:200]}"))
        completion = Completion(request_id=getattr(resp, "request_id", None) or getattr(resp, "id", None), model=getattr(resp, "model", None))
        choices = getattr(resp, "choices", None) or []
        if choices:
            choice = choices[0]
            message = choice.message
            completion.text = getattr(message, "content", None) or ""
            completion.tool_calls = _tool_calls(getattr(message, "tool_calls", None))
            completion.finish_reason = choice.finish_reason
        _usage(completion, getattr(resp, "usage", None))
        return completion

    def _stream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], start: float) -> Completion:
        stream = self.sdk.chat.completions.create(model=model, messages=messages, stream=True, **self._args(params))
        try:
            return self._read_stream(stream, start)
        finally:
            # The SDK stops reading at [DONE] and never closes the response; closing it here
            # hands the connection back to the pool at once (and drops a cut one).
            response = getattr(stream, "response", None)
            if response is not None:
                response.close()

    def _read_stream(self, stream: Any, start: float) -> Completion:
        completion = Completion()
        parts: list[str] = []
        got_any = False
        deadline = start + self.timeout
        for chunk in stream:
            got_any = True
            now = time.perf_counter()
            if now > deadline:
                # httpx's read timeout bounds each read, not the whole stream: a server that
                # trickles chunks forever would otherwise never time out.
                raise CallError(ErrorInfo("timeout", f"the stream ran past the {self.timeout:g} s call timeout"))
            if completion.ttft_ms is None:
                completion.ttft_ms = (now - start) * 1000
            completion.request_id = completion.request_id or getattr(chunk, "id", None)
            completion.model = completion.model or getattr(chunk, "model", None)
            for choice in getattr(chunk, "choices", None) or []:
                delta = choice.delta
                if delta is not None:
                    if getattr(delta, "content", None):
                        parts.append(delta.content)
                    completion.tool_calls.extend(_tool_calls(getattr(delta, "tool_calls", None)))
                if getattr(choice, "finish_reason", None):
                    completion.finish_reason = choice.finish_reason
            _usage(completion, getattr(chunk, "usage", None))
        if not got_any:
            raise CallError(ErrorInfo("server", "the stream ended without any chunk"))
        if completion.finish_reason is None:
            raise CallError(ErrorInfo("stream_cut", "the stream ended before its final chunk (no finish_reason)"))
        completion.text = "".join(parts)
        return completion

    def _async(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any], start: float) -> Completion:
        args = self._args(params)
        args.pop("stream", None)
        task = self.sdk.chat.asyncCompletions.create(model=model, messages=messages, **args)
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
